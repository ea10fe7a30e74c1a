"""The embedded DNS server on the wire: served on loopback in the host namespace, queried
with dnslib; forwarding goes to a fake upstream on loopback (never a real resolver)."""

import asyncio
import socket
import struct

import pytest
import uvloop
from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSRecord

from dockyard.network.dns import Resolver, _bind_pair, _ptr_address, split_hostport

CONTAINERS = {
    ("c1", "web"): ["10.0.0.2"],
    ("c1", "web.net1"): ["10.0.0.2"],
    ("c1", "db"): ["10.0.0.3", "fd00::3"],
    ("c1", "v4only"): ["10.0.0.4"],
    ("c1", "many"): [f"10.0.1.{i}" for i in range(1, 9)],
    ("c1", "huge"): [f"10.0.2.{i}" for i in range(1, 61)],
    ("c2", "other"): ["10.9.0.2"],
}


def lookup(key, name):
    lookup.calls.append((key, name))
    return CONTAINERS.get((key, name), [])


async def reverse(key, ip):  # coroutine callbacks are accepted too
    return {"10.0.0.2": ["web.net1"], "fd00::3": ["db.net1."]}.get(ip, [])


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    lookup.calls = []
    return asyncio.run if request.param == "asyncio" else uvloop.run


class FakeUpstream:
    """A DNS server on 127.0.0.1 (UDP+TCP, same port) with scripted behaviour per name."""

    def __init__(self):
        self.queries = []  # (proto, name)

    def answer(self, data: bytes, proto: str) -> bytes | None:
        req = DNSRecord.parse(data)
        name = str(req.q.qname).rstrip(".")
        self.queries.append((proto, name))
        reply = req.reply()
        if name == "slow.example":
            return None
        if name == "fail.example":
            reply.header.rcode = RCODE.SERVFAIL
        elif name == "big.example" and proto == "udp":
            reply.header.tc = 1
        elif name == "big.example":
            for i in range(1, 51):
                reply.add_answer(RR(req.q.qname, QTYPE.A, rdata=A(f"192.0.2.{i}"), ttl=30))
        elif name.endswith(".example") or "." not in name:
            reply.add_answer(RR(req.q.qname, QTYPE.A, rdata=A("192.0.2.1"), ttl=30))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()

    async def start(self):
        loop = asyncio.get_running_loop()
        up = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                out = up.answer(data, "udp")
                if out is not None:
                    self.transport.sendto(out, addr)

        # One port free for both protocols (a UDP port's number can be taken for TCP by
        # another process: binding them one after the other flaked on a loaded run).
        udp_sock, tcp_sock = _bind_pair("127.0.0.1", 0)
        self.udp, _ = await loop.create_datagram_endpoint(Proto, sock=udp_sock)
        self.port = self.udp.get_extra_info("sockname")[1]

        async def client(reader, writer):
            try:
                while True:
                    (n,) = struct.unpack("!H", await reader.readexactly(2))
                    out = up.answer(await reader.readexactly(n), "tcp")
                    if out is not None:
                        writer.write(struct.pack("!H", len(out)) + out)
            except asyncio.IncompleteReadError:
                writer.close()

        self.tcp = await asyncio.start_server(client, sock=tcp_sock)
        return self

    def close(self):
        self.udp.close()
        self.tcp.close()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"


async def query_udp(port, name, qtype="A", edns=None, host="127.0.0.1"):
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=edns))
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, (host, port))
        await loop.sock_sendall(s, q.pack())
        data = await asyncio.wait_for(loop.sock_recv(s, 65535), 5)
    reply = DNSRecord.parse(data)
    assert reply.header.id == q.header.id
    return reply


async def query_tcp(port, name, qtype="A"):
    q = DNSRecord.question(name, qtype)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(struct.pack("!H", len(q.pack())) + q.pack())
    (n,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))
    reply = DNSRecord.parse(await reader.readexactly(n))
    writer.close()
    return reply


def addrs(reply):
    return [str(rr.rdata) for rr in reply.rr]


def test_helpers():
    assert split_hostport("1.1.1.1") == ("1.1.1.1", 53)
    assert split_hostport("1.1.1.1:5353") == ("1.1.1.1", 5353)
    assert split_hostport("fd00::1") == ("fd00::1", 53)
    assert split_hostport("[fd00::1]:5353") == ("fd00::1", 5353)
    assert _ptr_address("2.0.0.10.in-addr.arpa") == "10.0.0.2"
    assert _ptr_address("3.0.0.0" + ".0" * 24 + ".0.0.d.f.ip6.arpa") == "fd00::3"
    assert _ptr_address("x.in-addr.arpa") is None


