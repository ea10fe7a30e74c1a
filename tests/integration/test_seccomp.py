"""Seccomp side by side: the docker CLI against dockyardd and against the reference dockerd
(runc + libseccomp), same commands, same answers.  ``--network none`` throughout (the
reference dockerd has no bridge); every named container is removed by a finalizer."""

from __future__ import annotations

import json
import uuid

import pytest
from engines import api_request

NET = ("--network", "none")
STATUS = ("grep", "-E", "^(NoNewPrivs|Seccomp)", "/proc/self/status")
FILTERED = b"Seccomp:\t2\nSeccomp_filters:\t1\n"
UNFILTERED = b"Seccomp:\t0\nSeccomp_filters:\t0\n"


@pytest.fixture
def same(daemon, dockerd):
    """Run one docker command on both engines; assert the same exit code, stdout, stderr."""

    def run(*args: str, stdout: bytes | None = None, code: int | None = None):
        mine, theirs = daemon.cli(*args), dockerd.cli(*args)
        assert (mine.returncode, mine.stdout, mine.stderr) == (
            theirs.returncode,
            theirs.stdout,
            theirs.stderr,
        ), args
        if stdout is not None:
            assert mine.stdout == stdout, args
        if code is not None:
            assert mine.returncode == code, (args, mine.stderr)
        return mine

    return run


@pytest.fixture
def names(daemon, dockerd):
    made: list[str] = []

    def make() -> str:
        made.append(f"dyt-sc-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    if made:
        for engine in (daemon, dockerd):
            engine.cli("rm", "-f", *made)


@pytest.fixture
def profile(tmp_path):
    """Write a profile file the docker CLI reads (it sends the content, not the path)."""

    def write(body: dict | str) -> str:
        path = tmp_path / f"profile-{uuid.uuid4().hex[:6]}.json"
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        return str(path)

    return write


NO_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
}


def test_default_profile_is_on_unconfined_and_privileged_are_off(same, docker):
    same("run", "--rm", *NET, "busybox", "grep", "^Seccomp", "/proc/self/status", stdout=FILTERED)
    same(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "grep",
        "^Seccomp",
        "/proc/self/status",
        stdout=UNFILTERED,
    )
    same(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        "seccomp:unconfined",
        "busybox",
        "grep",
        "^Seccomp",
        "/proc/self/status",
        stdout=UNFILTERED,
    )
    # dockerd cannot run --privileged on this VM (it withholds a capability): dockyard alone.
    priv = docker(
        "run", "--rm", *NET, "--privileged", "busybox", "grep", "^Seccomp", "/proc/self/status"
    )
    assert priv.stdout == UNFILTERED, priv.stderr


def test_default_profile_denies_what_capabilities_alone_would_allow(same):
    # Creating a user namespace needs no capability: only the profile refuses it.
    denied = same("run", "--rm", *NET, "busybox", "unshare", "-U", "true", code=1)
    assert b"Operation not permitted" in denied.stderr
    same(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-U",
        "true",
        code=0,
    )
    mount = same(
        "run", "--rm", *NET, "busybox", "sh", "-c", "mkdir -p /m && mount -t tmpfs x /m", code=1
    )
    assert b"permission denied" in mount.stderr
    # CAP_SYS_ADMIN brings the profile's own allowance of unshare and mount with it.
    same(
        "run",
        "--rm",
        *NET,
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "sh",
        "-c",
        "unshare -m true && mkdir -p /m && mount -t tmpfs x /m && echo ok",
        stdout=b"ok\n",
    )


def test_custom_profile_file(same, profile):
    out = same(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        f"seccomp={profile(NO_MKDIR)}",
        "busybox",
        "sh",
        "-c",
        "mkdir /x; grep ^Seccomp: /proc/self/status",
        stdout=b"Seccomp:\t2\n",
    )
    assert out.stderr == b"mkdir: can't create directory '/x': Operation not permitted\n"
    eacces = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"name": "mkdirat", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        ],
    }
    out = same(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        f"seccomp={profile(eacces)}",
        "busybox",
        "mkdir",
        "/x",
        code=1,
    )
    assert out.stderr == b"mkdir: can't create directory '/x': Permission denied\n"


def test_exec_gets_the_containers_filter(daemon, dockerd, same, names, profile):
    plain, custom = names(), names()
    for engine in (daemon, dockerd):
        engine.cli("run", "-d", *NET, "--name", plain, "busybox", "sleep", "300", check=True)
        engine.cli(
            "run",
            "-d",
            *NET,
            "--name",
            custom,
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            f"seccomp={profile(NO_MKDIR)}",
            "busybox",
            "sleep",
            "300",
            check=True,
        )
    same("exec", plain, "grep", "^Seccomp", "/proc/self/status", stdout=FILTERED)
    out = same(
        "exec",
        custom,
        "sh",
        "-c",
        "grep -E '^(NoNewPrivs|Seccomp)' /proc/self/status; mkdir /x",
        stdout=b"NoNewPrivs:\t1\n" + FILTERED,
        code=1,
    )
    assert b"Operation not permitted" in out.stderr
    same("exec", "-u", "1000", plain, "unshare", "-U", "true", code=1)


