"""Build endpoints (asyncio world): ``POST /build`` (the legacy builder's API),
``POST /build/prune`` and ``POST /build/cancel``.

The build's JSON stream starts with its first message: an error before that (bad
parameters, a Dockerfile that does not parse, a missing Dockerfile) is a plain HTTP error
as moby answers it, one after it is an ``errorDetail`` line.  A client that hangs up
cancels the build.

Build secrets (``RUN --mount=type=secret``) travel in a dockyard-only request header, since
the legacy API has no BuildKit session to fetch them through: ``X-Dockyard-Build-Secrets``
is base64 (standard alphabet) of a JSON object mapping each secret id to its content, itself
base64: ``{"npmrc": "dG9rZW4K"}``.  ``dockyard build --secret`` sends it.  A value over
``SECRET_MAX_BYTES`` (BuildKit's limit, 500 KiB) or a malformed header is a 400.  The
contents are mounted for the RUN steps that ask for them and are kept nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

from dockyard.api import query
from dockyard.api.keys import BUILD
from dockyard.api.middleware import json_response, stream_error_message
from dockyard.api.routing import Routes
from dockyard.api.streams import start_stream
from dockyard.build import BuildError, BuildOptions
from dockyard.errors import DockyardError, InvalidParameter
from dockyard.filters import parse_until

routes = Routes()
log = logging.getLogger("dockyard.api")

# How often a running build checks that its client is still there: aiohttp does not cancel
# a handler when the peer goes away, and a build may print nothing for minutes.
_HANGUP_POLL = 0.25

SECRETS_HEADER = "X-Dockyard-Build-Secrets"
SECRET_MAX_BYTES = 500 * 1024  # BuildKit's limit for one secret


def _json(q: Mapping[str, str], key: str, kind: type) -> Any:
    raw = q.get(key)
    if not raw:
        return kind()
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidParameter(f"invalid {key}: {exc}") from exc
    if not isinstance(value, kind):
        raise InvalidParameter(f"invalid {key}: expected a JSON {kind.__name__}")
    return value


def _secrets(header: str) -> dict[str, bytes]:
    """``X-Dockyard-Build-Secrets`` decoded: id -> content (see the module docstring)."""
    if not header:
        return {}
    try:
        table = msgspec.json.decode(base64.b64decode(header.strip(), validate=True))
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise InvalidParameter(
            f"invalid {SECRETS_HEADER} header: base64 of a JSON object expected ({exc})"
        ) from None
    if not isinstance(table, dict):
        raise InvalidParameter(f"invalid {SECRETS_HEADER} header: a JSON object expected")
    out: dict[str, bytes] = {}
    for ident, encoded in table.items():
        if not ident or not isinstance(encoded, str):
            raise InvalidParameter(
                f"invalid {SECRETS_HEADER} header: secret {ident!r} needs an id and a base64 string"
            )
        try:
            value = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameter(
                f"invalid {SECRETS_HEADER} header: secret {ident!r} is not base64"
            ) from None
        if len(value) > SECRET_MAX_BYTES:
            raise InvalidParameter(
                f"secret {ident!r} is {len(value)} bytes: the limit is {SECRET_MAX_BYTES} "
                "bytes (500 KiB)"
            )
        out[ident] = value
    return out


def _options(q: Any, registry_config: str = "", secrets: str = "") -> BuildOptions:
    if query.boolean(q, "squash"):
        raise InvalidParameter("squash is only supported with experimental mode")
    if q.get("version") == "2":
        raise InvalidParameter(
            "BuildKit (version=2) is not supported: build with DOCKER_BUILDKIT=0"
        )
    hosts = [h for raw in q.getall("extrahosts", []) for h in raw.split(",") if h]
    return BuildOptions(
        tags=tuple(q.getall("t", [])),
        dockerfile=q.get("dockerfile", "") or "Dockerfile",
        build_args=_json(q, "buildargs", dict),
        labels=_json(q, "labels", dict),
        target=q.get("target", ""),
        no_cache=query.boolean(q, "nocache"),
        no_cache_filter=_stage_names(q),
        explain_cache=query.boolean(q, "explaincache"),
        pull=query.boolean(q, "pull"),
        rm=query.boolean(q, "rm", True),
        force_rm=query.boolean(q, "forcerm"),
        quiet=query.boolean(q, "q"),
        cache_from=tuple(_json(q, "cachefrom", list)),
        network_mode=q.get("networkmode", "") or "default",
        shm_size=query.integer(q, "shmsize", 0) or 0,
        extra_hosts=tuple(hosts),
        platform=q.get("platform", ""),
        memory=query.integer(q, "memory", 0) or 0,
        memory_swap=query.integer(q, "memswap", 0) or 0,
        cpu_shares=query.integer(q, "cpushares", 0) or 0,
        cpuset_cpus=q.get("cpusetcpus", ""),
        cpu_period=query.integer(q, "cpuperiod", 0) or 0,
        cpu_quota=query.integer(q, "cpuquota", 0) or 0,
        ulimits=tuple(_json(q, "ulimits", list)),
        cgroup_parent=q.get("cgroupparent", ""),
        remote=q.get("remote", ""),
        build_id=q.get("buildid", ""),
        registry_config=registry_config,
        secrets=_secrets(secrets),
    )


def _stage_names(q: Any) -> tuple[str, ...]:
    """``nocachefilter``: dockyard's own parameter (BuildKit's ``no-cache`` frontend option
    has no legacy-API form), a JSON list or comma-separated stage names."""
    raw = q.get("nocachefilter", "")
    names = _json(q, "nocachefilter", list) if raw.startswith("[") else raw.split(",")
    return tuple(str(n).strip().lower() for n in names if str(n).strip())


class _Stream:
    """The response, prepared at the first message."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.response is None:
            self.response = await start_stream(self.request, "application/json")
        await self.response.write(msgspec.json.encode(message) + b"\r\n")


