"""Pull through network faults: a registry that hangs or resets mid-blob, one that never
accepts a connection, and the download limit seen from the registry's side.

The daemon here is this module's own, with short registry timeouts
(``DOCKYARD_REGISTRY_READ_TIMEOUT``/``_CONNECT_TIMEOUT``), two download attempts and one
download at a time, so faults that take a minute in production take seconds here.
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from engines import api_request, start_dockyardd
from regpeers import data_state, digest, layer_tar, make_image

TIMEOUT = 2.0  # seconds, read and connect
ENV = {
    "DOCKYARD_REGISTRY_READ_TIMEOUT": str(TIMEOUT),
    "DOCKYARD_REGISTRY_CONNECT_TIMEOUT": str(TIMEOUT),
}
FLAGS = ("--max-download-attempts", "2", "--max-concurrent-downloads", "1")


@pytest.fixture(scope="module")
def dy(workdir):
    engine = start_dockyardd(os.path.join(workdir, "faults"), *FLAGS, env=ENV)
    try:
        yield engine
    finally:
        engine.stop()


def _pull(engine, name: str, tag: str) -> tuple[int, list[dict] | dict]:
    status, body = api_request(
        engine, "POST", f"/images/create?fromImage={name}&tag={tag}", timeout=120
    )
    if status != 200:
        return status, json.loads(body)
    return status, [json.loads(line) for line in body.splitlines()]


def _tar(size: int) -> bytes:
    return layer_tar({"data/blob": os.urandom(size), "etc/x": b"x\n"})


@pytest.mark.parametrize("fault", ["hang", "reset"])
def test_fault_mid_body_resumes_with_range(dy, fake, fault):
    tar = _tar(2_000_000)
    image = make_image([tar])
    layer = digest(image.layers[0])
    fake.add(f"{fault}/once:1", image)
    fake.blob_hook = lambda d, n, start: (fault, 600_000) if d == layer and n == 1 else None
    name = f"{fake.host}/{fault}/once:1"
    try:
        started = time.monotonic()
        status, lines = _pull(dy, f"{fake.host}/{fault}/once", "1")
        assert status == 200 and "error" not in lines[-1], lines[-3:]
        if fault == "hang":  # noticed by the read timeout, not after a minute
            assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 15
        assert any(m.get("status", "").startswith("Retrying in") for m in lines)
        ranges = [r for d, r in fake.ranges if d == layer]
        assert len(ranges) == 2 and ranges[0] == 0 and ranges[1] > 0  # resumed, not restarted
        image_id = dy.cli("inspect", "-f", "{{.Id}}", name).stdout.decode().strip()
        assert image_id == digest(image.config)
    finally:
        dy.cli("rmi", name)


@pytest.mark.parametrize("fault", ["hang", "reset"])
def test_persistent_fault_gives_up_naming_the_layer(dy, fake, fault):
    tar = _tar(1_000_000)
    image = make_image([_tar(300_000), tar])  # the first layer is applied, then dropped
    layer = digest(image.layers[1])
    fake.add(f"{fault}/always:1", image)
    fake.blob_hook = lambda d, n, start: (fault, 1000) if d == layer else None
    before = data_state(dy)
    started = time.monotonic()
    status, lines = _pull(dy, f"{fake.host}/{fault}/always", "1")
    elapsed = time.monotonic() - started
    assert status == 200
    error = lines[-1]["error"]
    assert error.startswith(f"error pulling layer {layer}: ") and "2 attempts" in error, error
    assert f"{fake.host}/v2/{fault}/always/blobs/{layer}" in error
    if fault == "hang":
        assert "timeout" in error
        assert 2 * TIMEOUT <= elapsed < 2 * TIMEOUT + 20
    else:
        assert "reset by peer" in error
        assert elapsed < 20
    assert fake.blob_gets[layer] == 2
    assert dy.cli("inspect", f"{fake.host}/{fault}/always:1").returncode != 0
    assert data_state(dy) == before  # no image, layer, layer directory, blob or ingest


def test_unreachable_registry_fails_within_the_connect_timeout(dy):
    """A registry that never accepts (a full listen backlog on loopback: SYNs are dropped,
    so connect() hangs as for a blackholed address) fails once the connect timeout has
    passed on each endpoint (HTTPS, then HTTP for an insecure registry), naming it."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):  # fill the backlog; the kernel then drops further SYNs
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.2)
        host = f"127.0.0.1:{port}"
        started = time.monotonic()
        status, body = _pull(dy, f"{host}/x", "latest")
        elapsed = time.monotonic() - started
        assert status == 500
        assert f'"http://{host}/v2/"' in body["message"] and "timeout" in body["message"]
        assert TIMEOUT <= elapsed < 2 * TIMEOUT + 10, elapsed
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_max_concurrent_downloads_bounds_blob_gets(dy, fake):
    """``--max-concurrent-downloads 1``: the registry never sees two blob GETs at once, and
    the layers beyond the first say "Waiting", as dockerd's."""
    image = make_image([_tar(100_000) for _ in range(3)])
    layers = {digest(layer) for layer in image.layers}
    fake.add("limit/img:1", image)
    fake.blob_hook = lambda d, n, start: ("stall", 0.4) if d in layers else None
    name = f"{fake.host}/limit/img:1"
    try:
        status, lines = _pull(dy, f"{fake.host}/limit/img", "1")
        assert status == 200 and "error" not in lines[-1], lines[-3:]
        assert fake.blob_max_active == 1
        assert all(fake.blob_gets[d] == 1 for d in layers)
        waiting = {m["id"] for m in lines if m.get("status") == "Waiting"}
        shorts = [d[7:19] for d in (digest(layer) for layer in image.layers)]
        assert waiting == set(shorts[1:])
    finally:
        dy.cli("rmi", name)
