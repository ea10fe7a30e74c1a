"""System endpoints: ping, version, info, events, df, auth (asyncio world)."""

from __future__ import annotations

from aiohttp import web

from dockyard.api import query, shapes
from dockyard.api.keys import DISTRIBUTION, EVENTS, SYSTEM
from dockyard.api.middleware import common_headers, json_response
from dockyard.api.routing import Routes
from dockyard.api.streams import json_lines
from dockyard.errors import InvalidParameter

routes = Routes()

EVENT_FILTERS = (
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
)


def _ping_response(body: bytes | None) -> web.Response:
    response = web.Response(body=body or b"", content_type="text/plain", charset="utf-8")
    response.headers["Cache-Control"] = "no-cache, no-store, must-revalidate"
    response.headers["Pragma"] = "no-cache"
    response.headers["Builder-Version"] = "1"
    response.headers["Swarm"] = "inactive"
    common_headers(response)
    return response


@routes.get("/_ping")
async def ping(request: web.Request) -> web.StreamResponse:
    return _ping_response(b"OK")


@routes.head("/_ping")
async def ping_head(request: web.Request) -> web.StreamResponse:
    return _ping_response(None)


@routes.get("/version")
async def version(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[SYSTEM].version())


@routes.get("/info")
async def info(request: web.Request) -> web.StreamResponse:
    return json_response(shapes.info(await request.app[SYSTEM].info(), request["version"]))


@routes.get("/system/df")
async def disk_usage(request: web.Request) -> web.StreamResponse:
    v = request["version"]
    types = shapes.df_types(request.query.getall("type", []), v)
    return json_response(shapes.disk_usage(await request.app[SYSTEM].disk_usage(types), v))


@routes.post("/auth")
async def auth(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    return json_response(await request.app[DISTRIBUTION].login(body))


def _timestamp_ns(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(float(raw) * 1_000_000_000)
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {raw!r} (give unix seconds)") from None


@routes.get("/events")
async def events(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), EVENT_FILTERS)
    since = _timestamp_ns(request.query.get("since"), "since")
    until = _timestamp_ns(request.query.get("until"), "until")
    stream = request.app[EVENTS].subscribe(since, until, filters)
    return await json_lines(request, stream)
