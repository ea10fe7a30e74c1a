"""A minimal HTTP/1.1 client over unix, tcp and TLS sockets (synchronous world).

Why not ``http.client``: importing it costs ~30 ms (email parser, ssl), and CLI start-up is
a benchmark against the Go docker binary.  This speaks exactly what the Engine API needs:
Content-Length and chunked bodies both ways, streamed responses, and keep-alive off.
"""

from __future__ import annotations

# _socket, not socket: the socket module imports enum and selectors (~3 ms); the TCP
# path, rarer and slower anyway, imports the full module.
import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

__all__ = ["ConnectError", "Connection", "Response", "hijack"]

_CHUNK = 1 << 16


class ConnectError(Exception):
    """The daemon could not be reached at all."""


class Response:
    def __init__(self, sock: _socket.socket, method: str) -> None:
        self._sock = sock
        self._buf = b""
        self._eof = False
        status_line = self._readline()
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ConnectError(f"malformed response from the daemon: {status_line!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while line := self._readline():
            key, _, value = line.partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        length = self.headers.get("content-length")
        self._remaining = int(length) if length is not None else None
        if method == "HEAD" or self.status in (101, 204, 304):
            self._remaining = 0
            self._chunked = False
        self._chunk_left = 0

    def _fill(self) -> bool:
        data = self._sock.recv(_CHUNK)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _readline(self) -> str:
        while b"\r\n" not in self._buf:
            if not self._fill():
                raise ConnectError("the daemon closed the connection mid-response")
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line.decode("latin-1")

    def _take(self, n: int) -> bytes:
        if not self._buf and not self._fill():
            return b""
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def iter_chunks(self) -> Iterator[bytes]:
        """Body bytes as they arrive."""
        if self._chunked:
            while True:
                if self._chunk_left == 0:
                    size_line = self._readline()
                    size = int(size_line.split(";")[0], 16)
                    if size == 0:
                        while self._readline():
                            pass
                        return
                    self._chunk_left = size
                data = self._take(self._chunk_left)
                if not data:
                    return
                self._chunk_left -= len(data)
                if self._chunk_left == 0:
                    self._readline()
                yield data
        elif self._remaining is not None:
            while self._remaining > 0:
                data = self._take(min(self._remaining, _CHUNK))
                if not data:
                    return
                self._remaining -= len(data)
                yield data
        else:
            while True:
                data = self._take(_CHUNK)
                if not data:
                    return
                yield data

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def iter_lines(self) -> Iterator[bytes]:
        pending = b""
        for chunk in self.iter_chunks():
            pending += chunk
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                if line.strip():
                    yield line
        if pending.strip():
            yield pending

    def close(self) -> None:
        self._sock.close()


class Connection:
    """One request per connection; ``address`` is ``unix://PATH`` or ``tcp://HOST:PORT``."""

    def __init__(self, address: str, tls: object | None = None) -> None:
        self.address = address
        self.tls = tls  # an ssl.SSLContext, created by the caller only when TLS is used

    def _connect(self) -> _socket.socket:
        scheme, _, rest = self.address.partition("://")
        try:
            if scheme == "unix":
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                try:
                    sock.connect(rest)
                except OSError:
                    sock.close()
                    raise
                return sock
            if scheme in ("tcp", "http", "https"):
                import socket

                host, _, port = rest.rstrip("/").rpartition(":")
                sock = socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)))
                if self.tls is not None:
                    sock = self.tls.wrap_socket(sock, server_hostname=host.strip("[]"))  # type: ignore[attr-defined]
                return sock
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        raise ConnectError(f"unsupported host {self.address!r}: use unix:// or tcp://")

    def request(
        self,
        method: str,
        target: str,
        body: bytes | BinaryIO | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        sock = self._connect()
        lines = [
            f"{method} {target} HTTP/1.1",
            "Host: api.moby.localhost",
            "User-Agent: dockyard-cli/0.1.0",
            "Connection: close",
        ]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        try:
            if body is None or isinstance(body, bytes):
                payload = body or b""
                if body is not None or method in ("POST", "PUT"):
                    lines.append(f"Content-Length: {len(payload)}")
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
            else:
                lines.append("Transfer-Encoding: chunked")
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                while chunk := body.read(1 << 20):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sock.sendall(b"0\r\n\r\n")
            return Response(sock, method)
        except OSError as exc:
            sock.close()
            raise ConnectError(str(exc)) from exc


def hijack(
    conn: Connection,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Send an upgrade request (attach, exec start) and read the answer's status and headers.

    On ``101`` (or moby's ``200`` + raw stream) the caller owns ``response.sock`` as a raw
    byte pipe; ``response.buffered`` are the stream bytes that arrived with the headers.
    On an error status the body is read as usual.
    """
    sock = conn._connect()
    payload = body or b""
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: api.moby.localhost",
        "User-Agent: dockyard-cli/0.1.0",
        f"Content-Length: {len(payload)}",
        "Connection: Upgrade",
        "Upgrade: tcp",
    ]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        response = Response(sock, method)
    except OSError as exc:
        sock.close()
        raise ConnectError(str(exc)) from exc
    response.sock = sock  # type: ignore[attr-defined]
    response.buffered = response._buf  # type: ignore[attr-defined]
    return response
