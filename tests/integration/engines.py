"""Starting and stopping real engines for the integration tests (dockyardd and Debian's
dockerd), each on private paths, and removing everything they leave even on failure."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER_CLI = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"


def ping(sock_path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(sock_path)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def unmount_under(root: str) -> None:
    """Detach every mount at or below ``root``, deepest first."""
    from dockyard.runtime import linux

    real = os.path.realpath(root)
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == real or point.startswith(real + "/"):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        try:
            linux.umount2(point, linux.MNT_DETACH)
        except OSError:
            pass


def cgroup_parent(root: str) -> str:
    return "dockyard-test-" + os.path.basename(os.path.dirname(root)) + "-" + os.path.basename(root)


def network_config(root: str) -> dict:
    """A bridge name and address space that only this data root uses (stable across restarts)."""
    import hashlib

    h = hashlib.sha1(root.encode()).digest()
    return {
        "bridge": "dyt" + h[:3].hex(),
        "bip": f"10.{200 + h[3] % 50}.{h[4]}.1/24",
        "default-address-pools": [{"base": f"10.{150 + h[5] % 50}.0.0/16", "size": 24}],
    }


def remove_networks(root: str) -> None:
    """Every bridge and iptables chain a daemon on this root made, even after a crash."""
    import sqlite3

    bridges = [network_config(root)["bridge"]]
    db = os.path.join(root, "data", "metadata.db")
    if os.path.exists(db):
        try:
            conn = sqlite3.connect(db)
            for (record,) in conn.execute("SELECT record FROM networks"):
                name = json.loads(record).get("bridge")
                if name:
                    bridges.append(name)
            conn.close()
        except sqlite3.Error:
            pass
    from dockyard.network import bridge, iptables

    iptables.teardown(bridges[0].upper()[:10])
    for name in bridges:
        try:
            bridge.delete_bridge(name)
        except Exception:
            pass
    out = subprocess.run(
        ["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True
    )
    for line in out.stdout.splitlines():  # veths left on our bridges by a killed daemon
        if any(f"master {b} " in line for b in bridges):
            subprocess.run(
                ["ip", "link", "del", line.split(":")[1].strip().split("@")[0]], capture_output=True
            )


def _thaw(parent: str) -> None:
    """Thaw every frozen cgroup under ``parent`` (v1 freezer, v2 cgroup.freeze)."""
    base = "/sys/fs/cgroup"
    for top, name, value in (
        (os.path.join(base, "freezer", parent), "freezer.state", "THAWED"),
        (os.path.join(base, parent), "cgroup.freeze", "0"),
    ):
        for dirpath, _, files in os.walk(top):
            if name in files:
                try:
                    with open(os.path.join(dirpath, name), "w") as f:
                        f.write(value)
                except OSError:
                    pass


def remove_cgroups(parent: str) -> None:
    """rmdir the parent (and any children left) in every mounted hierarchy, deepest first.

    Processes still inside are killed first: after a daemon crash the containers cannot be
    removed through the API, and their supervisor is gone, so nothing else would end them."""
    base = "/sys/fs/cgroup"
    for _ in range(50):
        pids = set()
        for hierarchy in os.listdir(base):
            for dirpath, _, files in os.walk(os.path.join(base, hierarchy, parent)):
                if "cgroup.procs" in files:
                    try:
                        with open(os.path.join(dirpath, "cgroup.procs")) as f:
                            pids.update(int(p) for p in f.read().split())
                    except OSError:
                        pass
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _thaw(parent)  # a paused container's SIGKILL waits until its cgroup thaws
        time.sleep(0.05)
    for hierarchy in os.listdir(base):
        top = os.path.join(base, hierarchy, parent)
        if not os.path.isdir(top):
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


@dataclass
class Engine:
    """One running daemon; ``env`` points docker CLI / docker-py at it."""

    root: str
    sock: str
    proc: subprocess.Popen | None = None
    log: str = ""
    extra_kill: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKYARD_HOST", None)
        env["DOCKER_CONFIG"] = os.path.join(self.root, "cli-config")
        env["DOCKER_CLI_HINTS"] = "false"
        return env

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.read_log()}")
            if ping(self.sock):
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not answer on {self.sock}:\n{self.read_log()}")

    def read_log(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if (
            self.proc
            and self.proc.poll() is not None
            and self.proc.returncode not in (0, -signal.SIGKILL)
        ):
            # It died on its own (a crash): show why in the failing test's report.
            print(
                f"daemon {self.root} exited with {self.proc.returncode}:\n{self.read_log()}",
                file=sys.stderr,
            )
        if self.proc and self.proc.poll() is None and ping(self.sock):
            # Containers outlive their daemon by design: remove them through the API first.
            try:
                ids = self.cli("ps", "-aq").stdout.decode().split()
                if ids:
                    self.cli("rm", "-f", *ids)
            except subprocess.TimeoutExpired:
                pass  # a stuck daemon is killed below all the same
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # Anything still holding our paths (a managed containerd, shims) goes too.
        out = subprocess.run(["pgrep", "-f", self.root], capture_output=True, text=True)
        for pid in out.stdout.split():
            if int(pid) != os.getpid():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        unmount_under(self.root)
        if os.path.exists(os.path.join(self.root, "d.sock")) or os.path.exists(
            os.path.join(self.root, "data")
        ):
            remove_networks(self.root)
        remove_cgroups(cgroup_parent(self.root))
        shutil.rmtree(self.root, ignore_errors=True)

    def cli(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = False,
        program: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        cmd = (program or [DOCKER_CLI]) + list(args)
        full = {**self.env, **(env or {})}
        result = subprocess.run(cmd, env=full, input=input, capture_output=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} failed ({result.returncode}): {result.stderr.decode()}")
        return result


def start_dockyardd(
    root: str, *extra: str, wrapper: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Engine:
    """``wrapper`` prefixes the command (e.g. ``nsenter --net=...`` for a private netns);
    ``env`` adds to the daemon's environment (e.g. a short registry read timeout)."""
    os.makedirs(root, exist_ok=True)
    engine = Engine(
        root=root, sock=os.path.join(root, "d.sock"), log=os.path.join(root, "daemon.log")
    )
    config = os.path.join(root, "daemon.json")
    with open(config, "w") as f:
        # A cgroup parent, bridge, subnets and iptables chains of this session's own,
        # removed by stop().
        json.dump({"cgroup-parent": cgroup_parent(root), **network_config(root)}, f)
    cmd = [
        *wrapper,
        sys.executable,
        "-m",
        "dockyard.daemon.launch",
        "-H",
        engine.host,
        "--data-root",
        os.path.join(root, "data"),
        "--exec-root",
        os.path.join(root, "exec"),
        "--pidfile",
        os.path.join(root, "d.pid"),
        "--config-file",
        config,
        *extra,
    ]
    with open(engine.log, "ab") as log:
        engine.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **env} if env else None,
        )
    try:
        engine.wait_ready()
    except BaseException:
        engine.stop()
        raise
    return engine


