"""Network endpoints (asyncio world): list, create, inspect, remove, prune, connect, disconnect."""

from __future__ import annotations

from aiohttp import web

from dockyard.api import query
from dockyard.api.keys import CONTAINERS, NETWORKS
from dockyard.api.middleware import json_response
from dockyard.api.routing import Routes
from dockyard.api.version import NETWORK_FIELDS_SINCE, drop_newer
from dockyard.errors import InvalidParameter
from dockyard.network.service import LIST_FILTERS, PRUNE_FILTERS

routes = Routes()


@routes.get("/networks")
async def list_networks(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), LIST_FILTERS)
    result = request.app[NETWORKS].list(filters)
    for view in result:
        drop_newer(view, NETWORK_FIELDS_SINCE, request["version"])
    return json_response(result)


@routes.post("/networks/create")
async def create(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    return json_response(await request.app[NETWORKS].create(body), status=201)


@routes.post("/networks/prune")
async def prune(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), PRUNE_FILTERS)
    return json_response(await request.app[NETWORKS].prune(filters))


@routes.get("/networks/{name}")
async def inspect(request: web.Request) -> web.StreamResponse:
    view = request.app[NETWORKS].inspect(request.match_info["name"])
    drop_newer(view, NETWORK_FIELDS_SINCE, request["version"])
    return json_response(view)


@routes.delete("/networks/{name}")
async def remove(request: web.Request) -> web.StreamResponse:
    await request.app[NETWORKS].remove(request.match_info["name"])
    return web.Response(status=204)


def _container(body: dict) -> str:
    name = body.get("Container")
    if not isinstance(name, str) or not name:
        raise InvalidParameter("Container must name a container")
    return name


@routes.post("/networks/{name}/connect")
async def connect(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    await request.app[CONTAINERS].connect(
        _container(body), request.match_info["name"], body.get("EndpointConfig")
    )
    return web.Response(status=200)


@routes.post("/networks/{name}/disconnect")
async def disconnect(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    force = body.get("Force", False)
    if not isinstance(force, bool):
        raise InvalidParameter("Force must be a boolean")
    await request.app[CONTAINERS].disconnect(_container(body), request.match_info["name"], force)
    return web.Response(status=200)
