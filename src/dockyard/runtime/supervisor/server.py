"""dockyard-shim: the supervisor that is the parent of container processes.

Synchronous and single-threaded by design (DESIGN.md, "The supervisor"): it forks container
processes, so it must never hold threads; it owns their stdio, writes the json-file logs,
records exit statuses durably, and answers the daemon on a unix socket.  It outlives the
daemon (started in its own session), so containers keep running and logging while dockyardd
is restarted or killed.

Kernel facts relied on: PR_SET_CHILD_SUBREAPER makes orphaned descendants reparent here, so
every container init is reaped by us; SIGCHLD is turned into a readable byte with
``signal.set_wakeup_fd`` so the select loop never misses an exit; a pty master returns EIO
(not EOF) once the slave side is closed everywhere.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable

from dockyard.runtime.supervisor.jsonlog import JsonLog, rfc3339nano
from dockyard.runtime.supervisor.protocol import FRAME, STDERR, STDIN, STDOUT, frame

__all__ = ["Launcher", "Supervisor"]

# launcher(request, (stdin_fd, stdout_fd, stderr_fd)) -> pid of the container's first process
Launcher = Callable[[dict, tuple[int, int, int]], int]

_PR_SET_CHILD_SUBREAPER = 36
_MAX_CLIENT_BUFFER = 4 << 20  # an attached reader this far behind is dropped, logs go on


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rbuf = b""
        self.wbuf = bytearray()
        self.attached: _Container | None = None
        self.stdin = False
        self.closing = False
        self.shut = False  # our side is done (shutdown SHUT_WR); the peer's EOF closes it


class _Container:
    def __init__(self, cid: str, directory: str) -> None:
        self.id = cid
        self.dir = directory
        self.pid = 0
        self.tty = False
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.outputs: dict[int, int] = {}  # fd -> stream
        self.log: JsonLog | None = None
        self.clients: list[_Conn] = []
        self.waiters: list[_Conn] = []
        self.exit_code: int | None = None
        self.started_at = ""
        self.finished_at = ""
        self.runtime: list[str] | None = None  # an OCI runtime's argv prefix, for its kill verb
        self.request: dict = {}
        self.oom_killed = False

    def state(self) -> dict:
        return {
            "id": self.id,
            "pid": self.pid,
            "running": self.exit_code is None,
            "exit_code": self.exit_code,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "tty": self.tty,
            "oom_killed": self.oom_killed,
        }


class Supervisor:
    def __init__(self, root: str, launcher: Launcher) -> None:
        self.root = root
        self.launcher = launcher
        self.sel = selectors.DefaultSelector()
        self.containers: dict[str, _Container] = {}
        self.by_pid: dict[int, _Container] = {}
        self.running = True
        self.listener: socket.socket | None = None
        from dockyard.runtime.supervisor.handover import code_stamp

        self.stamp = code_stamp()  # the code this process runs (see handover.py)

    # ---- set-up --------------------------------------------------------------------------
    def serve(self, sock_path: str, handover_state: str | None = None) -> None:
        """Serve until SIGTERM.  ``handover_state``: the previous code's state file (this
        process re-executed itself, see handover.py): its containers and listener go on."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if handover_state is not None:
            listener = self._take_over(handover_state)
        else:
            try:
                os.unlink(sock_path)
            except FileNotFoundError:
                pass
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(sock_path)
            os.chmod(sock_path, 0o600)
            # The kernel's maximum: a unix connect to a full backlog fails with EAGAIN,
            # which asyncio takes for "in progress", so the daemon's next write fails with
            # ENOTCONN (200 concurrent API clients overflowed a backlog of 64).
            listener.listen(socket.SOMAXCONN)
        listener.setblocking(False)
        self.listener = listener
        self.sel.register(listener, selectors.EVENT_READ, ("listen", listener))
        self.sel.register(wake_r, selectors.EVENT_READ, ("wake", None))
        while self.running:
            for key, mask in self.sel.select(timeout=5):
                kind, obj = key.data
                if kind == "listen":
                    self._accept(obj)
                elif kind == "wake":
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        pass
                    self._reap()
                elif kind == "conn":
                    self._conn_event(obj, mask)
                elif kind == "out":
                    self._output(obj, key.fd)
                elif kind == "stdin":
                    self._flush_stdin(obj)
            self._reap()
        listener.close()
        os.unlink(sock_path)

    def _take_over(self, state_path: str) -> socket.socket:
        from dockyard.runtime.supervisor import handover

        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        os.unlink(state_path)
        listener = socket.socket(fileno=handover.load(self, state))
        for c in self.containers.values():
            for fd in c.outputs:
                self.sel.register(fd, selectors.EVENT_READ, ("out", c))
            if c.stdin_buf and not c.tty and c.stdin_fd >= 0:
                self.sel.register(c.stdin_fd, selectors.EVENT_WRITE, ("stdin", c))
        self._reap()  # exits that happened during the exec
        return listener

    def _stop(self, *_: object) -> None:
        # SIGTERM stops serving; containers keep running (they are not ours to kill).
        self.running = False

    # ---- connections ---------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        conn = _Conn(sock)
        self.sel.register(sock, selectors.EVENT_READ, ("conn", conn))

    def _send(self, conn: _Conn, data: bytes) -> None:
        if conn.closing and not data:
            return
        conn.wbuf += data
        if len(conn.wbuf) > _MAX_CLIENT_BUFFER:
            self._close_conn(conn)
            return
        self._update(conn)

    def _reply(self, conn: _Conn, message: dict) -> None:
        self._send(conn, json.dumps(message).encode() + b"\n")

    def _update(self, conn: _Conn) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.wbuf else 0)
        try:
            self.sel.modify(conn.sock, events, ("conn", conn))
        except (KeyError, ValueError):
            pass

    def _end_conn(self, conn: _Conn) -> None:
        """All output sent: half-close and let the peer close.  Closing outright while the
        daemon may still be writing (a late stdin EOF) answers it with a reset, and a reset
        makes the daemon's reader drop output it has not read yet."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close_conn(conn)
            return
        conn.shut = True
        self._update(conn)

    def _close_conn(self, conn: _Conn) -> None:
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        for c in self.containers.values():
            if conn in c.clients:
                c.clients.remove(conn)
            if conn in c.waiters:
                c.waiters.remove(conn)

    def _conn_event(self, conn: _Conn, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and conn.wbuf:
            try:
                sent = conn.sock.send(conn.wbuf)
                del conn.wbuf[:sent]
            except BlockingIOError:
                pass
            except OSError:
                self._close_conn(conn)
                return
            if not conn.wbuf and conn.closing:
                self._end_conn(conn)
                return
            self._update(conn)
        if mask & selectors.EVENT_READ:
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                if conn.attached is not None and conn.wbuf and not conn.shut:
                    return  # half-closed reader: keep sending what is queued
                self._close_conn(conn)
                return
            if conn.shut:
                return  # the container is gone: late stdin goes nowhere
            conn.rbuf += data
            if conn.attached is not None:
                self._attached_input(conn)
            else:
                while b"\n" in conn.rbuf and conn.attached is None:
                    line, _, conn.rbuf = conn.rbuf.partition(b"\n")
                    self._request(conn, line)
                if conn.attached is not None and conn.rbuf:
                    self._attached_input(conn)

    def _attached_input(self, conn: _Conn) -> None:
        c = conn.attached
        while len(conn.rbuf) >= FRAME.size:
            stream, length = FRAME.unpack_from(conn.rbuf)
            if len(conn.rbuf) < FRAME.size + length:
                return
            data = bytes(conn.rbuf[FRAME.size : FRAME.size + length])
            conn.rbuf = conn.rbuf[FRAME.size + length :]
            if stream == STDIN and conn.stdin and c is not None and c.stdin_fd >= 0:
                if data:
                    c.stdin_buf += data
                else:
                    c.stdin_closing = True
                self._flush_stdin(c)

    # ---- requests ------------------------------------------------------------------------
    def _request(self, conn: _Conn, line: bytes) -> None:
        try:
            req = json.loads(line)
            op = req["op"]
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise ValueError(f"unknown op {op!r}")
            reply = handler(conn, req)
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
            reply = {"error": message}
        if reply is not None:
            self._reply(conn, reply)

    def _get(self, req: dict) -> _Container:
        c = self.containers.get(req["id"])
        if c is None:
            raise KeyError(f"no such container in the supervisor: {req['id']}")
        return c

    def op_ping(self, conn: _Conn, req: dict) -> dict:
        return {"ok": True, "pid": os.getpid(), "stamp": self.stamp}

    def op_handover(self, conn: _Conn, req: dict) -> None:
        """Re-execute as the code the daemon runs (``python``, ``path``: its interpreter and
        sys.path), keeping every container (handover.py).  Answers before the exec."""
        from dockyard.runtime.supervisor import handover

        python, path = str(req["python"]), [str(p) for p in req["path"]]
        if not os.access(python, os.X_OK):
            raise ValueError(f"cannot execute {python}")
        assert self.listener is not None
        state = handover.dump(self, self.listener.fileno())
        conn.sock.setblocking(True)
        conn.sock.sendall(json.dumps({"ok": True, "pid": os.getpid()}).encode() + b"\n")
        try:
            handover.exec_new(self.root, state, python, path)
        except OSError as exc:  # still the old code, still serving: say why in our log
            print(f"dockyard-shim: handover failed: {exc}", file=sys.stderr, flush=True)
            for fd in [self.listener.fileno()] + [
                fd for c in self.containers.values() for fd in [*c.outputs, c.stdin_fd]
            ]:
                if fd >= 0:
                    os.set_inheritable(fd, False)

    def op_list(self, conn: _Conn, req: dict) -> dict:
        return {"containers": [c.state() for c in self.containers.values()]}

    def op_state(self, conn: _Conn, req: dict) -> dict:
        return self._get(req).state()

    def op_start(self, conn: _Conn, req: dict) -> dict:
        cid = req["id"]
        if cid in self.containers and self.containers[cid].exit_code is None:
            raise ValueError(f"container {cid} is already running")
        directory = os.path.join(self.root, cid)
        os.makedirs(directory, exist_ok=True)
        c = _Container(cid, directory)
        c.tty = bool(req.get("tty"))
        if req.get("log_path"):
            c.log = JsonLog(
                req["log_path"],
                int(req.get("log_max_size") or 10 << 20),
                int(req.get("log_max_file") or 3),
            )
        child_fds: list[int] = []
        if c.tty:
            master, slave = os.openpty()
            os.set_blocking(master, False)
            os.set_inheritable(master, False)
            stdio = (slave, slave, slave)
            child_fds = [slave]
            c.outputs[master] = STDOUT
            c.stdin_fd = master if req.get("stdin") else -1
        else:
            if req.get("stdin"):
                r, w = os.pipe2(os.O_CLOEXEC)
                os.set_blocking(w, False)
                c.stdin_fd = w
                stdin = r
            else:
                stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            for fd in (out_r, err_r):
                os.set_blocking(fd, False)
            c.outputs[out_r] = STDOUT
            c.outputs[err_r] = STDERR
            stdio = (stdin, out_w, err_w)
            child_fds = [stdin, out_w, err_w]
        target = self.containers.get(req.get("exec_of") or "")
        if target is not None and target.runtime is not None and target.exit_code is None:
            # ``runc exec`` into a container runc is still creating fails ("container does
            # not exist"); creating takes longer with a seccomp filter to compile.
            self._await_oci_start(target)
        try:
            c.pid = self.launcher(req, stdio)
        except BaseException:
            for fd in (
                list(c.outputs)
                + child_fds
                + ([c.stdin_fd] if c.stdin_fd >= 0 and not c.tty else [])
            ):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if c.log:
                c.log.close()
            raise
        finally:
            for fd in set(child_fds):
                try:
                    os.close(fd)
                except OSError:
                    pass
        c.started_at = rfc3339nano(time.time_ns())
        c.request = req
        from dockyard.runtime.supervisor.launch import is_oci, oci_argv

        if req.get("bundle") and is_oci(req):
            c.runtime = oci_argv(req)
        self.containers[cid] = c
        self.by_pid[c.pid] = c
        for fd in c.outputs:
            self.sel.register(fd, selectors.EVENT_READ, ("out", c))
        reply = {"pid": c.pid, "started_at": c.started_at}
        if req.get("attach"):
            # Attached in the same step as the start: no output can be read before the
            # client is registered, so nothing the container prints first is lost.
            self._reply(conn, reply)
            return self.op_attach(conn, req)
        return reply

    def op_kill(self, conn: _Conn, req: dict) -> dict:
        c = self._get(req)
        if c.exit_code is not None:
            raise ValueError(f"container {c.id} is not running")
        sig = int(req.get("signal", signal.SIGTERM))
        if c.runtime is not None:
            # The runtime's own process is our child, not the container: a SIGKILL to it
            # would orphan the container.  Its kill verb signals the container's init.
            import subprocess

            self._await_oci_start(c)
            done = subprocess.run(
                [*c.runtime, "kill", c.id, str(sig)], capture_output=True, timeout=10
            )
            if done.returncode != 0 and c.exit_code is None:
                os.kill(c.pid, sig if sig != signal.SIGKILL else signal.SIGTERM)
        else:
            os.kill(c.pid, sig)
        return {"ok": True}

    def _await_oci_start(self, c: _Container, limit: float = 5.0) -> None:
        """``runc run`` answers before the container's process runs: a signal sent while it
        is still "created" kills init before its exec and runc then reports its own failure
        instead of the signal.  Wait (briefly, blocking: kills are rare) for "running".

        runc's state directory tells without a subprocess: ``<root>/<id>/state.json`` with
        no ``exec.fifo`` beside it is a started container (runc's own test).  A runtime that
        keeps no such files is asked with its ``state`` verb."""
        import subprocess

        assert c.runtime is not None
        directory = os.path.join(c.runtime[c.runtime.index("--root") + 1], c.id)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if os.path.exists(os.path.join(directory, "state.json")):
                if not os.path.exists(os.path.join(directory, "exec.fifo")):
                    return
            else:
                done = subprocess.run([*c.runtime, "state", c.id], capture_output=True, timeout=10)
                status = ""
                if done.returncode == 0:
                    try:
                        status = json.loads(done.stdout).get("status", "")
                    except ValueError:
                        pass
                if status in ("running", "paused", "stopped"):
                    return
            try:  # the runtime itself gave up (a zombie until the reaper runs): stop waiting
                with open(f"/proc/{c.pid}/stat", "rb") as f:
                    if f.read().rpartition(b")")[2].split()[0] == b"Z":
                        return
            except OSError:
                return
            time.sleep(0.002)

    def op_wait(self, conn: _Conn, req: dict) -> dict | None:
        c = self._get(req)
        if c.exit_code is not None:
            return c.state()
        c.waiters.append(conn)
        return None

    def op_resize(self, conn: _Conn, req: dict) -> dict:
        import fcntl
        import struct
        import termios

        c = self._get(req)
        if not c.tty:
            raise ValueError("container has no TTY")
        master = next(iter(c.outputs), -1)
        if master < 0:
            raise ValueError("container's TTY is closed")
        fcntl.ioctl(
            master, termios.TIOCSWINSZ, struct.pack("HHHH", int(req["h"]), int(req["w"]), 0, 0)
        )
        return {"ok": True}

    def op_attach(self, conn: _Conn, req: dict) -> dict | None:
        c = self._get(req)
        self._reply(conn, {"ok": True, "tty": c.tty})
        conn.attached = c
        conn.stdin = bool(req.get("stdin"))
        if c.outputs:
            c.clients.append(conn)
        else:
            conn.closing = True
            if not conn.wbuf:
                self._end_conn(conn)
        return None

    def op_delete(self, conn: _Conn, req: dict) -> dict:
        c = self._get(req)
        if c.exit_code is None:
            raise ValueError(f"container {c.id} is running; kill it first")
        del self.containers[c.id]
        return {"ok": True}

    # ---- container I/O -------------------------------------------------------------------
    def _output(self, c: _Container, fd: int) -> None:
        stream = c.outputs.get(fd)
        if stream is None:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._close_output(c, fd)
            return
        name = "stderr" if stream == STDERR else "stdout"
        if c.log is not None:
            c.log.write(name, data)
        payload = data if c.tty else None
        for conn in list(c.clients):
            self._send(conn, payload if payload is not None else frame(stream, data))

    def _close_output(self, c: _Container, fd: int) -> None:
        stream = c.outputs.pop(fd)
        self.sel.unregister(fd)
        if c.log is not None:
            c.log.flush_partial("stderr" if stream == STDERR else "stdout")
        if c.tty and fd == c.stdin_fd:
            c.stdin_fd = -1
        os.close(fd)
        if not c.outputs:
            if c.log is not None:
                c.log.close()
                c.log = None
            for conn in list(c.clients):
                conn.closing = True
                if not conn.wbuf:
                    self._end_conn(conn)
            c.clients.clear()
            if c.exit_code is not None:
                self._notify_exit(c)

    def _flush_stdin(self, c: _Container) -> None:
        if c.stdin_fd < 0:
            return
        try:
            while c.stdin_buf:
                n = os.write(c.stdin_fd, c.stdin_buf)
                del c.stdin_buf[:n]
        except BlockingIOError:
            pass
        except OSError:
            c.stdin_buf.clear()
            c.stdin_closing = True
        registered = c.stdin_fd in self.sel.get_map()
        if c.stdin_buf and not c.tty and not registered:
            self.sel.register(c.stdin_fd, selectors.EVENT_WRITE, ("stdin", c))
        elif not c.stdin_buf:
            if registered and not c.tty:
                self.sel.unregister(c.stdin_fd)
            if c.stdin_closing and not c.tty:
                os.close(c.stdin_fd)
                c.stdin_fd = -1

    # ---- exits ---------------------------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            c = self.by_pid.pop(pid, None)
            if c is None:
                continue  # a reparented descendant: reaped, nothing to record
            code = os.waitstatus_to_exitcode(status)
            c.exit_code = code if code >= 0 else 128 - code
            c.finished_at = rfc3339nano(time.time_ns())
            from dockyard.runtime.supervisor.launch import cleanup

            c.oom_killed = bool(cleanup(c.request).get("oom_killed"))
            self._record_exit(c)
            if not c.outputs:
                self._notify_exit(c)

    def _notify_exit(self, c: _Container) -> None:
        """Waiters hear of an exit once its output is drained into the log, so a reader
        that follows logs until the exit sees every line."""
        for conn in c.waiters:
            self._reply(conn, c.state())
        c.waiters.clear()

    def _record_exit(self, c: _Container) -> None:
        from dockyard.fsutil import atomic_write

        atomic_write(os.path.join(c.dir, "exit.json"), json.dumps(c.state()).encode())
