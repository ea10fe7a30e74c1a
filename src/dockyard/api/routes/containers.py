"""Container endpoints (asyncio world): create, list, inspect, start/stop/restart/kill,
wait, remove, rename, resize, attach (hijacked and websocket), exec and logs."""

from __future__ import annotations

import asyncio
import struct

import msgspec
from aiohttp import web

from dockyard import detachkeys
from dockyard.api import query
from dockyard.api.hijack import Hijacked, hijack, refusal
from dockyard.api.keys import CONTAINERS
from dockyard.api.middleware import common_headers, json_response
from dockyard.api.routing import Routes
from dockyard.api.streams import close, start_stream
from dockyard.api.version import (
    ALIASES_WITHOUT_SHORT_ID,
    ENDPOINT_FIELDS_SINCE,
    HOST_CONFIG_OMITTED_UNSET,
    LIST_ANNOTATIONS_SINCE,
    drop_newer,
    drop_unset,
    stream_type,
)
from dockyard.containers import hostconfig
from dockyard.containers.attach import ClientStdin, Hub, Subscriber
from dockyard.containers.listing import lists_stopped
from dockyard.containers.service import LIST_FILTERS
from dockyard.errors import DockyardError, InvalidParameter

routes = Routes()


def _mux(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


@routes.post("/containers/create")
async def create(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    if isinstance(body, dict) and isinstance(body.get("HostConfig"), dict):
        body["HostConfig"] = hostconfig.canonical(body["HostConfig"])
    result = await request.app[CONTAINERS].create(request.query.get("name") or None, body)
    return json_response(result, status=201)


@routes.get("/containers/json")
async def list_containers(request: web.Request) -> web.StreamResponse:
    q = request.query
    filters = query.parse_filters(q.get("filters"), LIST_FILTERS)
    service = request.app[CONTAINERS]
    all_, limit = query.boolean(q, "all"), query.integer(q, "limit")
    result = service.list(all_, limit, filters)
    for entry in result:
        _endpoints_for(request, entry)
        if request["version"] < LIST_ANNOTATIONS_SINCE:
            entry["HostConfig"].pop("Annotations", None)
    if not lists_stopped(all_, limit, filters):
        # ContainerService.list includes stopped ones for any filter; until it asks
        # listing.lists_stopped itself (issue 16), keep moby's rule here.
        result = [e for e in result if e["State"] in ("running", "paused", "restarting")]
    if query.boolean(q, "size"):
        for entry in result:
            entry["SizeRw"], entry["SizeRootFs"] = await asyncio.to_thread(
                service.sizes, entry["Id"]
            )
            if not entry["SizeRw"]:
                del entry["SizeRw"]  # moby's summary: ``SizeRw,omitempty``
    return json_response(result)


def _endpoints_for(request: web.Request, view: dict) -> None:
    """Endpoint settings shaped for the client's API version."""
    v = request["version"]
    short_id = view["Id"][:12]
    for ep in ((view.get("NetworkSettings") or {}).get("Networks") or {}).values():
        drop_newer(ep, ENDPOINT_FIELDS_SINCE, v)
        if v >= ALIASES_WITHOUT_SHORT_ID and ep.get("Aliases"):
            # 1.45: Aliases are what the client asked for; DNSNames has the short ID
            ep["Aliases"] = [a for a in ep["Aliases"] if a != short_id] or None


@routes.post("/containers/prune")
async def prune(request: web.Request) -> web.StreamResponse:
    filters = query.parse_filters(request.query.get("filters"), ("label", "until"))
    return json_response(await request.app[CONTAINERS].prune(filters))


@routes.get("/containers/{id:.+}/json")
async def inspect(request: web.Request) -> web.StreamResponse:
    service = request.app[CONTAINERS]
    view = service.inspect(request.match_info["id"])
    view["HostConfig"] = hostconfig.inspect_view(view["HostConfig"])
    view["ExecIDs"] = service.execs.ids_of(view["Id"])
    drop_unset(view["HostConfig"], HOST_CONFIG_OMITTED_UNSET, request["version"])
    _endpoints_for(request, view)
    if query.boolean(request.query, "size"):
        view["SizeRw"], view["SizeRootFs"] = await asyncio.to_thread(service.sizes, view["Id"])
    return json_response(view)


@routes.post("/containers/{id:.+}/start")
async def start(request: web.Request) -> web.StreamResponse:
    await request.app[CONTAINERS].start(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id:.+}/stop")
async def stop(request: web.Request) -> web.StreamResponse:
    q = request.query
    await request.app[CONTAINERS].stop(
        request.match_info["id"], query.integer(q, "t"), q.get("signal")
    )
    return web.Response(status=204)


@routes.post("/containers/{id:.+}/restart")
async def restart(request: web.Request) -> web.StreamResponse:
    await request.app[CONTAINERS].restart(
        request.match_info["id"], query.integer(request.query, "t")
    )
    return web.Response(status=204)


@routes.post("/containers/{id:.+}/kill")
async def kill(request: web.Request) -> web.StreamResponse:
    name = request.match_info["id"]
    try:
        await request.app[CONTAINERS].kill(name, request.query.get("signal") or "SIGKILL")
    except DockyardError as exc:
        # moby's router wraps every kill error so (postContainersKill)
        exc.args = (f"Cannot kill container: {name}: {exc.message}",)
        raise
    return web.Response(status=204)


@routes.post("/containers/{id:.+}/rename")
async def rename(request: web.Request) -> web.StreamResponse:
    await request.app[CONTAINERS].rename(request.match_info["id"], request.query.get("name", ""))
    return web.Response(status=204)


@routes.post("/containers/{id:.+}/resize")
async def resize(request: web.Request) -> web.StreamResponse:
    q = request.query
    await request.app[CONTAINERS].resize(
        request.match_info["id"], query.integer(q, "h", 0), query.integer(q, "w", 0)
    )
    return web.Response(status=200)


@routes.delete("/containers/{id:.+}")
async def remove(request: web.Request) -> web.StreamResponse:
    q = request.query
    await request.app[CONTAINERS].remove(
        request.match_info["id"],
        query.boolean(q, "force"),
        query.boolean(q, "v"),
        query.boolean(q, "link"),
    )
    return web.Response(status=204)


@routes.post("/containers/{id:.+}/wait")
async def wait(request: web.Request) -> web.StreamResponse:
    # Headers go out at once: the Go client blocks on them before it calls start (§3.1).
    fut = request.app[CONTAINERS].wait_future(
        request.match_info["id"], request.query.get("condition", "")
    )
    response = await start_stream(request, "application/json")
    # aiohttp does not cancel a handler whose client hung up: look every second, or every
    # `docker run -d` (which drops its wait) would leave a connection until the exit.
    while not fut.done():
        await asyncio.wait([fut], timeout=1.0)
        transport = request.transport
        if not fut.done() and (transport is None or transport.is_closing()):
            fut.cancel()
            return response
    code = fut.result()
    try:
        await response.write(msgspec.json.encode({"Error": None, "StatusCode": code}) + b"\n")
        await response.write_eof()
    except ConnectionError:
        pass  # `docker run -d` hangs up on its wait request once the container started
    return response


def _detach_keys(raw: str) -> bytes:
    """moby reads an attach's ``detachKeys`` from the query; empty means ctrl-p,ctrl-q."""
    try:
        return detachkeys.parse(raw) if raw else detachkeys.DEFAULT
    except ValueError:
        raise InvalidParameter(f"Invalid detach keys ({raw}) provided") from None


def _client_stdin(c, hub: Hub, wanted: bool, keys: bytes) -> ClientStdin | None:  # type: ignore[no-untyped-def]
    """Stdin is copied only when the client asks for it and the container keeps it open."""
    if not (wanted and c.config.get("OpenStdin")):
        return None
    return ClientStdin(hub, bool(c.config.get("Tty")), keys, bool(c.config.get("StdinOnce")))


@routes.post("/containers/{id:.+}/attach")
async def attach(request: web.Request) -> web.StreamResponse:
    q = request.query
    service = request.app[CONTAINERS]
    try:
        # The keys are checked before the container is looked up, as moby does.
        keys = _detach_keys(q.get("detachKeys", ""))
        c, hub, sub = await service.attach(
            request.match_info["id"], query.boolean(q, "stdout"), query.boolean(q, "stderr")
        )
    except DockyardError as exc:
        return refusal(exc)
    tty = bool(c.config.get("Tty"))
    stdin = _client_stdin(c, hub, query.boolean(q, "stdin"), keys)
    response, conn = await hijack(
        request,
        on_data=stdin.data if stdin else None,
        on_eof=stdin.eof if stdin else None,
        content_type=stream_type(request["version"], tty),
    )
    try:
        if query.boolean(q, "logs"):
            for stream, _, data in await service.log_entries(
                c.id, stdout=sub.stdout, stderr=sub.stderr
            ):
                await conn.write(data if tty else _mux(1 if stream == "stdout" else 2, data))
        if query.boolean(q, "stream", True):
            await _pump(sub, conn, tty, stdin)
            if stdin is not None and stdin.detached:
                service.detached(c)
    except ConnectionError:
        pass
    finally:
        hub.unsubscribe(sub)
        conn.close()
    return response


@routes.get("/containers/{id:.+}/attach/ws")
async def attach_ws(request: web.Request) -> web.StreamResponse:
    """Attach over a websocket: raw output (never multiplexed) in binary frames (text
    frames before API 1.28, as moby), client frames of either kind to stdin.  Before API
    1.42 moby attaches all three streams whatever the query says."""
    q = request.query
    service = request.app[CONTAINERS]
    keys = _detach_keys(q.get("detachKeys", ""))  # a JSON 400 here: nothing is upgraded yet
    if request["version"] >= (1, 42):
        want_in, want_out, want_err = (query.boolean(q, k) for k in ("stdin", "stdout", "stderr"))
    else:
        want_in = want_out = want_err = True
    c, hub, sub = await service.attach(request.match_info["id"], want_out, want_err)
    ws = web.WebSocketResponse(compress=False, timeout=2.0)  # dockerd offers no extensions
    common_headers(ws)  # prepared here, so the error middleware cannot add them
    if not ws.can_prepare(request).ok:
        hub.unsubscribe(sub)
        raise InvalidParameter("not websocket protocol")
    try:
        await ws.prepare(request)
    except BaseException:
        hub.unsubscribe(sub)
        raise
    kind = web.WSMsgType.BINARY if request["version"] >= (1, 28) else web.WSMsgType.TEXT
    stdin = _client_stdin(c, hub, want_in, keys)
    gone = asyncio.Event()  # the client closed the websocket or it broke
    finishing = False

    async def read_client() -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (web.WSMsgType.TEXT, web.WSMsgType.BINARY):
                    if stdin is not None:
                        stdin.data(
                            msg.data.encode() if msg.type == web.WSMsgType.TEXT else msg.data
                        )
                elif msg.type in (
                    web.WSMsgType.CLOSE,
                    web.WSMsgType.CLOSING,
                    web.WSMsgType.CLOSED,
                    web.WSMsgType.ERROR,
                ):
                    break
        finally:
            if stdin is not None and not finishing:
                stdin.eof()
            gone.set()

    reader = asyncio.create_task(read_client())
    stops = [gone] + ([stdin.ended] if stdin is not None else [])
    try:
        if query.boolean(q, "logs"):
            for _, _, data in await service.log_entries(c.id, stdout=sub.stdout, stderr=sub.stderr):
                await ws.send_frame(data, kind)
        if query.boolean(q, "stream"):
            while (item := await sub.get(*stops)) is not None:
                await ws.send_frame(item[1], kind)
            if stdin is not None and stdin.detached:
                service.detached(c)
    except ConnectionError:
        pass
    finally:
        finishing = True
        hub.unsubscribe(sub)
        try:
            await ws.close()  # 1000, as dockerd sends when the output ends
        except ConnectionError:
            pass
        reader.cancel()
    return ws


@routes.get("/containers/{id:.+}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    q = request.query
    stdout, stderr = query.boolean(q, "stdout"), query.boolean(q, "stderr")
    if not (stdout or stderr):
        raise InvalidParameter("You must choose at least one stream")
    service = request.app[CONTAINERS]
    c = service.get(request.match_info["id"])
    tail = q.get("tail", "all")
    if tail not in ("all", "") and not tail.lstrip("-").isdigit():
        raise InvalidParameter(f"invalid value for tail: {tail!r}")
    since = float(q.get("since") or 0)
    until = float(q.get("until") or 0)
    entries = service.logs(
        c.id,
        stdout=stdout,
        stderr=stderr,
        tail=tail,
        since=since,
        until=until,
        follow=query.boolean(q, "follow"),
    )
    tty = bool(c.config.get("Tty"))
    timestamps = query.boolean(q, "timestamps")
    try:
        response = await start_stream(request, stream_type(request["version"], tty))
        async for stream, stamp, data in entries:
            if timestamps:
                data = stamp.encode() + b" " + data
            await response.write(data if tty else _mux(1 if stream == "stdout" else 2, data))
        await response.write_eof()
    finally:
        await close(entries)  # the reader's file now, also when the client went away
    return response


@routes.post("/containers/{id:.+}/exec")
async def exec_create(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    result = request.app[CONTAINERS].execs.create(request.match_info["id"], body)
    return json_response(result, status=201)


@routes.get("/exec/{id}/json")
async def exec_inspect(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[CONTAINERS].execs.get(request.match_info["id"]).inspect())


@routes.post("/exec/{id}/resize")
async def exec_resize(request: web.Request) -> web.StreamResponse:
    q = request.query
    await request.app[CONTAINERS].execs.resize(
        request.match_info["id"], query.integer(q, "h", 0), query.integer(q, "w", 0)
    )
    return web.Response(status=200)


@routes.post("/exec/{id}/start")
async def exec_start(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    execs = request.app[CONTAINERS].execs
    if body.get("Detach"):
        await execs.start(request.match_info["id"], hub=None)
        return web.Response(status=200)
    e = execs.get(request.match_info["id"])
    # moby frames the stream by the *start* request's Tty, not the exec's (docker-py starts
    # a TTY exec with "Tty": false and reads frames); the exec's own Tty decides the rest.
    raw = bool(body.get("Tty"))
    hub = Hub()  # before the hijack: stdin the client sends at once is buffered in it
    # moby reads an exec's detach keys from its create body and treats it as StdinOnce.
    stdin = (
        ClientStdin(hub, bool(e.config.get("Tty")), e.detach_keys, True)
        if e.config.get("AttachStdin")
        else None
    )

    # moby hijacks first and reports a failing start inside the stream (exit code 126/127
    # then comes from exec inspect), which is what the docker CLI expects.
    response, conn = await hijack(
        request,
        on_data=stdin.data if stdin else None,
        on_eof=stdin.eof if stdin else None,
        content_type=stream_type(request["version"], raw),
    )
    try:
        try:
            await execs.start(e.id, hub=hub)
        except DockyardError as exc:
            text = exc.message.encode() + b"\n"
            await conn.write(text if raw else _mux(1, text))
            return response
        sub = hub.subscribe(
            bool(e.config.get("AttachStdout", True)), bool(e.config.get("AttachStderr", True))
        )
        try:
            await _pump(sub, conn, raw, stdin)
            if stdin is not None and stdin.detached:
                # dockerd reports an exec detach as a failed attach (its check for the
                # escape error misses the wrapped error) and ends the connection.
                text = execs.detached(e).encode() + b"\r\n"
                await conn.write(text if raw else _mux(1, text))
            elif hub.done.is_set():
                # The exit code must be there before the client, seeing EOF, asks for it.
                # (Not after a detach: the process goes on running.)
                await asyncio.wait_for(e.done.wait(), 10)
        finally:
            hub.unsubscribe(sub)
    except (ConnectionError, TimeoutError):
        pass
    finally:
        conn.close()
    return response


async def _pump(sub: Subscriber, conn: Hijacked, raw: bool, stdin: ClientStdin | None) -> None:
    """Copy output to the client (``raw``, or multiplexed) until it ends, the client goes
    away, or its input ends the session (detach keys; end of input where moby ends it)."""
    stops = [conn.lost] + ([stdin.ended] if stdin is not None else [])
    while (item := await sub.get(*stops)) is not None:
        stream, data = item
        await conn.write(data if raw else _mux(stream, data))


def _archive_path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("the path query parameter is required")
    return path


@routes.head("/containers/{id:.+}/archive")
async def archive_head(request: web.Request) -> web.StreamResponse:
    service = request.app[CONTAINERS]
    c, _, header = await service.archive_stat(request.match_info["id"], _archive_path(request))
    await service._release(c)
    response = web.Response(status=200)
    response.headers["X-Docker-Container-Path-Stat"] = header
    return response


@routes.get("/containers/{id:.+}/archive")
async def archive_get(request: web.Request) -> web.StreamResponse:
    header, chunks = await request.app[CONTAINERS].archive_get(
        request.match_info["id"], _archive_path(request)
    )
    response = web.StreamResponse()
    response.content_type = "application/x-tar"
    response.headers["X-Docker-Container-Path-Stat"] = header
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.put("/containers/{id:.+}/archive")
async def archive_put(request: web.Request) -> web.StreamResponse:
    from dockyard.api.streams import spool

    service = request.app[CONTAINERS]
    body = await spool(request, service.images.tmpdir)
    with body:
        await service.archive_put(
            request.match_info["id"],
            _archive_path(request),
            body,
            query.boolean(request.query, "noOverwriteDirNonDir"),
            query.boolean(request.query, "copyUIDGID"),
        )
    return web.Response(status=200)


@routes.post("/containers/{id:.+}/pause")
async def pause(request: web.Request) -> web.StreamResponse:
    await request.app[CONTAINERS].pause(request.match_info["id"], True)
    return web.Response(status=204)


@routes.post("/containers/{id:.+}/unpause")
async def unpause(request: web.Request) -> web.StreamResponse:
    await request.app[CONTAINERS].pause(request.match_info["id"], False)
    return web.Response(status=204)


@routes.get("/containers/{id:.+}/top")
async def top(request: web.Request) -> web.StreamResponse:
    result = await request.app[CONTAINERS].top(
        request.match_info["id"], request.query.get("ps_args", "")
    )
    return json_response(result)


@routes.get("/containers/{id:.+}/stats")
async def stats(request: web.Request) -> web.StreamResponse:
    service = request.app[CONTAINERS]
    name = request.match_info["id"]
    service.get(name)  # 404 before the stream starts
    stream = query.boolean(request.query, "stream", True)
    one_shot = query.boolean(request.query, "one-shot")
    response = await start_stream(request, "application/json")
    previous = None
    try:
        while True:
            current = await asyncio.to_thread(service.stats_sample, name)
            if previous is not None:
                current["preread"] = previous["read"]
                current["precpu_stats"] = previous["cpu_stats"]
            if previous is not None or one_shot or stream:
                await response.write(msgspec.json.encode(current) + b"\n")
                if not stream:
                    break
            previous = current
            # moby waits a second for the first sample so precpu_stats is filled
            await asyncio.sleep(1)
    except ConnectionError:
        return response
    await response.write_eof()
    return response


@routes.post("/containers/{id:.+}/update")
async def update(request: web.Request) -> web.StreamResponse:
    body = await query.json_body(request)
    return json_response(await request.app[CONTAINERS].update(request.match_info["id"], body))


@routes.get("/containers/{id:.+}/changes")
async def changes(request: web.Request) -> web.StreamResponse:
    return json_response(await request.app[CONTAINERS].changes(request.match_info["id"]))


@routes.get("/containers/{id:.+}/export")
async def export(request: web.Request) -> web.StreamResponse:
    from dockyard.api.streams import byte_stream

    chunks = await request.app[CONTAINERS].export(request.match_info["id"])
    return await byte_stream(request, chunks, "application/octet-stream")


@routes.post("/commit")
async def commit(request: web.Request) -> web.StreamResponse:
    q = request.query
    body = await query.json_body(request)
    repo = q.get("repo", "")
    image_id = await request.app[CONTAINERS].commit(
        q.get("container", ""),
        repo,
        q.get("tag", ""),
        q.get("comment", ""),
        q.get("author", ""),
        q.getall("changes", []),
        query.boolean(q, "pause", True),
        body or None,
    )
    return json_response({"Id": image_id}, status=201)
