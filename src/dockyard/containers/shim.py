"""The daemon's asyncio side of the supervisor socket (asyncio world).

One short connection per request; ``wait`` keeps its connection open until the container
exits; ``attach`` turns its connection into the framed stream of ``supervisor.protocol``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from dockyard.errors import Conflict, Internal

__all__ = ["Shim", "ShimError"]


class ShimError(Conflict):
    """The supervisor refused a request (e.g. kill of an exited process)."""


class Shim:
    def __init__(self, sock_path: str) -> None:
        self.sock_path = sock_path

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_unix_connection(self.sock_path, limit=1 << 20)
        except OSError as exc:
            raise Internal(
                f"the container supervisor is not reachable at {self.sock_path}: {exc}"
            ) from exc

    @staticmethod
    async def _reply(reader: asyncio.StreamReader) -> dict[str, Any]:
        line = await reader.readline()
        if not line:
            raise Internal("the container supervisor closed the connection")
        reply = json.loads(line)
        if "error" in reply:
            raise ShimError(reply["error"])
        return reply

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        reader, writer = await self._open()
        try:
            writer.write(json.dumps({"op": op, **args}).encode() + b"\n")
            return await self._reply(reader)
        finally:
            writer.close()

    async def stream(
        self, op: str, **args: Any
    ) -> tuple[dict[str, Any], asyncio.StreamReader, asyncio.StreamWriter]:
        """Send ``op`` (start with attach, or attach) and keep the connection as a stream."""
        reader, writer = await self._open()
        try:
            writer.write(json.dumps({"op": op, **args}).encode() + b"\n")
            reply = await self._reply(reader)
            if op == "start":
                reply.update(await self._reply(reader))  # the attach acknowledgement
        except BaseException:
            writer.close()
            raise
        return reply, reader, writer
