"""The restore gate over a real aiohttp server: /_ping at once, the rest after open_gate."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard.api import restoregate


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text=request.path)


def test_ping_answers_at_once_and_the_rest_waits_for_restore():
    async def scenario() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _ok)
        restoregate.install(app)
        async with TestClient(TestServer(app)) as client:
            for path in ("/_ping", "/v1.41/_ping"):
                for method in ("GET", "HEAD"):
                    resp = await asyncio.wait_for(client.request(method, path), 5)
                    assert resp.status == 200
            waiting = asyncio.ensure_future(client.get("/v1.41/containers/json"))
            other = asyncio.ensure_future(client.get("/_ping/extra"))
            await asyncio.sleep(0.3)
            assert not waiting.done() and not other.done()
            restoregate.open_gate(app)
            resp = await asyncio.wait_for(waiting, 5)
            assert resp.status == 200 and await resp.text() == "/v1.41/containers/json"
            assert (await asyncio.wait_for(other, 5)).status == 200
            # once open, nothing waits
            resp = await asyncio.wait_for(client.get("/info"), 5)
            assert resp.status == 200

    asyncio.run(scenario())
