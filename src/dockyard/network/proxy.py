"""The userland proxy for published ports (asyncio world): Docker's ``docker-proxy``.

NAT rules carry most published traffic; this proxy carries what they cannot: connections
to the published port from the host itself (loopback) and hairpin traffic.  One ``Proxy``
per published (proto, host ip, host port), running on the loop of the helper process that
serves every port of a daemon (``proxyhost``), so it imports nothing but the standard
library and ``dockyard.errors``.

- The listening socket is bound first, in ``start_proxy``, so a port in use fails at once
  with Docker's message (``Bind for 0.0.0.0:8080 failed: port is already allocated``, a 500
  in Docker: ``errors.Internal``).  Host port 0 lets the kernel choose (its ephemeral range
  is Docker's, 32768-60999, by default); ``Proxy.port`` tells which.  IPv6 listeners are
  v6-only: Docker publishes 0.0.0.0 and :: separately.
- TCP: one backend connection per client, bytes copied by two ``asyncio.Protocol``s with no
  intermediate buffering: what one side reads is written to the other at once, and when a
  side's write buffer passes its high-water mark the other side stops reading until it
  drains (pause_reading/resume_reading both ways).  Half-close is forwarded (EOF from one
  side becomes a write shutdown on the other; the pair closes when both directions are
  done); a reset on one side aborts the other.  A client whose backend cannot be reached is
  closed, as docker-proxy does.
- UDP: one connected backend socket per client address (a "flow"); replies go back to that
  client from the published port; a flow idle for ``UDP_IDLE_TIMEOUT`` seconds (Docker's
  90 s conntrack timeout) is closed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from dataclasses import dataclass, field

from dockyard.errors import Internal

__all__ = ["UDP_IDLE_TIMEOUT", "Proxy", "bind", "serve_socket", "start_proxy"]

log = logging.getLogger("dockyard.network")

UDP_IDLE_TIMEOUT = 90.0
UDP_MAX_FLOWS = 4096  # a flood of new source addresses must not exhaust the daemon's fds
UDP_MAX_PENDING = 64  # datagrams queued per flow while its backend socket is being set up
WRITE_HIGH_WATER = 1 << 20  # per direction: bytes queued in user space before pausing the reader
BACKLOG = 1024


def _endpoint_error(endpoint: str, detail: str) -> Internal:
    return Internal(
        f"driver failed programming external connectivity on endpoint {endpoint}: {detail}"
    )


def _bind(proto: str, host_ip: str, host_port: int, endpoint: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if proto == "tcp":
            # TIME_WAIT leftovers must not block a restart; a live listener still does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, host_port))
        if proto == "tcp":
            sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise _endpoint_error(
                endpoint, f"Bind for {host_ip}:{host_port} failed: port is already allocated"
            ) from exc
        v = "6" if family == socket.AF_INET6 else "4"
        where = f"[{host_ip}]:{host_port}" if v == "6" else f"{host_ip}:{host_port}"
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise _endpoint_error(
            endpoint, f"Error starting userland proxy: listen {proto}{v} {where}: bind: {reason}"
        ) from exc
    return sock


# -- TCP -------------------------------------------------------------------------------


class _Side(asyncio.Protocol):
    """One end of a proxied connection; ``peer`` is the other end once both are connected."""

    __slots__ = ("conn", "early", "eof", "lost", "peer", "transport")

    def __init__(self, conn: _TCPConn) -> None:
        self.conn = conn
        self.peer: _Side | None = None
        self.transport: asyncio.Transport | None = None
        self.eof = False  # this side has sent EOF (passed on to the peer)
        self.lost = False
        self.early: list[bytes] = []  # read before the peer existed (uvloop reads at once)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None:
            self.early.append(data)
            self.transport.pause_reading()  # type: ignore[union-attr]
            return
        peer.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None:
            return True  # passed on when the peer is connected
        if peer.lost or peer.transport.is_closing():  # type: ignore[union-attr]
            return False
        if peer.eof:
            peer.transport.close()  # type: ignore[union-attr]  # both directions done
            return False  # closes this transport too (after flushing)
        peer.transport.write_eof()  # type: ignore[union-attr]  # after what is queued
        return True  # keep this side open: the other direction may still flow

    def pause_writing(self) -> None:
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.conn.side_lost(self, exc)


class _TCPConn:
    """A client connection and its backend connection."""

    __slots__ = ("backend", "client", "closed", "proxy")

    def __init__(self, proxy: Proxy, client: _Side) -> None:
        self.proxy = proxy
        self.client = client
        self.backend: _Side | None = None
        self.closed = False

    def client_made(self) -> None:
        self.client.transport.pause_reading()  # type: ignore[union-attr]  # until linked
        self.proxy._conns.add(self)
        self.proxy._spawn(self._connect())

    async def _connect(self) -> None:
        backend = _Side(self)
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        try:
            await loop.create_connection(lambda: backend, proxy.container_ip, proxy.container_port)
        except OSError as exc:
            log.debug("proxy: %s: backend unreachable: %r", proxy, exc)
            self.abort()
            return
        except asyncio.CancelledError:
            self.abort()
            raise
        if self.closed:
            backend.transport.abort()  # type: ignore[union-attr]
            return
        self.backend = backend
        client = self.client
        backend.peer, client.peer = client, backend
        for data in client.early:
            backend.transport.write(data)  # type: ignore[union-attr]
        client.early.clear()
        if client.eof:
            backend.transport.write_eof()  # type: ignore[union-attr]
        else:
            client.transport.resume_reading()  # type: ignore[union-attr]

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        self.closed = True
        peer = side.peer
        if peer is not None and not peer.lost and not peer.transport.is_closing():  # type: ignore
            if exc is None:
                peer.transport.close()  # type: ignore[union-attr]  # flush, then FIN
            else:
                peer.transport.abort()  # type: ignore[union-attr]  # a reset travels on
        if self.client.lost and (self.backend is None or self.backend.lost):
            self.proxy._conns.discard(self)

    def abort(self) -> None:
        self.closed = True
        for side in (self.client, self.backend):
            if side is not None and side.transport is not None and not side.lost:
                side.transport.abort()


# -- UDP -------------------------------------------------------------------------------


class _UDPFlow(asyncio.DatagramProtocol):
    """One client address and its connected backend socket."""

    def __init__(self, proxy: Proxy, client: tuple) -> None:
        self.proxy = proxy
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last = asyncio.get_running_loop().time()
        self.timer: asyncio.TimerHandle | None = None

    def send(self, data: bytes) -> None:
        self.last = asyncio.get_running_loop().time()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < UDP_MAX_PENDING:
            self.pending.append(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for data in self.pending:
            self.transport.sendto(data)
        self.pending.clear()
        self._arm(self.proxy.udp_idle_timeout)

    def datagram_received(self, data: bytes, addr) -> None:
        self.last = asyncio.get_running_loop().time()
        listener = self.proxy._udp
        if listener is not None and not listener.is_closing():
            listener.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. ICMP port unreachable from a backend not listening yet: keep the flow

    def _arm(self, delay: float) -> None:
        self.timer = asyncio.get_running_loop().call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        idle = asyncio.get_running_loop().time() - self.last
        if idle >= self.proxy.udp_idle_timeout:
            self.close()
        else:
            self._arm(self.proxy.udp_idle_timeout - idle)

    def close(self) -> None:
        if self.proxy._flows.get(self.client) is self:
            del self.proxy._flows[self.client]
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.close()


class _UDPListener(asyncio.DatagramProtocol):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr) -> None:
        proxy = self.proxy
        flow = proxy._flows.get(addr)
        if flow is None:
            if len(proxy._flows) >= UDP_MAX_FLOWS or proxy._closing:
                return
            flow = proxy._flows[addr] = _UDPFlow(proxy, addr)
            proxy._spawn(proxy._open_flow(flow))
        flow.send(data)

    def error_received(self, exc: Exception) -> None:
        pass


# -- the proxy -------------------------------------------------------------------------


@dataclass(eq=False)
class Proxy:
    """One published port.  ``port`` is the bound host port (the chosen one for port 0)."""

    proto: str
    host_ip: str
    port: int
    container_ip: str
    container_port: int
    udp_idle_timeout: float = UDP_IDLE_TIMEOUT
    _server: asyncio.AbstractServer | None = field(default=None, repr=False)
    _udp: asyncio.DatagramTransport | None = field(default=None, repr=False)
    _conns: set[_TCPConn] = field(default_factory=set, repr=False)
    _flows: dict[tuple, _UDPFlow] = field(default_factory=dict, repr=False)
    _tasks: set[asyncio.Task] = field(default_factory=set, repr=False)
    _closing: bool = field(default=False, repr=False)

    def __str__(self) -> str:
        return (
            f"{self.proto} {self.host_ip}:{self.port} -> {self.container_ip}:{self.container_port}"
        )

    def _client_factory(self) -> asyncio.Protocol:
        return _Client(self)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_flow(self, flow: _UDPFlow) -> None:
        family = socket.AF_INET6 if ":" in self.container_ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            sock.connect((self.container_ip, self.container_port))
            await asyncio.get_running_loop().create_datagram_endpoint(lambda: flow, sock=sock)
        except OSError as exc:
            sock.close()
            log.debug("proxy: %s: backend socket failed: %r", self, exc)
            flow.close()
            return
        if self._closing:
            flow.close()

    async def close(self) -> None:
        """Stop listening and close every proxied connection and flow."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
        for conn in list(self._conns):
            conn.abort()
        for flow in list(self._flows.values()):
            flow.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)  # let transports run connection_lost: the port is free after


