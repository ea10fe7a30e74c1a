"""dockyardd start-up and shutdown rules: one daemon per data root, daemon.json checks,
no plain TCP off loopback, clean SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from engines import ping, start_dockyardd


def _dockyardd(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dockyard.daemon.launch", *args],
        capture_output=True,
        timeout=timeout,
    )


def test_second_daemon_on_same_data_root_refuses(daemon, workdir):
    data = os.path.join(daemon.root, "data")
    out = _dockyardd(
        "-H",
        f"unix://{workdir}/second.sock",
        "--data-root",
        data,
        "--exec-root",
        f"{workdir}/second-exec",
        "--pidfile",
        f"{workdir}/second.pid",
        "--config-file",
        os.path.join(daemon.root, "daemon.json"),
    )
    assert out.returncode == 1
    assert b"another dockyardd is already using the data root" in out.stderr
    assert ping(daemon.sock)


def test_unknown_daemon_json_key_and_conflicts(workdir):
    cfg = os.path.join(workdir, "bad.json")
    with open(cfg, "w") as f:
        json.dump({"bogus-key": 1, "data-root": "/x"}, f)
    out = _dockyardd("--config-file", cfg)
    assert out.returncode == 1
    assert b"the following directives don't match any configuration option: bogus-key" in out.stderr
    with open(cfg, "w") as f:
        json.dump({"data-root": "/x"}, f)
    out = _dockyardd("--config-file", cfg, "--data-root", "/y")
    assert (
        out.returncode == 1
        and b"specified both as a flag and in the configuration file" in out.stderr
    )
    with open(cfg, "w") as f:
        f.write("{not json")
    out = _dockyardd("--config-file", cfg)
    assert out.returncode == 1 and b"is not valid JSON" in out.stderr


def test_plain_tcp_off_loopback_is_refused(workdir):
    root = os.path.join(workdir, "tcp")
    out = _dockyardd(
        "-H",
        "tcp://0.0.0.0:23750",
        "--data-root",
        f"{root}/data",
        "--exec-root",
        f"{root}/exec",
        "--pidfile",
        f"{root}/pid",
    )
    assert out.returncode == 1 and b"without TLS" in out.stderr


def test_loopback_tcp_and_sigterm_shutdown(workdir, daemon):
    engine = start_dockyardd(os.path.join(workdir, "tcp-ok"), "-H", "tcp://127.0.0.1:23751")
    try:
        version = engine.cli(
            "-H", "tcp://127.0.0.1:23751", "version", "--format", "{{.Server.APIVersion}}"
        )
        assert version.stdout == b"1.50\n"
        engine.proc.send_signal(signal.SIGTERM)
        assert engine.proc.wait(15) == 0
        assert not os.path.exists(engine.sock)
        assert not os.path.exists(os.path.join(engine.root, "d.pid"))
    finally:
        engine.stop()


def test_images_survive_kill_9(workdir):
    root = os.path.join(workdir, "restart")
    engine = start_dockyardd(root)
    try:
        body = subprocess.run(
            ["tar", "-C", "/etc", "-c", "hostname"], capture_output=True, check=True
        ).stdout
        engine.cli("import", "-", "keep/me:1", input=body, check=True)
        before = engine.cli("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}").stdout
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        # same data root, fresh daemon: nothing that was acknowledged is lost
        engine = start_dockyardd(root)
        after = engine.cli("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}").stdout
        assert after == before and b"keep/me" in after
        saved = engine.cli("save", "keep/me:1", check=True).stdout
        assert len(saved) > 1024
    finally:
        engine.stop()


def _make_certs(directory: str) -> dict[str, str]:
    """A CA, a server cert for 127.0.0.1 and a client cert, made with openssl."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dockyard-test-ca",
    )
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        with open(os.path.join(directory, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    return {
        n: os.path.join(directory, n)
        for n in ("ca.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem")
    }


def test_tls_verify_with_docker_cli(workdir):
    certs_dir = os.path.join(workdir, "certs")
    os.makedirs(certs_dir, exist_ok=True)
    c = _make_certs(certs_dir)
    host = "tcp://127.0.0.1:23753"
    engine = start_dockyardd(
        os.path.join(workdir, "tls"),
        "-H",
        host,
        "--tlsverify",
        "--tlscacert",
        c["ca.pem"],
        "--tlscert",
        c["server.pem"],
        "--tlskey",
        c["server-key.pem"],
    )
    try:
        tls = [
            "--tlsverify",
            "--tlscacert",
            c["ca.pem"],
            "--tlscert",
            c["client.pem"],
            "--tlskey",
            c["client-key.pem"],
            "-H",
            host,
        ]
        ok = engine.cli(*tls, "version", "--format", "{{.Server.APIVersion}}")
        assert ok.stdout == b"1.50\n", ok.stderr
        no_cert = engine.cli("--tlsverify", "--tlscacert", c["ca.pem"], "-H", host, "version")
        assert no_cert.returncode != 0
        mine = engine.cli(
            *tls,
            "version",
            "--format",
            "{{.Server.APIVersion}}",
            program=[sys.executable, "-m", "dockyard.cli.main"],
        )
        assert mine.stdout == b"1.50\n", mine.stderr
    finally:
        engine.stop()


def test_vfs_driver(workdir):
    engine = start_dockyardd(os.path.join(workdir, "vfs"), "--storage-driver", "vfs")
    try:
        body = subprocess.run(
            ["tar", "-C", "/etc", "-c", "hostname", "passwd"], capture_output=True, check=True
        ).stdout
        engine.cli("import", "-", "vfs/img:1", input=body, check=True)
        info = engine.cli("info", "--format", "{{.Driver}}", check=True)
        assert info.stdout == b"vfs\n"
        layers = os.path.join(engine.root, "data", "vfs", "dir")
        assert any(os.path.exists(os.path.join(layers, d, "passwd")) for d in os.listdir(layers))
        saved = engine.cli("save", "vfs/img:1", check=True).stdout
        engine.cli("rmi", "vfs/img:1", check=True)
        assert engine.cli("load", input=saved, check=True).stdout == b"Loaded image: vfs/img:1\n"
    finally:
        engine.stop()


def test_runtime_configuration_errors(workdir):
    cfg = os.path.join(workdir, "runtimes.json")
    for body, message in (
        ({"default-runtime": "nosuch"}, b"default runtime nosuch does not exist"),
        (
            {"runtimes": {"mine": {"runtimeArgs": []}}},
            b'runtime mine: a "path" to the runtime\'s binary is required',
        ),
        ({"runtimes": {"dockyard": {"path": "/bin/true"}}}, b"runtime name 'dockyard' is reserved"),
    ):
        with open(cfg, "w") as f:
            json.dump(body, f)
        out = _dockyardd("--config-file", cfg)
        assert out.returncode == 1 and message in out.stderr, out.stderr
    with open(cfg, "w") as f:
        json.dump({"default-runtime": "dockyard"}, f)
    out = _dockyardd("--config-file", cfg, "--default-runtime", "runc")
    assert (
        out.returncode == 1
        and b"specified both as a flag and in the configuration file" in out.stderr
    )


def test_added_runtime_as_default(workdir):
    """--add-runtime and --default-runtime: containers that name no runtime run under it."""
    runc = shutil.which("runc")
    if runc is None:
        pytest.fail("runc is not installed (install.sh --test installs docker.io, which brings it)")
    engine = start_dockyardd(
        os.path.join(workdir, "rt"),
        "--add-runtime",
        f"myrunc={runc}",
        "--default-runtime",
        "myrunc",
    )
    try:
        from engines import make_busybox

        make_busybox(engine)
        info = json.loads(engine.cli("info", "--format", "{{json .}}").stdout)
        assert info["DefaultRuntime"] == "myrunc" and info["Runtimes"]["myrunc"]["path"] == runc
        assert (
            engine.cli(
                "run", "--name", "r1", "--network", "none", "busybox", "echo", "via runc"
            ).stdout
            == b"via runc\n"
        )
        assert (
            engine.cli("inspect", "--format", "{{.HostConfig.Runtime}}", "r1").stdout == b"myrunc\n"
        )
        native = engine.cli(
            "run", "--rm", "--runtime", "dockyard", "--network", "none", "busybox", "echo", "native"
        )
        assert native.stdout == b"native\n"
    finally:
        engine.stop()


def test_daemon_wide_seccomp_profile_and_no_new_privileges(workdir):
    """dockerd's --seccomp-profile and --no-new-privileges: the defaults of containers that
    ask for nothing; a container's own security options still win; docker info shows them."""
    profile = os.path.join(workdir, "no-mkdir.json")
    with open(profile, "w") as f:
        json.dump(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
            },
            f,
        )
    engine = start_dockyardd(
        os.path.join(workdir, "sec"), "--seccomp-profile", profile, "--no-new-privileges"
    )
    try:
        from engines import make_busybox

        make_busybox(engine)
        info = json.loads(engine.cli("info", "--format", "{{json .SecurityOptions}}").stdout)
        assert info == [f"name=seccomp,profile={profile}", "name=no-new-privileges"]
        run = ("run", "--rm", "--network", "none", "busybox", "sh", "-c")
        out = engine.cli(*run, "mkdir /x; grep NoNewPrivs /proc/self/status")
        assert out.stderr == b"mkdir: can't create directory '/x': Operation not permitted\n"
        assert out.stdout == b"NoNewPrivs:\t1\n"
        own = engine.cli(
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            "seccomp=builtin",
            "--security-opt",
            "no-new-privileges=false",
            "busybox",
            "sh",
            "-c",
            "mkdir /x && grep NoNewPrivs /proc/self/status",
        )
        assert (own.returncode, own.stdout) == (0, b"NoNewPrivs:\t0\n"), own.stderr
    finally:
        engine.stop()


def test_daemon_wide_security_errors(workdir):
    bad = os.path.join(workdir, "bad-profile.json")
    with open(bad, "w") as f:
        f.write('{"defaultAction": 7}')
    out = _dockyardd("--seccomp-profile", bad)
    assert out.returncode == 1 and b"Error loading seccomp profile" in out.stderr, out.stderr
    out = _dockyardd("--seccomp-profile", os.path.join(workdir, "missing.json"))
    assert out.returncode == 1 and b"Error loading seccomp profile" in out.stderr, out.stderr
    cfg = os.path.join(workdir, "security.json")
    with open(cfg, "w") as f:
        json.dump({"no-new-privileges": "yes"}, f)
    out = _dockyardd("--config-file", cfg)
    assert out.returncode == 1 and b"invalid value for no-new-privileges" in out.stderr
    with open(cfg, "w") as f:
        json.dump({"seccomp-profile": "unconfined"}, f)
    out = _dockyardd("--config-file", cfg, "--seccomp-profile", "builtin")
    assert (
        out.returncode == 1
        and b"specified both as a flag and in the configuration file" in out.stderr
    )


def test_daemon_runs_on_jemalloc_and_its_supervisor_does_not(daemon):
    """The launcher (daemon/launch.py) preloads jemalloc into the daemon only: the
    supervisor it starts, and so every container, gets the environment the daemon was
    started with."""
    from dockyard.daemon.launch import JEMALLOC_PATHS

    if not any(os.path.exists(p) for p in JEMALLOC_PATHS):
        pytest.fail("libjemalloc2 is not installed: ./install.sh installs it")
    with open(f"/proc/{daemon.proc.pid}/maps", encoding="utf-8") as f:
        assert "libjemalloc" in f.read()
    with open(f"/proc/{daemon.proc.pid}/environ", "rb") as f:
        assert b"PYTHONMALLOC=malloc" in f.read().split(b"\0")
    supervisors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"dockyard.runtime.supervisor" in cmd and any(daemon.root.encode() in a for a in cmd):
            supervisors.append(pid)
    assert supervisors
    for pid in supervisors:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        assert not any(e.startswith((b"LD_PRELOAD=", b"PYTHONMALLOC=")) for e in env), env
        with open(f"/proc/{pid}/maps", encoding="utf-8") as f:
            assert "libjemalloc" not in f.read()


def test_sigusr2_logs_where_the_memory_is(daemon):
    """``kill -USR2`` (README) logs the RSS and jemalloc's split, and the daemon serves on."""
    os.kill(daemon.proc.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    line = ""
    while time.monotonic() < deadline and not line:
        with open(daemon.log, encoding="utf-8", errors="replace") as f:
            line = next((x for x in f if "memory: RSS" in x and "jemalloc allocated" in x), "")
        time.sleep(0.1)
    assert line, "no memory report in the daemon's log"
    assert daemon.proc.poll() is None
    assert daemon.cli("version", check=True).returncode == 0
