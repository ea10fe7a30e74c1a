"""Cluster and plugin endpoints as a Docker node outside a swarm answers them (asyncio world).

docker-py's network tests tear down with ``leave_swarm(force=True)`` and accept 503, and
``docker service ls`` prints the message; ``GET /plugins`` is ``[]`` as on 20.10.
"""

from __future__ import annotations

from aiohttp import web

from dockyard.api.middleware import json_response
from dockyard.api.routing import Routes
from dockyard.errors import Unavailable

routes = Routes()

NOT_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)


async def not_manager(request: web.Request) -> web.StreamResponse:
    raise Unavailable(NOT_MANAGER)


@routes.post("/swarm/leave")
async def leave(request: web.Request) -> web.StreamResponse:
    raise Unavailable("This node is not part of a swarm")


@routes.get("/plugins")
async def plugins(request: web.Request) -> web.StreamResponse:
    return json_response([])


for _method, _path in [
    ("GET", "/swarm"),
    ("POST", "/swarm/init"),
    ("POST", "/swarm/join"),
    ("POST", "/swarm/update"),
    ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/unlock"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{id}"),
    ("DELETE", "/nodes/{id}"),
    ("POST", "/nodes/{id}/update"),
    ("GET", "/services"),
    ("POST", "/services/create"),
    ("GET", "/services/{id}"),
    ("DELETE", "/services/{id}"),
    ("POST", "/services/{id}/update"),
    ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"),
    ("POST", "/secrets/create"),
    ("GET", "/secrets/{id}"),
    ("DELETE", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"),
    ("POST", "/configs/create"),
    ("GET", "/configs/{id}"),
    ("DELETE", "/configs/{id}"),
    ("POST", "/configs/{id}/update"),
]:
    routes.table.append((_method, _path, not_manager))