class _Client(_Side):
    """The accepted side: it creates its connection pair when accepted."""

    __slots__ = ()

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(_TCPConn(proxy, self))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.conn.client_made()


async def start_proxy(
    proto: str,
    host_ip: str,
    host_port: int,
    container_ip: str,
    container_port: int,
    *,
    endpoint: str = "",
) -> Proxy:
    """Bind ``host_ip:host_port`` (``proto`` "tcp" or "udp") and proxy it to the container.

    ``endpoint`` names the endpoint in errors.  Raises ``errors.Internal`` with Docker's
    message when the port cannot be bound.
    """
    if proto not in ("tcp", "udp"):
        raise ValueError(f"unsupported protocol {proto!r}")
    host_ip = host_ip or "0.0.0.0"
    sock = _bind(proto, host_ip, host_port, endpoint)
    return await serve_socket(sock, proto, host_ip, container_ip, container_port)


async def serve_socket(
    sock: socket.socket, proto: str, host_ip: str, container_ip: str, container_port: int
) -> Proxy:
    """Proxy an already bound (and, for TCP, listening) socket: the helper process's entry,
    which receives the socket its daemon bound."""
    proxy = Proxy(proto, host_ip, sock.getsockname()[1], container_ip, container_port)
    loop = asyncio.get_running_loop()
    try:
        if proto == "tcp":
            proxy._server = await loop.create_server(
                proxy._client_factory, sock=sock, backlog=BACKLOG
            )
        else:
            proxy._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UDPListener(proxy), sock=sock
            )
    except BaseException:
        sock.close()
        raise
    return proxy


bind = _bind  # the helper-process launcher binds in the daemon, to fail with Docker's message
