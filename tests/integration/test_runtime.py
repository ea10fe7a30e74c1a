"""dockyard-runtime against the real kernel, on a busybox bundle made from Debian's
busybox-static, and the same bundle under Debian's runc for comparison.

Every test uses a private state root and a cgroup under ``dockyard-test-<pid>``; the
finalizer force-deletes whatever is left, removes the cgroups and checks that no mount
under the test's directory and no container process survived.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time

import pytest

from dockyard.runtime import spec as oci
from dockyard.runtime.spec.default import default_nofile
from dockyard.runtime.state import process_start_time

BUSYBOX = "/bin/busybox"
APPLETS = (
    "true",
    "sh",
    "echo",
    "cat",
    "id",
    "hostname",
    "ls",
    "mount",
    "sleep",
    "wc",
    "grep",
    "touch",
)
CGROUP_PARENT = f"dockyard-test-{os.getpid()}"
V1_ROOT = "/sys/fs/cgroup"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static",
)


def _mounts_under(path: str) -> list[str]:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == real or p.startswith(real + "/")]


def _cgroup_dirs() -> list[str]:
    found = []
    for name in os.listdir(V1_ROOT):
        candidate = os.path.join(V1_ROOT, name, CGROUP_PARENT)
        if os.path.isdir(candidate):
            found.append(candidate)
    return found


def _remove_cgroup_tree(top: str) -> None:
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


CLIENT = os.path.join(os.path.dirname(sys.executable), "dockyard-runtime")
LAUNCHER = CLIENT + "-py"


class Server:
    """A private runtime server (``runtime/cli/server.py``) for the compiled client."""

    def __init__(self, base: str) -> None:
        self.socket = os.path.join(base, "server", "sock")
        self.env = {**os.environ, "DOCKYARD_RUNTIME_SERVER": self.socket}
        self.proc = subprocess.Popen(
            [LAUNCHER, "__server__", "serve"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"runtime server did not start: {self.proc.stderr.read()}")
            time.sleep(0.01)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stderr.close()


class Runtime:
    """``dockyard-runtime`` run directly (the Python command) or ``served`` (the compiled
    client handing each call to a private server): every test runs both ways."""

    def __init__(self, base: str, server: Server | None = None) -> None:
        self.base = base
        self.root = os.path.join(base, "state")
        self.count = 0
        self.server = server

    def command(self, *args: str) -> list[str]:
        if self.server is None:
            return [sys.executable, "-m", "dockyard.runtime.cli.main", "--root", self.root, *args]
        return [CLIENT, "--root", self.root, *args]

    def cli(self, *args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        if self.server is not None:
            kw.setdefault("env", self.server.env)
        proc = subprocess.run(self.command(*args), check=False, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def bundle(self, args: list[str], edit=None) -> tuple[str, str]:
        """A fresh bundle running ``args``; returns (bundle dir, container id)."""
        self.count += 1
        name = f"c{self.count}"
        bundle = os.path.join(self.base, name)
        rootfs = os.path.join(bundle, "rootfs")
        for d in ("bin", "etc", "mnt", "tmp", "proc", "sys", "dev"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in APPLETS:
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
        s = oci.default_spec(args, hostname="testhost", nofile=default_nofile())
        s.linux.cgroups_path = f"/{CGROUP_PARENT}/{name}"
        if edit is not None:
            edit(s)
        with open(os.path.join(bundle, "config.json"), "wb") as f:
            f.write(oci.dump(s))
        return bundle, name

    def run(self, args: list[str], edit=None) -> subprocess.CompletedProcess:
        bundle, name = self.bundle(args, edit)
        return self.cli("run", "-b", bundle, name)


@contextlib.contextmanager
def _runtime(served: bool):
    base = os.path.realpath(os.path.join("/tmp", f"dyrt-{os.getpid()}"))
    os.makedirs(base, exist_ok=True)
    server = Server(base) if served else None
    runtime = Runtime(base, server)
    try:
        yield runtime
    finally:
        leftovers = runtime.cli("list", "-q").stdout.split()
        for cid in leftovers:
            runtime.cli("delete", "-f", cid)
        if runtime.server is not None:
            runtime.server.stop()
        mounts = _mounts_under(base)
        for top in _cgroup_dirs():
            _remove_cgroup_tree(top)
        shutil.rmtree(base, ignore_errors=True)
        assert not leftovers, f"containers left behind: {leftovers}"
        assert not mounts, f"mounts left behind: {mounts}"
        assert not _cgroup_dirs(), "cgroups left behind"


@pytest.fixture(params=["direct", "served"])
def rt(request):
    with _runtime(request.param == "served") as runtime:
        yield runtime


@pytest.fixture
def served():
    with _runtime(True) as runtime:
        yield runtime


def test_run_sets_hostname_and_is_pid_one(rt):
    proc = rt.run(["sh", "-c", "hostname; echo $$; id -u"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["testhost", "1", "0"]


def test_exit_codes_propagate(rt):
    assert rt.run(["sh", "-c", "exit 7"]).returncode == 7
    assert rt.run(["sh", "-c", "exit 255"]).returncode == 255
    assert rt.run(["true"]).returncode == 0


def test_masked_and_readonly_paths(rt):
    script = (
        "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c);"
        "echo timer=$(cat /proc/timer_list | wc -c);"
        "echo keys=$(cat /proc/keys | wc -c);"
        "ls /sys/firmware | wc -l;"
        "echo 1 > /proc/sysrq-trigger && echo sysrq-writable;"
        "echo x > /proc/sys/kernel/domainname && echo sys-writable;"
        "echo done"
    )
    proc = rt.run(["sh", "-c", script])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines == ["kcore=0", "timer=0", "keys=0", "0", "done"], proc.stdout
    assert "Read-only file system" in proc.stderr


def test_no_cap_sys_admin(rt):
    proc = rt.run(["sh", "-c", "mount -t tmpfs x /mnt && echo mounted; grep Cap /proc/self/status"])
    assert "mounted" not in proc.stdout
    assert "CapEff:\t00000000a80425fb" in proc.stdout  # Docker's 14 capabilities


def test_missing_binary_is_reported_like_runc(rt):
    bundle, name = rt.bundle(["nope"])
    proc = rt.cli("run", "-b", bundle, name)
    assert proc.returncode != 0
    assert 'exec: "nope": executable file not found in $PATH' in proc.stderr
    assert rt.cli("list", "-q").stdout == ""


def test_user_switch_drops_capabilities(rt):
    def as_nobody(s):
        s.process.user = oci.User(uid=65534, gid=65534)

    proc = rt.run(["sh", "-c", "id -u; id -g; grep Cap /proc/self/status"], as_nobody)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["65534", "65534"]
    # execve as non-root recomputes the sets (no ambient caps): nothing effective, as in
    # Docker with USER nobody; the bounding set is still the spec's.
    assert "CapEff:\t0000000000000000" in proc.stdout
    assert "CapBnd:\t00000000a80425fb" in proc.stdout


def test_lifecycle_with_cgroup_limits(rt):
    def limits(s):
        s.linux.resources.memory = oci.Memory(limit=64 << 20)
        s.linux.resources.pids = oci.Pids(64)

    bundle, name = rt.bundle(["sleep", "1000"], edit=limits)
    rt.cli(
        "create",
        "-b",
        bundle,
        name,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        capture_output=False,
    )
    state = json.loads(rt.cli("state", name, check=True).stdout)
    assert state["status"] == "created" and state["pid"] > 0
    assert state["id"] == name and state["bundle"] == bundle
    pid = state["pid"]
    mem = os.path.join(V1_ROOT, "memory", CGROUP_PARENT, name)
    with open(os.path.join(mem, "memory.limit_in_bytes")) as f:
        assert int(f.read()) == 64 << 20
    with open(os.path.join(V1_ROOT, "pids", CGROUP_PARENT, name, "pids.max")) as f:
        assert f.read().strip() == "64"
    with open(os.path.join(mem, "cgroup.procs")) as f:
        assert str(pid) in f.read().split()

    rt.cli("start", name, check=True)
    assert json.loads(rt.cli("state", name).stdout)["status"] == "running"
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x001000\x00"
    assert rt.cli("start", name).returncode != 0  # already running

    ex = rt.cli("exec", name, "sh", "-c", "echo $$; hostname")
    assert ex.returncode == 0, ex.stderr
    exec_pid, host = ex.stdout.split()
    assert exec_pid != "1" and host == "testhost"
    assert rt.cli("exec", name, "sh", "-c", "exit 3").returncode == 3

    assert rt.cli("delete", name).returncode != 0  # running, not forced
    pidfd = os.pidfd_open(pid)
    rt.cli("kill", name, "KILL", check=True)
    select.select([pidfd], [], [], 30)
    os.close(pidfd)
    assert json.loads(rt.cli("state", name).stdout)["status"] == "stopped"
    rt.cli("delete", name, check=True)
    assert rt.cli("state", name).returncode != 0
    assert not os.path.exists(mem)


def test_delete_force_kills_a_created_container(rt):
    bundle, name = rt.bundle(["sleep", "1000"])
    rt.cli(
        "create",
        "-b",
        bundle,
        name,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        capture_output=False,
    )
    pid = json.loads(rt.cli("state", name).stdout)["pid"]
    rt.cli("delete", "-f", name, check=True)
    assert rt.cli("list", "-q").stdout == ""
    assert process_start_time(pid) is None  # gone or a zombie awaiting its reaper


def test_symlinked_mount_point_stays_inside_rootfs(rt):
    host_dir = os.path.join(rt.base, "host-target")
    os.makedirs(host_dir)

    def hostile(s):
        s.mounts.append(oci.Mount("/mnt/sub/dir", "tmpfs", "tmpfs", ["size=1m"]))

    bundle, name = rt.bundle(["sh", "-c", "touch /mnt/sub/dir/x && echo ok"], edit=hostile)
    rootfs = os.path.join(bundle, "rootfs")
    os.rmdir(os.path.join(rootfs, "mnt"))
    os.symlink(host_dir, os.path.join(rootfs, "mnt"))  # absolute: must mean <rootfs>/<host_dir>
    proc = rt.cli("run", "-b", bundle, name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert os.listdir(host_dir) == []
    assert os.path.isdir(os.path.join(rootfs, host_dir.lstrip("/"), "sub", "dir"))


def test_spec_command_writes_a_loadable_default(rt, tmp_path):
    rt.cli("spec", "-b", str(tmp_path), check=True)
    s = oci.load((tmp_path / "config.json").read_bytes())
    assert s.process.args == ["sh"]
    assert rt.cli("spec", "-b", str(tmp_path)).returncode != 0  # refuses to overwrite


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed")
def test_same_bundle_under_runc(rt):
    script = "hostname; echo $$; grep CapEff /proc/self/status; cat /proc/timer_list | wc -c"
    bundle, name = rt.bundle(["sh", "-c", script + "; exit 7"])
    ours = rt.cli("run", "-b", bundle, name)
    runc_root = os.path.join(rt.base, "runc-state")
    theirs = subprocess.run(
        ["runc", "--root", runc_root, "run", "-b", bundle, name + "-runc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    subprocess.run(
        ["runc", "--root", runc_root, "delete", "-f", name + "-runc"],
        capture_output=True,
        check=False,
    )
    assert theirs.returncode == ours.returncode == 7, (theirs.stderr, ours.stderr)
    assert theirs.stdout == ours.stdout


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("PPid:")))


def test_stdin_signals_and_parentage(rt):
    """stdin reaches the container; SIGTERM to the command reaches the container; served,
    the container is the child of a worker the server forked (no interpreter started)."""
    assert rt.run(["cat"]).stdout == ""
    bundle, name = rt.bundle(["cat"])
    echoed = rt.cli("run", "-b", bundle, name, input="through stdin\n")
    assert echoed.stdout == "through stdin\n", echoed.stderr

    bundle, name = rt.bundle(["sh", "-c", "trap 'exit 7' TERM; echo ready; sleep 100 & wait"])
    env = rt.server.env if rt.server else None
    proc = subprocess.Popen(rt.command("run", "-b", bundle, name), stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline() == b"ready\n"
        init = json.loads(rt.cli("state", name, check=True).stdout)["pid"]
        if rt.server is None:
            assert _ppid(init) == proc.pid
        else:
            assert _ppid(_ppid(init)) == rt.server.proc.pid
        proc.send_signal(15)
        assert proc.wait(30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_server_survives_hostile_clients(served):
    """Garbage, a lying length, a client that hangs up: the server answers the next call."""

    rt = served

    for payload in (b"", b"\x05\x00\x00\x00junk!", b"\xff\xff\xff\x7f", b"\x03\x00\x00\x00ab"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(rt.server.socket)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            try:
                s.recv(64)  # the server closes or answers F; it must not hang
            except ConnectionResetError:
                pass
    assert rt.server.proc.poll() is None
    bundle, name = rt.bundle(["sh", "-c", "echo $$"])
    proc = subprocess.Popen(
        rt.command("run", "-b", bundle, name), stdout=subprocess.PIPE, env=rt.server.env
    )
    assert proc.communicate(timeout=30)[0] == b"1\n" and proc.returncode == 0


def test_server_steps_aside_when_its_code_changes(served):
    """An upgrade on disk: the running server refuses (the client runs the command itself)
    and exits, so old code never runs a new call."""
    import dockyard.runtime.cli.state as state_module

    rt = served

    path = state_module.__file__
    before = os.stat(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    try:
        proc = rt.run(["sh", "-c", "exit 5"])
        assert proc.returncode == 5, proc.stderr
        rt.server.proc.wait(30)
        assert not os.path.exists(rt.server.socket)
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        # the next call would start a server of its own; the fixture stops this one instead
        rt.server.stop()
        rt.server = Server(rt.base)


def _spare_pids() -> set[int]:
    spares = set()
    for top in _cgroup_dirs():
        for name in os.listdir(top):
            if name.startswith(".spare-"):
                with open(os.path.join(top, name, "cgroup.procs")) as f:
                    spares.update(int(p) for p in f.read().split())
    return spares


def test_runs_start_from_parked_inits(served):
    """After a first run under a cgroup parent the server parks inits there (cgroup
    joined ahead of time); the next run's container is one of them, renamed into its
    own cgroup, and stopping the server leaves no parked init or cgroup behind."""
    rt = served
    assert rt.run(["true"]).returncode == 0
    deadline = time.monotonic() + 30
    while not (parked := _spare_pids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert parked, "no parked init appeared"

    def limited(s):
        s.linux.resources.pids = oci.Pids(32)

    bundle, name = rt.bundle(["sh", "-c", "echo ready; exec sleep 100"], edit=limited)
    proc = subprocess.Popen(
        rt.command("run", "-b", bundle, name), stdout=subprocess.PIPE, env=rt.server.env
    )
    try:
        assert proc.stdout.readline() == b"ready\n"
        init = json.loads(rt.cli("state", name, check=True).stdout)["pid"]
        assert init in parked
        with open(f"/proc/{init}/cgroup") as f:
            assert f"pids:/{CGROUP_PARENT}/{name}\n" in f.read()
        with open(os.path.join(V1_ROOT, "pids", CGROUP_PARENT, name, "pids.max")) as f:
            assert f.read().strip() == "32"
        assert rt.cli("kill", name, "KILL").returncode == 0
        assert proc.wait(30) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    rt.server.stop()
    assert not _spare_pids()
    assert not [n for top in _cgroup_dirs() for n in os.listdir(top) if n.startswith(".spare-")]
    rt.server = Server(rt.base)


def _in_pty(cmd: list[str], env, keys: bytes, rows: int = 30, cols: int = 100) -> tuple[bytes, int]:
    """Run ``cmd`` on a fresh pty of ``rows`` x ``cols``, type ``keys``; its output and status."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    out = b""
    try:
        os.write(master, keys)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the command and everything on the pty are gone
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        return out, proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _terminal(args=None, size=None):
    def edit(s):
        s.process.terminal = True
        if args:
            s.process.args = args
        if size:
            s.process.console_size = oci.Box(*size)

    return edit


