"""Container commands of the dockyard CLI against the official docker CLI, both talking to
the same engine (the reference dockerd today; swap ``engine`` for ``daemon`` to run the same
checks against dockyardd).  Every container a test makes is removed by a finalizer.  Always
``--network none``: the reference dockerd has no bridge."""

from __future__ import annotations

import io
import json
import os
import select
import sys
import tarfile
import time
import uuid

import pytest
from engines import assert_same

NET = ("--network", "none")


@pytest.fixture
def names(engine):
    """Unique container names; whatever exists under them is force-removed afterwards."""
    made: list[str] = []

    def make(prefix: str = "c") -> str:
        name = f"dyt-{prefix}-{uuid.uuid4().hex[:8]}"
        made.append(name)
        return name

    yield make
    if made:
        engine.cli("rm", "-f", *made)


# -- run ------------------------------------------------------------------------------------


def test_run_foreground_separates_streams_and_passes_exit_code(dy_cli, ref):
    res = assert_same(
        dy_cli, ref, "run", "--rm", *NET, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (res.returncode, res.stdout, res.stderr) == (3, b"out\n", b"err\n")


def test_run_attach_subsets_and_tty_without_terminal(dy_cli, ref):
    script = ("sh", "-c", "echo a; echo b >&2")
    assert_same(dy_cli, ref, "run", "--rm", "-a", "stdout", *NET, "busybox", *script)
    assert_same(dy_cli, ref, "run", "--rm", "-a", "stderr", *NET, "busybox", *script)
    res = assert_same(dy_cli, ref, "run", "--rm", "-t", *NET, "busybox", *script)
    assert res.stdout == b"a\r\nb\r\n"


def test_run_stdin_piped(dy_cli, ref):
    res = assert_same(
        dy_cli,
        ref,
        "run",
        "-i",
        "--rm",
        *NET,
        "busybox",
        "sh",
        "-c",
        "cat; exit 7",
        input=b"piped-in\nline2\n",
    )
    assert res.stdout == b"piped-in\nline2\n" and res.returncode == 7


def test_run_errors_and_exit_codes(dy_cli, ref):
    assert assert_same(dy_cli, ref, "run", *NET, "--rm", "busybox", "/nonexist").returncode == 127
    assert assert_same(dy_cli, ref, "run", *NET, "--rm", "busybox", "/etc").returncode == 126
    assert (
        assert_same(dy_cli, ref, "run", "--rm", "--restart", "always", "busybox").returncode == 125
    )
    assert assert_same(dy_cli, ref, "run", "-d", "-a", "stdout", "busybox").returncode == 1
    assert (
        assert_same(dy_cli, ref, "run", "-it", *NET, "busybox", "true", input=b"x").returncode == 1
    )
    missing = dy_cli("run", *NET, "--rm", "nosuch-image-dyt")
    assert missing.returncode == 125
    assert missing.stderr.startswith(b"Unable to find image 'nosuch-image-dyt:latest' locally\n")
    assert b"Error response from daemon:" in missing.stderr


def test_run_detached_ps_logs_stop(dy_cli, ref, names):
    name = names("d")
    res = dy_cli(
        "run",
        "-d",
        *NET,
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "echo hello; echo bad >&2; sleep 300",
    )
    assert res.returncode == 0 and len(res.stdout.strip()) == 64, res.stderr
    cid = res.stdout.decode().strip()
    time.sleep(0.5)
    for args in (
        ("ps",),
        ("ps", "-a", "--no-trunc"),
        ("ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Command}} {{.State}}"),
        ("ps", "-q"),
        ("ps", "--filter", f"name={name}", "--format", "table {{.Names}}\t{{.Image}}\t{{.Ports}}"),
        ("container", "ls", "-n", "1", "--format", "{{json .Names}}"),
    ):
        assert_same(dy_cli, ref, *args, tries=3)  # STATUS may tick between the two calls
    assert cid[:12].encode() in dy_cli("ps", "-q").stdout
    res = assert_same(dy_cli, ref, "logs", name)
    assert (res.stdout, res.stderr) == (b"hello\n", b"bad\n")
    assert_same(dy_cli, ref, "logs", "--tail", "1", name)
    stamped = assert_same(dy_cli, ref, "logs", "-t", name)
    assert stamped.stdout.decode().split(" ", 1)[1] == "hello\n"
    assert_same(dy_cli, ref, "inspect", "-f", "{{.Name}} {{.State.Running}} {{.Config.Cmd}}", name)
    assert_same(dy_cli, ref, "container", "inspect", "-f", "{{.Id}}", name)
    assert_same(dy_cli, ref, "top", name, tries=3)
    stopped = dy_cli("stop", "-t", "1", name)
    assert (stopped.returncode, stopped.stdout) == (0, name.encode() + b"\n")
    assert dy_cli("wait", name).stdout == b"137\n"


def test_kill_wait_start_attach_rm(dy_cli, ref, names):
    name = names("k")
    dy_cli(
        "run",
        "-d",
        *NET,
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
        check=True,
    )
    time.sleep(0.5)
    assert dy_cli("kill", "-s", "USR1", name).stdout == name.encode() + b"\n"
    assert dy_cli("wait", name).stdout == b"42\n"
    assert assert_same(dy_cli, ref, "kill", name).returncode == 1  # not running: 409
    other = names("s")
    dy_cli(
        "create", *NET, "--name", other, "busybox", "sh", "-c", "echo started; exit 4", check=True
    )
    res = dy_cli("start", "-a", other)
    assert (res.returncode, res.stdout) == (4, b"started\n")
    assert_same(dy_cli, ref, "start", "-a", other)
    res = dy_cli("rm", name, other)
    assert (res.returncode, res.stdout) == (0, f"{name}\n{other}\n".encode())
    for args in (
        ("stop", "nosuch-dyt"),
        ("kill", "nosuch-dyt"),
        ("rm", "nosuch-dyt"),
        ("rm", "-f", "nosuch-dyt"),
        ("start", "nosuch-dyt"),
        ("wait", "nosuch-dyt"),
        ("logs", "nosuch-dyt"),
        ("rename", "nosuch-dyt", "x"),
        ("exec", "nosuch-dyt", "true"),
        ("top", "nosuch-dyt"),
        ("container", "inspect", "nosuch-dyt"),
        ("diff", "nosuch-dyt"),
    ):
        assert_same(dy_cli, ref, *args)


def test_exec_rename_diff_export_restart_pause(dy_cli, ref, names, tmp_path, request):
    name = names("e")
    dy_cli(
        "run",
        "-d",
        *NET,
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "mkdir /data; echo hi > /data/f; sleep 300",
        check=True,
    )
    time.sleep(0.5)
    res = assert_same(
        dy_cli,
        ref,
        "exec",
        "-e",
        "A=1",
        "-w",
        "/data",
        name,
        "sh",
        "-c",
        "echo $A $(pwd); echo e >&2; exit 5",
    )
    assert (res.returncode, res.stdout, res.stderr) == (5, b"1 /data\n", b"e\n")
    res = assert_same(dy_cli, ref, "exec", "-i", name, "cat", input=b"via-exec\n")
    assert res.stdout == b"via-exec\n"
    assert dy_cli("exec", "-d", name, "touch", "/data/detached").returncode == 0
    time.sleep(0.3)
    # the daemon's order of changes is not stable (a Go map): compare as sets
    changes = dy_cli("diff", name)
    assert sorted(changes.stdout.splitlines()) == sorted(ref("diff", name).stdout.splitlines())
    assert b"A /data/f\n" in changes.stdout
    out = tmp_path / "fs.tar"
    assert dy_cli("export", "-o", str(out), name).returncode == 0
    with tarfile.open(out) as tar:
        assert tar.extractfile("data/f").read() == b"hi\n"
    new = names("r")
    assert dy_cli("rename", name, new).returncode == 0
    assert dy_cli("inspect", "-f", "{{.Name}}", new).stdout == f"/{new}\n".encode()
    assert dy_cli("pause", new).stdout == new.encode() + b"\n"
    assert dy_cli("inspect", "-f", "{{.State.Status}}", new).stdout == b"paused\n"
    assert dy_cli("unpause", new).stdout == new.encode() + b"\n"
    assert dy_cli("restart", "-t", "1", new).stdout == new.encode() + b"\n"
    assert (
        dy_cli("update", "-m", "64m", "--memory-swap", "128m", "--pids-limit", "50", new).returncode
        == 0
    )
    assert (
        dy_cli("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", new).stdout
        == b"67108864 50\n"
    )
    stats = dy_cli("stats", "--no-stream", new)
    header = stats.stdout.decode().splitlines()[0].split("   ")
    assert [h.strip() for h in header if h.strip()] == [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    assert new.encode() in stats.stdout
    assert dy_cli("rm", "-f", new).stdout == new.encode() + b"\n"


def test_cp_both_ways(dy_cli, ref, names, tmp_path, request):
    name = names("cp")
    dy_cli(
        "run",
        "-d",
        *NET,
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "mkdir /data; echo hi > /data/f; sleep 300",
        check=True,
    )
    time.sleep(0.5)
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    for src, dest in (("/data/f", "f"), ("/data", ""), ("/data", "new"), ("/data/.", "dot")):
        assert dy_cli("cp", f"{name}:{src}", str(mine / dest)).returncode == 0
        ref("cp", f"{name}:{src}", str(theirs / dest), check=True)

    def listing(root):
        return sorted(
            (p.relative_to(root).as_posix(), p.read_bytes() if p.is_file() else None)
            for p in root.rglob("*")
        )

    assert listing(mine) == listing(theirs)
    assert (mine / "f").read_bytes() == b"hi\n" and (mine / "new" / "f").exists()
    raw = dy_cli("cp", f"{name}:/data/f", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert tar.extractfile("f").read() == b"hi\n"
    up = tmp_path / "up.txt"
    up.write_bytes(b"uploaded\n")
    (tmp_path / "updir" / "sub").mkdir(parents=True)
    (tmp_path / "updir" / "sub" / "s").write_bytes(b"s\n")
    assert dy_cli("cp", str(up), f"{name}:/data/").returncode == 0
    assert dy_cli("cp", str(up), f"{name}:/data/renamed").returncode == 0
    assert dy_cli("cp", str(tmp_path / "updir"), f"{name}:/data/newdir").returncode == 0
    found = (
        dy_cli("exec", name, "sh", "-c", "find /data | sort; cat /data/renamed")
        .stdout.decode()
        .split()
    )
    assert found == [
        "/data",
        "/data/f",
        "/data/newdir",
        "/data/newdir/sub",
        "/data/newdir/sub/s",
        "/data/renamed",
        "/data/up.txt",
        "uploaded",
    ]
    assert_same(dy_cli, ref, "cp", f"{name}:/nonexist", str(tmp_path / "x"))
    assert_same(dy_cli, ref, "cp", str(tmp_path / "nonexist"), f"{name}:/")


def test_create_body_fields(dy_cli, names, request):
    name = names("cr")
    os.environ["DYT_FROM_ENV"] = "envval"
    res = dy_cli(
        "create",
        "--name",
        name,
        "-p",
        "8080:80",
        "-v",
        "/tmp:/host:ro",
        "--restart",
        "on-failure:3",
        "--cap-add",
        "net_admin",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "--entrypoint",
        "sh",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "--network",
        "none",
        "--hostname",
        "hh",
        "--init",
        "-l",
        "a=b",
        "-e",
        "X=1",
        "-e",
        "DYT_FROM_ENV",
        "-m",
        "64m",
        "--cpus",
        "1.5",
        "--ulimit",
        "nofile=1024:2048",
        "--pids-limit",
        "40",
        "busybox",
        "-c",
        "true",
    )
    assert res.returncode == 0, res.stderr
    info = json.loads(dy_cli("inspect", name).stdout)[0]
    cfg, host = info["Config"], info["HostConfig"]
    assert cfg["Hostname"] == "hh" and cfg["User"] == "1000" and cfg["WorkingDir"] == "/tmp"
    assert (
        cfg["Entrypoint"] == ["sh"] and cfg["Cmd"] == ["-c", "true"] and cfg["Labels"] == {"a": "b"}
    )
    assert "X=1" in cfg["Env"] and "DYT_FROM_ENV=envval" in cfg["Env"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}}
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    assert host["Binds"] == ["/tmp:/host:ro"] and host["NetworkMode"] == "none"
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["CapAdd"] == ["CAP_NET_ADMIN"] and host["Init"] is True
    assert (
        host["Memory"] == 64 << 20 and host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] == 40
    )
    assert host["Ulimits"] == [{"Name": "nofile", "Hard": 2048, "Soft": 1024}]


def test_container_prune(dy_cli, ref, names):
    name = names("p")
    dy_cli("run", *NET, "--name", name, "busybox", "true", check=True)
    cid = dy_cli("inspect", "-f", "{{.Id}}", name).stdout
    res = dy_cli("container", "prune", "-f")
    assert res.returncode == 0 and cid in res.stdout
    assert (
        res.stdout.startswith(b"Deleted Containers:\n")
        and b"\nTotal reclaimed space: " in res.stdout
    )
    assert_same(dy_cli, ref, "container", "prune", "-f")


# -- terminals ------------------------------------------------------------------------------


def _in_pty(argv, env, inputs, timeout=30.0):
    """Run ``argv`` on a new pty, typing each input once output has been quiet briefly."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - child
        os.execvpe(argv[0], argv, env)
    out, pending, last = b"", list(inputs), time.monotonic()
    deadline = last + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
                last = time.monotonic()
            elif pending and time.monotonic() - last > 0.5:
                os.write(fd, pending.pop(0))
                last = time.monotonic()
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return out, os.waitstatus_to_exitcode(status)


def test_run_it_and_exec_it_through_a_pty(engine, names):
    from engines import DOCKER_CLI

    mine = [sys.executable, "-m", "dockyard.cli.main"]
    typed = [b"echo hello\r", b"exit 3\r"]
    results = [
        _in_pty(prog + ["run", "-it", "--rm", *NET, "busybox", "sh"], engine.env, typed)
        for prog in (mine, [DOCKER_CLI])
    ]
    assert results[0] == results[1]
    assert b"hello\r\n" in results[0][0] and results[0][1] == 3
    # detach keys (ctrl-p ctrl-q, typed one by one) leave the container running
    name = names("tty")
    out, code = _in_pty(
        mine + ["run", "-it", "--name", name, *NET, "busybox", "sh"],
        engine.env,
        [b"echo hi\r", b"\x10", b"\x11"],
    )
    assert code == 0 and b"hi\r\n" in out
    assert engine.cli("inspect", "-f", "{{.State.Running}}", name).stdout == b"true\n"
    out, code = _in_pty(mine + ["exec", "-it", name, "sh"], engine.env, typed)
    assert code == 3 and b"hello\r\n" in out


def test_attach_and_exec_detach_like_cli_28(engine, names):
    """`attach` and `exec -it` end with "read escape sequence" and exit 1 on a detach (run
    and start -a do not); keys typed in one write detach too (moby/term's escape proxy)."""
    from engines import DOCKER_CLI

    mine = [sys.executable, "-m", "dockyard.cli.main"]
    name = names("dk")
    engine.cli("run", "-dit", "--name", name, *NET, "busybox", "sh", check=True)
    for args, typed in (
        (["attach", name], [b"echo hi\r", b"\x10", b"\x11"]),
        (["attach", "--detach-keys", "ctrl-a,x", name], [b"echo hi\r", b"\x01x"]),
        (["exec", "-it", name, "sh"], [b"echo hi\r", b"\x10\x11"]),
    ):
        for prog in (mine, [DOCKER_CLI]):
            out, code = _in_pty(prog + args, engine.env, typed)
            # (CLI 28 resizes the terminal on attach, which makes sh redraw its prompt first)
            assert code == 1 and out.endswith(b"hi\r\n/ # \x1b[6nread escape sequence\r\n"), (
                prog,
                args,
                out,
            )
        assert engine.cli("inspect", "-f", "{{.State.Running}}", name).stdout == b"true\n"


# -- devices --------------------------------------------------------------------------------


def test_device_nodes_and_permissions(dy_cli, ref):
    # /dev/kmsg is outside the default allow list: read-only access means a write is refused.
    script = "ls -ln /dev/mykmsg /dev/zero2 | cut -c1-10; echo dyt > /dev/mykmsg && echo wrote; head -c 3 /dev/zero2 | wc -c"
    res = assert_same(
        dy_cli,
        ref,
        "run",
        "--rm",
        *NET,
        "--device",
        "/dev/kmsg:/dev/mykmsg:r",
        "--device",
        "/dev/zero:/dev/zero2",
        "busybox",
        "sh",
        "-c",
        script,
    )
    assert (
        res.stdout.splitlines()[:2] == [b"crw-r--r--", b"crw-rw-rw-"] and b"wrote" not in res.stdout
    )
    assert res.stdout.splitlines()[-1].strip() == b"3"
    assert b"Operation not permitted" in res.stderr
    missing = assert_same(
        dy_cli, ref, "run", "--rm", *NET, "--device", "/dev/nosuch-dyt", "busybox", "true"
    )
    assert (
        missing.returncode == 127
        and b'error gathering device information while adding custom device "/dev/nosuch-dyt"'
        in missing.stderr
    )
    bad = assert_same(
        dy_cli, ref, "run", "--rm", *NET, "--device", "/dev/null:/dev/n:rwx", "busybox", "true"
    )
    assert bad.returncode == 125


def test_ps_size_and_inspect_size(dy_cli, ref, names):
    name = names("size")
    ref(
        "run",
        "-d",
        *NET,
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "head -c 5000000 /dev/zero > /big && touch /ready; sleep 300",
        check=True,
    )
    for _ in range(100):
        if ref("exec", name, "test", "-e", "/ready").returncode == 0:
            break
        time.sleep(0.05)
    res = assert_same(
        dy_cli, ref, "ps", "-s", "--filter", f"name={name}", "--format", "{{.Names}} {{.Size}}"
    )
    assert res.stdout.startswith(f"{name} 5MB (virtual ".encode())
    sizes = ref("inspect", "-s", "--format", "{{.SizeRw}} {{.SizeRootFs}}", name).stdout.split()
    assert int(sizes[0]) == 5_000_000 and int(sizes[1]) > 5_000_000
    df = ref("system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout.decode()
    assert "Containers" in df and "Containers 0" not in df


@pytest.mark.parametrize("cli", ["docker", "dockyard"])
def test_cp_archive_and_follow_link(cli, dy_cli, ref, names, tmp_path):
    run = ref if cli == "docker" else dy_cli
    name = names("cpa")
    ref(
        "run",
        "-d",
        "-u",
        "nobody",
        *NET,
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "ln -s /etc/group /tmp/lnk; sleep 300",
        check=True,
    )
    src = tmp_path / "f"
    src.write_text("hi\n")
    os.chown(src, 1234, 4321)
    (tmp_path / "l").symlink_to("/etc/passwd")
    run("cp", str(src), f"{name}:/tmp/plain", check=True)
    run(
        "cp", "-a", str(src), f"{name}:/tmp/archived", check=True
    )  # -a: the container's user owns it
    run("cp", "-L", str(tmp_path / "l"), f"{name}:/tmp/", check=True)
    out = ref(
        "exec", name, "sh", "-c", "stat -c '%n %u:%g %F' /tmp/plain /tmp/archived /tmp/l"
    ).stdout.decode()
    assert out.splitlines() == [
        "/tmp/plain 1234:4321 regular file",
        "/tmp/archived 65534:65534 regular file",
        "/tmp/l 0:0 regular file",
    ]
    (tmp_path / "d").mkdir()
    run("cp", "-L", f"{name}:/tmp/lnk", str(tmp_path / "d"), check=True)
    run("cp", "-L", f"{name}:/tmp/lnk", str(tmp_path / "out"), check=True)
    run("cp", f"{name}:/tmp/lnk", str(tmp_path / "kept"), check=True)
    assert (tmp_path / "d" / "lnk").is_file() and not (tmp_path / "d" / "lnk").is_symlink()
    assert (tmp_path / "out").read_text().startswith("root:x:0:")
    assert os.readlink(tmp_path / "kept") == "/etc/group"


def test_container_sees_its_own_cgroup(dy_cli, ref):
    """/sys/fs/cgroup shows the container's own limits (v1: per-hierarchy binds; v2: memory.max)."""
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
    )
    res = assert_same(
        dy_cli,
        ref,
        "run",
        "--rm",
        *NET,
        "-m",
        "64m",
        "--pids-limit",
        "33",
        "busybox",
        "sh",
        "-c",
        script,
    )
    assert res.stdout.split() == [b"67108864", b"33"]
    # Read-only: the container cannot lift its own limits.
    ro = dy_cli("run", "--rm", *NET, "busybox", "sh", "-c", "mkdir /sys/fs/cgroup/pids/escape")
    assert ro.returncode != 0 and b"Read-only file system" in ro.stderr
