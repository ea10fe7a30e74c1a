"""The build's output stream in stage order while stages run at once (asyncio world).

The legacy builder prints one stage after the other.  Stages that do not depend on each
other run concurrently here, so each stage writes into its own buffer and the printer
forwards the buffers in stage order: the stage being printed streams live, later ones are
held until their turn.  Messages are the JSON objects of moby's stream (``{"stream": ..}``,
``{"aux": ..}``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Emit", "Printer", "StageLog"]

Emit = Callable[[dict[str, Any]], Awaitable[None]]


class StageLog:
    """One stage's messages; ``close`` marks its end."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.closed = False

    async def text(self, text: str) -> None:
        await self.queue.put({"stream": text})

    async def raw(self, data: bytes) -> None:
        await self.queue.put({"stream": data.decode("utf-8", "replace")})

    async def aux(self, value: dict[str, Any]) -> None:
        await self.queue.put({"aux": value})

    async def message(self, message: dict[str, Any]) -> None:
        """A message as is (a pull's progress)."""
        await self.queue.put(message)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class Printer:
    """Forwards the logs of stages in order to ``emit``."""

    def __init__(self, emit: Emit, logs: list[StageLog]) -> None:
        self.emit = emit
        self.logs = logs

    async def run(self) -> None:
        for log in self.logs:
            while (item := await log.queue.get()) is not None:
                await self.emit(item)

    async def flush(self) -> None:
        """After a failure: everything already buffered, in order, without waiting."""
        for log in self.logs:
            while not log.queue.empty():
                item = log.queue.get_nowait()
                if item is not None:
                    await self.emit(item)
