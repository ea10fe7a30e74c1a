"""The distribution API's handlers (asyncio world): decode, one service call, encode.

Repository names hold slashes, so routing cannot be aiohttp's per-segment matching: as
distribution's ``v2/routes.go``, the *raw* path is matched against one pattern per route,
the name being everything before the route's fixed suffix.  The raw path is used so that a
percent-encoded slash or dot stays a ``%``, which the name grammar refuses
(``NAME_INVALID``): no decoded ``..`` or ``/`` can ever reach the storage layer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from dockyard.distribution.registry.auth import MOUNT_DENIED
from dockyard.distribution.registry.bodies import read_limited
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.manifest import OCI_INDEX
from dockyard.distribution.registry.service import BlobStream, Page, Registry, UploadState

__all__ = ["ROUTES", "Route", "match"]

Handler = Callable[[web.Request, Registry, dict[str, str]], Awaitable[web.StreamResponse]]
_READ = 1 << 20


class Route:
    """A path pattern, its handlers by method and the access each method needs."""

    def __init__(self, kind: str, pattern: str, handlers: dict[str, Handler]) -> None:
        self.kind = kind
        self.pattern = re.compile(pattern)
        self.handlers = handlers


# ---- helpers ----


def _n(request: web.Request) -> int | None:
    raw = request.query.get("n")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise RegistryError("PAGINATION_NUMBER_INVALID", f"n must be a number, not {raw!r}")
    return int(raw)


def _link(path: str, page: Page, n: int | None) -> dict[str, str]:
    if page.next_last is None:
        return {}
    query = urlencode({"last": page.next_last, "n": n if n is not None else len(page.items)})
    return {"Link": f'<{path}?{query}>; rel="next"'}


def _upload_headers(state: UploadState) -> dict[str, str]:
    return {
        "Location": f"/v2/{state.name}/blobs/uploads/{state.upload_id}",
        "Range": f"0-{max(state.size - 1, 0)}",
        "Docker-Upload-UUID": state.upload_id,
    }


def _created(name: str, digest: str) -> web.Response:
    return web.Response(
        status=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest},
    )


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.read(_READ):
        yield chunk


def _length(request: web.Request) -> int | None:
    return request.content_length


def _offset(request: web.Request) -> int | None:
    """The start of a chunk's ``Content-Range: <start>-<end>``; None without one."""
    raw = request.headers.get("Content-Range")
    if raw is None:
        return None
    m = re.fullmatch(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?", raw.strip())
    if m is None or int(m[2]) < int(m[1]):
        raise RegistryError("RANGE_INVALID", f"invalid Content-Range {raw[:80]!r}")
    length = request.content_length
    if length is not None and int(m[2]) - int(m[1]) + 1 != length:
        raise RegistryError(
            "RANGE_INVALID", f"Content-Range {raw[:80]!r} does not match Content-Length {length}"
        )
    return int(m[1])


# ---- handlers ----


async def base(request: web.Request, reg: Registry, m: dict[str, str]) -> web.StreamResponse:
    return web.json_response({})


async def catalog(request: web.Request, reg: Registry, m: dict[str, str]) -> web.StreamResponse:
    n = _n(request)
    page = await reg.catalog(n, request.query.get("last"))
    return web.json_response({"repositories": page.items}, headers=_link("/v2/_catalog", page, n))


async def tags(request: web.Request, reg: Registry, m: dict[str, str]) -> web.StreamResponse:
    n = _n(request)
    page = await reg.tags(m["name"], n, request.query.get("last"))
    return web.json_response(
        {"name": m["name"], "tags": page.items},
        headers=_link(f"/v2/{m['name']}/tags/list", page, n),
    )


def _accept(request: web.Request) -> list[str]:
    out = []
    for header in request.headers.getall("Accept", []):
        for part in header.split(","):
            media = part.split(";", 1)[0].strip()
            if media:
                out.append(media)
    return out


async def get_manifest(
    request: web.Request, reg: Registry, m: dict[str, str]
) -> web.StreamResponse:
    revision, data = await reg.manifest(m["name"], m["reference"], _accept(request))
    headers = {
        "Docker-Content-Digest": revision.digest,
        "ETag": f'"{revision.digest}"',
        "Content-Type": revision.media_type,
    }
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return web.Response(headers=headers)
    return web.Response(body=data, headers=headers)


async def put_manifest(
    request: web.Request, reg: Registry, m: dict[str, str]
) -> web.StreamResponse:
    limit = reg.max_manifest_size
    if (request.content_length or 0) > limit:
        raise RegistryError("PAYLOAD_TOO_LARGE", f"a manifest may hold at most {limit} bytes")
    data = await read_limited(request.content, limit)
    digest, parsed = await reg.put_manifest(
        m["name"], m["reference"], data, request.headers.get("Content-Type", "")
    )
    headers = {"Location": f"/v2/{m['name']}/manifests/{digest}", "Docker-Content-Digest": digest}
    if parsed.subject is not None:
        headers["OCI-Subject"] = parsed.subject.digest
    return web.Response(status=201, headers=headers)


async def delete_manifest(
    request: web.Request, reg: Registry, m: dict[str, str]
) -> web.StreamResponse:
    await reg.delete_manifest(m["name"], m["reference"])
    return web.Response(status=202)


async def get_blob(request: web.Request, reg: Registry, m: dict[str, str]) -> web.StreamResponse:
    head = request.method == "HEAD"
    blob = await reg.blob(m["name"], m["digest"], head=head)
    headers = {
        "Docker-Content-Digest": blob.digest,
        "ETag": f'"{blob.digest}"',
        "Cache-Control": "max-age=31536000",
        "Accept-Ranges": "bytes",
    }
    if isinstance(blob, BlobStream):
        return await _stream_blob(request, blob, headers)
    if head:
        headers["Content-Length"] = str(blob.size)
        headers["Content-Type"] = "application/octet-stream"
        return web.Response(headers=headers)
    _check_range(request, blob.size)
    response = web.FileResponse(blob.path, chunk_size=_READ, headers=headers)
    response.content_type = "application/octet-stream"
    return response


def _check_range(request: web.Request, size: int) -> None:
    """A ``Range`` that is malformed or starts past the end: the spec's ``RANGE_INVALID``
    (416, with ``Content-Range: bytes */size``) in a JSON body, not aiohttp's bare one."""
    if "Range" not in request.headers:
        return
    try:
        wanted = request.http_range
    except ValueError:
        wanted = None
    start = 0 if wanted is None else wanted.start
    if wanted is None or (start is not None and start >= size and size > 0):
        raise RegistryError(
            "RANGE_INVALID",
            f"the range {request.headers['Range'][:80]!r} is not within the blob's {size} bytes",
            {"length": size},
        )


async def _stream_blob(
    request: web.Request, blob: BlobStream, headers: dict[str, str]
) -> web.StreamResponse:
    """A blob being fetched by the pull-through cache, sent as it arrives."""
    del headers["Accept-Ranges"]
    headers["Content-Type"] = "application/octet-stream"
    if blob.size is not None:
        headers["Content-Length"] = str(blob.size)
    if blob.chunks is None:
        return web.Response(headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    async for chunk in blob.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_blob(request: web.Request, reg: Registry, m: dict[str, str]) -> web.StreamResponse:
    await reg.delete_blob(m["name"], m["digest"])
    return web.Response(status=202, headers={"Docker-Content-Digest": m["digest"]})


async def start_upload(
    request: web.Request, reg: Registry, m: dict[str, str]
) -> web.StreamResponse:
    name, q = m["name"], request.query
    mount = "mount" in q and not request.get(MOUNT_DENIED, False)
    if mount and await reg.mount(name, q["mount"], q.get("from", "")):
        return _created(name, q["mount"])
    # No mount, or the blob is not in "from": an upload session instead, as the spec asks.
    state = await reg.start_upload(name)
    if "digest" in q:
        # Single POST: the whole blob in this request.
        try:
            await reg.append(name, state.upload_id, _body(request), None, _length(request))
            await reg.commit(name, state.upload_id, q["digest"])
        except BaseException:
            await _drop(reg, name, state.upload_id)
            raise
        return _created(name, q["digest"])
    return web.Response(status=202, headers=_upload_headers(state))


async def _drop(reg: Registry, name: str, upload_id: str) -> None:
    try:
        await reg.cancel(name, upload_id)
    except RegistryError:
        pass  # already removed by the failed commit


async def upload_status(
    request: web.Request, reg: Registry, m: dict[str, str]
) -> web.StreamResponse:
    state = await reg.upload_status(m["name"], m["upload_id"])
    return web.Response(status=204, headers=_upload_headers(state))


async def patch_upload(
    request: web.Request, reg: Registry, m: dict[str, str]
) -> web.StreamResponse:
    state = await reg.append(
        m["name"], m["upload_id"], _body(request), _offset(request), _length(request)
    )
    return web.Response(status=202, headers=_upload_headers(state))


async def put_upload(request: web.Request, reg: Registry, m: dict[str, str]) -> web.StreamResponse:
    name, upload_id = m["name"], m["upload_id"]
    digest = request.query.get("digest")
    if not digest:
        raise RegistryError("DIGEST_INVALID", "the final PUT of an upload needs ?digest=")
    if request.content_length or request.headers.get("Transfer-Encoding"):
        await reg.append(name, upload_id, _body(request), _offset(request), _length(request))
    await reg.commit(name, upload_id, digest)
    return _created(name, digest)


async def cancel_upload(
    request: web.Request, reg: Registry, m: dict[str, str]
) -> web.StreamResponse:
    await reg.cancel(m["name"], m["upload_id"])
    return web.Response(status=204)


async def referrers(request: web.Request, reg: Registry, m: dict[str, str]) -> web.StreamResponse:
    artifact_type = request.query.get("artifactType")
    found = await reg.referrers(m["name"], m["digest"], artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
    return web.json_response(body, headers=headers, content_type=OCI_INDEX)


_NAME = r"(?P<name>[^?]+?)"
ROUTES = [
    Route("base", r"/v2/?", {"GET": base}),
    Route("catalog", r"/v2/_catalog", {"GET": catalog}),
    Route("tags", rf"/v2/{_NAME}/tags/list", {"GET": tags}),
    Route(
        "manifest",
        rf"/v2/{_NAME}/manifests/(?P<reference>[^/]+)",
        {"GET": get_manifest, "HEAD": get_manifest, "PUT": put_manifest, "DELETE": delete_manifest},
    ),
    Route("uploads", rf"/v2/{_NAME}/blobs/uploads/?", {"POST": start_upload}),
    Route(
        "upload",
        rf"/v2/{_NAME}/blobs/uploads/(?P<upload_id>[^/]+)",
        {
            "GET": upload_status,
            "PATCH": patch_upload,
            "PUT": put_upload,
            "DELETE": cancel_upload,
        },
    ),
    Route(
        "blob",
        rf"/v2/{_NAME}/blobs/(?P<digest>[^/]+)",
        {"GET": get_blob, "HEAD": get_blob, "DELETE": delete_blob},
    ),
    Route("referrers", rf"/v2/{_NAME}/referrers/(?P<digest>[^/]+)", {"GET": referrers}),
]


def match(raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """The route and path parameters for a raw (undecoded) path, query removed."""
    for route in ROUTES:
        found = route.pattern.fullmatch(raw_path)
        if found is not None:
            return route, {k: v for k, v in found.groupdict().items() if v is not None}
    return None
