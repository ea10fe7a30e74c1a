"""A save's lease is given back exactly once however its stream ends: read to the end,
closed half-way (client gone), or never read at all (the response failed to start)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dockyard.images.transfer import _Released


async def _chunks() -> AsyncIterator[bytes]:
    for part in (b"a", b"b", b"c"):
        yield part


def _run(scenario) -> int:
    released: list[int] = []

    async def main() -> None:
        stream = _Released(_chunks(), lambda: released.append(1))
        await scenario(stream)
        await stream.aclose()  # byte_stream always closes: a second release must not count

    asyncio.run(main())
    return len(released)


def test_released_once_when_read_to_the_end():
    async def read_all(stream: _Released) -> None:
        assert [c async for c in stream] == [b"a", b"b", b"c"]

    assert _run(read_all) == 1


def test_released_once_when_closed_half_way():
    async def read_one(stream: _Released) -> None:
        assert await stream.__anext__() == b"a"

    assert _run(read_one) == 1


def test_released_once_when_never_read():
    async def nothing(stream: _Released) -> None:
        return None

    assert _run(nothing) == 1
