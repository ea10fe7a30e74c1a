"""Attach and exec streams through the raw Engine API, side by side on the reference dockerd
and on dockyardd: server-side detach keys (moby scans a TTY client's stdin for them), the end
of a client's input, refusals, and the websocket attach (``GET /containers/{id}/attach/ws``).

Hijacked streams are driven over a raw unix socket so each write reaches the daemon as its
own read (the escape scanner's behaviour depends on how input is split); websockets with
aiohttp's client.  Every container is made with ``--network none`` semantics (the reference
dockerd has no bridge) and force-removed by the ``names`` finalizer even when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import urllib.parse
import uuid

import aiohttp
import pytest
from engines import api_request

V = "/v1.41"


@pytest.fixture
def names(engine):
    made: list[str] = []

    def make() -> str:
        made.append(f"dyt-at-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    for name in made:
        api_request(engine, "DELETE", f"/containers/{name}?force=1")


def create(engine, name: str, cmd: list[str], start: bool = True, **config) -> None:
    body = {"Image": "busybox", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}, **config}
    status, out = api_request(
        engine, "POST", f"{V}/containers/create?name={name}", json.dumps(body).encode()
    )
    assert status == 201, out
    if start:
        status, out = api_request(engine, "POST", f"{V}/containers/{name}/start")
        assert status == 204, out


def actions_after_start(engine, name: str) -> list[str]:
    """The container's event actions after its start, until now.

    The whole life of the (uniquely named) container is read and cut after its ``start``:
    a wall-clock window drawn between two requests took in the start event on one run and
    missed the attach on another, as the engine's event stamps and the test's clock differ
    by a millisecond either way."""
    filters = urllib.parse.quote(json.dumps({"container": [name]}))
    since = time.time() - 300
    status, out = api_request(
        engine, "GET", f"{V}/events?since={since:.3f}&until={time.time():.3f}&filters={filters}"
    )
    assert status == 200, out
    seen = [json.loads(line)["Action"] for line in out.splitlines() if line.strip()]
    assert "start" in seen, seen
    return seen[len(seen) - seen[::-1].index("start") :]


def is_dockerd(engine) -> bool:
    return engine.sock.endswith("docker.sock")


def state(engine, name: str) -> dict:
    status, out = api_request(engine, "GET", f"{V}/containers/{name}/json")
    assert status == 200, out
    return json.loads(out)["State"]


# ---- hijacked streams on a raw socket -------------------------------------------------------
class Raw:
    """One hijacked connection: the status line and headers, then raw bytes both ways."""

    def __init__(self, engine, path: str, body: dict | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(engine.sock)
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + payload)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        head_bytes, _, self.pending = buf.partition(b"\r\n\r\n")
        lines = head_bytes.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }

    def send(self, *pieces: bytes, gap: float = 0.3) -> None:
        """Each piece on its own, with a pause, so the daemon reads them one by one."""
        for piece in pieces:
            time.sleep(gap)
            try:
                self.sock.sendall(piece)
            except OSError:
                return  # the daemon already closed (after a detach): what follows is dropped anyway

    def read(self, timeout: float = 10.0, most: float = 30.0) -> tuple[bytes, bool]:
        """Everything until EOF (True), or until nothing came for ``timeout`` seconds or
        ``most`` seconds went by (False)."""
        out, self.pending = self.pending, b""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + most
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False

    def body(self) -> bytes:
        """An error answer's body (dockerd closes after it, aiohttp keeps the connection)."""
        size = self.headers.get("content-length")
        data, _ = self.read(2) if size is None else (self.pending, False)
        while size is not None and len(data) < int(size):
            data += self.sock.recv(65536)
        return data

    def close(self) -> None:
        self.sock.close()


