"""Fire-and-forget tasks that are not collected mid-flight (asyncio world).

The event loop keeps only weak references to tasks, and a stream reader is reachable from
its transport only through a weak reference too, so a task nobody holds that waits on a
stream read can be garbage-collected while pending ("Task was destroyed but it is
pending!"): an exec's exit was never recorded that way.  ``spawn`` holds each task until
it is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["spawn"]

_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    task = asyncio.create_task(coro)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task
