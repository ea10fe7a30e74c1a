"""The embedded DNS server (asyncio world): Docker's 127.0.0.11 in containers on user-defined
networks (libnetwork's ``resolver.go``), with dnslib for the wire format.

One ``Resolver`` serves every container.  It knows nothing about containers or networks: the
caller hands it a ``lookup(key, name) -> addresses`` callback (``key`` says which container
asks, so the caller decides the scope: names, aliases and ids of containers on the same
networks, ``name.network`` forms…) and optionally a ``reverse(key, ip) -> names`` callback
for PTR.  Callbacks may be plain functions or coroutine functions; names arrive lower-cased
without the trailing dot.

Answers, as Docker gives them:
- A/AAAA for a known name: every address of that family, shuffled (round robin), TTL 600,
  recursion available, not authoritative; a known name without an address of the asked
  family gets an empty NOERROR answer (never forwarded);
- PTR for an address the reverse callback knows: its names (made fully qualified);
- anything else is forwarded to the sandbox's upstream servers ("ip[:port]", "[v6]:port"),
  tried in order: UDP queries over UDP (retried over TCP when the upstream truncates), TCP
  queries over TCP; a timeout, refusal, SERVFAIL or REFUSED moves to the next upstream; when
  none answers, SERVFAIL.  Upstream sockets are made by the daemon, so queries leave from
  the host's namespace (a host resolver on 127.0.0.53 works).  At most 100 forwarded
  queries are in flight per resolver; more get SERVFAIL, as in Docker;
- single-label A/AAAA names the callback does not know are forwarded too, unless the
  container's resolv.conf sets ``ndots`` itself (``ndots_set``): the stub resolver then
  retries with its search domains, so the server answers an empty NOERROR right away.
Replies over UDP larger than the client's limit (512, or its EDNS0 size) are truncated
(TC set, answers dropped) so the client retries over TCP.

Serving inside a container: ``Resolver.serve_in_netns`` opens the UDP and TCP sockets bound
to 127.0.0.11:53 on a short-lived thread that joins the container's network namespace and
then ends (a socket stays in the namespace it was created in; the daemon's own threads never
change namespace), and serves them on the daemon's loop.  127.0.0.11 is in 127/8, local on
``lo`` as soon as ``lo`` is up, so no address is added (``lo`` is brought up if it is down).
The sockets keep the namespace alive: close the ``DNSServer`` when the container stops.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import inspect
import ipaddress
import logging
import os
import random
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Sequence

from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSRecord

from dockyard.runtime import linux

__all__ = ["DNSServer", "Lookup", "Resolver", "ReverseLookup", "split_hostport"]

log = logging.getLogger("dockyard.network")

Lookup = Callable[[str, str], "Sequence[str] | Awaitable[Sequence[str]]"]
ReverseLookup = Callable[[str, str], "Sequence[str] | Awaitable[Sequence[str]]"]

INTERNAL_ADDRESS = "127.0.0.11"
TTL = 600
MAX_CONCURRENT = 100
TCP_IDLE_TIMEOUT = 30.0
_MAX_TCP_MSG = 65535
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def split_hostport(upstream: str, default_port: int = 53) -> tuple[str, int]:
    """``"1.1.1.1"``, ``"1.1.1.1:5353"``, ``"::1"``, ``"[::1]:5353"`` → ``(host, port)``."""
    if upstream.startswith("["):
        host, _, rest = upstream[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if upstream.count(":") == 1:
        host, _, port = upstream.partition(":")
        return host, int(port)
    return upstream, default_port


def _ptr_address(name: str) -> str | None:
    """``4.3.2.1.in-addr.arpa`` → ``1.2.3.4``; nibble ``ip6.arpa`` names → IPv6."""
    if name.endswith(".in-addr.arpa"):
        parts = name[: -len(".in-addr.arpa")].split(".")
        text = ".".join(reversed(parts))
    elif name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) != 32:
            return None
        digits = "".join(reversed(nibbles))
        text = ":".join(digits[i : i + 4] for i in range(0, 32, 4))
    else:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _family(addr: str) -> int:
    return 6 if ":" in addr else 4


async def _call(fn: Callable, *args):
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _udp_limit(request: DNSRecord) -> int:
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return max(512, min(int(rr.rclass), 4096))
    return 512


class Resolver:
    """Answers container names through ``lookup`` and forwards the rest (see module doc)."""

    def __init__(
        self,
        lookup: Lookup,
        reverse: ReverseLookup | None = None,
        *,
        upstreams: Sequence[str] = (),
        timeout: float = 4.0,
    ) -> None:
        self.lookup = lookup
        self.reverse = reverse
        self.upstreams = tuple(upstreams)  # default for servers started without their own
        self.timeout = timeout  # per upstream (Docker's extIOTimeout)
        self._inflight = 0

    # -- one query -------------------------------------------------------------------------

    async def resolve(
        self,
        key: str,
        data: bytes,
        proto: str = "udp",
        *,
        upstreams: Sequence[str] | None = None,
        ndots_set: bool = False,
    ) -> bytes | None:
        """Answer one wire-format query from container ``key``; ``None`` means drop it."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        if request.header.qr or not request.questions:
            return None
        udp_limit = _udp_limit(request) if proto == "udp" else _MAX_TCP_MSG
        if request.header.opcode != 0:
            return self._rcode(request, RCODE.NOTIMP)
        if len(request.questions) != 1:
            return self._rcode(request, RCODE.FORMERR)
        try:
            reply = await self._answer_locally(key, request, ndots_set)
        except Exception:
            log.exception("dns: lookup of %s failed", request.q.qname)
            return self._rcode(request, RCODE.SERVFAIL)
        if reply is None:
            ups = self.upstreams if upstreams is None else upstreams
            packed = await self._forward(data, proto, ups, request)
        else:
            packed = reply.pack()
        if len(packed) > udp_limit:
            packed = self._truncated(packed, request)
        return packed

    async def _answer_locally(
        self, key: str, request: DNSRecord, ndots_set: bool
    ) -> DNSRecord | None:
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        if q.qtype in (QTYPE.A, QTYPE.AAAA):
            addrs = list(await _call(self.lookup, key, name) or ())
            if not addrs:
                if ndots_set and "." not in name:
                    return request.reply(ra=1, aa=0)
                return None
            want = 4 if q.qtype == QTYPE.A else 6
            addrs = [a for a in addrs if _family(a) == want]
            if len(addrs) > 1:
                random.shuffle(addrs)
            reply = request.reply(ra=1, aa=0)
            rdata = A if want == 4 else AAAA
            for addr in addrs:
                reply.add_answer(RR(q.qname, q.qtype, rdata=rdata(addr), ttl=TTL))
            return reply
        if q.qtype == QTYPE.PTR and self.reverse is not None:
            addr = _ptr_address(name)
            if addr is None:
                return None
            names = list(await _call(self.reverse, key, addr) or ())
            if not names:
                return None
            reply = request.reply(ra=1, aa=0)
            for target in names:
                target = target if target.endswith(".") else target + "."
                reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target), ttl=TTL))
            return reply
        return None

    @staticmethod
    def _rcode(request: DNSRecord, rcode: int) -> bytes:
        reply = request.reply(ra=1, aa=0)
        reply.header.rcode = rcode
        return reply.pack()

    @staticmethod
    def _truncated(packed: bytes, request: DNSRecord) -> bytes:
        try:
            reply = DNSRecord.parse(packed)
        except Exception:
            reply = request.reply(ra=1, aa=0)
        short = DNSRecord(reply.header, q=reply.q)
        short.header.tc = 1
        return short.pack()

    # -- forwarding (sockets in the daemon's, i.e. the host's, namespace) -------------------

    async def _forward(
        self, data: bytes, proto: str, upstreams: Sequence[str], request: DNSRecord
    ) -> bytes:
        if not upstreams or self._inflight >= MAX_CONCURRENT:
            return self._rcode(request, RCODE.SERVFAIL)
        self._inflight += 1
        try:
            for upstream in upstreams:
                try:
                    host, port = split_hostport(upstream)
                    if proto == "tcp":
                        resp = await self._query_tcp(host, port, data)
                    else:
                        resp = await self._query_udp(host, port, data)
                        if resp[2] & 0x02:  # TC: the upstream has more to say over TCP
                            try:
                                resp = await self._query_tcp(host, port, data)
                            except (TimeoutError, OSError, ValueError):
                                pass  # the truncated answer still tells the client to retry
                except (TimeoutError, OSError, ValueError) as exc:
                    log.debug("dns: upstream %s failed: %r", upstream, exc)
                    continue
                if resp[3] & 0x0F in (RCODE.SERVFAIL, RCODE.REFUSED):
                    continue
                return resp
        finally:
            self._inflight -= 1
        return self._rcode(request, RCODE.SERVFAIL)

    async def _query_udp(self, host: str, port: int, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, data)
            async with asyncio.timeout(self.timeout):
                while True:
                    resp = await loop.sock_recv(sock, 65535)
                    # a connected socket only hears its upstream; still match id and QR
                    if len(resp) >= 12 and resp[:2] == data[:2] and resp[2] & 0x80:
                        return resp
        finally:
            sock.close()

    async def _query_tcp(self, host: str, port: int, data: bytes) -> bytes:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(struct.pack("!H", len(data)) + data)
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                resp = await reader.readexactly(size)
            finally:
                writer.close()
        if len(resp) < 12 or resp[:2] != data[:2]:
            raise ValueError("mismatched answer")
        return resp

    # -- serving -----------------------------------------------------------------------------

    async def serve_in_netns(
        self,
        netns_path: str,
        key: str,
        *,
        upstreams: Sequence[str] | None = None,
        ndots_set: bool = False,
        address: str = INTERNAL_ADDRESS,
        port: int = 53,
    ) -> DNSServer:
        """Serve container ``key`` on ``address:port`` (UDP and TCP) inside the network
        namespace bound at ``netns_path``.  ``upstreams`` default to the resolver's."""
        udp, tcp = await _open_in_netns(netns_path, address, port)
        return await self.serve_sockets(key, udp, tcp, upstreams=upstreams, ndots_set=ndots_set)

    async def serve(
        self,
        key: str,
        address: str,
        port: int = 0,
        *,
        upstreams: Sequence[str] | None = None,
        ndots_set: bool = False,
    ) -> DNSServer:
        """Serve in the daemon's own namespace (tests, debugging); port 0 picks one free port
        for both UDP and TCP."""
        udp, tcp = _bind_pair(address, port)
        return await self.serve_sockets(key, udp, tcp, upstreams=upstreams, ndots_set=ndots_set)

    async def serve_sockets(
        self,
        key: str,
        udp: socket.socket,
        tcp: socket.socket,
        *,
        upstreams: Sequence[str] | None = None,
        ndots_set: bool = False,
    ) -> DNSServer:
        """Serve already bound sockets (the TCP one listening); the server owns them."""
        server = DNSServer(self, key, upstreams, ndots_set)
        try:
            await server._start(udp, tcp)
        except BaseException:
            server.close()
            udp.close()
            tcp.close()
            raise
        return server


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def datagram_received(self, data: bytes, addr) -> None:
        self.server._spawn(self.server._udp_query(data, addr))

    def error_received(self, exc: Exception) -> None:
        log.debug("dns: udp error: %r", exc)


