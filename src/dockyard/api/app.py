"""Building the aiohttp application from the services (asyncio world)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dockyard.api.keys import (
    BUILD,
    CONTAINERS,
    DISTRIBUTION,
    EVENTS,
    IMAGES,
    NETWORKS,
    SYSTEM,
    VOLUMES,
)
from dockyard.api.middleware import error_middleware, error_response
from dockyard.api.routes import build, containers, images, networks, swarm, system, volumes
from dockyard.events import EventBus
from dockyard.images.service import ImageService

__all__ = ["Services", "make_app"]

# Large uploads (load, import) are streamed by the handlers, never read whole.
_MAX_JSON_BODY = 64 << 20


@dataclass(frozen=True, slots=True)
class Services:
    images: ImageService
    events: EventBus
    system: Any
    containers: Any = None
    volumes: Any = None
    networks: Any = None
    build: Any = None
    distribution: Any = None


async def _not_found(request: web.Request) -> web.StreamResponse:
    return error_response("page not found", 404)


def make_app(services: Services) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=_MAX_JSON_BODY)
    app[IMAGES] = services.images
    app[EVENTS] = services.events
    app[SYSTEM] = services.system
    if services.containers is not None:
        app[CONTAINERS] = services.containers
    if services.volumes is not None:
        app[VOLUMES] = services.volumes
    if services.networks is not None:
        app[NETWORKS] = services.networks
    if services.build is not None:
        app[BUILD] = services.build
    if services.distribution is not None:
        app[DISTRIBUTION] = services.distribution
    for table in (
        system.routes,
        images.routes,
        containers.routes,
        volumes.routes,
        networks.routes,
        swarm.routes,
        build.routes,
    ):
        table.install(app)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
