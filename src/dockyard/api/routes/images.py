"""Image endpoints (asyncio world): list, inspect, history, tag, remove, prune, import,
save, load, and the registry ones (pull, push, search, distribution inspect).  Image names hold unescaped ``/`` and ``:``, hence the greedy ``{name:.+}``;
fixed paths are declared first so they win."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from aiohttp import web

from dockyard.api import query, shapes
from dockyard.api.keys import DISTRIBUTION, IMAGES
from dockyard.api.middleware import json_response, stream_error_message
from dockyard.api.routing import Routes
from dockyard.api.streams import byte_stream, json_lines, spool, start_stream
from dockyard.api.version import IMAGE_SHARED_SIZE
from dockyard.distribution.progress import Message, encode
from dockyard.errors import DockyardError, InvalidParameter, disk_full
from dockyard.images.service import IMAGE_LIST_FILTERS, PRUNE_FILTERS

routes = Routes()


@routes.get("/images/json")
async def list_images(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), IMAGE_LIST_FILTERS)
    if "filter" in request.query:  # pre-1.25 spelling of reference=
        filters.setdefault("reference", []).append(request.query["filter"])
    all_ = query.boolean(request.query, "all")
    v = request["version"]
    shared = v >= IMAGE_SHARED_SIZE and query.boolean(request.query, "shared-size")
    images = request.app[IMAGES].list(all_, filters, shared)
    return json_response([shapes.image_summary(image, v) for image in images])


@routes.post("/images/create")
async def create_image(request: web.Request) -> web.StreamResponse:
    q = request.query
    if "fromImage" in q:
        messages = await request.app[DISTRIBUTION].pull(
            q["fromImage"], q.get("tag", ""), q.get("platform", ""), _auth(request)
        )
        return await _progress(request, messages)
    if q.get("fromSrc") != "-":
        raise InvalidParameter(
            "fromSrc must be '-' (the tar in the request body); URLs are not supported"
        )
    service = request.app[IMAGES]
    try:
        body = await spool(request, service.tmpdir)
    except OSError as exc:
        # the upload did not fit on the disk: dockerd has answered 200 by then and says so
        # in the stream, as for any other failed load
        if disk_full(exc, "") is None:
            raise
        return await _stream_error(request, stream_error_message(request, exc))
    with body:
        image_id = await service.import_tar(
            body,
            q.get("repo", ""),
            q.get("tag", ""),
            q.getall("changes", []),
            q.get("message", ""),
            q.get("platform", ""),
        )

    async def lines() -> AsyncIterator[object]:
        yield {"status": image_id}

    return await json_lines(request, lines())


@routes.get("/images/get")
async def save_many(request: web.Request) -> web.StreamResponse:
    names = request.query.getall("names", [])
    if not names:
        raise InvalidParameter("no image names given: add one or more names= parameters")
    platform = shapes.platform(request.query.get("platform"), "save", request["version"])
    chunks = await request.app[IMAGES].save(names, platform)
    return await byte_stream(request, chunks, "application/x-tar")


@routes.post("/images/load")
async def load(request: web.Request) -> web.StreamResponse:
    service = request.app[IMAGES]
    try:
        # unpacked as it arrives: the archive is never written to disk whole first
        messages = await service.load(request.content.iter_chunked(1 << 20))
    except DockyardError as exc:
        # moby's postImagesLoad has sent 200 before it reads the archive: a bad one is
        # the stream's only line, and `docker load` prints it and exits 1
        return await _stream_error(request, stream_error_message(request, exc))
    except OSError as exc:
        # the archive did not fit on the disk: dockerd says so in the stream too
        if disk_full(exc, "") is None:
            raise
        return await _stream_error(request, stream_error_message(request, exc))

    async def lines() -> AsyncIterator[object]:
        for message in messages:
            yield {"stream": message + "\n"}

    return await json_lines(request, lines())


async def _stream_error(request: web.Request, message: str) -> web.StreamResponse:
    """An error after a 200, as moby's streamformatter.FormatError writes it (CRLF)."""
    response = await start_stream(request, "application/json")
    error = {"errorDetail": {"message": message}, "error": message}
    await response.write(msgspec.json.encode(error) + b"\r\n")
    await response.write_eof()
    return response


@routes.post("/images/prune")
async def prune(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), PRUNE_FILTERS)
    return json_response(await request.app[IMAGES].prune(filters))


@routes.get("/images/search")
async def search(request: web.Request) -> web.StreamResponse:
    q = request.query
    filters = query.parse_filters(q.get("filters"), ("is-automated", "is-official", "stars"))
    results = await request.app[DISTRIBUTION].search(
        q.get("term", ""), query.integer(q, "limit"), filters, _auth(request)
    )
    return json_response(results)


@routes.get("/distribution/{name:.+}/json")
async def distribution_inspect(request: web.Request) -> web.StreamResponse:
    info = await request.app[DISTRIBUTION].inspect(request.match_info["name"], _auth(request))
    return json_response(info)


@routes.get("/images/{name:.+}/json")
async def inspect(request: web.Request) -> web.StreamResponse:
    v = request["version"]
    platform = shapes.platform(request.query.get("platform"), "inspect", v)
    view = request.app[IMAGES].inspect(request.match_info["name"], platform)
    return json_response(shapes.image_inspect(view, v))


@routes.get("/images/{name:.+}/history")
async def history(request: web.Request) -> web.StreamResponse:
    platform = shapes.platform(request.query.get("platform"), "history", request["version"])
    return json_response(request.app[IMAGES].history(request.match_info["name"], platform))


@routes.get("/images/{name:.+}/get")
async def save_one(request: web.Request) -> web.StreamResponse:
    platform = shapes.platform(request.query.get("platform"), "save", request["version"])
    chunks = await request.app[IMAGES].save([request.match_info["name"]], platform)
    return await byte_stream(request, chunks, "application/x-tar")


@routes.post("/images/{name:.+}/tag")
async def tag(request: web.Request) -> web.StreamResponse:
    repo = request.query.get("repo", "")
    await request.app[IMAGES].tag(request.match_info["name"], repo, request.query.get("tag", ""))
    return web.Response(status=201)


@routes.post("/images/{name:.+}/push")
async def push(request: web.Request) -> web.StreamResponse:
    auth = _auth(request)
    body = await request.read() if auth is None else None  # pre-1.? clients: auth in body
    messages = await request.app[DISTRIBUTION].push(
        request.match_info["name"], request.query.get("tag", ""), auth, body
    )
    return await _progress(request, messages)


@routes.delete("/images/{name:.+}")
async def remove(request: web.Request) -> web.StreamResponse:
    q = request.query
    result = await request.app[IMAGES].remove(
        request.match_info["name"], query.boolean(q, "force"), query.boolean(q, "noprune")
    )
    return json_response(result)


def _auth(request: web.Request) -> str | None:
    return request.headers.get("X-Registry-Auth")


async def _progress(request: web.Request, messages: AsyncIterator[Message]) -> web.StreamResponse:
    """A pull or push stream, byte for byte as dockerd writes it (one line per message)."""
    response = await start_stream(request, "application/json")
    async for message in messages:
        await response.write(encode(message))
    await response.write_eof()
    return response
