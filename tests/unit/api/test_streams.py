"""A raw byte stream (save, export) that fails after its 200 is cut short: the client sees
a truncated body, never a clean end nor a second response written inside the first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard.api.middleware import error_middleware
from dockyard.api.streams import byte_stream


async def _failing() -> AsyncIterator[bytes]:
    yield b"x" * 1000
    raise OSError("layer file is gone")


async def _fine() -> AsyncIterator[bytes]:
    yield b"abc"


async def _handler(request: web.Request) -> web.StreamResponse:
    chunks = _failing() if request.path == "/fail" else _fine()
    return await byte_stream(request, chunks, "application/x-tar")


# the daemon's middleware stores the API version under a str key, which aiohttp warns about
@pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
def test_error_after_the_first_byte_truncates_the_body():
    async def scenario() -> None:
        app = web.Application(middlewares=[error_middleware])  # as the daemon's
        app.router.add_get("/{tail:.*}", _handler)
        async with TestClient(TestServer(app)) as client:
            resp = await asyncio.wait_for(client.get("/fail"), 5)
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await asyncio.wait_for(resp.read(), 5)
            # the server keeps serving
            resp = await asyncio.wait_for(client.get("/ok"), 5)
            assert resp.status == 200 and await resp.read() == b"abc"

    asyncio.run(scenario())
