"""The proxy helper process (its own asyncio world): one per daemon, serving every published
port's userland proxy, outliving daemon restarts.

Started by ``proxyproc`` as ``python -I -S proxyhost.py CONTROL_FD CONTROL_PATH`` (it forks
once, so that it is not left a zombie of the daemon when it exits): isolated,
no site-packages, importing only the standard library and ``network.proxy`` (found from this
file's own path), so it costs one interpreter with asyncio (~20 MB) for all ports instead of
one per port.  The daemon binds each published port itself (Docker's errors when it is taken)
and hands the socket over the control socket with SCM_RIGHTS; it binds the control socket too,
so requests queue in its backlog before this process has even started.

Control protocol: one request per connection, a JSON line (with at most one fd), answered by
a JSON line.  ``{"op": "add", "proto", "host_ip", "port", "backend": [ip, port]}`` + fd,
``{"op": "get", ...key}`` (answers ``backend``, null when the port is not served),
``{"op": "remove", ...key}`` (the port is free when the answer comes), ``{"op": "list"}``.
Every answer carries ``pid``; a failure is ``{"error": "..."}``.

Requests are handled one at a time.  The daemon holds an flock on ``proxy.lock`` beside the
control socket for each request (connect to answer, and any start of a helper).  A helper
left without ports for ``IDLE_EXIT`` seconds takes that lock without waiting, unlinks the
control path (if still its own) and exits: no request can be in flight then, and the next
one finds no helper and starts another.  SIGTERM closes every port and exits.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import sys

if __name__ == "__main__":  # run as a script under -I -S: find the package beside this file
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from dockyard.network import proxy as _proxy

__all__ = ["main"]

REQUEST_TIMEOUT = 5.0
IDLE_EXIT = 1.0  # seconds without ports before the helper exits
LOCK_NAME = "proxy.lock"  # flock held by the daemon around each request (see proxyproc)
MAX_REQUEST = 4096


async def _readable(sock: socket.socket, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: fut.done() or fut.set_result(None))
    try:
        await asyncio.wait_for(fut, timeout)
    finally:
        loop.remove_reader(sock.fileno())


async def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds = b"", []
    while not data.endswith(b"\n"):
        await _readable(conn, REQUEST_TIMEOUT)
        chunk, new, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 1)
        fds += new
        if not chunk or len(data) + len(chunk) > MAX_REQUEST:
            raise ValueError("truncated request")
        data += chunk
    request = json.loads(data)
    if not isinstance(request, dict):
        raise ValueError("a request is a JSON object")
    return request, fds


class Host:
    """The published ports this helper serves, keyed by (proto, host ip, port)."""

    def __init__(self) -> None:
        self.ports: dict[tuple[str, str, int], _proxy.Proxy] = {}

    async def handle(self, request: dict, fds: list[int]) -> dict:
        op = request.get("op")
        if op == "list":
            return {
                "ports": [[*key, p.container_ip, p.container_port] for key, p in self.ports.items()]
            }
        key = (str(request["proto"]), str(request["host_ip"]), int(request["port"]))
        current = self.ports.get(key)
        if op == "get":
            backend = None if current is None else [current.container_ip, current.container_port]
            return {"backend": backend}
        if op == "remove":
            if current is not None:
                del self.ports[key]
                await current.close()
            return {}
        if op == "add":
            if len(fds) != 1:
                raise ValueError("add needs the bound socket")
            cip, cport = request["backend"]
            sock = socket.socket(fileno=fds.pop())
            sock.setblocking(False)
            if current is not None:  # the daemon could bind it: whatever we held is stale
                del self.ports[key]
                await current.close()
            self.ports[key] = await _proxy.serve_socket(sock, key[0], key[1], str(cip), int(cport))
            return {}
        raise ValueError(f"unknown op {op!r}")

    async def serve(self, conn: socket.socket) -> None:
        fds: list[int] = []
        try:
            conn.setblocking(False)
            request, fds = await _receive(conn)
            try:
                answer = await self.handle(request, fds)
            except (KeyError, TypeError, ValueError, OSError) as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            answer["pid"] = os.getpid()
            conn.setblocking(True)
            conn.settimeout(REQUEST_TIMEOUT)
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except (TimeoutError, OSError, ValueError):
            pass  # the daemon went away mid-request: nothing to answer
        finally:
            for fd in fds:
                os.close(fd)
            conn.close()

    async def close(self) -> None:
        for p in list(self.ports.values()):
            await p.close()
        self.ports.clear()


def _own(control: socket.socket, path: str) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(control.fileno()).st_ino
    except OSError:
        return False


def _try_lock(path: str) -> bool:
    """Take the daemon's request lock (kept until exit): no request is then in flight."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    return True  # fd left open on purpose: released by our exit


async def _run(control: socket.socket, path: str) -> None:
    loop = asyncio.get_running_loop()
    host = Host()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    control.setblocking(False)
    lock_path = os.path.join(os.path.dirname(path), LOCK_NAME)
    try:
        while True:
            accept = loop.create_task(loop.sock_accept(control))
            await asyncio.wait(
                [accept, stop],
                timeout=None if host.ports else IDLE_EXIT,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not accept.done():
                accept.cancel()
                await asyncio.gather(accept, return_exceptions=True)
            if accept.done() and not accept.cancelled() and accept.exception() is None:
                conn, _ = accept.result()
                await host.serve(conn)
                continue
            if stop.done():
                break
            if not host.ports and _try_lock(lock_path):
                if _own(control, path):
                    os.unlink(path)  # the next request starts another helper
                break
    finally:
        control.close()
        await host.close()


def main(argv: list[str]) -> int:
    """``proxyhost CONTROL_FD CONTROL_PATH``."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    fd, path = int(argv[0]), argv[1]
    if os.fork():  # the daemon waits for this parent: the helper is init's child, reaped by it
        os._exit(0)
    control = socket.socket(fileno=fd)
    asyncio.run(_run(control, path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