class DNSServer:
    """One container's DNS service; ``close()`` stops it and closes its sockets."""

    def __init__(
        self, resolver: Resolver, key: str, upstreams: Sequence[str] | None, ndots_set: bool
    ) -> None:
        self.resolver = resolver
        self.key = key
        self.upstreams = None if upstreams is None else tuple(upstreams)
        self.ndots_set = ndots_set
        self.address = ""
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _UDPProtocol | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closed = False

    async def _start(self, udp: socket.socket, tcp: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.address, self.port = udp.getsockname()[:2]
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._udp_protocol = await loop.create_datagram_endpoint(
            lambda: _UDPProtocol(self), sock=udp
        )
        self._tcp = await asyncio.start_server(self._tcp_client, sock=tcp)

    def _spawn(self, coro) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _query(self, data: bytes, proto: str) -> bytes | None:
        return await self.resolver.resolve(
            self.key, data, proto, upstreams=self.upstreams, ndots_set=self.ndots_set
        )

    async def _udp_query(self, data: bytes, addr) -> None:
        try:
            reply = await self._query(data, "udp")
        except Exception:
            log.exception("dns: query failed")
            return
        if reply is not None and self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(reply, addr)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._writers.add(writer)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(size)
                reply = await self._query(data, "tcp")
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def close(self) -> None:
        """Stop serving: sockets closed, queries in progress abandoned."""
        if self._closed:
            return
        self._closed = True
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()

    async def wait_closed(self) -> None:
        """After ``close()``: return once the sockets are closed and the tasks are done."""
        if self._udp_protocol is not None:
            await self._udp_protocol.lost
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


# -- sockets -----------------------------------------------------------------------------


def _bind_pair(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on the same address and port (blocking world)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(20):
        udp = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        tcp = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            udp.bind((address, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((address, udp.getsockname()[1]))
            tcp.listen(128)
            return udp, tcp
        except OSError as exc:
            udp.close()
            tcp.close()
            if not (port == 0 and exc.errno == errno.EADDRINUSE):
                raise
    raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")


def _ensure_lo_up() -> None:
    """Bring ``lo`` up in the calling thread's network namespace if it is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        ifreq = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack_from("16sh", fcntl.ioctl(s, _SIOCGIFFLAGS, ifreq + bytes(22)))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP) + bytes(22))


def _bind_in_netns(netns_path: str, address: str, port: int):
    """Thread body: join the namespace, bind.  The thread ends right after."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, linux.CLONE_NEWNET)
    finally:
        os.close(fd)
    if ipaddress.ip_address(address).is_loopback:
        _ensure_lo_up()
    return _bind_pair(address, port)


async def _open_in_netns(
    netns_path: str, address: str, port: int
) -> tuple[socket.socket, socket.socket]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(result, exc) -> None:
        if future.cancelled():
            if result is not None:
                for sock in result:
                    sock.close()
        elif exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def body() -> None:
        result, error = None, None
        try:
            result = _bind_in_netns(netns_path, address, port)
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is gone
            if result is not None:
                for sock in result:
                    sock.close()

    # A fresh thread per namespace: it never returns to the host namespace and is not reused.
    threading.Thread(target=body, name="dockyard-netns-bind", daemon=True).start()
    return await future
