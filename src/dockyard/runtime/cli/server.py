"""The resident side of ``dockyard-runtime`` (synchronous, single-threaded).

``runc run`` is a Go binary that starts in a millisecond; a Python interpreter needs ~10 ms
before it has done anything and ~60 ms once the runtime is imported.  So the installed
``dockyard-runtime`` is a small compiled client (``client.c``) that hands its call, its
arguments, working directory, environment, umask, rlimits and its stdin/stdout/stderr
(``SCM_RIGHTS``) to this process, which forks a warm worker to run the verb exactly as the
Python command would; the client relays signals to the worker and exits with its status.
That is DESIGN's fast path: fork from a process that is already running.

The server only serves callers it cannot be told apart from: the same uid, namespaces,
root, capabilities, no_new_privs and seccomp mode as itself (checked per call through
``/proc/<peer>``), and only verbs whose processes need not be the caller's children:
``create``, ``run -d`` and ``exec -d`` leave a container to be reaped by the caller's
subreaper (containerd-shim relies on that), so those answer ``F`` and the client runs the
Python command itself.  It also answers ``F`` once its own code changed on disk (an upgrade)
and then exits, so a stale server never runs old code.  The first call starts the server;
it exits after ``DOCKYARD_RUNTIME_SERVER_IDLE`` seconds (default 600) without calls.

Wire format: the client sends a little-endian u32 length then NUL-terminated fields —
protocol ``1``, cwd, umask (octal), argc and the arguments, envc and the environment,
rlimit count and ``cur:max`` pairs (``-1`` for infinity) — with fds 0, 1, 2 attached.
The server answers lines: ``P<worker pid>``, then ``X<exit status>``; or ``F``.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import os
import resource
import select
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

import msgspec

from dockyard.errors import DockyardError
from dockyard.runtime import fdpass
from dockyard.runtime import spare as spares
from dockyard.runtime.cli._args import parse
from dockyard.runtime.cli.console import exit_code
from dockyard.runtime.cli.dispatch import VERBS, run, split

__all__ = ["DEFAULT_SOCKET", "Request", "command", "serve", "socket_path"]

DEFAULT_SOCKET = "/run/dockyard-runtime-server/server.sock"
PROTOCOL = "1"
_SO_PEERPIDFD = 77  # not in Python 3.11's socket module
_SPARES = 6  # parked workers kept for ``run`` (see _Server._refill)
_NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "user", "cgroup")
_STATUS_FIELDS = (b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb", b"NoNewPrivs", b"Seccomp")
# A worker resets these to the default action: the verbs (run, exec) install their own.
_RESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE)


def socket_path() -> str | None:
    """Where the server listens, or ``None`` when ``DOCKYARD_RUNTIME_SERVER=off``."""
    value = os.environ.get("DOCKYARD_RUNTIME_SERVER", "")
    if value == "off":
        return None
    return value or DEFAULT_SOCKET


class Request(msgspec.Struct):
    cwd: str
    umask: int
    argv: list[str]
    env: dict[str, str]
    rlimits: list[tuple[int, int]]


def parse_request(payload: bytes) -> Request:
    """Decode the client's fields; ValueError on anything malformed."""
    fields = payload.split(b"\0")
    if fields[-1] != b"":
        raise ValueError("request does not end with NUL")
    fields.pop()
    pos = 0

    def take() -> bytes:
        nonlocal pos
        if pos >= len(fields):
            raise ValueError("request is truncated")
        pos += 1
        return fields[pos - 1]

    def take_list() -> list[bytes]:
        count = int(take())
        if count < 0 or count > len(fields) - pos:
            raise ValueError("bad count")
        return [take() for _ in range(count)]

    if take().decode() != PROTOCOL:
        raise ValueError("unknown protocol")
    cwd = os.fsdecode(take())
    umask = int(take(), 8)
    argv = [os.fsdecode(a) for a in take_list()]
    env: dict[str, str] = {}
    for entry in take_list():
        key, eq, value = entry.partition(b"=")
        if eq and key:
            env[os.fsdecode(key)] = os.fsdecode(value)
    rlimits = []
    for pair in take_list():
        cur, _, hard = pair.partition(b":")
        rlimits.append((int(cur), int(hard)))
    return Request(cwd=cwd, umask=umask, argv=argv, env=env, rlimits=rlimits)