NO_NETWORK_FLAGS = (
    "--bridge",
    "none",
    "--iptables=false",
    "--ip-masq=false",
    "--ip-forward=false",
)


def start_dockerd(
    root: str,
    *extra: str,
    bridge: str = "none",
    flags: tuple[str, ...] | None = None,
    wrapper: tuple[str, ...] = (),
) -> Engine:
    """Debian's dockerd 20.10 on private paths, no iptables; no default bridge unless
    ``bridge`` names one the caller made (dockerd only makes its own ``docker0``).  ``flags``
    replace those network flags, e.g. inside a private network namespace entered by
    ``wrapper``; ``extra`` flags are added either way."""
    if flags is None:
        flags = ("--bridge", bridge, *NO_NETWORK_FLAGS[2:])
    os.makedirs(root, exist_ok=True)
    engine = Engine(
        root=root, sock=os.path.join(root, "docker.sock"), log=os.path.join(root, "dockerd.log")
    )
    config = os.path.join(root, "daemon.json")
    with open(config, "w") as f:
        json.dump({}, f)
    cmd = [
        *wrapper,
        "dockerd",
        "-H",
        engine.host,
        "--data-root",
        os.path.join(root, "data"),
        "--exec-root",
        os.path.join(root, "x"),
        "--pidfile",
        os.path.join(root, "docker.pid"),
        "--config-file",
        config,
        *flags,
        *extra,
    ]
    with open(engine.log, "ab") as log:
        engine.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        engine.wait_ready(60)
    except BaseException:
        engine.stop()
        raise
    return engine


def make_busybox(engine: Engine, tag: str = "busybox:latest") -> None:
    result = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "make-busybox-image"), DOCKER_CLI, tag],
        env=engine.env,
        capture_output=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"make-busybox-image failed: {result.stderr.decode()}")


# ---- raw HTTP on a daemon's unix socket ------------------------------------------------------
class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._unix_path)
        self.sock = sock


def api_request(
    daemon,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    conn = UnixHTTPConnection(daemon.sock, timeout)
    try:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ---- comparing the dockyard CLI with the docker CLI -----------------------------------------
def norm_name(data: bytes) -> bytes:
    """The dockyard CLI names itself where docker does ("dockyard: Error ...",
    "Run 'dockyard run --help'"); paths that merely contain the word are left alone."""
    import re

    return re.sub(rb"(?<![\w/-])dockyard(?=[: ])", b"docker", data)


def assert_same(dy_cli, ref, *args, input=None, tries: int = 1):
    """Both CLIs give the same exit code, stdout and (names aside) stderr.  ``tries`` > 1
    for output with clock-derived text (ps "Up 1 second", top's STIME/TIME) that may tick
    between the two calls."""
    for attempt in range(tries):
        mine, theirs = dy_cli(*args, input=input), ref(*args, input=input)
        if (mine.returncode, mine.stdout, norm_name(mine.stderr)) == (
            theirs.returncode,
            theirs.stdout,
            theirs.stderr,
        ) or attempt == tries - 1:
            break
    assert (mine.returncode, mine.stdout, norm_name(mine.stderr)) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr,
    ), args
    return theirs
