"""Hijacked attach/exec streams in the CLI: the terminal side of ``POST .../attach`` and
``POST /exec/{id}/start`` (docker/cli ``cli/command/container/hijack.go``), CLI world.

The daemon answers ``101`` and the connection becomes a raw byte pipe.  Output is
multiplexed (8-byte header ``[stream,0,0,0,size]``) unless the container/exec has a TTY;
input is always raw.  Without stdin the client half-closes right away; with stdin it
half-closes at stdin EOF.  With ``-t`` and a terminal on stdin, the terminal goes raw and
the detach keys (default ctrl-p,ctrl-q) are recognised client-side, as CLI 28 does (with
moby/term's escape proxy, ``dockyard.detachkeys``): the connection is simply closed and the
container keeps running.
"""

from __future__ import annotations

import os

from dockyard.client.http import hijack

__all__ = ["Session", "demux", "open_hijack", "resize", "terminal_size"]


def open_hijack(
    client,
    path: str,
    params: list[tuple[str, str]] | None = None,  # type: ignore[no-untyped-def]
    body: bytes | None = None,
    content_type: str = "text/plain",
):
    """POST an upgrade request through the client's connection settings; returns the
    response (``.sock``, ``.buffered``) or raises the daemon's APIError."""
    from dockyard.client import API_PREFIX, urlencode
    from dockyard.client.errors import from_response

    target = API_PREFIX + path
    if params:
        target += "?" + urlencode(params)
    response = hijack(client._conn, "POST", target, body, {"Content-Type": content_type})
    if response.status >= 400:
        error = from_response(response.status, response.read())
        response.close()
        raise error
    return response


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[n:]


def demux(chunks, out_fd: int, err_fd: int) -> None:  # type: ignore[no-untyped-def]
    """docker's ``stdcopy.StdCopy``: frames to stdout/stderr (stdin frames go to stdout)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        while len(pending) >= 8:
            size = int.from_bytes(pending[4:8], "big")
            if len(pending) < 8 + size:
                break
            kind, payload, pending = pending[0], pending[8 : 8 + size], pending[8 + size :]
            if kind in (0, 1):
                _write_all(out_fd, payload)
            elif kind == 2:
                _write_all(err_fd, payload)
            elif kind == 3:
                raise OSError(f"error from daemon in stream: {payload.decode('utf-8', 'replace')}")
            else:
                raise OSError(f"Unrecognized input header: {kind}")


def terminal_size(fd: int = 1) -> tuple[int, int] | None:
    """(height, width) of the terminal on ``fd``, or None."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    if not size.lines and not size.columns:
        return None
    return size.lines, size.columns


def resize(client, path: str, fd: int = 1) -> None:  # type: ignore[no-untyped-def]
    """``POST {path}?h=&w=`` with the size of the terminal on ``fd`` (errors ignored)."""
    size = terminal_size(fd)
    if size is None:
        return
    try:
        client.raw("POST", path, {"h": str(size[0]), "w": str(size[1])}).close()
    except Exception:
        return


class Session:
    """Copy one hijacked connection to/from the terminal.

    ``begin()`` starts the stdin pump (or half-closes), ``wait()`` copies output until the
    daemon closes its side and returns ``"detached"`` when the user typed the detach keys.
    """

    def __init__(
        self,
        response,
        tty: bool,
        stdin: bool,
        err_to_out: bool = False,  # type: ignore[no-untyped-def]
        detach_keys: str = "",
    ) -> None:
        self.sock = response.sock
        self.buffered = response.buffered
        self.tty = tty
        self.stdin = stdin
        self.err_fd = 1 if err_to_out else 2
        self.detached = False
        self._saved_tc = None
        self._scanner = None
        if stdin and tty:
            from dockyard import detachkeys

            try:
                keys = detachkeys.parse(detach_keys) if detach_keys else detachkeys.DEFAULT
            except ValueError:  # CLI 28 warns and falls back; the daemon refuses them anyway
                keys = detachkeys.DEFAULT
            self._scanner = detachkeys.EscapeScanner(keys)
        self._thread = None

    # -- terminal -------------------------------------------------------------------------
    def _set_raw(self) -> None:
        if not (self.stdin and self.tty and os.isatty(0)):
            return
        import termios
        import tty

        self._saved_tc = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)

    def restore(self) -> None:
        saved, self._saved_tc = self._saved_tc, None
        if saved is not None:
            import termios

            try:
                termios.tcsetattr(0, termios.TCSANOW, saved)
            except OSError:
                pass

    # -- input ----------------------------------------------------------------------------
    def begin(self) -> None:
        import _socket

        if not self.stdin:
            try:
                self.sock.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
            return
        self._set_raw()
        import threading

        self._thread = threading.Thread(target=self._pump_stdin, daemon=True)
        self._thread.start()

    def _pump_stdin(self) -> None:
        import _socket

        scanner = self._scanner
        try:
            while True:
                try:
                    data = os.read(0, 32 * 1024)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                if scanner is not None:
                    data = scanner.feed(data)
                    if scanner.detached:
                        if data:
                            self.sock.sendall(data)
                        self.detached = True
                        self.restore()
                        try:
                            self.sock.shutdown(_socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                if data:
                    self.sock.sendall(data)
        except OSError:
            pass
        self.restore()
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    # -- output ---------------------------------------------------------------------------
    def _chunks(self):  # type: ignore[no-untyped-def]
        if self.buffered:
            yield self.buffered
            self.buffered = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            yield data

    def wait(self) -> str | None:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        try:
            if self.tty:
                for chunk in self._chunks():
                    _write_all(1, chunk)
            else:
                demux(self._chunks(), 1, self.err_fd)
        finally:
            self.restore()
        return "detached" if self.detached else None

    def close(self) -> None:
        self.restore()
        try:
            self.sock.close()
        except OSError:
            pass
