"""Proxy helper processes on loopback: they proxy, a second start on their port fails with
Docker's message, adoption takes the live helper over, stop frees the port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from dockyard.errors import Internal
from dockyard.network import proxyproc


async def _echo_backend() -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.read(100))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _roundtrip(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(100), 5)
    writer.close()
    return data


class _UDPEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(b"echo:" + data, addr)  # type: ignore[attr-defined]


async def _udp_roundtrip(port: int) -> bytes:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(b"hi")
        return await asyncio.wait_for(got, 5)
    finally:
        transport.close()


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), f"helper {pid} still running"


def _assert_free(port: int) -> None:
    with socket.socket() as s:
        # free again (TIME_WAIT leftovers aside: SO_REUSEADDR, as the proxy binds)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_helper_proxies_is_adopted_and_stops():
    async def scenario(run_dir: str) -> None:
        server, backend = await _echo_backend()
        p = await proxyproc.start(run_dir, "tcp", "127.0.0.1", 0, "127.0.0.1", backend)
        try:
            assert p.port > 0 and os.path.exists(f"/proc/{p.pid}")
            assert p.pid != os.getpid()
            assert await _roundtrip(p.port) == b"echo:hi"
            with pytest.raises(Internal, match="port is already allocated"):
                await proxyproc.start(run_dir, "tcp", "127.0.0.1", p.port, "127.0.0.1", backend)
            # another backend is not adopted (nor is its port closed)
            with pytest.raises(Internal, match="port is already allocated"):
                await proxyproc.start(
                    run_dir, "tcp", "127.0.0.1", p.port, "127.0.0.2", backend, adopt=True
                )
            again = await proxyproc.start(
                run_dir, "tcp", "127.0.0.1", p.port, "127.0.0.1", backend, adopt=True
            )
            assert again.pid == p.pid
            assert await _roundtrip(p.port) == b"echo:hi"
            # a second port is served by the same helper; closing it leaves the first
            q = await proxyproc.start(run_dir, "tcp", "127.0.0.1", 0, "127.0.0.1", backend)
            assert q.pid == p.pid and q.port != p.port
            assert await _roundtrip(q.port) == b"echo:hi"
            await q.close()
            _assert_free(q.port)
            assert await _roundtrip(p.port) == b"echo:hi"
        finally:
            await proxyproc.stop(run_dir, "tcp", "127.0.0.1", p.port)
            server.close()
        _assert_free(p.port)
        # no port left: the helper exits, and the next port starts another
        await asyncio.to_thread(_wait_gone, p.pid)
        server, backend = await _echo_backend()
        r = await proxyproc.start(run_dir, "tcp", "127.0.0.1", 0, "127.0.0.1", backend)
        try:
            assert r.pid != p.pid
            assert await _roundtrip(r.port) == b"echo:hi"
        finally:
            await r.close()
            server.close()
        await asyncio.to_thread(_wait_gone, r.pid)

    with tempfile.TemporaryDirectory() as run_dir:
        asyncio.run(scenario(run_dir))


def test_one_helper_serves_many_ports_in_little_memory():
    """Issue 14: 20 published ports cost one helper of ~20 MB, not 20 helpers of ~21 MB."""

    async def scenario(run_dir: str) -> None:
        server, backend = await _echo_backend()
        ports = []
        try:
            for _ in range(20):
                ports.append(
                    await proxyproc.start(run_dir, "tcp", "127.0.0.1", 0, "127.0.0.1", backend)
                )
            loop = asyncio.get_running_loop()
            udp, _ = await loop.create_datagram_endpoint(_UDPEcho, local_addr=("127.0.0.1", 0))
            uport = udp.get_extra_info("sockname")[1]
            ports.append(await proxyproc.start(run_dir, "udp", "127.0.0.1", 0, "127.0.0.1", uport))
            assert len({p.pid for p in ports}) == 1
            for p in ports[:20]:
                assert await _roundtrip(p.port) == b"echo:hi"
            assert await _udp_roundtrip(ports[20].port) == b"echo:hi"
            udp.close()
            assert _rss_kb(ports[0].pid) < 40 * 1024
        finally:
            for p in ports:
                await p.close()
            server.close()
        if ports:
            await asyncio.to_thread(_wait_gone, ports[0].pid)

    with tempfile.TemporaryDirectory() as run_dir:
        asyncio.run(scenario(run_dir))


def test_per_port_helpers_of_an_older_daemon_are_adopted_and_stopped():
    """An upgrade with running containers: ports served by the old one-helper-per-port layout
    (``<proto>_<ip>_<port>.json``) are adopted at restore and ended by ``close``/``stop``."""

    async def scenario(run_dir: str) -> None:
        helpers = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
        try:
            for port, proc in zip((40001, 40002), helpers, strict=True):
                with open(os.path.join(run_dir, f"tcp_127.0.0.1_{port}.json"), "w") as f:
                    json.dump(
                        {
                            "pid": proc.pid,
                            "start": proxyproc._start_time(proc.pid),
                            "backend": ["10.0.0.2", 80],
                        },
                        f,
                    )
            p = await proxyproc.start(
                run_dir, "tcp", "127.0.0.1", 40001, "10.0.0.2", 80, adopt=True
            )
            assert (p.pid, p.port) == (helpers[0].pid, 40001)
            await p.close()
            assert helpers[0].wait(5) == -signal.SIGTERM
            await proxyproc.stop(run_dir, "tcp", "127.0.0.1", 40002)
            assert helpers[1].wait(5) == -signal.SIGTERM
            assert not [n for n in os.listdir(run_dir) if n.endswith(".json")]
        finally:
            for proc in helpers:
                proc.kill()
                proc.wait()

    with tempfile.TemporaryDirectory() as run_dir:
        asyncio.run(scenario(run_dir))