def test_no_new_privileges_with_seccomp(same, profile):
    # Without no_new_privs the filter goes in before capabilities are dropped; with it,
    # right before execve, after setuid: both must work for a non-root user.
    same(
        "run",
        "--rm",
        *NET,
        "-u",
        "1000:1000",
        "busybox",
        *STATUS,
        stdout=b"NoNewPrivs:\t0\n" + FILTERED,
    )
    same(
        "run",
        "--rm",
        *NET,
        "-u",
        "1000:1000",
        "--security-opt",
        "no-new-privileges=true",
        "busybox",
        *STATUS,
        stdout=b"NoNewPrivs:\t1\n" + FILTERED,
    )
    same(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        f"seccomp={profile(NO_MKDIR)}",
        "busybox",
        "sh",
        "-c",
        "grep ^NoNewPrivs /proc/self/status; mkdir /x",
        stdout=b"NoNewPrivs:\t1\n",
        code=1,
    )
    same(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "unshare",
        "-U",
        "true",
        code=1,
    )


def test_bad_profiles_are_refused(daemon, dockerd, same, profile, names):
    # Not JSON: the docker CLI itself refuses it, for either engine.
    truncated = profile('{"defaultAction": ')
    same("run", "--rm", *NET, "--security-opt", f"seccomp={truncated}", "busybox", "true", code=125)
    cases = [
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}],
            },
            b"'architectures' and 'archMap' were specified in the seccomp profile",
        ),
        ({"defaultAction": "SCMP_ACT_BOGUS"}, b"SCMP_ACT_BOGUS"),
    ]
    for body, message in cases:
        name = names()
        args = (
            "run",
            "--rm",
            *NET,
            "--name",
            name,
            "--security-opt",
            f"seccomp={profile(body)}",
            "busybox",
            "true",
        )
        mine, theirs = daemon.cli(*args), dockerd.cli(*args)
        assert mine.returncode == theirs.returncode == 125, (mine.stderr, theirs.stderr)
        assert message in mine.stderr and message in theirs.stderr, (mine.stderr, theirs.stderr)
        # Refused at create: nothing is left behind.
        assert daemon.cli("ps", "-aq", "--filter", f"name={name}").stdout == b""
    listener = daemon.cli(
        "run",
        "--rm",
        *NET,
        "--security-opt",
        f"seccomp={profile({'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': '/x.sock'})}",
        "busybox",
        "true",
    )
    assert listener.returncode == 125 and b"listenerPath is not supported" in listener.stderr


def test_malformed_profile_over_the_api(daemon, dockerd):
    body = json.dumps(
        {
            "Image": "busybox",
            "Cmd": ["true"],
            "HostConfig": {"NetworkMode": "none", "SecurityOpt": ["seccomp={bad"]},
        }
    ).encode()
    status, reply = api_request(daemon, "POST", "/containers/create", body)
    assert status == 400 and json.loads(reply)["message"].startswith(
        "Decoding seccomp profile failed: "
    )
    # dockerd takes it at create and fails the start with the same words (a 500).
    status, reply = api_request(dockerd, "POST", "/containers/create", body)
    cid = json.loads(reply)["Id"]
    try:
        status, reply = api_request(dockerd, "POST", f"/containers/{cid}/start")
        assert json.loads(reply)["message"].startswith("Decoding seccomp profile failed: ")
    finally:
        api_request(dockerd, "DELETE", f"/containers/{cid}?force=1")


def test_info_security_options(daemon, dockerd, dockyard):
    fmt = ("info", "--format", "{{json .SecurityOptions}}")
    assert json.loads(daemon.cli(*fmt).stdout) == ["name=seccomp,profile=builtin"]
    # dockerd 20.10 names its builtin profile "default" (later releases say "builtin").
    assert json.loads(dockerd.cli(*fmt).stdout) == ["name=seccomp,profile=default"]

    def section(out: bytes) -> list[str]:
        lines = out.decode().splitlines()
        start = lines.index(" Security Options:")
        return lines[start : start + 3]

    mine, theirs = section(daemon.cli("info").stdout), section(dockerd.cli("info").stdout)
    assert mine == [" Security Options:", "  seccomp", "   Profile: builtin"]
    assert theirs == [" Security Options:", "  seccomp", "   Profile: default"]
    assert section(dockyard("info").stdout) == mine  # the dockyard CLI prints it as docker does


SYSCALL_PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long rc = syscall(strtol(argv[i], NULL, 10), 0, 0, 0, 0, 0, 0);
        printf("%s %s\n", argv[i], rc < 0 ? strerrorname_np(errno) : "ok");
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A static binary that makes raw syscalls by number (built with the gcc install.sh
    installs), bind-mounted into busybox on both engines."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "install.sh installs gcc"
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe.c").write_text(SYSCALL_PROBE)
    subprocess.run(
        [cc, "-static", "-O2", "-o", str(folder / "probe"), str(folder / "probe.c")], check=True
    )
    return str(folder)


def test_syscalls_newer_than_the_profile_fail_with_enosys(same, probe):
    """As runc: past the profile's last syscall ENOSYS (a libc falls back), inside it the
    default action's EPERM (kexec_load 246, open_by_handle_at 304), allowed ones run
    (getpid 39)."""
    out = same(
        "run",
        "--rm",
        *NET,
        "-v",
        f"{probe}:/probe:ro",
        "busybox",
        "/probe/probe",
        "39",
        "246",
        "304",
        "600",
        "1000",
        code=0,
    )
    assert out.stdout == b"39 ok\n246 EPERM\n304 EPERM\n600 ENOSYS\n1000 ENOSYS\n"
