"""Terminals for ``dockyard-runtime``, as runc handles them (synchronous world).

With ``process.terminal`` the container's init makes a pty in its own devpts and sends the
master over a console socket (``process._open_console``).  ``--console-socket PATH`` names
a socket someone else listens on (containerd, a shim).  In the foreground without one, the
command makes the socket pair itself, takes the master and copies between it and its own
stdio: raw mode while its stdin is a terminal, the window size followed (``SIGWINCH``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import socket
import termios
from collections.abc import Callable

from dockyard.errors import InvalidParameter

__all__ = ["Console", "Relay", "connect", "exit_code"]


def connect(path: str) -> int:
    """A connected socket to ``path``, as a plain fd the child inherits through InitArgs."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise InvalidParameter(
            f"cannot connect to the console socket {path}: {exc.strerror}"
        ) from None
    return sock.detach()


def exit_code(status: int) -> int:
    """A wait status as a command's exit code: 128+N for a death by signal N, as runc."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Console:
    """Where a new process's terminal goes, for ``run`` and ``exec``: the socket named by
    ``--console-socket``, or, in the foreground without one, a ``Relay`` made only if the
    process asks for a terminal (``factory``).  As a context manager it closes what the
    start did not hand on."""

    def __init__(self, socket_path: str | None, foreground: bool) -> None:
        self.fd = connect(socket_path) if socket_path else None
        self._foreground = foreground and self.fd is None
        self.relay: Relay | None = None

    @property
    def factory(self) -> Callable[[], int] | None:
        return self._make if self._foreground else None

    def _make(self) -> int:
        self.relay = Relay()
        return self.relay.child_fd

    def __enter__(self) -> Console:
        return self

    def __exit__(self, kind: object, _exc: object, _tb: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the child has its own copy by now
            self.fd = None
        if kind is not None and self.relay is not None:
            self.relay.close()

    def wait(self, pid: int) -> int:
        """Copy the terminal if it is ours, until ``pid`` exits; its exit code."""
        if self.relay is not None:
            return exit_code(self.relay.copy(self.relay.receive(), pid))
        return exit_code(os.waitpid(pid, 0)[1])


class Relay:
    """The foreground terminal: our end of the console socket pair, then the copy loop."""

    def __init__(self) -> None:
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    @property
    def child_fd(self) -> int:
        return self._theirs.fileno()

    def close(self) -> None:
        self._theirs.close()
        self._ours.close()

    def receive(self) -> int:
        """The pty master the container's init sent."""
        self._theirs.close()
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(self._ours, 1024, 1)
        finally:
            self._ours.close()
        if not fds:
            raise InvalidParameter("the container sent no terminal over the console socket")
        return fds[0]

    def copy(self, master: int, pid: int) -> int:
        """Copy stdin → master and master → stdout until ``pid`` exits; its wait status."""
        saved = None
        if os.isatty(0):
            saved = termios.tcgetattr(0)
            raw = termios.tcgetattr(0)
            raw[0] &= ~(
                termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON
            )
            raw[1] &= ~termios.OPOST
            raw[2] |= termios.CS8
            raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
            termios.tcsetattr(0, termios.TCSANOW, raw)
            _copy_size(0, master)
            signal.signal(signal.SIGWINCH, lambda *_: _copy_size(0, master))
        pidfd = os.pidfd_open(pid)
        reading = [master, pidfd, 0]
        try:
            while True:
                try:
                    ready, _, _ = select.select(reading, [], [])
                except InterruptedError:
                    continue
                if 0 in ready:
                    data = os.read(0, 65536)
                    if data:
                        _write_all(master, data)
                    else:
                        reading.remove(0)
                if master in ready and not _pump(master):
                    break
                if pidfd in ready:
                    os.set_blocking(master, False)
                    while _pump(master):
                        pass
                    break
        finally:
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
                signal.signal(signal.SIGWINCH, signal.SIG_DFL)
            os.close(pidfd)
            os.close(master)
        _, status = os.waitpid(pid, 0)
        return status


def _pump(master: int) -> bool:
    """Master → stdout once; False when the terminal has no writer left (or nothing now)."""
    try:
        data = os.read(master, 65536)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno == errno.EIO:  # every slave fd closed: the container is gone
            return False
        raise
    if not data:
        return False
    _write_all(1, data)
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_size(source: int, target: int) -> None:
    try:
        fcntl.ioctl(target, termios.TIOCSWINSZ, fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass
