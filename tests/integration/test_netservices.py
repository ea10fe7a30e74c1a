"""Network services against real namespaces and sockets: the embedded DNS server inside a
network namespace made here, and the userland proxy.  No dockyardd needed; root needed.
Traffic stays on loopback and in the namespaces these tests create."""

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from dockyard.network.dns import Resolver

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


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
        "nsenter", f"--net={netns}", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
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
        Proto, local_addr=("127.0.0.1", 0))
    return transport, f"127.0.0.1:{transport.get_extra_info('sockname')[1]}", seen


def lookup(key, name):
    return {("c1", "web"): ["10.0.0.2", "10.0.0.3"]}.get((key, name), [])


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
            lines = await client(netns, "web", "A", "udp", "web", "A", "tcp",
                                 "www.example", "A", "udp", "nowhere.example", "A", "udp")
            assert lines == ["0 10.0.0.2 10.0.0.3", "0 10.0.0.2 10.0.0.3",
                             "0 192.0.2.7", f"{RCODE.NXDOMAIN}"]
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
            "error TimeoutError", "error ConnectionRefusedError"]
        again = await resolver.serve_in_netns(netns, "c1")
        assert await client(netns, "web", "A", "tcp") == ["0 10.0.0.2 10.0.0.3"]
        again.close()
        await again.wait_closed()

    asyncio.run(main())


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
