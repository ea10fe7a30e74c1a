"""Volume endpoints (asyncio world): list, create, inspect, remove, prune."""

from __future__ import annotations

from aiohttp import web

from dockyard.api import query
from dockyard.api.keys import VOLUMES
from dockyard.api.middleware import json_response
from dockyard.api.routing import Routes
from dockyard.api.version import VOLUME_PRUNE_KEEPS_NAMED
from dockyard.errors import InvalidParameter
from dockyard.volumes.service import LIST_FILTERS, PRUNE_FILTERS

routes = Routes()

_CREATE_FIELDS = {"Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"}


@routes.get("/volumes")
async def list_volumes(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), LIST_FILTERS)
    return json_response(request.app[VOLUMES].list(filters))


@routes.post("/volumes/create")
async def create(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    unknown = set(body) - _CREATE_FIELDS
    if unknown:
        raise InvalidParameter(f"unknown field {sorted(unknown)[0]!r} in the volume create request")
    if body.get("ClusterVolumeSpec"):
        raise InvalidParameter("cluster volumes need swarm mode, which this node is not in")
    name = body.get("Name") or None
    if name is not None and not isinstance(name, str):
        raise InvalidParameter("Name must be a string")
    driver = body.get("Driver") or None
    if driver is not None and not isinstance(driver, str):
        raise InvalidParameter("Driver must be a string")
    result = await request.app[VOLUMES].create(
        name, driver, body.get("DriverOpts"), body.get("Labels")
    )
    return json_response(result, status=201)


@routes.post("/volumes/prune")
async def prune(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), PRUNE_FILTERS)
    if request["version"] < VOLUME_PRUNE_KEEPS_NAMED:
        filters["all"] = ["true"]
    return json_response(await request.app[VOLUMES].prune(filters))


@routes.get("/volumes/{name}")
async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[VOLUMES].inspect(request.match_info["name"]))


@routes.delete("/volumes/{name}")
async def remove(request: web.Request) -> web.StreamResponse:
    await request.app[VOLUMES].remove(
        request.match_info["name"], query.boolean(request.query, "force")
    )
    return web.Response(status=204)
