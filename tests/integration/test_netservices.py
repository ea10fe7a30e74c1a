"""Network services against real namespaces and sockets: the embedded DNS server inside a
network namespace made here, and the userland proxy.  No dockyardd needed; root needed.
Traffic stays on loopback and in the namespaces these tests create."""

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import uvloop
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from dockyard.errors import Internal
from dockyard.network import proxy as proxymod
from dockyard.network.dns import Resolver
from dockyard.network.proxy import start_proxy

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def netns(tmp_path):
    """A persistent network namespace bound at a file; unmounted and removed even on failure."""
    path = str(tmp_path / "ns")
    open(path, "w").close()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=False)
        os.unlink(path)


def ns_of_this_thread():
    return os.readlink("/proc/thread-self/ns/net")


async def in_netns(netns, *argv, timeout=20):
    proc = await asyncio.create_subprocess_exec(
        "nsenter",
        f"--net={netns}",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode()


# Runs inside the namespace: one query per argv triple, prints rcode and answers per line.
CLIENT = textwrap.dedent("""
    import socket, struct, sys
    from dnslib import DNSRecord
    for name, qtype, proto in zip(*[iter(sys.argv[1:])] * 3):
        q = DNSRecord.question(name, qtype).pack()
        try:
            if proto == "udp":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(2)
                s.sendto(q, ("127.0.0.11", 53))
                data = s.recv(65535)
            else:
                s = socket.create_connection(("127.0.0.11", 53), timeout=2)
                s.sendall(struct.pack("!H", len(q)) + q)
                n = struct.unpack("!H", s.recv(2, socket.MSG_WAITALL))[0]
                data = s.recv(n, socket.MSG_WAITALL)
            r = DNSRecord.parse(data)
            print(r.header.rcode, *sorted(str(rr.rdata) for rr in r.rr))
        except OSError as exc:
            print("error", type(exc).__name__)
""")


async def client(netns, *queries):
    code, out = await in_netns(netns, sys.executable, "-c", CLIENT, *queries)
    assert code == 0, out
    return out.splitlines()


async def fake_upstream():
    """A UDP DNS server on the HOST's 127.0.0.1: reachable only if forwarding leaves from the
    host namespace (the container's 127.0.0.1 has nothing listening)."""
    seen = []

    class Proto(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            req = DNSRecord.parse(data)
            seen.append(str(req.q.qname))
            reply = req.reply()
            if str(req.q.qname) == "www.example.":
                reply.add_answer(RR(req.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=30))
            else:
                reply.header.rcode = RCODE.NXDOMAIN
            self.transport.sendto(reply.pack(), addr)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Proto, local_addr=("127.0.0.1", 0)
    )
    return transport, f"127.0.0.1:{transport.get_extra_info('sockname')[1]}", seen


def lookup(key, name):
    return {("c1", "web"): ["10.0.0.2", "10.0.0.3"]}.get((key, name), [])


@needs_root
def test_dns_inside_netns(netns):
    async def main():
        host_ns = ns_of_this_thread()
        upstream, address, seen = await fake_upstream()
        resolver = Resolver(lookup, upstreams=[address], timeout=1)
        server = await resolver.serve_in_netns(netns, "c1")
        try:
            # the daemon's thread never left the host namespace
            assert ns_of_this_thread() == host_ns
            assert (server.address, server.port) == ("127.0.0.11", 53)
            # lo was brought up so that 127.0.0.11 is reachable inside
            code, out = await in_netns(netns, "ip", "-o", "link", "show", "lo")
            assert "UP" in out.split("<", 1)[1].split(">", 1)[0].split(","), out
            lines = await client(
                netns,
                "web",
                "A",
                "udp",
                "web",
                "A",
                "tcp",
                "www.example",
                "A",
                "udp",
                "nowhere.example",
                "A",
                "udp",
            )
            assert lines == [
                "0 10.0.0.2 10.0.0.3",
                "0 10.0.0.2 10.0.0.3",
                "0 192.0.2.7",
                f"{RCODE.NXDOMAIN}",
            ]
            assert "www.example." in seen
            # busybox nslookup as containers would use it
            code, out = await in_netns(netns, "busybox", "nslookup", "web", "127.0.0.11")
            assert code == 0 and "10.0.0.2" in out and "10.0.0.3" in out, out
        finally:
            server.close()
            await server.wait_closed()
            upstream.close()
        # closed: nothing answers inside any more, and the namespace can be re-served
        assert await client(netns, "web", "A", "udp", "web", "A", "tcp") == [
            "error TimeoutError",
            "error ConnectionRefusedError",
        ]
        again = await resolver.serve_in_netns(netns, "c1")
        assert await client(netns, "web", "A", "tcp") == ["0 10.0.0.2 10.0.0.3"]
        again.close()
        await again.wait_closed()

    asyncio.run(main())


@needs_root
def test_dns_netns_errors(tmp_path, netns):
    async def main():
        resolver = Resolver(lookup)
        with pytest.raises(FileNotFoundError):
            await resolver.serve_in_netns(str(tmp_path / "missing"), "c1")
        server = await resolver.serve_in_netns(netns, "c1")
        try:
            with pytest.raises(OSError):  # 127.0.0.11:53 already served in that namespace
                await resolver.serve_in_netns(netns, "c1")
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


# -- the userland proxy --------------------------------------------------------------------


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    return asyncio.run if request.param == "asyncio" else uvloop.run


async def backend_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def blocking_client(port, payload: bytes) -> bytes:
    """Send everything, half-close, read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


def test_tcp_large_transfer_and_half_close(run):
    payload = os.urandom(1 << 20) * 24  # 24 MiB each way
    reply_tail = os.urandom(1 << 20) * 24

    async def main():
        async def handler(reader, writer):
            h = hashlib.sha256()
            while chunk := await reader.read(1 << 20):  # until the client's half-close
                h.update(chunk)
            writer.write(h.hexdigest().encode() + reply_tail)  # still writable: half-close
            await writer.drain()
            writer.close()

        server, bport = await backend_server(handler)
        proxy = await start_proxy("tcp", "127.0.0.1", 0, "127.0.0.1", bport, endpoint="web")
        try:
            assert proxy.port != bport and 32768 <= proxy.port <= 60999
            results = await asyncio.gather(
                *[asyncio.to_thread(blocking_client, proxy.port, payload) for _ in range(3)]
            )
            for got in results:
                assert got[:64] == hashlib.sha256(payload).hexdigest().encode()
                assert got[64:] == reply_tail
            await asyncio.sleep(0.05)
            assert not proxy._conns  # every pair is gone once both sides closed
        finally:
            await proxy.close()
            server.close()

    run(main())


def test_tcp_backend_half_closes_first(run):
    async def main():
        received = asyncio.get_running_loop().create_future()

        async def handler(reader, writer):
            writer.write(b"hello")
            writer.write_eof()  # the backend is done talking, the client is not
            received.set_result(await reader.read())
            writer.close()

        server, bport = await backend_server(handler)
        proxy = await start_proxy("tcp", "127.0.0.1", 0, "127.0.0.1", bport)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            assert await reader.read() == b"hello"  # EOF passed on
            writer.write(b"still here")
            writer.write_eof()
            assert await asyncio.wait_for(received, 5) == b"still here"
            writer.close()
        finally:
            await proxy.close()
            server.close()

    run(main())


def test_tcp_flow_control_bounds_memory(run):
    async def main():
        start_reading = asyncio.Event()
        total = asyncio.get_running_loop().create_future()

        async def handler(reader, writer):
            await start_reading.wait()
            n = 0
            while chunk := await reader.read(1 << 20):
                n += len(chunk)
            total.set_result(n)
            writer.close()

        server, bport = await backend_server(handler)
        proxy = await start_proxy("tcp", "127.0.0.1", 0, "127.0.0.1", bport)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            sent = 0
            block = b"x" * (1 << 20)
            deadline = asyncio.get_running_loop().time() + 1.5
            while asyncio.get_running_loop().time() < deadline:
                writer.write(block)
                sent += len(block)
                try:
                    await asyncio.wait_for(writer.drain(), 0.2)
                except TimeoutError:
                    break  # back-pressure reached the client
            # the backend reads nothing yet: the proxy holds at most about its high water
            (conn,) = proxy._conns
            held = conn.backend.transport.get_write_buffer_size()
            assert held <= proxymod.WRITE_HIGH_WATER + (1 << 20), held
            assert sent < 200 << 20  # the client was stopped, not buffered without bound
            start_reading.set()
            await writer.drain()
            writer.write_eof()
            assert await asyncio.wait_for(total, 20) == sent
            writer.close()
        finally:
            await proxy.close()
            server.close()

    run(main())


def test_tcp_backend_down_and_close(run):
    async def main():
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
        probe.close()
        proxy = await start_proxy("tcp", "127.0.0.1", 0, "127.0.0.1", dead_port)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed: no backend
        except ConnectionResetError:
            pass
        writer.close()
        await proxy.close()

        # close() ends live connections and frees the port
        async def handler(reader, writer):
            await reader.read()

        server, bport = await backend_server(handler)
        proxy = await start_proxy("tcp", "127.0.0.1", 0, "127.0.0.1", bport)
        port = proxy.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        await asyncio.sleep(0.1)
        assert len(proxy._conns) == 1
        await proxy.close()
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        except ConnectionResetError:
            pass
        writer.close()
        with socket.socket() as s:  # no listener left (TIME_WAIT leftovers are fine)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
        server.close()

    run(main())


def test_port_already_allocated(run):
    async def main():
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            with pytest.raises(Internal) as info:
                await start_proxy("tcp", "127.0.0.1", port, "127.0.0.1", 1, endpoint="web")
            assert str(info.value) == (
                "driver failed programming external connectivity on endpoint web: "
                f"Bind for 127.0.0.1:{port} failed: port is already allocated"
            )
            # a wildcard bind clashes with it too
            with pytest.raises(Internal, match="port is already allocated"):
                await start_proxy("tcp", "0.0.0.0", port, "127.0.0.1", 1, endpoint="web")
        finally:
            taken.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            with pytest.raises(Internal, match=f"Bind for 127.0.0.1:{u.getsockname()[1]} "):
                await start_proxy("udp", "127.0.0.1", u.getsockname()[1], "127.0.0.1", 1)
        with pytest.raises(
            Internal,
            match="Error starting userland proxy: listen tcp4 "
            "192.0.2.1:80: bind: cannot assign requested",
        ):
            await start_proxy("tcp", "192.0.2.1", 80, "127.0.0.1", 1, endpoint="web")

    run(main())


def test_udp_flows(run):
    async def main():
        loop = asyncio.get_running_loop()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(b"echo:" + data + f"|{addr[1]}".encode(), addr)

        backend, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        bport = backend.get_extra_info("sockname")[1]
        proxy = await start_proxy("udp", "127.0.0.1", 0, "127.0.0.1", bport)
        proxy.udp_idle_timeout = 0.3
        try:

            def exchange(socks, msgs):
                out = []
                for s, m in zip(socks, msgs):
                    s.sendto(m, ("127.0.0.1", proxy.port))
                    data, addr = s.recvfrom(65535)
                    assert addr == ("127.0.0.1", proxy.port)
                    out.append(data)
                return out

            socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
            for s in socks:
                s.settimeout(5)
            a1, b1, a2 = await asyncio.to_thread(
                exchange, [socks[0], socks[1], socks[0]], [b"a1", b"b1", b"a2"]
            )
            assert a1.startswith(b"echo:a1|") and b1.startswith(b"echo:b1|")
            # one backend socket per client, reused by the client's later datagrams
            assert a1.split(b"|")[1] == a2.split(b"|")[1] != b1.split(b"|")[1]
            assert len(proxy._flows) == 2
            big = os.urandom(60000)
            (got,) = await asyncio.to_thread(exchange, [socks[0]], [big])
            assert got[5:60005] == big
            await asyncio.sleep(0.8)
            assert not proxy._flows  # idle flows expire
            (a3,) = await asyncio.to_thread(exchange, [socks[0]], [b"a3"])
            assert a3.startswith(b"echo:a3|") and len(proxy._flows) == 1
            for s in socks:
                s.close()
        finally:
            await proxy.close()
            backend.close()
        assert not proxy._flows

    run(main())


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_listener_is_v6_only(run):
    async def main():
        async def handler(reader, writer):
            writer.write(b"pong:" + await reader.read())
            writer.close()

        server, bport = await backend_server(handler)
        proxy = await start_proxy("tcp", "::1", 0, "127.0.0.1", bport)
        try:
            reader, writer = await asyncio.open_connection("::1", proxy.port)
            writer.write(b"ping")
            writer.write_eof()
            assert await reader.read() == b"pong:ping"
            writer.close()
            # Docker publishes 0.0.0.0 and :: separately: the IPv4 side stays free
            v4 = await start_proxy("tcp", "127.0.0.1", proxy.port, "127.0.0.1", bport)
            await v4.close()
        finally:
            await proxy.close()
            server.close()

    run(main())
