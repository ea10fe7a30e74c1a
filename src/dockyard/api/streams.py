"""Request-body spooling and streamed responses (asyncio world).

Uploads (load, import) arrive chunked and may be large: they are spooled to a private temp
file under the data root before any parsing, so a client that hangs up half-way leaves
nothing but that file, which is removed.  Streamed answers (events, save) flush headers
before the first chunk, as the Go clients expect.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

import msgspec
from aiohttp import web

from dockyard.api.middleware import common_headers

__all__ = ["byte_stream", "close", "json_lines", "spool"]

_CHUNK = 1 << 20
log = logging.getLogger("dockyard.api")


async def spool(request: web.Request, directory: str) -> BinaryIO:
    """Copy the request body to an unlinked temp file and return it rewound."""
    fd, path = tempfile.mkstemp(prefix="upload-", dir=directory)
    os.unlink(path)
    f = os.fdopen(fd, "w+b")
    try:
        buffer = bytearray()
        async for chunk in request.content.iter_chunked(1 << 16):
            buffer += chunk
            if len(buffer) >= _CHUNK:
                await asyncio.to_thread(f.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await asyncio.to_thread(f.write, bytes(buffer))
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


async def start_stream(request: web.Request, content_type: str) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = content_type
    common_headers(response)
    response.enable_chunked_encoding()
    await response.prepare(request)
    return response


async def json_lines(request: web.Request, items: AsyncIterator[object]) -> web.StreamResponse:
    """Send one JSON document per line, flushing each."""
    try:
        response = await start_stream(request, "application/json")
        async for item in items:
            await response.write(msgspec.json.encode(item) + b"\n")
        await response.write_eof()
    finally:
        await close(items)
    return response


async def byte_stream(
    request: web.Request, chunks: AsyncIterator[bytes], content_type: str
) -> web.StreamResponse:
    """Send raw bytes (save, export).  An error once the 200 is out cannot be an error
    answer any more: the connection is cut before the last chunk, so the client sees a
    truncated body ("unexpected EOF", as with dockerd) rather than a whole-looking archive
    or a second response inside the first."""
    try:
        response = await start_stream(request, content_type)
        try:
            async for chunk in chunks:
                await response.write(chunk)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:
            log.error("%s %s: stream cut short: %s", request.method, request.path, exc)
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
    finally:
        await close(chunks)
    return response


async def close(items: AsyncIterator[Any]) -> None:
    """Finish an async generator now (its ``finally`` closes files, unsubscribes), not
    whenever it is garbage-collected: a client that went away ends the stream early."""
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()
