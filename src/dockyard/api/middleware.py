"""Version negotiation, common headers and the one error → status mapping (asyncio world).

Every dockyard error class maps to Docker's status here and nowhere else (STYLE.md §6); the
body is ``{"message": ...}`` as moby writes it, 304 has no body.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from dockyard import errors
from dockyard.api.keys import SYSTEM
from dockyard.api.version import DEFAULT_VERSION, format_version, negotiate

__all__ = ["STATUS", "common_headers", "error_middleware", "error_response", "json_response"]

log = logging.getLogger("dockyard.api")

STATUS: dict[type[errors.DockyardError], int] = {
    errors.InvalidParameter: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.NotModified: 304,
    errors.NotImplemented: 501,
    errors.Unavailable: 503,
    errors.Internal: 500,
}

SERVER = "Dockyard/0.1.0 (linux)"


def common_headers(response: web.StreamResponse) -> None:
    response.headers["Api-Version"] = format_version(DEFAULT_VERSION)
    response.headers["Docker-Experimental"] = "false"
    response.headers["Ostype"] = "linux"
    response.headers["Server"] = SERVER


def status_of(exc: errors.DockyardError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def json_response(data: object, status: int = 200) -> web.Response:
    """Encode like Go's json encoder: compact, with a trailing newline."""
    body = msgspec.json.encode(data) + b"\n"
    return web.Response(body=body, status=status, content_type="application/json")


def error_response(message: str, status: int) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status)


def _data_root(request: web.Request) -> str:
    """Named in disk-full errors; the system service holds the daemon's config."""
    system = request.app.get(SYSTEM)
    return str(getattr(getattr(system, "config", None), "data_root", "") or "(data root)")


def stream_error_message(request: web.Request, exc: BaseException) -> str:
    """The message of an error met after a stream's 200 (load, build): a full disk says so
    as the error answers before a stream do, anything else keeps its own message."""
    full = errors.disk_full(exc, _data_root(request))
    if full is not None:
        return full.message
    if isinstance(exc, errors.DockyardError):
        return exc.message
    return f"internal error: {exc}"


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        request["version"] = negotiate(request.match_info.get("version"))
        response = await handler(request)
    except errors.DockyardError as exc:
        full = errors.disk_full(exc, _data_root(request))
        if full is not None:
            log.warning("%s %s: %s", request.method, request.path, full.message)
            exc = full
        response = error_response(exc.message, status_of(exc))
    except web.HTTPNotFound:
        response = error_response("page not found", 404)
    except web.HTTPMethodNotAllowed:
        response = error_response("page not found", 404)
    except web.HTTPException as exc:
        response = error_response(exc.reason or "error", exc.status)
    except ConnectionError as exc:
        if not _client_gone(request):
            log.exception("internal error on %s %s", request.method, request.path)
            response = error_response(f"internal error: {exc}", 500)
        else:
            # A client hanging up mid-stream is normal (compose does it on every run).
            log.debug("client went away during %s %s: %s", request.method, request.path, exc)
            return web.Response(status=499)  # never sent: the connection is gone
    except Exception as exc:
        full = errors.disk_full(exc, _data_root(request))
        if full is not None:
            log.warning("%s %s: %s", request.method, request.path, full.message)
            response = error_response(full.message, status_of(full))
        else:
            log.exception("internal error on %s %s", request.method, request.path)
            response = error_response(f"internal error: {exc}", 500)
    if not response.prepared:
        common_headers(response)
    return response
