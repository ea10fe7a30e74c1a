"""Whole HTTP bodies read within a size limit (asyncio world)."""

from __future__ import annotations

from aiohttp import StreamReader

from dockyard.distribution.registry.errors import RegistryError

__all__ = ["read_limited"]

_READ = 1 << 20


async def read_limited(stream: StreamReader, limit: int) -> bytes:
    """The whole body, or ``PAYLOAD_TOO_LARGE`` as soon as it passes ``limit`` bytes
    (``StreamReader.read(n)`` returns what has arrived so far, not ``n`` bytes)."""
    parts: list[bytes] = []
    size = 0
    while chunk := await stream.read(_READ):
        size += len(chunk)
        if size > limit:
            raise RegistryError("PAYLOAD_TOO_LARGE", f"a manifest may hold at most {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