class _Body(io.RawIOBase):
    """The request body as a blocking file for the thread that unpacks the context, read
    straight from the connection: no spooling to disk first (a cached build's largest
    cost was writing and re-reading its context)."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self.content = request.content
        self.loop = loop
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not self.pending:
            future = asyncio.run_coroutine_threadsafe(self.content.readany(), self.loop)
            try:
                self.pending = future.result()
            except Exception as exc:  # the client went away mid-upload: a read error
                raise OSError(f"reading the build context failed: {exc}") from exc
        n = min(len(view), len(self.pending))
        view[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


async def _watch_hangup(request: web.Request, task: asyncio.Task[Any]) -> None:
    while not task.done():
        transport = request.transport
        if transport is None or transport.is_closing():
            task.cancel()
            return
        await asyncio.sleep(_HANGUP_POLL)


async def _try(stream: _Stream, message: dict[str, Any]) -> None:
    try:
        await stream(message)
    except (ConnectionError, RuntimeError):
        pass


@routes.post("/build")
async def build(request: web.Request) -> web.StreamResponse:
    headers = request.headers
    options = _options(
        request.query,
        headers.get("X-Registry-Config", ""),
        headers.get(SECRETS_HEADER, ""),
    )
    service = request.app[BUILD]
    body = io.BufferedReader(_Body(request, asyncio.get_running_loop()), 1 << 16)
    stream = _Stream(request)
    with body:
        task = asyncio.create_task(service.build(body, options, stream))
        watcher = asyncio.create_task(_watch_hangup(request, task))
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            # Cancelled by a hang-up or /build/cancel: say so if anybody still listens.
            await _try(
                stream, {"errorDetail": {"message": "Build cancelled"}, "error": "Build cancelled"}
            )
        except DockyardError as exc:
            if stream.response is None:
                raise
            message = stream_error_message(request, exc)
            detail: dict[str, Any] = {"message": message}
            if isinstance(exc, BuildError) and exc.code:
                detail["code"] = exc.code
            await stream({"errorDetail": detail, "error": message})
        except Exception as exc:
            if stream.response is None:
                raise
            # A daemon fault after the stream began: the client gets it as the build's error.
            log.exception("build failed")
            message = f"internal error: {exc}"
            await _try(stream, {"errorDetail": {"message": message}, "error": message})
        finally:
            watcher.cancel()
    if stream.response is None:
        await _try(stream, {"stream": ""})
    if stream.response is None:
        return web.Response(status=499)
    try:
        await stream.response.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    return stream.response


@routes.post("/build/prune")
async def prune(request: web.Request) -> web.StreamResponse:
    q = request.query
    filters = query.parse_filters(q.get("filters"), ("until", "unused-for", "type", "id"))
    until_raw = (filters.get("until") or filters.get("unused-for") or [None])[-1]
    until = prune_until(until_raw, time.time()) if until_raw else None
    keep = query.integer(q, "keep-storage", 0) or 0
    return json_response(await request.app[BUILD].prune(query.boolean(q, "all"), until, keep))


_GO_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$")
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def prune_until(text: str, now: float) -> float:
    """``until`` (or ``unused-for``) as a unix time: records last used before it go.  A Go
    duration (``24h``, ``1h30m``, ``90s``: that long before ``now``), what dockerd's
    ``builder prune`` takes; also an RFC 3339 timestamp or unix seconds, as the other
    prune endpoints take ``until``."""
    text = text.strip()
    if text == "0":
        return now
    if _GO_DURATION.match(text):
        seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_PART.findall(text))
        return now - (-seconds if text.startswith("-") else seconds)
    try:
        return float(parse_until(text))
    except InvalidParameter:
        raise InvalidParameter(
            f'invalid "until" filter {text!r}: give a duration (e.g. 24h), an RFC 3339 '
            "timestamp or unix seconds"
        ) from None


@routes.post("/build/cancel")
async def cancel(request: web.Request) -> web.StreamResponse:
    request.app[BUILD].cancel(request.query.get("id", ""))
    return web.Response(status=200)
