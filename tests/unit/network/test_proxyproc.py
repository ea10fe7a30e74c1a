"""Proxy helper processes on loopback: they proxy, a second start on their port fails with
Docker's message, adoption takes the live helper over, stop frees the port."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile

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


def test_helper_proxies_is_adopted_and_stops():
    async def scenario(run_dir: str) -> None:
        server, backend = await _echo_backend()
        p = await proxyproc.start(run_dir, "tcp", "127.0.0.1", 0, "127.0.0.1", backend)
        try:
            assert p.port > 0 and os.path.exists(p.state_path)
            assert await _roundtrip(p.port) == b"echo:hi"
            with pytest.raises(Internal, match="port is already allocated"):
                await proxyproc.start(run_dir, "tcp", "127.0.0.1", p.port, "127.0.0.1", backend)
            # another backend is not adopted (nor is its helper stopped)
            with pytest.raises(Internal, match="port is already allocated"):
                await proxyproc.start(
                    run_dir, "tcp", "127.0.0.1", p.port, "127.0.0.2", backend, adopt=True
                )
            again = await proxyproc.start(
                run_dir, "tcp", "127.0.0.1", p.port, "127.0.0.1", backend, adopt=True
            )
            assert again.pid == p.pid
            assert await _roundtrip(p.port) == b"echo:hi"
        finally:
            await proxyproc.stop(run_dir, "tcp", "127.0.0.1", p.port)
            server.close()
        assert not os.path.exists(p.state_path)
        assert not os.path.exists(f"/proc/{p.pid}")
        with socket.socket() as s:
            # free again (TIME_WAIT leftovers aside: SO_REUSEADDR, as the proxy binds)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p.port))
            s.listen()

    with tempfile.TemporaryDirectory() as run_dir:
        asyncio.run(scenario(run_dir))
