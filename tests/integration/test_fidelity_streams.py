"""A client going away in the middle of a stream (issue 15), side by side on the reference
dockerd and on dockyardd: attach, ``logs -f``, ``events`` and exec output streams cut by the
client leave the daemon serving; on dockyardd they leave no traceback in its log and no
file descriptor behind.  The container is force-removed even when a test fails."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest
from engines import api_request, ping

V = "/v1.41"


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def chatty(engine):
    """A container printing a line every 50 ms."""
    name = f"dyt-fs-{uuid.uuid4().hex[:8]}"
    body = {
        "Image": "busybox",
        "Cmd": ["sh", "-c", "while true; do echo tick; sleep 0.05; done"],
        "HostConfig": {"NetworkMode": "none"},
    }
    status, out = api_request(
        engine, "POST", f"{V}/containers/create?name={name}", json.dumps(body).encode()
    )
    assert status == 201, out
    try:
        status, out = api_request(engine, "POST", f"{V}/containers/{name}/start")
        assert status == 204, out
        yield name
    finally:
        api_request(engine, "DELETE", f"{V}/containers/{name}?force=1")


def cut(engine, request: str, upgrade: bool = False) -> None:
    """Send ``request``, read some of the answer, then close the socket abruptly (RST)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(engine.sock)
    head = request + "\r\nHost: docker\r\n"
    if upgrade:
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    s.sendall((head + "Content-Length: 0\r\n\r\n").encode())
    got = b""
    while len(got) < 400:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    s.close()


def fds(engine) -> int | None:
    if engine.proc is None or not engine.sock.endswith("d.sock"):
        return None
    return len(os.listdir(f"/proc/{engine.proc.pid}/fd"))


def test_clients_going_away_mid_stream_leave_the_daemon_clean(engine, chatty):
    streams = [
        (f"POST {V}/containers/{chatty}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1", True),
        (f"GET {V}/containers/{chatty}/logs?follow=1&stdout=1&stderr=1 HTTP/1.1", False),
        (f"GET {V}/events HTTP/1.1", False),
    ]
    with open(engine.log, "rb") as f:
        log_start = len(f.read())

    def one_round() -> None:
        for request, upgrade in streams:
            if "events" not in request:
                cut(engine, request, upgrade)
                continue
            # events need something to say: a burst of container events
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(engine.sock)
            s.sendall(f"{request}\r\nHost: docker\r\n\r\n".encode())
            api_request(engine, "POST", f"{V}/containers/{chatty}/pause")
            api_request(engine, "POST", f"{V}/containers/{chatty}/unpause")
            s.recv(4096)
            s.close()
            api_request(engine, "POST", f"{V}/containers/{chatty}/pause")
            api_request(engine, "POST", f"{V}/containers/{chatty}/unpause")

    one_round()  # warm up (lazy imports, pools) before counting descriptors
    time.sleep(0.5)
    before = fds(engine)
    for _ in range(3):
        one_round()
    assert ping(engine.sock)
    status, out = api_request(engine, "GET", f"{V}/containers/{chatty}/json")
    assert status == 200 and json.loads(out)["State"]["Running"]
    if before is not None:
        deadline = time.monotonic() + 10
        while fds(engine) > before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert fds(engine) <= before
        with open(engine.log, "rb") as f:
            text = f.read()[log_start:].decode(errors="replace")
        assert "Traceback" not in text, text
        assert "ClientConnectionResetError" not in text, text
