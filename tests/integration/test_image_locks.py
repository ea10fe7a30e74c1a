"""Work on one image never waits for work on another (issue 14): a ``load`` whose body is
still arriving does not hold up tag, rm, create/start or prune of other images, and
concurrent rm/create of one image end in a clean 404 or 409, never a 500 or a container
whose image is gone.  Ordering is asserted (the load's response has not come), not time."""

from __future__ import annotations

import hashlib
import io
import json
import os
import select
import socket
import tarfile
import threading
import time
from urllib.parse import quote

import pytest
from engines import UnixHTTPConnection, api_request


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _busybox_layer(daemon) -> bytes:
    """busybox's one layer, uncompressed, as ``docker save`` writes it."""
    status, body = api_request(daemon, "GET", "/images/busybox/get", timeout=60)
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return tar.extractfile(manifest[0]["Layers"][0]).read()


def _with_file(layer: bytes, name: str, data: bytes) -> bytes:
    """``layer`` plus one file: a new layer (new diff id) that still runs busybox."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(layer)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _archive(layers: list[bytes], tags: list[str], comment: str = "") -> bytes:
    diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "comment": comment,
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "test"} for _ in layers],
        }
    ).encode()
    files = {"config.json": config}
    files.update({f"l{i}.tar": x for i, x in enumerate(layers)})
    files["manifest.json"] = json.dumps(
        [
            {
                "Config": "config.json",
                "RepoTags": tags or None,
                "Layers": [f"l{i}.tar" for i in range(len(layers))],
            }
        ]
    ).encode()
    return _tar(files)


class SlowLoad:
    """A raw ``POST /images/load`` whose body is sent in two parts, the second on demand."""

    def __init__(self, daemon, body: bytes) -> None:
        self.body = body
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect(daemon.sock)
        head = (
            "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\n"
            "Content-Type: application/x-tar\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.half = len(body) // 2
        self.sock.sendall(head + body[: self.half])

    def answered(self) -> bool:
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def finish(self) -> tuple[int, bytes]:
        self.sock.sendall(self.body[self.half :])
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"0\r\n\r\n"):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1])
        return status, data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def cleanup(daemon):
    images: list[str] = []
    containers: list[str] = []
    yield images, containers
    for cid in containers:
        api_request(daemon, "DELETE", f"/containers/{cid}?force=1")
    for name in images:
        api_request(daemon, "DELETE", f"/images/{name}?force=1")


def _create(daemon, image: str, cmd: list[str]) -> tuple[int, dict]:
    status, body = api_request(
        daemon, "POST", "/containers/create", json.dumps({"Image": image, "Cmd": cmd}).encode()
    )
    return status, json.loads(body or b"{}")


def test_slow_load_does_not_block_other_images(daemon, cleanup):
    images, containers = cleanup
    base = _busybox_layer(daemon)
    own = _with_file(base, "marker", b"slow load\n")
    extra = _tar({"extra": b"x" * 4096})
    # A dangling image holding the load's first layer: prune removes it mid-load.
    status, _ = api_request(daemon, "POST", "/images/load?quiet=1", _archive([own], []))
    assert status == 200
    images += ["lockslow:1", "lockother:2"]
    load = SlowLoad(daemon, _archive([own, extra], ["lockslow:1"]))
    try:
        # tag, rm, create+start and prune of another image, all while the load is open.
        status, _ = api_request(daemon, "POST", "/images/busybox/tag?repo=lockother&tag=1")
        assert status == 201
        status, _ = api_request(daemon, "POST", "/images/busybox/tag?repo=lockother&tag=2")
        assert status == 201
        status, body = api_request(daemon, "DELETE", "/images/lockother:1")
        assert status == 200 and b"Untagged" in body
        status, created = _create(daemon, "lockother:2", ["true"])
        assert status == 201
        containers.append(created["Id"])
        status, _ = api_request(daemon, "POST", f"/containers/{created['Id']}/start")
        assert status == 204
        status, body = api_request(daemon, "POST", f"/containers/{created['Id']}/wait", timeout=60)
        assert status == 200 and json.loads(body)["StatusCode"] == 0
        status, body = api_request(
            daemon, "POST", "/images/prune?filters=" + quote(json.dumps({"dangling": ["true"]}))
        )
        assert status == 200
        assert json.loads(body)["ImagesDeleted"]  # the dangling image sharing `own`
        assert not load.answered()  # all of the above finished while the load was open
        status, reply = load.finish()
    finally:
        load.close()
    assert status == 200, reply
    assert b"Loaded image: lockslow:1" in reply
    status, created = _create(daemon, "lockslow:1", ["cat", "/marker", "/extra"])
    assert status == 201
    containers.append(created["Id"])
    assert api_request(daemon, "POST", f"/containers/{created['Id']}/start")[0] == 204
    status, body = api_request(daemon, "POST", f"/containers/{created['Id']}/wait", timeout=60)
    assert json.loads(body)["StatusCode"] == 0
    status, logs = api_request(daemon, "GET", f"/containers/{created['Id']}/logs?stdout=1")
    assert b"slow load" in logs


def test_rm_and_create_races_end_in_404_or_409(daemon, cleanup):
    images, containers = cleanup
    base = _busybox_layer(daemon)
    for i in range(8):
        name = f"lockrace:{i}"
        images.append(name)
        archive = _archive([base, _tar({f"race{i}": b"r"})], [name], comment=f"race {i}")
        assert api_request(daemon, "POST", "/images/load?quiet=1", archive)[0] == 200
        results: dict[str, tuple[int, bytes]] = {}

        def create(name=name, results=results):
            status, body = api_request(
                daemon, "POST", "/containers/create", json.dumps({"Image": name}).encode()
            )
            results["create"] = (status, body)

        def remove(name=name, results=results):
            results["rm"] = api_request(daemon, "DELETE", f"/images/{name}")

        threads = [threading.Thread(target=create), threading.Thread(target=remove)]
        if i % 2:
            threads.reverse()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        c_status, c_body = results["create"]
        r_status, r_body = results["rm"]
        assert (c_status, r_status) in ((201, 409), (404, 200)), (results, i)
        if c_status == 201:
            cid = json.loads(c_body)["Id"]
            containers.append(cid)
            body = api_request(daemon, "GET", f"/containers/{cid}/json")[1]
            image_id = json.loads(body)["Image"]
            assert api_request(daemon, "GET", f"/images/{image_id}/json")[0] == 200
            assert b"unable to remove repository reference" in r_body
            assert api_request(daemon, "GET", f"/images/{name}/json")[0] == 200  # still tagged
        else:
            assert b"No such image" in c_body
            assert b"Deleted" in r_body


def test_tag_moving_between_images_while_one_is_removed(daemon, cleanup):
    images, _ = cleanup
    base = _busybox_layer(daemon)
    for i in range(6):
        a, b = f"lockmove-a:{i}", f"lockmove-b:{i}"
        images += [a, b, f"lockmove:{i}"]
        for name in (a, b):
            archive = _archive([base, _tar({name.replace(":", "-"): b"m"})], [name], name)
            assert api_request(daemon, "POST", "/images/load?quiet=1", archive)[0] == 200
        api_request(daemon, "POST", f"/images/{a}/tag?repo=lockmove&tag={i}")
        a_id = json.loads(api_request(daemon, "GET", f"/images/{a}/json")[1])["Id"]
        results: dict[str, int] = {}

        def move(i=i, b=b, results=results):
            results["tag"] = api_request(daemon, "POST", f"/images/{b}/tag?repo=lockmove&tag={i}")[
                0
            ]

        def remove(a_id=a_id, results=results):
            results["rm"] = api_request(daemon, "DELETE", f"/images/{a_id}?force=1")[0]

        threads = [threading.Thread(target=move), threading.Thread(target=remove)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == {"tag": 201, "rm": 200}
        # Whichever came first, the moved tag ends on b and b is intact.
        status, body = api_request(daemon, "GET", f"/images/lockmove:{i}/json")
        assert status == 200
        b_id = json.loads(api_request(daemon, "GET", f"/images/{b}/json")[1])["Id"]
        assert json.loads(body)["Id"] == b_id
        assert api_request(daemon, "GET", f"/images/{a_id}/json")[0] == 404


def test_forced_rmi_keeps_the_layers_a_container_stands_on(daemon, cleanup):
    images, containers = cleanup
    base = _busybox_layer(daemon)
    own = _with_file(base, "forced", b"still here\n")
    images.append("lockforced:1")
    archive = _archive([own, _tar({"top": b"t"})], ["lockforced:1"], "forced")
    assert api_request(daemon, "POST", "/images/load?quiet=1", archive)[0] == 200
    status, created = _create(daemon, "lockforced:1", ["cat", "/forced", "/top"])
    assert status == 201
    containers.append(created["Id"])
    status, body = api_request(daemon, "DELETE", "/images/lockforced:1?force=1")
    assert status == 200 and b"Deleted" in body  # moby deletes it: the container is stopped
    # Collection runs again (another image goes); the container's layers stay.
    images.append("lockforced-other:1")
    other = _archive([_tar({"o": b"o"})], ["lockforced-other:1"], "other")
    assert api_request(daemon, "POST", "/images/load?quiet=1", other)[0] == 200
    assert api_request(daemon, "DELETE", "/images/lockforced-other:1")[0] == 200
    assert api_request(daemon, "POST", f"/containers/{created['Id']}/start")[0] == 204
    status, body = api_request(daemon, "POST", f"/containers/{created['Id']}/wait", timeout=60)
    assert json.loads(body)["StatusCode"] == 0
    logs = api_request(daemon, "GET", f"/containers/{created['Id']}/logs?stdout=1")[1]
    assert b"still here" in logs
    # Once the container goes, a prune reclaims the layers the forced rmi left.
    api_request(daemon, "DELETE", f"/containers/{created['Id']}")
    containers.remove(created["Id"])
    status, body = api_request(daemon, "POST", "/images/prune")
    assert status == 200
    assert len(json.loads(body)["ImagesDeleted"] or []) >= 2, body


@pytest.mark.parametrize("engine_name", ["dockerd", "daemon"])
def test_rmi_during_save_lets_the_save_finish(request, engine_name):
    """``docker save`` of an image being removed: the rmi answers at once (as dockerd does)
    and the save still writes the whole image; then its layers go (dockyardd: checked on
    disk).  The client reads the first bytes, lets the rmi run, then reads the rest."""
    engine = request.getfixturevalue(engine_name)
    big = bytes(range(256)) * (24 * 4096)  # 24 MiB: more than the socket buffers hold
    base = _busybox_layer(engine)
    tag = "dy-save-rmi:1"
    status, _ = api_request(
        engine,
        "POST",
        "/images/load?quiet=1",
        _archive([base, _tar({"big": big}), _tar({"last": b"after the big one\n"})], [tag]),
        timeout=120,
    )
    assert status == 200
    before = _layer_dirs(engine) if engine_name == "daemon" else None
    conn = UnixHTTPConnection(engine.sock, 120)
    try:
        conn.request("GET", f"/v1.41/images/{quote(tag)}/get")
        resp = conn.getresponse()
        assert resp.status == 200
        head = resp.read(65536)
        status, body = api_request(engine, "DELETE", f"/images/{quote(tag)}?force=1")
        assert status == 200, body
        rest = resp.read()
    finally:
        conn.close()
    with tarfile.open(fileobj=io.BytesIO(head + rest)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == [tag]
        layers = [tar.extractfile(name).read() for name in manifest[0]["Layers"]]
    assert len(layers) == 3
    with tarfile.open(fileobj=io.BytesIO(layers[1])) as layer:
        assert layer.extractfile("big").read() == big
    with tarfile.open(fileobj=io.BytesIO(layers[2])) as layer:  # opened after the rmi
        assert layer.extractfile("last").read() == b"after the big one\n"
    status, _ = api_request(engine, "GET", f"/images/{quote(tag)}/json")
    assert status == 404
    if before is not None:  # the saved layer went once the save was done
        deadline = time.monotonic() + 10
        while len(_layer_dirs(engine)) >= len(before) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_layer_dirs(engine)) == len(before) - 2


def _layer_dirs(engine) -> set[str]:
    """dockyardd's overlay2 layer directories."""
    return {n for n in os.listdir(os.path.join(engine.root, "data", "overlay2")) if n != "l"}
