"""A small synchronous Engine API client (used by the CLI; keep imports cheap).
It must not import daemon-side code, nor anything heavy: CLI start-up is benchmarked.

Host selection as the docker CLI does it: ``-H``, then ``DOCKYARD_HOST``, then
``DOCKER_HOST``, then ``unix:///run/dockyard.sock``; TLS from ``--tls*`` or
``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``.
"""

from __future__ import annotations

import os

from dockyard.client.errors import APIError, from_response
from dockyard.client.http import ConnectError, Connection, Response

TYPE_CHECKING = False  # typing, collections.abc and urllib cost milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO

__all__ = ["APIError", "Client", "ConnectError", "Response", "TLSOptions", "default_host"]

API_PREFIX = "/v1.41"
DEFAULT_HOST = "unix:///run/dockyard.sock"


def default_host() -> str:
    return os.environ.get("DOCKYARD_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class TLSOptions:
    def __init__(self, verify: bool, cacert: str, cert: str, key: str) -> None:
        self.verify, self.cacert, self.cert, self.key = verify, cacert, cert, key

    def context(self) -> object:
        import ssl  # only when TLS is used: ssl costs ~10 ms to import

        ctx = ssl.create_default_context(
            cafile=self.cacert if self.verify and self.cacert else None
        )
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert and self.key:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encoding as urllib.parse.quote does it (which costs 2 ms to import)."""
    allowed = _SAFE | frozenset(safe.encode())
    return "".join(chr(b) if b in allowed else f"%{b:02X}" for b in text.encode("utf-8"))


def urlencode(pairs: list[tuple[str, object]]) -> str:
    return "&".join(f"{quote(str(k))}={quote(str(v))}" for k, v in pairs)


def quote_name(name: str) -> str:
    """Image names go into paths unescaped apart from what HTTP forbids (as the Go CLI)."""
    return quote(name, safe="/:@")


class Client:
    def __init__(self, host: str | None = None, tls: TLSOptions | None = None) -> None:
        self.host = host or default_host()
        if "://" not in self.host:
            self.host = "tcp://" + self.host
        self._conn = Connection(self.host, tls.context() if tls else None)

    def raw(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        body: bytes | BinaryIO | None = None,
        headers: dict[str, str] | None = None,
        versioned: bool = True,
    ) -> Response:
        target = (API_PREFIX if versioned else "") + path
        if params:
            items = params.items() if isinstance(params, dict) else params
            kept = [(k, v) for k, v in items if v is not None]  # type: ignore[union-attr]
            if kept:
                target += "?" + urlencode(kept)
        response = self._conn.request(method, target, body, headers)
        if response.status >= 400:
            error = from_response(response.status, response.read())
            response.close()
            raise error
        return response

    def json(self, method: str, path: str, params: Any = None, body: Any = None, **kw: Any) -> Any:
        from dockyard.client import jsonfast as json

        data = None
        headers = kw.pop("headers", {})
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        response = self.raw(method, path, params, data, headers, **kw)
        try:
            text = response.read()
        finally:
            response.close()
        return json.loads(text) if text.strip() else None

    def stream_json(
        self,
        method: str,
        path: str,
        params: Any = None,
        body: bytes | BinaryIO | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[Any]:
        """JSON lines of a streamed answer (events, import, load, progress)."""
        from dockyard.client import jsonfast as json

        response = self.raw(method, path, params, body, headers)
        try:
            for line in response.iter_lines():
                yield json.loads(line)
        finally:
            response.close()
