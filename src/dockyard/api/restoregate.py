"""The restore gate (asyncio world): after a start or restart, requests wait until the
daemon has restored its state, so the API answers only what is true.

The listeners open before restore (a daemon that cannot listen must fail before it adopts
anything), so for a moment the stores still hold what was true when the previous daemon
died: containers that exited meanwhile read "running", DNS names and port forwards are not
served yet.  ``/_ping`` answers at once (clients and orchestrators probe liveness with it);
every other request waits for ``open_gate``.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

__all__ = ["RESTORED", "install", "open_gate"]

RESTORED = web.AppKey("restored", asyncio.Event)

_UNGATED = re.compile(r"^(/v[0-9.]+)?/_ping/?$")


@web.middleware
async def _gate(request: web.Request, handler):  # type: ignore[no-untyped-def]
    restored = request.app[RESTORED]
    if not restored.is_set() and not _UNGATED.match(request.path):
        await restored.wait()
    return await handler(request)


def install(app: web.Application) -> None:
    """Put the gate first in ``app``'s middlewares (before the app is frozen); closed."""
    app[RESTORED] = asyncio.Event()
    app.middlewares.insert(0, _gate)


def open_gate(app: web.Application) -> None:
    """Restore is done: release waiting requests and let every later one through."""
    app[RESTORED].set()