def test_answers_container_names(run):
    async def main():
        srv = await Resolver(lookup, reverse).serve("c1", "127.0.0.1", 0)
        try:
            r = await query_udp(srv.port, "web")
            assert r.header.rcode == RCODE.NOERROR and r.header.ra and not r.header.aa
            assert addrs(r) == ["10.0.0.2"] and r.rr[0].ttl == 600
            assert str(r.rr[0].rname) == "web."
            # names are looked up lower-case, without the trailing dot; scoped by key
            assert addrs(await query_udp(srv.port, "WEB.net1.")) == ["10.0.0.2"]
            assert ("c1", "web.net1") in lookup.calls
            r = await query_udp(srv.port, "db", "AAAA")
            assert [rr.rtype for rr in r.rr] == [QTYPE.AAAA] and addrs(r) == ["fd00::3"]
            assert addrs(await query_udp(srv.port, "db")) == ["10.0.0.3"]
            # a known name without IPv6: empty NOERROR, not forwarded
            r = await query_udp(srv.port, "v4only", "AAAA")
            assert r.header.rcode == RCODE.NOERROR and r.rr == []
            # over TCP as well
            assert addrs(await query_tcp(srv.port, "web")) == ["10.0.0.2"]
            # PTR through the reverse callback
            r = await query_udp(srv.port, "2.0.0.10.in-addr.arpa", "PTR")
            assert addrs(r) == ["web.net1."]
            r = await query_tcp(srv.port, "3.0.0.0" + ".0" * 24 + ".0.0.d.f.ip6.arpa", "PTR")
            assert addrs(r) == ["db.net1."]
        finally:
            srv.close()
            await srv.wait_closed()

    run(main())


def test_round_robin_and_truncation(run):
    async def main():
        srv = await Resolver(lookup).serve("c1", "127.0.0.1", 0)
        try:
            firsts, orders = set(), set()
            for _ in range(30):
                got = addrs(await query_udp(srv.port, "many"))
                assert sorted(got) == sorted(CONTAINERS[("c1", "many")])
                firsts.add(got[0])
                orders.add(tuple(got))
            assert len(firsts) > 2 and len(orders) > 10
            # 60 A records do not fit 512 bytes: TC over UDP, everything over TCP / EDNS
            r = await query_udp(srv.port, "huge")
            assert r.header.tc and r.rr == []
            assert len((await query_tcp(srv.port, "huge")).rr) == 60
            assert len((await query_udp(srv.port, "huge", edns=4096)).rr) == 60
        finally:
            srv.close()

    run(main())


def test_forwarding(run):
    async def main():
        up = await FakeUpstream().start()
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind(("127.0.0.1", 0))  # nothing answers here: port unreachable
        dead_addr = f"127.0.0.1:{dead.getsockname()[1]}"
        dead.close()
        resolver = Resolver(lookup, upstreams=[dead_addr, up.address], timeout=0.5)
        srv = await resolver.serve("c1", "127.0.0.1", 0)
        try:
            r = await query_udp(srv.port, "www.example")
            assert addrs(r) == ["192.0.2.1"] and r.rr[0].ttl == 30
            assert up.queries[-1] == ("udp", "www.example")
            r = await query_tcp(srv.port, "www.example")
            assert addrs(r) == ["192.0.2.1"] and up.queries[-1] == ("tcp", "www.example")
            # upstream NXDOMAIN is passed through
            assert (await query_udp(srv.port, "nowhere.test")).header.rcode == RCODE.NXDOMAIN
            # truncated over UDP: retried over TCP; the client gets all if it fits (EDNS)
            up.queries.clear()
            r = await query_udp(srv.port, "big.example", edns=4096)
            assert len(r.rr) == 50 and up.queries == [
                ("udp", "big.example"),
                ("tcp", "big.example"),
            ]
            r = await query_udp(srv.port, "big.example")
            assert r.header.tc and r.rr == []
            # upstream SERVFAIL or silence: SERVFAIL
            assert (await query_udp(srv.port, "fail.example")).header.rcode == RCODE.SERVFAIL
            assert (await query_udp(srv.port, "slow.example")).header.rcode == RCODE.SERVFAIL
            # other record types of container names are forwarded too
            up.queries.clear()
            await query_udp(srv.port, "web", "MX")
            assert up.queries == [("udp", "web")]
            # a single-label unknown name is forwarded...
            up.queries.clear()
            assert addrs(await query_udp(srv.port, "printer")) == ["192.0.2.1"]
            assert up.queries == [("udp", "printer")]
            # ... another container's name is not visible from c1
            up.queries.clear()
            await query_udp(srv.port, "other")
            assert up.queries == [("udp", "other")]
        finally:
            srv.close()
            up.close()

    run(main())


def test_ndots_set_and_no_upstreams(run):
    async def main():
        up = await FakeUpstream().start()
        srv = await Resolver(lookup).serve(
            "c1", "127.0.0.1", 0, upstreams=[up.address], ndots_set=True
        )
        bare = await Resolver(lookup).serve("c1", "127.0.0.1", 0)
        try:
            r = await query_udp(srv.port, "printer")
            assert r.header.rcode == RCODE.NOERROR and r.rr == [] and up.queries == []
            assert addrs(await query_udp(srv.port, "printer.example")) == ["192.0.2.1"]
            assert (await query_udp(bare.port, "x.example")).header.rcode == RCODE.SERVFAIL
            assert addrs(await query_udp(bare.port, "web")) == ["10.0.0.2"]
        finally:
            srv.close()
            bare.close()
            up.close()

    run(main())


def test_garbage_and_close(run):
    async def main():
        srv = await Resolver(lookup).serve("c1", "127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            await loop.sock_connect(s, ("127.0.0.1", srv.port))
            await loop.sock_sendall(s, b"\x00garbage")
            # still serving after garbage
            assert addrs(await query_udp(srv.port, "web")) == ["10.0.0.2"]
        port = srv.port
        srv.close()
        await srv.wait_closed()
        # both ports are free again
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", port))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("127.0.0.1", port))

    run(main())