def demux(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while len(data) >= 8:
        stream, size = struct.unpack(">BxxxI", data[:8])
        frames.append((stream, data[8 : 8 + size]))
        data = data[8 + size :]
    assert data == b"", data
    return frames


def attach(engine, name: str, query: str = "stream=1&stdin=1&stdout=1&stderr=1") -> Raw:
    conn = Raw(engine, f"{V}/containers/{name}/attach?{query}")
    assert conn.status == 101, conn.body()
    return conn


# ---- detach keys on the hijacked attach ----------------------------------------------------
def test_default_keys_detach_a_tty_attach_and_the_container_keeps_running(engine, names):
    name = names()
    create(engine, name, ["cat"], OpenStdin=True, Tty=True)
    conn = attach(engine, name)
    try:
        # a partial sequence broken by another byte is delivered intact; "x" goes in and
        # "\x10" is held back until "\x11" completes the sequence; "yy" is dropped
        conn.send(b"hello\n", b"a\x10b\n", b"x\x10", b"\x11yy\n")
        out, eof = conn.read()
    finally:
        conn.close()
    assert eof
    assert out == b"hello\r\nhello\r\na^Pb\r\na\x10b\r\nx"  # the pty echoes, cat repeats
    assert state(engine, name)["Running"]
    time.sleep(0.3)
    assert actions_after_start(engine, name) == ["attach", "detach"]
    # stdin stayed open: a new attach still reaches cat, whose line already holds the "x"
    again = attach(engine, name)
    try:
        again.send(b"back\n", b"\x10\x11")
        out, eof = again.read()
    finally:
        again.close()
    assert eof and out == b"back\r\nxback\r\n"


def test_custom_keys_and_a_whole_sequence_in_one_write(engine, names):
    name = names()
    create(engine, name, ["cat"], OpenStdin=True, Tty=True)
    conn = attach(engine, name, "stream=1&stdin=1&stdout=1&detachKeys=ctrl-a,x")
    try:
        # the default keys mean nothing now (the pty swallows ^Q, its XON); ^A then "y" is
        # passed on; in the last write the bytes before the keys go in, those after do not
        conn.send(b"p\x10\x11q\n", b"\x01y\n", b"end\n\x01xgone\n")
        out, eof = conn.read()
    finally:
        conn.close()
    assert eof
    assert out.startswith(b"p^Pq\r\np\x10q\r\n^Ay\r\n\x01y\r\n")
    assert state(engine, name)["Running"]

    def logs() -> bytes:
        return api_request(engine, "GET", f"{V}/containers/{name}/logs?stdout=1")[1]

    deadline = time.monotonic() + 5
    while b"end\r\nend\r\n" not in logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b"end\r\nend\r\n" in logs() and b"gone" not in logs()


def test_without_a_tty_stdin_is_not_scanned(engine, names):
    # moby looks for the keys only with a TTY: here they are data like any other
    name = names()
    create(engine, name, ["cat"], OpenStdin=True)
    conn = attach(engine, name)
    try:
        conn.send(b"x\x10\x11yy\n", b"\x10", b"\x11\n")
        out, eof = conn.read(timeout=1.5)
    finally:
        conn.close()
    assert not eof
    assert b"".join(data for _, data in demux(out)) == b"x\x10\x11yy\n\x10\x11\n"


def test_bad_detach_keys_are_refused(engine, names):
    name = names()
    create(engine, name, ["sleep", "300"], OpenStdin=True, Tty=True)
    for target in (name, "nosuch-dyt"):  # checked before the container is looked up
        conn = Raw(engine, f"{V}/containers/{target}/attach?stream=1&stdin=1&detachKeys=ctrl-A")
        try:
            assert (conn.status, conn.body()) == (400, b"Invalid detach keys (ctrl-A) provided\r\n")
            assert conn.headers["content-type"] == "application/vnd.docker.raw-stream"
        finally:
            conn.close()
    body = json.dumps({"Cmd": ["cat"], "AttachStdin": True, "Tty": True, "DetachKeys": "ctrl-p,,"})
    status, out = api_request(engine, "POST", f"{V}/containers/{name}/exec", body.encode())
    assert (status, json.loads(out)) == (
        500,
        {"message": "Invalid escape keys (ctrl-p,,) provided"},
    )
    assert state(engine, name)["Running"]


def test_attach_refusals(engine, names):
    conn = Raw(engine, f"{V}/containers/nosuch-dyt/attach?stream=1&stdout=1")
    try:
        assert (conn.status, conn.body()) == (404, b"No such container: nosuch-dyt\r\n")
    finally:
        conn.close()
    name = names()
    create(engine, name, ["sleep", "300"])
    assert api_request(engine, "POST", f"{V}/containers/{name}/pause")[0] == 204
    try:
        conn = Raw(engine, f"{V}/containers/{name}/attach?stream=1&stdout=1")
        try:
            assert (conn.status, conn.body()) == (
                409,
                f"container {name} is paused, unpause the container before attach\r\n".encode(),
            )
        finally:
            conn.close()
    finally:
        api_request(engine, "POST", f"{V}/containers/{name}/unpause")


# ---- the end of the client's input ----------------------------------------------------------
@pytest.mark.parametrize("tty", [False, True])
@pytest.mark.parametrize("stdin_once", [False, True])
def test_end_of_input_closes_stdin_only_for_stdin_once_without_tty(engine, names, tty, stdin_once):
    name = names()
    create(
        engine,
        name,
        ["sh", "-c", "cat; echo catdone; sleep 1; echo end"],
        start=False,
        OpenStdin=True,
        StdinOnce=stdin_once,
        Tty=tty,
    )
    conn = attach(engine, name, "stream=1&stdin=1&stdout=1")
    try:
        assert api_request(engine, "POST", f"{V}/containers/{name}/start")[0] == 204
        conn.send(b"hi\n")
        time.sleep(0.5)
        conn.sock.shutdown(socket.SHUT_WR)
        out, eof = conn.read(timeout=5)
    finally:
        conn.close()
    assert eof
    if tty:
        assert out == b"hi\r\nhi\r\n"
    else:
        text = b"".join(data for _, data in demux(out))
        assert text == (b"hi\ncatdone\nend\n" if stdin_once else b"hi\n")
    if tty or not stdin_once:  # the session ended, the container did not: cat still reads
        assert state(engine, name)["Running"]
    # removing it at once works even if it exited a moment ago
    assert api_request(engine, "DELETE", f"/containers/{name}?force=1")[0] == 204


def test_client_hanging_up_mid_sequence_leaves_the_daemon_serving(engine, names):
    name = names()
    create(
        engine,
        name,
        ["sh", "-c", "while true; do echo tick; sleep 0.1; done"],
        OpenStdin=True,
        Tty=True,
    )
    for _ in range(3):
        conn = attach(engine, name)
        conn.send(b"\x10")
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    conn = attach(engine, name)
    try:
        out, _ = conn.read(timeout=0.5, most=0.5)
    finally:
        conn.close()
    assert b"tick" in out
    assert state(engine, name)["Running"]


# ---- exec start -----------------------------------------------------------------------------
def test_exec_detach_keys_come_from_the_create_body(engine, names):
    name = names()
    create(engine, name, ["sleep", "300"])
    body = {
        "Cmd": ["cat"],
        "AttachStdin": True,
        "AttachStdout": True,
        "Tty": True,
        "DetachKeys": "ctrl-a,x",
    }
    status, out = api_request(
        engine, "POST", f"{V}/containers/{name}/exec", json.dumps(body).encode()
    )
    assert status == 201, out
    exec_id = json.loads(out)["Id"]
    conn = Raw(engine, f"{V}/exec/{exec_id}/start", {"Detach": False, "Tty": True})
    assert conn.status == 101
    try:
        # the default keys mean nothing here; ^A then x, in two writes, detach
        conn.send(b"hello\n", b"a\x10b\n", b"\x01", b"x", b"after\n")
        out, eof = conn.read()
    finally:
        conn.close()
    assert eof
    status, raw = api_request(engine, "GET", f"{V}/exec/{exec_id}/json")
    inspect = json.loads(raw)
    assert inspect["DetachKeys"] == "AXg="  # moby shows the parsed bytes, base64
    assert state(engine, name)["Running"]
    echoed = b"hello\r\nhello\r\na^Pb\r\na\x10b\r\n"
    # dockerd 20.10 reports the detach as a failure and ends the exec (exit code 126);
    # the process itself goes on running
    assert out == echoed + b"exec attach failed: error on attach stdin: read escape sequence\r\n"
    assert (inspect["Running"], inspect["ExitCode"]) == (False, 126)


# ---- websocket attach -----------------------------------------------------------------------
async def _ws(
    engine, path: str, sends=(), start: str | None = None, wait: float = 8.0, gap: float = 0.3
) -> tuple[list[tuple[str, bytes]], int | None, bool]:
    """Connect, optionally start a container, send each item (str → text frame), collect
    frames until the daemon closes.  Returns (frames, close code, closed in time)."""
    connector = aiohttp.UnixConnector(path=engine.sock)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.ws_connect("http://docker" + path) as ws:
            frames: list[tuple[str, bytes]] = []

            async def collect() -> None:
                async for msg in ws:
                    data = msg.data.encode() if isinstance(msg.data, str) else msg.data
                    frames.append((msg.type.name, data))

            reader = asyncio.create_task(collect())
            if start:
                await asyncio.sleep(0.3)
                await asyncio.to_thread(
                    api_request, engine, "POST", f"{V}/containers/{start}/start"
                )
            for item in sends:
                await asyncio.sleep(gap)
                try:
                    await (ws.send_str(item) if isinstance(item, str) else ws.send_bytes(item))
                except ConnectionError:
                    break
            try:
                await asyncio.wait_for(asyncio.shield(reader), wait)
                closed = True
            except TimeoutError:
                closed = False
                reader.cancel()
            return frames, ws.close_code, closed


def ws(engine, path: str, **kw):
    return asyncio.run(_ws(engine, path, **kw))


def test_ws_output_is_raw_binary_frames_then_a_normal_close(engine, names):
    name = names()
    create(
        engine,
        name,
        ["sh", "-c", "sleep 0.5; echo out; sleep 0.3; echo err >&2; sleep 0.3; echo out2"],
        start=False,
    )
    frames, code, closed = ws(
        engine, f"{V}/containers/{name}/attach/ws?stream=1&stdout=1&stderr=1", start=name
    )
    assert closed and code == 1000
    assert {kind for kind, _ in frames} == {"BINARY"}
    assert b"".join(data for _, data in frames) == b"out\nerr\nout2\n"  # never multiplexed
    # logs only, on the exited container: the same bytes, then the end (before API 1.42 the
    # stdout/stderr flags are ignored: both streams come)
    frames, _, closed = ws(engine, f"{V}/containers/{name}/attach/ws?logs=1&stdout=1")
    assert closed and b"".join(data for _, data in frames) == b"out\nerr\nout2\n"


def test_ws_stdin_text_and_binary_frames_reach_the_container(engine, names):
    name = names()
    create(engine, name, ["cat"], OpenStdin=True)
    frames, _, closed = ws(
        engine,
        f"{V}/containers/{name}/attach/ws?stream=1&stdin=1&stdout=1",
        sends=["text\n", b"bin\n", b"x\x10\x11\n"],
        wait=1.5,
    )
    assert not closed  # cat goes on; the client ends the session
    assert b"".join(data for _, data in frames) == b"text\nbin\nx\x10\x11\n"
    assert state(engine, name)["Running"]
    _status, out = api_request(engine, "GET", f"{V}/containers/{name}/logs?stdout=1")
    assert b"".join(data for _, data in demux(out)) == b"text\nbin\nx\x10\x11\n"


def test_ws_detach_keys_with_a_tty(engine, names):
    name = names()
    create(engine, name, ["cat"], OpenStdin=True, Tty=True)
    frames, code, closed = ws(
        engine,
        f"{V}/containers/{name}/attach/ws?stream=1&stdin=1&detachKeys=ctrl-a,x",
        sends=["text\n", b"y\x01", b"xgone\n"],
    )
    assert closed and code == 1000
    assert b"".join(data for _, data in frames) == b"text\r\ntext\r\ny"
    assert state(engine, name)["Running"]


def test_ws_refusals(engine, names):
    async def handshake(path: str, headers: dict | None = None) -> tuple[int, bytes]:
        connector = aiohttp.UnixConnector(path=engine.sock)
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                async with session.ws_connect("http://docker" + path, headers=headers):
                    return 101, b""
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status, b""

    name = names()
    create(engine, name, ["sleep", "300"])
    assert asyncio.run(handshake(f"{V}/containers/nosuch-dyt/attach/ws?stream=1")) == (404, b"")
    status, out = api_request(
        engine, "GET", f"{V}/containers/{name}/attach/ws?stream=1&detachKeys=ctrl-"
    )
    assert (status, json.loads(out)) == (400, {"message": "Invalid detach keys (ctrl-) provided"})
    status, out = api_request(engine, "GET", f"{V}/containers/{name}/attach/ws?stream=1")
    assert status == 400 and b"not websocket protocol" in out  # dockerd: text; dockyardd: JSON
    assert state(engine, name)["Running"]


def test_ws_client_hanging_up_leaves_the_daemon_serving(engine, names):
    name = names()
    create(engine, name, ["sh", "-c", "while true; do echo tick; sleep 0.05; done"], OpenStdin=True)

    async def abort() -> None:
        connector = aiohttp.UnixConnector(path=engine.sock)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.ws_connect(
                f"http://docker{V}/containers/{name}/attach/ws?stream=1&stdin=1"
            ) as w:
                await w.receive()
                w._response.connection.transport.abort()  # no close frame, no FIN: a reset

    for _ in range(3):
        try:
            asyncio.run(abort())
        except (aiohttp.ClientError, ConnectionError):
            pass
    frames, _, _ = ws(engine, f"{V}/containers/{name}/attach/ws?stream=1", wait=0.5)
    assert b"tick" in b"".join(data for _, data in frames)
    assert state(engine, name)["Running"]