def _status(pid: int | str) -> dict[bytes, bytes]:
    with open(f"/proc/{pid}/status", "rb") as f:
        lines = f.read().splitlines()
    out = {}
    for line in lines:
        key, _, value = line.partition(b":")
        if key in _STATUS_FIELDS:
            out[key] = value.strip()
    return out


def _identity(pid: int | str) -> tuple[object, ...]:
    """What makes a caller's view of the system: namespaces, root, privileges."""
    namespaces = tuple(os.stat(f"/proc/{pid}/ns/{ns}").st_ino for ns in _NAMESPACES)
    root = os.stat(f"/proc/{pid}/root")
    return namespaces, (root.st_dev, root.st_ino), _status(pid)


def _same_identity(conn: socket.socket, peer: int, identity: tuple[object, ...]) -> bool:
    """The caller, read through ``/proc/<peer>``, is us; a pidfd for the peer (Linux 6.5+)
    proves the pid was not reused by another process while we read."""
    try:
        pidfd = conn.getsockopt(socket.SOL_SOCKET, _SO_PEERPIDFD)
    except OSError:
        pidfd = -1
    try:
        if _identity(peer) != identity:
            return False
        return pidfd < 0 or not select.select([pidfd], [], [], 0)[0]  # readable: it exited
    except OSError:
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _code_stamp() -> tuple[tuple[str, int, int], ...]:
    """Our loaded modules' files as (path, mtime, size): a change means an upgrade."""
    out = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and module.__name__.startswith("dockyard"):
            try:
                st = os.stat(path)
            except OSError:
                out.append((path, -1, -1))
                continue
            out.append((path, st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


def _stamp_changed(stamp: tuple[tuple[str, int, int], ...]) -> bool:
    for path, mtime, size in stamp:
        try:
            st = os.stat(path)
        except OSError:
            return True
        if st.st_mtime_ns != mtime or st.st_size != size:
            return True
    return False


def _needs_caller_as_parent(argv: list[str]) -> bool:
    """``create``, ``run -d``, ``exec -d``: the container must be orphaned to the caller's
    subreaper, which only happens when the caller's own child creates it."""
    try:
        _, verb, rest = split(argv)
    except DockyardError:
        return False  # a worker prints the same error the command would
    if verb == "create":
        return True
    if verb in ("run", "exec"):
        module = importlib.import_module(f"dockyard.runtime.cli.{verb}")
        return bool(module.detaches(rest))
    return False


class _CgroupsPath(msgspec.Struct):
    cgroupsPath: str = ""


class _Linux(msgspec.Struct):
    linux: _CgroupsPath = msgspec.field(default_factory=_CgroupsPath)


def _run_cgroup_parent(request: Request) -> str | None:
    """The parent cgroup a ``run`` request's container goes under (where a spare must wait),
    read from its bundle; None when it is not a ``run`` or the bundle cannot be read."""
    try:
        _, verb, rest = split(request.argv)
        if verb != "run":
            return None
        from dockyard.runtime.cli.create import CREATE_VALUED
        from dockyard.runtime.cli.run import _BOOLEAN

        args = parse(rest, CREATE_VALUED, _BOOLEAN)
        bundle = os.path.join(request.cwd, args.get("bundle", ".") or ".")
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            path = msgspec.json.decode(f.read(), type=_Linux).linux.cgroupsPath
        if not path:
            path = f"/dockyard-runtime/{args.positionals[0] if args.positionals else 'x'}"
        return os.path.dirname("/" + path.strip("/"))
    except (DockyardError, OSError, ValueError):
        return None


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class _Context(msgspec.Struct):
    """What a worker checks a call against (the server's identity and code stamp), and the
    state it inherited from the server, so it changes only what the caller has otherwise."""

    identity: tuple[object, ...]
    stamp: tuple[tuple[str, int, int], ...]
    uid: int
    env: dict[str, str]
    rlimits: list[tuple[int, int]]
    oom_score_adj: bytes

    @classmethod
    def of_server(cls) -> _Context:
        try:
            with open("/proc/self/oom_score_adj", "rb") as f:
                oom = f.read()
        except OSError:
            oom = b""
        return cls(
            _identity("self"),
            _code_stamp(),
            os.geteuid(),
            dict(os.environ),
            [resource.getrlimit(r) for r in range(spares.RLIMIT_COUNT)],
            oom,
        )


def _become_caller(request: Request, fds: list[int], peer: int, context: _Context) -> None:
    """Take the caller's stdio, cwd, environment, umask, rlimits and oom score."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_all([fd for fd in fds if fd > 2])
    os.chdir(request.cwd)
    os.umask(request.umask)
    if request.env != context.env:
        os.environ.clear()
        os.environ.update(request.env)
    for res, limits in enumerate(request.rlimits):
        if res < len(context.rlimits) and limits == context.rlimits[res]:
            continue
        try:
            resource.setrlimit(res, limits)
        except (ValueError, OSError):
            pass  # a limit we may not raise stays as it is, as for any child
    try:
        with open(f"/proc/{peer}/oom_score_adj", "rb") as f:
            oom = f.read()
        if oom != context.oom_score_adj:
            with open("/proc/self/oom_score_adj", "wb") as f:
                f.write(oom)
    except OSError:
        pass


def _serve_call(conn: socket.socket, back: socket.socket, context: _Context) -> NoReturn:
    """A worker: read the call from ``conn``, check it may be served here, run it as the
    caller would, answer ``X<status>``.  ``back`` tells the server what it learnt."""
    code = 255
    answered = False
    try:
        conn.settimeout(5)
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        peer, uid, _gid = struct.unpack("3i", creds)
        payload, fds = fdpass.receive(conn, 3)
        if len(fds) != 3:
            _close_all(fds)
            raise ValueError("expected the caller's stdin, stdout and stderr")
        request = parse_request(payload)
        if _stamp_changed(context.stamp):
            back.sendall(b"stale\n")  # an upgrade: let a fresh server start
            conn.sendall(b"F\n")
            os._exit(0)
        if (
            uid != context.uid
            or not _same_identity(conn, peer, context.identity)
            or _needs_caller_as_parent(request.argv)
        ):
            conn.sendall(b"F\n")
            os._exit(0)
        conn.sendall(b"P%d\n" % os.getpid())
        answered = True
        conn.settimeout(None)
        _become_caller(request, fds, peer, context)
        code = run(request.argv)
    except BaseException:
        if not answered:  # nothing ran: a hostile or vanished client, or our own fault
            try:
                conn.sendall(b"F\n")
            except OSError:
                pass
            os._exit(0)
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        conn.sendall(b"X%d\n" % (code & 0xFF))
    except OSError:
        pass  # the client went away; the container's fate was ours
    spares.discard_ready()
    parent = _run_cgroup_parent(request)
    if parent:
        try:
            back.sendall(b"parent " + parent.encode() + b"\n")
        except OSError:
            pass
    os._exit(0)


def _start_worker(
    back: socket.socket, conn: socket.socket | None, context: _Context, parent: str | None
) -> NoReturn:
    """A forked worker: serve ``conn``, or (a spare) park an init under cgroup ``parent``
    first and wait for the server to hand over a connection."""
    try:
        signal.set_wakeup_fd(-1)
        for sig in _RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        if conn is None:
            if parent:
                spares.offer(spares.Spare.prepare(parent))
            _, fds = fdpass.receive(back, 1)
            if len(fds) != 1:
                raise ValueError("expected a connection")
            conn = socket.socket(fileno=fds[0])
    except BaseException:
        spares.discard_ready()
        os._exit(0)
    _serve_call(conn, back, context)


class _Worker(msgspec.Struct):
    pid: int
    pidfd: int
    back: socket.socket
    conn: socket.socket | None = None


class _Server:
    """Accepts calls and hands each to a worker: a parked spare, else a fresh fork."""

    def __init__(self, listener: socket.socket, idle: float, context: _Context) -> None:
        self.listener = listener
        self.idle = idle
        self.selector = selectors.DefaultSelector()
        self.context = context
        self.busy: dict[int, _Worker] = {}  # pidfd -> a worker serving a call
        self.spares: list[_Worker] = []
        self.retiring: dict[int, _Worker] = {}
        self.spare_parent: str | None = None
        self.stopping = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.stopping = True
            self._retire_spares()
            for pidfd in list(self.retiring):
                self._reap(pidfd)  # they remove their parked inits' cgroups first

    def _loop(self) -> None:
        signal.set_wakeup_fd(self.wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)  # the wakeup fd carries it
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self._on_signal)
        deadline = time.monotonic() + self.idle
        while True:
            if self.stopping and not self.busy:
                return
            timeout = None if self.busy else max(0.0, deadline - time.monotonic())
            events = self.selector.select(timeout)
            if not events and not self.busy and time.monotonic() >= deadline:
                return
            for key, _ in events:
                key.data(key.fileobj)
            deadline = time.monotonic() + self.idle

    def _on_signal(self, sock: socket.socket) -> None:
        try:
            sock.recv(64)
        except BlockingIOError:
            pass
        self._stop_listening()

    def _stop_listening(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.selector.unregister(self.listener)
        self.listener.close()
        self._retire_spares()

    def _held_fds(self) -> list[int]:
        held = [self.wake_r.fileno(), self.wake_w.fileno(), self.selector.fileno()]
        if not self.stopping:
            held.append(self.listener.fileno())
        for group in (self.busy.values(), self.spares, self.retiring.values()):
            for w in group:
                held += [w.pidfd, w.back.fileno()]
                if w.conn is not None:
                    held.append(w.conn.fileno())
        return held

    def _fork(self, conn: socket.socket | None, parent: str | None) -> _Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            held = self._held_fds()
            held.append(ours.fileno())
            _close_all([fd for fd in held if conn is None or fd != conn.fileno()])
            _start_worker(theirs, conn, self.context, parent)
        theirs.close()
        worker = _Worker(pid, os.pidfd_open(pid), ours, conn)
        return worker

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        worker = None
        while self.spares and worker is None:
            spare = self.spares.pop(0)
            self.selector.unregister(spare.pidfd)
            try:
                fdpass.send(spare.back, b"", [conn.fileno()])
                spare.conn = conn
                worker = spare
            except OSError:
                self.retiring[spare.pidfd] = spare
                self.selector.register(spare.pidfd, selectors.EVENT_READ, self._reap)
        if worker is None:
            worker = self._fork(conn, None)
        self.busy[worker.pidfd] = worker
        self.selector.register(worker.pidfd, selectors.EVENT_READ, self._reap)

    def _refill(self) -> None:
        """Top the spares up in one go when they run low: their cgroup joins then share
        one RCU grace period, and only one call in ``_SPARES - 1`` meets it."""
        if self.stopping or not self.spare_parent or len(self.spares) > 1:
            return
        while len(self.spares) < _SPARES:
            worker = self._fork(None, self.spare_parent)
            self.spares.append(worker)
            self.selector.register(worker.pidfd, selectors.EVENT_READ, self._reap)

    def _retire_spares(self) -> None:
        """Close their sockets: each discards its parked init and cgroup, then exits."""
        for worker in self.spares:
            worker.back.close()
            self.retiring[worker.pidfd] = worker
            self.selector.modify(worker.pidfd, selectors.EVENT_READ, self._reap)
        self.spares.clear()

    def _reap(self, pidfd: int) -> None:
        worker = self.busy.pop(pidfd, None) or self.retiring.pop(pidfd, None)
        if worker is None:  # a spare that died unasked
            worker = next(w for w in self.spares if w.pidfd == pidfd)
            self.spares.remove(worker)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(worker.pid, 0)
        if worker.conn is not None:
            if os.WIFSIGNALED(status):  # it could not answer for itself
                try:
                    worker.conn.sendall(b"X%d\n" % exit_code(status))
                except OSError:
                    pass
            worker.conn.close()
        if worker.back.fileno() != -1:
            self._learn(worker.back)
            worker.back.close()
        self._refill()

    def _learn(self, back: socket.socket) -> None:
        """What a finished worker reported: a code change, or where runs put containers."""
        back.setblocking(False)
        try:
            lines = back.recv(4096).splitlines()
        except OSError:
            return
        for line in lines:
            if line == b"stale":
                self._stop_listening()
            elif line.startswith(b"parent "):
                parent = os.fsdecode(line[7:])
                if parent != self.spare_parent:
                    self._retire_spares()
                    self.spare_parent = parent
                    spares.sweep(parent)


def _preload() -> None:
    """Import what every verb needs, and build msgspec's per-type decoders once, so each
    forked worker starts warm instead of paying it per call."""
    import encodings.ascii  # noqa: F401
    import shutil  # noqa: F401 - Store.remove

    for verb in VERBS:
        importlib.import_module(f"dockyard.runtime.cli.{verb}")
    from dockyard.runtime import process, rootfs, spec, state
    from dockyard.runtime.cgroups import is_unified, v1
    from dockyard.runtime.spec.default import default_nofile

    if not is_unified():
        v1.remember_mounts()
    loaded = spec.load(spec.dump(spec.default_spec(nofile=default_nofile())))
    spec.validate(loaded)
    plan = rootfs.plan(loaded, "/nonexistent-bundle")
    handoff = spares._Handoff(loaded, plan, None, 0o22, [(0, 0)], b"0")
    spares._DECODER.decode(msgspec.msgpack.encode(handoff))
    record = state.State(oci_version="", id="", pid=0, bundle="", rootfs="", created="")
    msgspec.json.decode(msgspec.json.encode(record), type=state.State)
    msgspec.json.decode(msgspec.json.encode(process.Report(0, "", "")), type=process.Report)


def serve(path: str, idle: float | None = None) -> int:
    """Listen on ``path`` until idle; returns at once if another server holds it."""
    if idle is None:
        idle = float(os.environ.get("DOCKYARD_RUNTIME_SERVER_IDLE", "600"))
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return 0
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _preload()
        # Stamped before the socket exists: a change made after a caller saw the socket
        # must make this server step aside.
        context = _Context.of_server()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old)
        listener.listen(128)
        with open(path + ".pid", "w") as f:
            f.write(f"{os.getpid()}\n")
        gc.collect()
        gc.freeze()  # keep the heap's pages shared with forked workers
        server = _Server(listener, idle, context)
        server.run()
    finally:
        for leftover in (path, path + ".pid"):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
        listener.close()
        os.close(lock)
    return 0


def stop(path: str, timeout: float = 10.0) -> int:
    """SIGTERM the server at ``path`` and wait for it (it finishes running calls first)."""
    try:
        with open(path + ".pid") as f:
            pid = int(f.read().strip())
        pidfd = os.pidfd_open(pid)
    except (OSError, ValueError):
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
        import select

        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return 0


def command(args: list[str]) -> int:
    """``dockyard-runtime __server__ serve|stop`` (what the client runs; also for tests)."""
    path = socket_path()
    actions: dict[str, Callable[[str], int]] = {"serve": serve, "stop": stop}
    if path is None or len(args) != 1 or args[0] not in actions:
        sys.stderr.write("usage: dockyard-runtime __server__ serve|stop\n")
        return 2
    return actions[args[0]](path)