def test_foreground_terminal(rt):
    """``process.terminal`` in the foreground: the container gets a pty of its own (its
    /dev/pts/0, our window size); the command copies it to its terminal, as runc run does."""
    bundle, name = rt.bundle(["sh"], edit=_terminal())
    env = rt.server.env if rt.server else None
    out, code = _in_pty(
        rt.command("run", "-b", bundle, name), env, b"tty; busybox stty size; exit 3\n"
    )
    assert code == 3, out
    assert b"/dev/pts/0\r\n30 100\r\n" in out, out


def test_console_socket(rt, tmp_path):
    """create --console-socket: the pty's master arrives on the socket (containerd's way);
    exec -t in the foreground gets a pty of its own; wrong combinations are refused."""
    import socket as sockets

    path = str(tmp_path / "console.sock")
    listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    bundle, name = rt.bundle(
        ["sh", "-c", "tty; busybox stty size; exec sleep 100"], edit=_terminal(size=(20, 70))
    )
    try:
        rt.cli("create", "-b", bundle, "--console-socket", path, name, check=True)
        conn, _ = listener.accept()
        _msg, fds, _flags, _addr = sockets.recv_fds(conn, 1024, 1)
        conn.close()
        master = fds[0]
        rt.cli("start", name, check=True)
        out = b""
        while b"20 70\r\n" not in out:
            ready, _, _ = select.select([master], [], [], 10)
            assert ready, out
            out += os.read(master, 4096)
        assert out == b"/dev/pts/0\r\n20 70\r\n"
        env = rt.server.env if rt.server else None
        got, code = _in_pty(rt.command("exec", "-t", name, "sh", "-c", "tty; exit 6"), env, b"")
        assert code == 6 and b"/dev/pts/1" in got, got
        os.close(master)
        plain, other = rt.bundle(["true"])
        refused = rt.cli("create", "-b", plain, "--console-socket", path, other)
        assert "cannot use console socket if runc will not detach or allocate tty" in refused.stderr
    finally:
        listener.close()
        rt.cli("delete", "-f", name)
    tty_bundle, third = rt.bundle(["true"], edit=_terminal())
    refused = rt.cli("create", "-b", tty_bundle, third)
    assert (
        "cannot allocate tty if runc will detach without setting console socket" in refused.stderr
    )


def test_caller_umask_and_rlimits_reach_the_container(rt):
    """Served or not, the container inherits what the command's caller set (runc's
    behaviour): the umask, and rlimits the spec does not name (core here)."""
    import resource

    def caller():
        os.umask(0o027)
        resource.setrlimit(resource.RLIMIT_CORE, (1024 * 1024, resource.RLIM_INFINITY))

    for _ in range(2):  # served: the second call starts from a parked init
        bundle, name = rt.bundle(["sh", "-c", "umask; ulimit -c"])
        env = rt.server.env if rt.server else None
        proc = subprocess.run(
            rt.command("run", "-b", bundle, name),
            capture_output=True,
            env=env,
            preexec_fn=caller,
            timeout=60,
        )
        assert proc.stdout == b"0027\n2048\n", proc.stderr  # busybox counts 512-byte blocks
