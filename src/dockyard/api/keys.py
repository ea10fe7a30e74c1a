"""Typed application keys under which ``daemon`` hands the services to the routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard.events import EventBus
from dockyard.images.service import ImageService

__all__ = [
    "BUILD",
    "CONTAINERS",
    "DISTRIBUTION",
    "EVENTS",
    "IMAGES",
    "NETWORKS",
    "SYSTEM",
    "VOLUMES",
]

IMAGES = web.AppKey("images", ImageService)
CONTAINERS: web.AppKey[Any] = web.AppKey("containers")
EVENTS = web.AppKey("events", EventBus)
SYSTEM: web.AppKey[Any] = web.AppKey("system")
VOLUMES: web.AppKey[Any] = web.AppKey("volumes")
NETWORKS: web.AppKey[Any] = web.AppKey("networks")
BUILD: web.AppKey[Any] = web.AppKey("build")
DISTRIBUTION: web.AppKey[Any] = web.AppKey("distribution")
