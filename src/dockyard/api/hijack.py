"""Hijacked connections for attach and exec (asyncio world).

ENGINE-API.md §4 and §11: answer ``101 UPGRADED`` (or 200 when the client did not ask to
upgrade, as moby does), then take the socket from aiohttp by swapping in a protocol of our
own.  ``eof_received`` returns True: the docker CLI half-closes its side as soon as it has
no stdin to send, and output must keep flowing after that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from dockyard.api.middleware import common_headers, status_of
from dockyard.errors import DockyardError

__all__ = ["Hijacked", "hijack", "refusal"]

_HIGH_WATER = 1 << 20


class Hijacked(asyncio.Protocol):
    def __init__(
        self,
        original: asyncio.BaseProtocol,
        transport: asyncio.Transport,
        on_data: Callable[[bytes], None] | None,
        on_eof: Callable[[], None] | None,
    ) -> None:
        self.original = original
        self.transport = transport
        self.on_data = on_data
        self.on_eof = on_eof
        self.lost = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        if self.on_data is not None:
            self.on_data(data)

    def eof_received(self) -> bool:
        if self.on_eof is not None:
            self.on_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        self.original.connection_lost(exc)

    async def write(self, data: bytes) -> None:
        if self.lost.is_set():
            raise ConnectionResetError("the client went away")
        self.transport.write(data)
        while self.transport.get_write_buffer_size() > _HIGH_WATER and not self.lost.is_set():
            await asyncio.sleep(0.01)

    def close(self) -> None:
        if not self.lost.is_set():
            try:
                self.transport.write_eof()
            except (OSError, RuntimeError, NotImplementedError):
                pass
            self.transport.close()


async def hijack(
    request: web.Request,
    on_data: Callable[[bytes], None] | None = None,
    on_eof: Callable[[], None] | None = None,
    content_type: str = "application/vnd.docker.raw-stream",
) -> tuple[web.StreamResponse, Hijacked]:
    upgrade = "upgrade" in request.headers.get("Connection", "").lower()
    response = web.StreamResponse(
        status=101 if upgrade else 200, reason="UPGRADED" if upgrade else "OK"
    )
    response.headers["Content-Type"] = content_type
    if upgrade:
        response.headers["Connection"] = "Upgrade"
        response.headers["Upgrade"] = "tcp"
    common_headers(response)
    await response.prepare(request)
    transport = request.transport
    assert transport is not None
    original = transport.get_protocol()
    proto = Hijacked(original, transport, on_data, on_eof)  # type: ignore[arg-type]
    transport.set_protocol(proto)
    return response, proto


def refusal(exc: DockyardError) -> web.Response:
    """An attach refused before the upgrade, written as moby writes it: the message as
    raw-stream text, not JSON (clients that read a JSON ``message`` fall back to the text)."""
    return web.Response(
        status=status_of(exc),
        body=exc.message.encode() + b"\r\n",
        content_type="application/vnd.docker.raw-stream",
    )
