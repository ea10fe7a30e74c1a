"""The registry's aiohttp application (asyncio world): routing, errors, auth, logs, metrics.

One catch-all route hands every request to ``dispatch``, which matches the raw path
against ``routes.ROUTES`` (names hold slashes), asks the authorizer for the access the
route and method need, and calls the handler.  Middlewares, outermost first: access log
and metrics (every request, errors included), then the spec's error body and the
``Docker-Distribution-API-Version`` header on every answer.

Background work, in ``cleanup_ctx``: expiring idle upload sessions and, in the primary
worker only, the periodic online GC.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from dockyard.distribution.registry import gc, routes
from dockyard.distribution.registry.auth import ROUTE, Access, Authorizer, Challenge, required
from dockyard.distribution.registry.config import Config
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.filesystem import FilesystemStorage
from dockyard.distribution.registry.metrics import Metrics
from dockyard.distribution.registry.proxy import Proxy
from dockyard.distribution.registry.service import Registry

__all__ = ["REGISTRY", "make_app"]

log = logging.getLogger(__name__)

REGISTRY: web.AppKey[Registry] = web.AppKey("registry", Registry)
AUTHORIZER: web.AppKey[Authorizer] = web.AppKey("authorizer", Authorizer)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
API_VERSION = "registry/2.0"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(request: web.Request, exc: RegistryError) -> web.Response:
    entry: dict[str, object] = {"code": exc.code, "message": exc.message}
    if exc.detail is not None:
        entry["detail"] = exc.detail
    headers = {}
    if isinstance(exc, Challenge):
        headers["WWW-Authenticate"] = exc.challenge
    if exc.code == "RANGE_INVALID" and isinstance(exc.detail, dict) and "size" in exc.detail:
        size = int(exc.detail["size"])  # type: ignore[call-overload]
        headers["Range"] = f"0-{max(size - 1, 0)}"  # an upload session's received bytes
    if exc.code == "RANGE_INVALID" and isinstance(exc.detail, dict) and "length" in exc.detail:
        headers["Content-Range"] = f"bytes */{exc.detail['length']}"  # a blob GET's Range
    if request.method == "HEAD":
        return web.Response(status=exc.status, headers=headers)
    return web.json_response({"errors": [entry]}, status=exc.status, headers=headers)


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[METRICS].observe(
            request.method, request.get(ROUTE, "other"), status, time.monotonic() - start
        )


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except RegistryError as exc:
        response = _error_response(request, exc)
    except web.HTTPRequestEntityTooLarge as exc:
        response = _error_response(request, RegistryError("PAYLOAD_TOO_LARGE", exc.text or ""))
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise  # the client went away; nothing to answer
    except Exception as exc:
        log.exception("registry: %s %s failed", request.method, request.path)
        response = _error_response(request, RegistryError("UNKNOWN", f"internal error: {exc}"))
    if not response.prepared:
        response.headers["Docker-Distribution-API-Version"] = API_VERSION
    return response


async def _dispatch(request: web.Request) -> web.StreamResponse:
    raw = request.raw_path.split("?", 1)[0]
    if raw == "/token":
        return await request.app[AUTHORIZER].issue(request)
    if raw == "/metrics" and request.app[CONFIG].metrics:
        request[ROUTE] = "metrics"
        return web.Response(text=request.app[METRICS].render(), content_type="text/plain")
    if raw == "/v1/search":
        return await _search(request)
    found = routes.match(raw)
    if found is None:
        raise RegistryError("UNSUPPORTED", f"no such endpoint {raw[:200]!r}")
    route, params = found
    request[ROUTE] = route.kind
    handler = route.handlers.get(request.method)
    if handler is None:
        raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on {route.kind}")
    await request.app[AUTHORIZER].authorize(request, required(route.kind, request.method, params))
    return await handler(request, request.app[REGISTRY], params)


async def _search(request: web.Request) -> web.StreamResponse:
    """``GET /v1/search?q=&n=&page=`` in the shape ``docker search`` decodes."""
    request[ROUTE] = "search"
    await request.app[AUTHORIZER].authorize(request, [Access("registry", "catalog", ("*",))])
    query = request.query.get("q", "")
    try:
        n = max(1, min(int(request.query.get("n", "25")), 100))
        page = max(1, int(request.query.get("page", "1")))
    except ValueError as exc:
        raise RegistryError("PAGINATION_NUMBER_INVALID", "n and page must be numbers") from exc
    names = await request.app[REGISTRY].search(query)
    chosen = names[(page - 1) * n : page * n]
    results = [
        {
            "name": name,
            "description": "",
            "star_count": 0,
            "is_official": False,
            "is_automated": False,
        }
        for name in chosen
    ]
    pages = max(1, -(-len(names) // n))
    return web.json_response(
        {
            "query": query,
            "num_results": len(names),
            "num_pages": pages,
            "page": page,
            "page_size": n,
            "results": results,
        }
    )


async def _background(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    registry = app[REGISTRY]
    tasks = [asyncio.create_task(_expire_loop(registry, config.upload_ttl))]
    if config.gc_interval > 0 and app.get(PRIMARY, True):
        tasks.append(asyncio.create_task(_gc_loop(registry.storage, config)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if registry.proxy is not None:
            await registry.proxy.close()


async def _expire_loop(registry: Registry, ttl: float) -> None:
    period = max(1.0, min(ttl / 4, 600.0))
    while True:
        await asyncio.sleep(period)
        try:
            removed = await registry.expire_uploads(ttl)
            if removed:
                log.info("removed %d idle upload session(s)", removed)
        except OSError as exc:
            log.warning("upload expiry failed: %s", exc)


async def _gc_loop(storage: FilesystemStorage, config: Config) -> None:
    while True:
        await asyncio.sleep(config.gc_interval)
        try:
            report = await asyncio.to_thread(
                gc.collect, storage, config.gc_grace, config.delete_untagged, False
            )
            log.info("online gc: %s", report.summary())
        except Exception as exc:  # the next period tries again: one bad run must not end GC
            log.warning("online gc failed: %s", exc)


PRIMARY: web.AppKey[bool] = web.AppKey("primary", bool)


def make_app(config: Config, primary: bool = True) -> web.Application:
    """The registry application for ``config``; ``primary`` runs the periodic GC."""
    storage = FilesystemStorage(config.root, max_blob_size=config.max_blob_size)
    proxy = Proxy(storage, config.proxy) if config.proxy else None
    app = web.Application(middlewares=[_observe, _errors], client_max_size=config.max_manifest_size)
    app[CONFIG] = config
    app[PRIMARY] = primary
    app[REGISTRY] = Registry(storage, config.max_manifest_size, proxy)
    app[AUTHORIZER] = Authorizer.from_config(config)
    app[METRICS] = Metrics()
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    app.cleanup_ctx.append(_background)
    return app
