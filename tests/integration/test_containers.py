"""Containers through the official docker CLI and docker-py against dockyardd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from engines import DOCKER_CLI, start_dockyardd


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_run_exit_code_and_stream_separation(docker):
    out = docker(
        "run", "--rm", "--name", "rmme", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert out.returncode == 3
    assert out.stdout == b"out\n" and out.stderr == b"err\n"
    # --rm removed it before the CLI returned (other test files may leave their own behind)
    assert docker("ps", "-aq", "--filter", "name=^rmme$").stdout.strip() == b""


def test_isolation_defaults(docker):
    out = (
        docker(
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo $$; hostname; grep CapEff /proc/self/status; cat /proc/kcore 2>&1 | head -c 0; "
            "mount -t tmpfs x /mnt 2>/dev/null && echo MOUNTED || echo refused; "
            "echo c > /proc/sysrq-trigger 2>/dev/null && echo WROTE || echo ro",
            check=True,
        )
        .stdout.decode()
        .split()
    )
    assert out[0] == "1"
    assert len(out[1]) == 12
    assert out[3] == "00000000a80425fb"  # Docker's 14 default capabilities
    assert "refused" in out and "ro" in out


def test_detached_logs_stop_and_inspect(docker):
    cid = (
        docker(
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    try:
        assert len(cid) == 64
        assert _wait_for(lambda: b"tick 3" in docker("logs", "ticker").stdout)
        state = json.loads(docker("inspect", "ticker", check=True).stdout)[0]["State"]
        assert state["Running"] and state["Pid"] > 0 and state["Status"] == "running"
        ps = docker("ps", "--format", "{{.Names}} {{.Status}}", check=True).stdout.decode()
        assert ps.startswith("ticker Up")
        tail = docker("logs", "--tail", "1", "-t", "ticker", check=True).stdout.decode()
        assert tail.count("\n") == 1 and "Z tick" in tail
        started = time.monotonic()
        docker("stop", "-t", "5", "ticker", check=True)
        assert time.monotonic() - started < 4  # it traps TERM and exits at once
        assert docker("logs", "--tail", "1", "ticker").stdout == b"bye\n"
        state = json.loads(docker("inspect", "ticker").stdout)[0]["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 0
        again = docker("stop", "ticker")
        assert again.returncode == 0  # 304 is success for the CLI
    finally:
        docker("rm", "-f", "ticker")


def test_sigterm_ignored_is_killed_after_timeout(docker):
    docker("run", "-d", "--name", "stubborn", "busybox", "sleep", "300", check=True)
    try:
        started = time.monotonic()
        stop = docker("stop", "-t", "1", "stubborn", check=True)
        took = time.monotonic() - started
        state = json.loads(docker("inspect", "stubborn").stdout)[0]["State"]
        assert 0.9 < took < 5, (stop, state, docker("logs", "stubborn"))
        state = json.loads(docker("inspect", "stubborn").stdout)[0]["State"]
        assert state["ExitCode"] == 137
    finally:
        docker("rm", "-f", "stubborn")


def test_stdin_and_wait_and_kill(docker):
    out = docker(
        "run", "--rm", "-i", "busybox", "sh", "-c", "read x; echo got $x", input=b"piped\n"
    )
    assert out.stdout == b"got piped\n" and out.returncode == 0
    docker(
        "run",
        "-d",
        "--name",
        "killme",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 9' USR1; echo ready; while true; do sleep 0.1; done",
        check=True,
    )
    try:
        # pid 1 ignores signals it has no handler for: wait until the trap is set
        assert _wait_for(lambda: docker("logs", "killme").stdout == b"ready\n")
        docker("kill", "-s", "USR1", "killme", check=True)
        assert docker("wait", "killme").stdout == b"9\n"
        bad = docker("kill", "killme")
        assert bad.returncode == 1 and b"is not running" in bad.stderr
    finally:
        docker("rm", "-f", "killme")


def test_conflicts_and_bad_input(docker):
    docker("create", "--name", "dup", "busybox", "true", check=True)
    try:
        again = docker("create", "--name", "dup", "busybox", "true")
        assert again.returncode != 0
        assert b'The container name "/dup" is already in use by container' in again.stderr
        docker("run", "-d", "--name", "busy", "busybox", "sleep", "300", check=True)
        rm = docker("rm", "busy")
        assert rm.returncode == 1 and b"You cannot remove a running container" in rm.stderr
        assert docker("rm", "-f", "busy").returncode == 0
        missing = docker("run", "--rm", "--pull", "never", "nosuch:tag", "true")
        assert missing.returncode == 125 and b"No such image: nosuch:tag" in missing.stderr
        bad_name = docker("create", "--name", "bad name!", "busybox", "true")
        assert bad_name.returncode != 0 and b"Invalid container name" in bad_name.stderr
        negative = docker("create", "--memory", "1k", "busybox", "true")
        assert (
            negative.returncode != 0 and b"Minimum memory limit allowed is 6MB" in negative.stderr
        )
        nocmd = docker(
            "import",
            "-",
            "nocmd:1",
            input=subprocess.run(
                ["tar", "-C", "/etc", "-c", "hostname"], capture_output=True
            ).stdout,
        )
        assert nocmd.returncode == 0
        out = docker("create", "nocmd:1")
        assert out.returncode != 0 and b"No command specified" in out.stderr
        docker("rmi", "nocmd:1")
    finally:
        docker("rm", "-f", "dup", "busy")


def test_docker_py_containers(api):
    out = api.containers.run("busybox", ["sh", "-c", "echo from-py"], remove=True)
    assert out == b"from-py\n"
    c = api.containers.run("busybox", ["sleep", "300"], detach=True, name="pyc")
    try:
        c.reload()
        assert c.status == "running"
        c.kill()
        assert c.wait()["StatusCode"] == 137
    finally:
        c.remove(force=True)


def test_containers_survive_daemon_kill_9(workdir):
    root = os.path.join(workdir, "live")
    engine = start_dockyardd(root)
    try:
        from engines import make_busybox

        make_busybox(engine)
        engine.cli(
            "run",
            "-d",
            "--name",
            "keeper",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 1000 ]; do echo n$i; i=$((i+1)); sleep 0.05; done",
            check=True,
        )
        engine.cli(
            "run",
            "-d",
            "--name",
            "quitter",
            "busybox",
            "sh",
            "-c",
            "sleep 0.5; exit 42",
            check=True,
        )
        sleepers = [f"sleeper{i}" for i in range(18)]  # 20 containers in all, as the issue asks
        for name in sleepers:
            engine.cli("run", "-d", "--name", name, "busybox", "sleep", "600", check=True)
        pid = json.loads(engine.cli("inspect", "keeper").stdout)[0]["State"]["Pid"]
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        time.sleep(1.0)  # quitter exits and keeper logs while the daemon is down
        assert os.path.exists(f"/proc/{pid}")
        engine = start_dockyardd(root)
        state = json.loads(engine.cli("inspect", "keeper").stdout)[0]["State"]
        assert state["Running"] and state["Pid"] == pid
        quitter = json.loads(engine.cli("inspect", "quitter").stdout)[0]["State"]
        assert quitter["Status"] == "exited" and quitter["ExitCode"] == 42
        logs = engine.cli("logs", "keeper").stdout.decode().split()
        assert len(logs) >= 15 and logs == [f"n{i}" for i in range(len(logs))]
        running = engine.cli("ps", "--format", "{{.Names}}").stdout.decode().split()
        assert set(sleepers) <= set(running)
        assert engine.cli("exec", "sleeper0", "echo", "in").stdout == b"in\n"
        engine.cli("kill", "sleeper1", check=True)
        assert engine.cli("wait", "sleeper1").stdout == b"137\n"
        engine.cli("stop", "-t", "1", "keeper", check=True)
        assert (
            not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
        )
    finally:
        engine.stop()


def test_cp_cannot_leave_the_container(docker, tmp_path):
    docker(
        "run",
        "-d",
        "--name",
        "cpbox",
        "busybox",
        "sh",
        "-c",
        "mkdir /data; echo hi > /data/f; ln -s / /data/root; ln -s /etc /data/etc; sleep 300",
        check=True,
    )
    try:
        assert _wait_for(lambda: docker("exec", "cpbox", "test", "-L", "/data/etc").returncode == 0)
        out = tmp_path / "out"
        out.mkdir()
        docker("cp", "cpbox:/data/f", str(out / "f"), check=True)
        assert (out / "f").read_bytes() == b"hi\n"
        # ../ and symlinks resolve inside the container's root, never on the host
        secret = tmp_path / "host-only"
        secret.write_text("host\n")
        leak = docker("cp", f"cpbox:/../../../../../..{secret}", str(out / "leak"))
        assert leak.returncode != 0 and not (out / "leak").exists()
        marker = tmp_path / "in"
        marker.write_text("inside\n")
        docker("cp", str(marker), "cpbox:/data/etc/", check=True)
        assert docker("exec", "cpbox", "cat", "/etc/in").stdout == b"inside\n"
        assert not os.path.exists("/etc/in")
        docker("cp", str(marker), "cpbox:/data/root/tmp/", check=True)
        assert docker("exec", "cpbox", "cat", "/tmp/in").stdout == b"inside\n"
        missing = docker("cp", "cpbox:/nonexistent", str(out / "x"))
        assert missing.returncode == 1 and b"Could not find the file /nonexistent" in missing.stderr
    finally:
        docker("rm", "-f", "cpbox")


def test_limits_are_enforced(docker):
    oom = docker(
        "run",
        "--name",
        "oomer",
        "-m",
        "32m",
        "busybox",
        "sh",
        "-c",
        "head -c 300m /dev/zero | tail > /dev/null",
    )
    try:
        assert oom.returncode == 137
        state = json.loads(docker("inspect", "oomer").stdout)[0]["State"]
        assert state["OOMKilled"] is True and state["ExitCode"] == 137
    finally:
        docker("rm", "-f", "oomer")
    forks = docker(
        "run",
        "--rm",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 30); do sleep 2 & done; wait; echo done",
    )
    assert b"can't fork" in forks.stderr and b"done" not in forks.stdout
    # the CPU quota, read from inside (v1: cpu controller dir, v2: the unified one), and the
    # kernel's own count of the periods it throttled the spinning shell in: proof that does
    # not depend on how busy the machine is, as a wall-clock comparison did
    spin = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"
    report = (
        "cd /sys/fs/cgroup/cpu 2>/dev/null || cd /sys/fs/cgroup; "
        "cat cpu.cfs_quota_us cpu.cfs_period_us 2>/dev/null || cat cpu.max; grep nr_throttled cpu.stat"
    )
    out = docker(
        "run", "--rm", "--cpus", "0.25", "busybox", "sh", "-c", f"{spin}; {report}", check=True
    ).stdout.split()
    quota = out[:2]
    assert quota == [b"25000", b"100000"], out
    assert out[2] == b"nr_throttled" and int(out[3]) > 0, out


def test_capabilities_and_privileged(docker):
    bogus = docker("run", "--rm", "--cap-add", "bogus", "busybox", "true")
    assert bogus.returncode == 125 and b'unknown capability: "CAP_BOGUS"' in bogus.stderr
    none = docker(
        "run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status"
    )
    assert none.stdout.split()[1] == b"0000000000000000"
    added = docker(
        "run", "--rm", "--cap-add", "net_admin", "busybox", "grep", "CapEff", "/proc/self/status"
    )
    assert int(added.stdout.split()[1], 16) == 0xA80425FB | (1 << 12)
    priv = docker(
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /m && mount -t tmpfs x /m && echo mounted",
        check=True,
    )
    assert priv.stdout == b"mounted\n"
    # The host's nodes come with --privileged (dockerd cannot run --privileged on this VM,
    # which withholds a capability, so this is not compared with it).
    devs = docker(
        "run", "--rm", "--privileged", "busybox", "sh", "-c", "test -c /dev/kmsg && echo kmsg"
    )
    assert devs.stdout == b"kmsg\n"
    ro = docker("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert ro.returncode == 1 and b"Read-only file system" in ro.stderr
    assert (
        docker(
            "run", "--rm", "-u", "nobody", "-w", "/tmp", "busybox", "sh", "-c", "id -u; pwd"
        ).stdout
        == b"65534\n/tmp\n"
    )
    assert (
        docker(
            "run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n"
        ).stdout
        == b"100\n"
    )


def test_pause_top_stats(docker):
    docker("run", "-d", "--name", "ptop", "busybox", "sleep", "300", check=True)
    try:
        docker("pause", "ptop", check=True)
        assert json.loads(docker("inspect", "ptop").stdout)[0]["State"]["Status"] == "paused"
        assert (
            b"(Paused)" in docker("ps", "--format", "{{.Status}}", "--filter", "name=ptop").stdout
        )
        docker("unpause", "ptop", check=True)
        top = docker("top", "ptop", check=True).stdout.decode().splitlines()
        assert (
            top[0].split()[:2] == ["UID", "PID"] and top[1].endswith("sleep 300") and len(top) == 2
        )
        stats = docker(
            "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "ptop", check=True
        )
        assert stats.stdout == b"ptop 1\n"
        docker(
            "update", "-m", "64m", "--memory-swap", "128m", "--pids-limit", "50", "ptop", check=True
        )
        hc = json.loads(docker("inspect", "ptop").stdout)[0]["HostConfig"]
        assert (hc["Memory"], hc["PidsLimit"]) == (64 * 1024 * 1024, 50)
        limit = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", "ptop").stdout
        assert limit.strip().endswith(b"/ 64MiB")
    finally:
        docker("rm", "-f", "ptop")


def test_restart_policies(docker):
    docker(
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
        check=True,
    )
    docker(
        "run",
        "-d",
        "--name",
        "forever",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
        check=True,
    )
    try:

        def flaky_done():
            info = json.loads(docker("inspect", "flaky").stdout)[0]
            return info["RestartCount"] == 2 and info["State"]["Status"] == "exited"

        assert _wait_for(flaky_done, 15)
        assert json.loads(docker("inspect", "flaky").stdout)[0]["State"]["ExitCode"] == 3
        assert _wait_for(
            lambda: json.loads(docker("inspect", "forever").stdout)[0]["RestartCount"] >= 2, 15
        )
        docker("stop", "forever", check=True)
        count = json.loads(docker("inspect", "forever").stdout)[0]["RestartCount"]
        time.sleep(1)
        info = json.loads(docker("inspect", "forever").stdout)[0]
        assert info["RestartCount"] == count and not info["State"]["Running"]
    finally:
        docker("rm", "-f", "flaky", "forever")


def test_health_checks(docker):
    start = time.time()
    docker(
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; touch /tmp/ok; sleep 300",
        check=True,
    )
    try:

        def status():
            return json.loads(docker("inspect", "hc").stdout)[0]["State"]["Health"]["Status"]

        assert _wait_for(lambda: status() == "healthy", 10)
        assert (
            b"(healthy)"
            in docker("ps", "--filter", "health=healthy", "--format", "{{.Status}}").stdout
        )
        docker("exec", "hc", "rm", "/tmp/ok", check=True)
        assert _wait_for(lambda: status() == "unhealthy", 10)
        events = docker(
            "events",
            "--since",
            f"{start:.3f}",
            "--until",
            f"{time.time():.3f}",
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}}",
        ).stdout.decode()
        assert "health_status: healthy" in events and "health_status: unhealthy" in events
    finally:
        docker("rm", "-f", "hc")


def test_init_forwards_signals_and_reaps(docker):
    out = docker(
        "run", "--rm", "--init", "busybox", "ps", "-o", "pid,args", check=True
    ).stdout.decode()
    assert "1 /sbin/docker-init -- ps" in out
    docker("run", "-d", "--init", "--name", "inited", "busybox", "sleep", "300", check=True)
    try:
        started = time.monotonic()
        docker("stop", "-t", "10", "inited", check=True)
        assert time.monotonic() - started < 3  # tini passes SIGTERM on; sleep dies at once
        assert json.loads(docker("inspect", "inited").stdout)[0]["State"]["ExitCode"] == 143
    finally:
        docker("rm", "-f", "inited")


def test_image_symlinks_cannot_redirect_runtime_mounts(docker, tmp_path):
    import io
    import tarfile

    target_proc, target_dev = tmp_path / "proc-target", tmp_path / "dev-target"
    target_proc.mkdir()
    target_dev.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        for name, dest in (("proc", str(target_proc)), ("dev", "../../../../.." + str(target_dev))):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, dest
            tar.addfile(link)
    docker("import", "-", "evil/links:1", input=buf.getvalue(), check=True)
    try:
        out = docker(
            "run",
            "--rm",
            "evil/links:1",
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox ls /proc/self >/dev/null && echo ok",
        )
        assert os.listdir(target_proc) == [] and os.listdir(target_dev) == []
        with open("/proc/self/mountinfo") as f:
            assert str(tmp_path) not in f.read()
        assert out.returncode in (0, 125, 126, 127)
    finally:
        docker("rmi", "-f", "evil/links:1")


def test_diff_export_commit(docker, tmp_path):
    docker(
        "run",
        "-d",
        "--name",
        "cmt",
        "busybox",
        "sh",
        "-c",
        "mkdir /data; echo hi > /data/f; rm /etc/group; echo ready; sleep 300",
        check=True,
    )
    try:
        assert _wait_for(lambda: docker("logs", "cmt").stdout == b"ready\n")
        diff = set(docker("diff", "cmt", check=True).stdout.decode().splitlines())
        assert {"A /data", "A /data/f", "C /etc", "D /etc/group"} <= diff
        out = tmp_path / "fs.tar"
        docker("export", "-o", str(out), "cmt", check=True)
        import tarfile

        with tarfile.open(out) as tar:
            assert tar.extractfile("data/f").read() == b"hi\n" and "etc/group" not in tar.getnames()
        image_id = docker(
            "commit", "-m", "snap", "-c", "ENV X=1", "cmt", "snap/img:1", check=True
        ).stdout.strip()
        run = docker(
            "run",
            "--rm",
            "snap/img:1",
            "sh",
            "-c",
            "cat /data/f; echo $X; test -e /etc/group || echo gone",
        )
        assert run.stdout == b"hi\n1\ngone\n"
        hist = (
            docker("history", "--format", "{{.Comment}}", "snap/img:1").stdout.decode().split("\n")
        )
        assert hist[0] == "snap"
        assert (
            json.loads(docker("image", "inspect", "snap/img:1").stdout)[0]["Id"]
            == image_id.decode()
        )
    finally:
        docker("rm", "-f", "cmt")
        docker("rmi", "snap/img:1")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--network", "nosuchnet"], b"network nosuchnet not found"),
    ],
)
def test_unbuilt_features_are_refused_not_ignored(docker, args, message, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    args = [a.replace("PROFILE", str(profile)) for a in args]
    out = docker("run", "--rm", *args, "busybox", "true")
    assert out.returncode == 125 and message in out.stderr


def test_dockyard_stats_streams(daemon, docker):
    docker("run", "-d", "--name", "livestats", "busybox", "sleep", "300", check=True)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard.cli.main", "stats", "livestats"],
            env=daemon.env,
            stdout=subprocess.PIPE,
        )
        time.sleep(3.5)
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        tables = out.decode().count("CONTAINER ID")
        assert tables >= 2 and "livestats" in out.decode()
    finally:
        docker("rm", "-f", "livestats")


def test_output_flood_does_not_grow_daemon_memory(daemon, docker):
    def rss_kb(pid: int) -> int:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    docker("run", "--rm", "busybox", "true", check=True)  # warm the paths first
    before = rss_kb(daemon.proc.pid)
    out = subprocess.run(
        [
            DOCKER_CLI,
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "yes 0123456789012345678901234567890123456789 | head -c 20000000",
        ],
        env=daemon.env,
        stdout=subprocess.PIPE,
        timeout=120,
    )
    assert out.returncode == 0 and len(out.stdout) == 20_000_000
    assert rss_kb(daemon.proc.pid) - before < 20_000  # 20 MB through attach, < 20 MB growth


def test_runc_runtime_lifecycle(docker):
    """--runtime runc: run, exec (runc exec), kill, stop and exit codes as under the native one."""
    bad = docker("run", "--rm", "--runtime", "nosuch", "busybox", "true")
    assert bad.returncode == 125 and b"unknown or invalid runtime name: nosuch" in bad.stderr
    out = docker(
        "run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo out; echo err >&2; exit 4"
    )
    assert (out.returncode, out.stdout, out.stderr) == (4, b"out\n", b"err\n")
    docker(
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "viarunc",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        check=True,
    )
    try:
        assert (
            docker("inspect", "--format", "{{.HostConfig.Runtime}}", "viarunc").stdout == b"runc\n"
        )
        assert docker("exec", "viarunc", "echo", "in").stdout == b"in\n"
        got = docker(
            "exec",
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "-e",
            "A=1",
            "viarunc",
            "sh",
            "-c",
            "id -u; pwd; echo $A; exit 3",
        )
        assert (got.returncode, got.stdout) == (3, b"65534\n/tmp\n1\n")
        assert docker("exec", "-t", "viarunc", "tty").stdout.startswith(b"/dev/pts/")
        assert docker("stop", "-t", "5", "viarunc").returncode == 0
        assert docker("inspect", "--format", "{{.State.ExitCode}}", "viarunc").stdout == b"7\n"
        docker("start", "viarunc", check=True)
        docker("kill", "viarunc", check=True)
        assert docker("wait", "viarunc").stdout == b"137\n"
    finally:
        docker("rm", "-f", "viarunc")


def test_docker_py_remove_right_after_wait_is_final(api):
    """docker-py's run(remove=True) removes as soon as wait answers, while the daemon is
    still tearing the exited container's network down; the removal must win (the record
    used to come back when the teardown finished, volume and all)."""
    import time as _time

    ids = []
    for _ in range(5):
        c = api.containers.run("busybox", "true", detach=True)
        ids.append(c.id)
        assert c.wait()["StatusCode"] == 0
        c.remove()
    _time.sleep(1)
    left = {c.id for c in api.containers.list(all=True)}
    assert not left & set(ids)


def test_kill_and_force_remove_of_a_paused_container(daemon, dockerd):
    """As dockerd: kill of a paused container thaws it so the signal lands (137), and
    rm -f of a paused one finishes (it used to hang until an unpause)."""
    import uuid

    for engine in (daemon, dockerd):
        name = f"dyt-pz-{uuid.uuid4().hex[:8]}"
        try:
            for suffix in ("k", "r"):
                engine.cli(
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    name + suffix,
                    "busybox",
                    "sleep",
                    "100",
                    check=True,
                )
                engine.cli("pause", name + suffix, check=True)
            assert engine.cli("kill", name + "k").returncode == 0
            assert engine.cli("wait", name + "k").stdout == b"137\n"
            started = time.monotonic()
            assert engine.cli("rm", "-f", name + "r").returncode == 0
            assert time.monotonic() - started < 15
            assert engine.cli("ps", "-aq", "--filter", f"name={name}r").stdout == b""
        finally:
            engine.cli("rm", "-f", name + "k", name + "r")


def test_concurrent_creates_get_distinct_names_and_leave_no_ghost(api, daemon):
    """Creates race while each awaits its layer: unnamed ones all succeed with names of
    their own (a random name drawn twice is drawn again), and of two with the same name
    one wins, the other is a 409 that leaves nothing listed (it used to stay in ``ps -a``
    and make ``rm -f`` fail with a 500)."""
    from concurrent.futures import ThreadPoolExecutor

    import docker as docker_py

    label = {"dockyard.test": "concurrent-creates"}

    def create(name: str | None):
        client = docker_py.DockerClient(base_url=daemon.host, version="auto", timeout=60)
        try:
            return client.containers.create("busybox", "true", name=name, labels=label).id
        except docker_py.errors.APIError as exc:
            return exc
        finally:
            client.close()

    try:
        with ThreadPoolExecutor(40) as pool:
            unnamed = list(pool.map(create, [None] * 40))
            same = list(pool.map(create, ["samename"] * 6))
        assert all(isinstance(r, str) for r in unnamed), [
            r for r in unnamed if not isinstance(r, str)
        ]
        listed = api.containers.list(
            all=True, filters={"label": "dockyard.test=concurrent-creates"}
        )
        names = [c.name for c in listed]
        assert len(names) == len(set(names)) == 41
        won = [r for r in same if isinstance(r, str)]
        lost = [r for r in same if not isinstance(r, str)]
        assert len(won) == 1 and len(lost) == 5
        assert all(e.status_code == 409 and "already in use" in str(e) for e in lost)
        assert [c.id for c in listed if c.name == "samename"] == won
    finally:
        for c in api.containers.list(
            all=True, filters={"label": "dockyard.test=concurrent-creates"}
        ):
            c.remove(force=True)
    assert not api.containers.list(all=True, filters={"label": "dockyard.test=concurrent-creates"})
