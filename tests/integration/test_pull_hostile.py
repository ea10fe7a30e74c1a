"""Pull from a registry that misbehaves on purpose: wrong bytes, cut and stalled blobs,
hostile layers, schema 1, missing blobs; two pulls sharing a blob; kill -9 mid-pull.

Each failure must leave nothing behind: no tag, no image, no partial layer, no temp file.
The daemon here is this module's own (``--max-download-attempts 2``), so give-ups are quick.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sys
import tarfile
import threading
import time

import pytest
import zstandard

sys.path.insert(0, os.path.dirname(__file__))

from engines import api_request, start_dockyardd
from regpeers import data_state, digest, layer_tar, make_image

FLAGS = ("--max-download-attempts", "2")


@pytest.fixture(scope="module")
def engine(workdir):
    box = {"engine": start_dockyardd(os.path.join(workdir, "hostile"), *FLAGS)}
    try:
        yield box
    finally:
        box["engine"].stop()


@pytest.fixture
def dy(engine):
    return engine["engine"]


def _pull(engine, name: str, tag: str, platform: str = "") -> tuple[int, list[dict] | dict]:
    path = f"/images/create?fromImage={name}&tag={tag}"
    if platform:
        path += f"&platform={platform}"
    status, body = api_request(engine, "POST", path, timeout=120)
    if status != 200:
        return status, json.loads(body)
    return status, [json.loads(line) for line in body.splitlines()]


def _ingests(engine) -> list[str]:
    return os.listdir(os.path.join(engine.root, "data", "content", "ingest"))


def _has_blob(engine, d: str) -> bool:
    """Whether the diff tar ``d`` is kept: in the content store (while a layer is applied
    from it) or as tar-split metadata of an applied layer (after)."""
    data = os.path.join(engine.root, "data")
    split = os.path.join(data, "tarsplit", d[7:])
    return os.path.exists(os.path.join(data, "content", "blobs", "sha256", d[7:])) or bool(
        os.path.isdir(split) and os.listdir(split)
    )


def _image_ids(engine) -> set[str]:
    return set(engine.cli("images", "-aq", "--no-trunc").stdout.split())


def _tar(size: int = 200_000) -> bytes:
    return layer_tar({"data/blob": os.urandom(size), "etc/x": b"x\n"})


def _assert_nothing_left(dy, before: set, name: str, diff_ids: list[str]) -> None:
    assert _image_ids(dy) == before
    assert dy.cli("inspect", name).returncode != 0
    assert _ingests(dy) == []
    for d in diff_ids:
        assert not _has_blob(dy, d)


def test_digest_mismatch_fails_and_leaves_nothing(dy, fake):
    tar = _tar()
    image = make_image([tar])
    fake.add("bad/img:1", image)
    fake.blob_hook = lambda d, n, start: ("corrupt",) if d == digest(image.layers[0]) else None
    before = _image_ids(dy)
    status, lines = _pull(dy, f"{fake.host}/bad/img", "1")
    assert status == 200
    assert "filesystem layer verification failed for digest" in lines[-1]["error"]
    assert lines[-1]["errorDetail"]["message"] == lines[-1]["error"]
    _assert_nothing_left(dy, before, f"{fake.host}/bad/img:1", [digest(tar)])


def test_wrong_diff_id_fails_and_leaves_nothing(dy, fake):
    """The blob is the one the manifest names, but its tar is not the config's diff id: the
    apply it streams into refuses it, and nothing of the layer stays."""
    served, named = _tar(), _tar()
    image = make_image([named], compress=lambda _: gzip.compress(served, mtime=0))
    fake.add("bad/diffid:1", image)
    before = _image_ids(dy)
    status, lines = _pull(dy, f"{fake.host}/bad/diffid", "1")
    assert status == 200
    assert "not the diff id" in lines[-1]["error"], lines[-2:]
    _assert_nothing_left(dy, before, f"{fake.host}/bad/diffid:1", [digest(named), digest(served)])


def test_unrecordable_layer_is_fetched_again_into_the_store(dy, fake):
    """A tar that writes a name twice cannot be rebuilt from its layer: the pull fetches it
    a second time into the content store, so save still gives the very same tar."""
    import io

    def again(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("etc/x")
        info.size = 7
        tf.addfile(info, io.BytesIO(b"second\n"))

    tar = layer_tar({"etc/x": b"first\n", "data": os.urandom(100_000)}, again)
    image = make_image([tar])
    fake.add("twice/img:1", image)
    name = f"{fake.host}/twice/img:1"
    try:
        status, lines = _pull(dy, f"{fake.host}/twice/img", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert fake.blob_gets[digest(image.layers[0])] == 2
        blob = os.path.join(dy.root, "data", "content", "blobs", "sha256", digest(tar)[7:])
        with open(blob, "rb") as f:
            assert f.read() == tar
        saved = dy.cli("save", name, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(saved)) as tf:
            assert tf.extractfile(f"blobs/sha256/{digest(tar)[7:]}").read() == tar
        assert _ingests(dy) == []
    finally:
        dy.cli("rmi", name)


def test_cut_download_resumes_with_range(dy, fake):
    tar = _tar(2_000_000)
    image = make_image([tar])
    layer = digest(image.layers[0])
    fake.add("cut/once:1", image)
    fake.blob_hook = lambda d, n, start: ("cut", 700_000) if d == layer and n == 1 else None
    try:
        status, lines = _pull(dy, f"{fake.host}/cut/once", "1")
        assert status == 200 and "error" not in lines[-1], lines[-3:]
        statuses = [m.get("status", "") for m in lines]
        assert any(s.startswith("Retrying in") for s in statuses)
        ranges = [r for d, r in fake.ranges if d == layer]
        assert len(ranges) == 2 and ranges[0] == 0 and ranges[1] > 0  # resumed, not restarted
        assert _has_blob(dy, digest(tar))
    finally:
        dy.cli("rmi", f"{fake.host}/cut/once:1")


def test_always_cut_gives_up_naming_the_layer(dy, fake):
    tar = _tar(1_000_000)
    image = make_image([tar])
    layer = digest(image.layers[0])
    fake.add("cut/always:1", image)
    fake.blob_hook = lambda d, n, start: ("cut", 1000) if d == layer else None
    before = _image_ids(dy)
    started = time.monotonic()
    status, lines = _pull(dy, f"{fake.host}/cut/always", "1")
    assert time.monotonic() - started < 20
    assert status == 200
    assert layer in lines[-1]["error"] and "2 attempts" in lines[-1]["error"]
    assert fake.blob_gets[layer] == 2
    _assert_nothing_left(dy, before, f"{fake.host}/cut/always:1", [digest(tar)])


def test_missing_blob_names_the_layer(dy, fake):
    image = make_image([_tar()])
    layer = digest(image.layers[0])
    del image.blobs[layer]
    fake.add("gone/blob:1", image)
    before = _image_ids(dy)
    status, lines = _pull(dy, f"{fake.host}/gone/blob", "1")
    assert status == 200
    assert layer in lines[-1]["error"] and "blob unknown" in lines[-1]["error"]
    assert _image_ids(dy) == before and _ingests(dy) == []


def _escape(tf: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("../../escaped-by-pull")
    info.size = 4
    tf.addfile(info, __import__("io").BytesIO(b"evil"))


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-then-write", "hardlink", "device"])
def test_hostile_layer_is_refused(dy, fake, kind):
    """The same refusals as ``load`` (images/layer.py), reached through a pull."""
    import io

    def add(tf: tarfile.TarFile) -> None:
        if kind == "dotdot":
            _escape(tf)
        elif kind == "absolute":
            info = tarfile.TarInfo("/tmp/escaped-by-pull")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        elif kind == "hardlink":
            # a link to a host file, then a write through it
            link = tarfile.TarInfo("etc/pw")
            link.type = tarfile.LNKTYPE
            link.linkname = "../../../../../../../../tmp/escaped-by-pull-target"
            tf.addfile(link)
            info = tarfile.TarInfo("etc/pw")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        elif kind == "symlink-then-write":
            link = tarfile.TarInfo("etc/link")
            link.type, link.linkname = tarfile.SYMTYPE, "/tmp"
            tf.addfile(link)
            info = tarfile.TarInfo("etc/link/escaped-by-pull")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        else:
            dev = tarfile.TarInfo("dev/sda")
            dev.type, dev.devmajor, dev.devminor = tarfile.BLKTYPE, 8, 0
            tf.addfile(dev)

    target = "/tmp/escaped-by-pull-target"
    with open(target, "wb") as f:
        f.write(b"host file\n")
    tar = layer_tar({"ok": b"1"}, add)
    fake.add(f"hostile/{kind}:1", make_image([tar]))
    before = _image_ids(dy)
    state = data_state(dy)
    try:
        status, lines = _pull(dy, f"{fake.host}/hostile/{kind}", "1")
        assert status == 200 and "error" in lines[-1], lines[-2:]
        assert _image_ids(dy) == before
        assert not os.path.exists("/tmp/escaped-by-pull")
        with open(target, "rb") as f:
            assert f.read() == b"host file\n"
        assert _ingests(dy) == []
        assert data_state(dy) == state
    finally:
        os.unlink(target)


def test_schema1_is_refused(dy, fake):
    fake.raw_manifests["old/schema:1"] = (
        json.dumps({"schemaVersion": 1, "name": "old/schema", "fsLayers": []}).encode(),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
    status, body = _pull(dy, f"{fake.host}/old/schema", "1")
    assert status == 400
    assert "schema 1 support has been removed" in body["message"]


def test_index_resolves_platform_and_zstd_layers(dy, fake):
    amd = make_image(
        [_tar()],
        compress=lambda b: zstandard.ZstdCompressor().compress(b),
        layer_type="application/vnd.oci.image.layer.v1.tar+zstd",
    )
    arm = make_image([_tar()], arch="arm64")
    fake.add("multi/img:amd", amd)
    fake.add("multi/img:arm", arm)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": arm.manifest_digest,
                "size": len(arm.manifest),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": amd.manifest_digest,
                "size": len(amd.manifest),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
        ],
    }
    raw = json.dumps(index).encode()
    fake.raw_manifests["multi/img:1"] = (raw, "application/vnd.oci.image.index.v1+json")
    name = f"{fake.host}/multi/img:1"
    try:
        status, lines = _pull(dy, f"{fake.host}/multi/img", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert lines[-2] == {"status": f"Digest: {digest(raw)}"}  # the index's digest
        image_id = dy.cli("inspect", "-f", "{{.Id}}", name).stdout.decode().strip()
        assert image_id == digest(amd.config)
        status, lines = _pull(dy, f"{fake.host}/multi/img", "1", platform="linux/arm64")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert dy.cli("inspect", "-f", "{{.Architecture}}", name).stdout == b"arm64\n"
        status, body = _pull(dy, f"{fake.host}/multi/img", "1", platform="linux/s390x")
        assert status == 404 and "no matching manifest for linux/s390x" in body["message"]
        info = json.loads(api_request(dy, "GET", f"/distribution/{name}/json")[1])
        assert info["Descriptor"]["digest"] == digest(raw)
        assert {"architecture": "amd64", "os": "linux"} in info["Platforms"]
    finally:
        dy.cli("rmi", "-f", name)
        dy.cli("rmi", "-f", digest(amd.config), digest(arm.config))


def test_oci_image_manifest(dy, fake):
    """An OCI image manifest (not an index), with OCI config and layer media types."""
    image = make_image([_tar(), _tar()])
    fake.add("oci/blobs:only", image)  # serves the blobs
    manifest = json.loads(image.manifest)
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    manifest["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json"
    for layer in manifest["layers"]:
        layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    raw = json.dumps(manifest).encode()
    fake.raw_manifests["oci/img:1"] = (raw, "application/vnd.oci.image.manifest.v1+json")
    name = f"{fake.host}/oci/img:1"
    try:
        status, lines = _pull(dy, f"{fake.host}/oci/img", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert lines[-2] == {"status": f"Digest: {digest(raw)}"}
        fmt = "{{.Id}} {{json .RepoDigests}}"
        out = dy.cli("inspect", "-f", fmt, name).stdout.decode().split(" ", 1)
        assert out[0] == digest(image.config)
        assert json.loads(out[1]) == [f"{fake.host}/oci/img@{digest(raw)}"]
        assert sum(m.get("status") == "Pull complete" for m in lines) == 2
    finally:
        dy.cli("rmi", name)


def test_docker_manifest_list_resolves_platform(dy, fake):
    amd = make_image([_tar()])
    arm = make_image([_tar()], arch="arm64")
    fake.add("list/img:amd", amd)
    fake.add("list/img:arm", arm)
    media = "application/vnd.docker.distribution.manifest.v2+json"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {
                "mediaType": media,
                "digest": img.manifest_digest,
                "size": len(img.manifest),
                "platform": {"os": "linux", "architecture": arch},
            }
            for img, arch in ((arm, "arm64"), (amd, "amd64"))
        ],
    }
    raw = json.dumps(index).encode()
    fake.raw_manifests["list/img:1"] = (raw, index["mediaType"])
    name = f"{fake.host}/list/img:1"
    try:
        status, lines = _pull(dy, f"{fake.host}/list/img", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert lines[-2] == {"status": f"Digest: {digest(raw)}"}  # the list's digest
        assert dy.cli("inspect", "-f", "{{.Id}}", name).stdout.decode().strip() == digest(
            amd.config
        )
        assert digest(arm.layers[0]) not in fake.blob_gets  # only the platform's layers
        info = json.loads(api_request(dy, "GET", f"/distribution/{name}/json")[1])
        assert info["Descriptor"]["mediaType"] == index["mediaType"]
        assert {"architecture": "arm64", "os": "linux"} in info["Platforms"]
    finally:
        dy.cli("rmi", "-f", name)


def test_layer_already_present_is_not_fetched(dy, fake):
    """A second image over the first's layer: "Already exists" for it, and the registry
    sees no second GET of its blob."""
    base = _tar()
    first = make_image([base])
    second = make_image([base, _tar()])
    fake.add("exists/a:1", first)
    fake.add("exists/b:1", second)
    shared, own = digest(first.layers[0]), digest(second.layers[1])
    try:
        status, lines = _pull(dy, f"{fake.host}/exists/a", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert fake.blob_gets == {digest(first.config): 1, shared: 1}
        status, lines = _pull(dy, f"{fake.host}/exists/b", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert [m["status"] for m in lines if m.get("id") == shared[7:19]] == ["Already exists"]
        assert fake.blob_gets[shared] == 1 and fake.blob_gets[own] == 1
    finally:
        dy.cli("rmi", f"{fake.host}/exists/a:1", f"{fake.host}/exists/b:1")


def test_two_pulls_share_one_download(dy, fake):
    shared = _tar(3_000_000)
    a = make_image([shared, layer_tar({"a": b"a"})])
    b = make_image([shared, layer_tar({"b": b"b"})])
    fake.add("share/a:1", a)
    fake.add("share/b:1", b)
    layer = digest(a.layers[0])
    fake.blob_hook = lambda d, n, start: ("stall", 1.5) if d == layer else None
    results: dict[str, tuple] = {}

    def run(repo: str) -> None:
        results[repo] = _pull(dy, f"{fake.host}/{repo}", "1")

    threads = [threading.Thread(target=run, args=(r,)) for r in ("share/a", "share/b")]
    try:
        threads[0].start()
        time.sleep(0.4)
        threads[1].start()
        for t in threads:
            t.join(60)
        for repo in ("share/a", "share/b"):
            status, lines = results[repo]
            assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert fake.blob_gets[layer] == 1
    finally:
        dy.cli("rmi", f"{fake.host}/share/a:1", f"{fake.host}/share/b:1")


def test_kill_9_mid_pull_then_pull_again(engine, fake):
    dy = engine["engine"]
    tars = [_tar(500_000), _tar(500_000)]
    image = make_image(tars)
    fake.add("crash/img:1", image)
    slow = digest(image.layers[1])
    fake.blob_hook = lambda d, n, start: ("stall", 30) if d == slow else None
    before = _image_ids(dy)
    state = data_state(dy)
    name = f"{fake.host}/crash/img:1"
    thread = threading.Thread(
        target=lambda: _safe(lambda: _pull(dy, f"{fake.host}/crash/img", "1")), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    # the bottom layer's chain id is its diff id: wait until it is applied and recorded
    while fake.blob_gets.get(slow, 0) == 0 or digest(tars[0]) not in data_state(dy)["layers"]:
        assert time.monotonic() < deadline, "the pull never applied the first layer"
        time.sleep(0.05)
    assert _has_blob(dy, digest(tars[0]))
    dy.proc.send_signal(signal.SIGKILL)
    dy.proc.wait(10)
    thread.join(10)
    engine["engine"] = dy = start_dockyardd(dy.root, *FLAGS)
    # no broken image, no temp files
    assert _image_ids(dy) == before
    assert dy.cli("inspect", name).returncode != 0
    assert _ingests(dy) == []
    # the layer applied before the kill is collected: its record, directory and blobs
    assert not _has_blob(dy, digest(tars[0]))
    assert data_state(dy) == state
    # the same pull succeeds
    fake.blob_hook = lambda d, n, start: None
    try:
        status, lines = _pull(dy, f"{fake.host}/crash/img", "1")
        assert status == 200 and "error" not in lines[-1], lines[-3:]
        assert dy.cli("inspect", "-f", "{{.Id}}", name).stdout.decode().strip() == digest(
            image.config
        )
    finally:
        dy.cli("rmi", name)


def _safe(fn) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except OSError:
        pass  # the daemon was killed under the request
    except Exception:
        pass


def test_gzip_multimember_layer(dy, fake):
    tar = _tar()
    image = make_image([tar], compress=lambda b: gzip.compress(b[:5000]) + gzip.compress(b[5000:]))
    fake.add("gz/multi:1", image)
    try:
        status, lines = _pull(dy, f"{fake.host}/gz/multi", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
    finally:
        dy.cli("rmi", f"{fake.host}/gz/multi:1")


def test_layers_extracted_in_parallel_keep_whiteouts(dy, fake):
    """Several layers extract at once on overlay2; deletions and opaque directories made by
    an upper layer must still hide what the lower ones hold."""
    import io
    import subprocess

    base = layer_tar({"keep": b"1", "gone": b"2", "dir/old": b"3", "bulk": os.urandom(400_000)})

    def upper(tf: tarfile.TarFile) -> None:
        for name in (".wh.gone", "dir/.wh..wh..opq"):
            info = tarfile.TarInfo(name)
            tf.addfile(info, io.BytesIO(b""))

    top = layer_tar({"dir/new": b"4", "more": os.urandom(400_000)}, upper)
    image = make_image([base, top])
    fake.add("wh/img:1", image)
    name = f"{fake.host}/wh/img:1"
    try:
        status, lines = _pull(dy, f"{fake.host}/wh/img", "1")
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        cid = dy.cli("create", name, "x").stdout.decode().strip()
        try:
            export = subprocess.run(
                ["docker", "export", cid], env=dy.env, capture_output=True, check=True
            ).stdout
        finally:
            dy.cli("rm", cid)
        names = set(tarfile.open(fileobj=io.BytesIO(export)).getnames())
        assert {"keep", "dir/new", "bulk", "more"} <= names
        assert "gone" not in names and "dir/old" not in names
    finally:
        dy.cli("rmi", name)
