"""A layer's bytes are on disk once: loaded layers keep no tar in the content store, yet
``save`` and push give back byte-identical layer tars (same diff ids), containers run from
them, a layer changed on disk is refused, and a data root that still holds tars works."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.request

import pytest
from engines import api_request, start_dockyardd
from regpeers import start_registry

BIG = 24 << 20  # a random (incompressible) payload, so disk use is easy to tell apart


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else _digest(f"{out[-1]} {d}".encode()))
    return out


def _python_layer(fmt: int, entries: list[tuple[str, bytes, bytes, str]]) -> bytes:
    """entries: (name, type, data, linkname)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, type_, data, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = type_, link, len(data)
            info.mtime = 1_600_000_000
            info.mode = 0o755 if type_ == tarfile.DIRTYPE or name.startswith("bin/") else 0o644
            if name == "etc/xattr":
                info.pax_headers = {"SCHILY.xattr.user.origin": "layer-one"}
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _tool_layer(tmp: str, tool: list[str]) -> bytes:
    src = os.path.join(tmp, "src-" + os.path.basename(tool[0]))
    long_dir = os.path.join(src, "t" * 60, "u" * 60)
    os.makedirs(long_dir)
    with open(os.path.join(long_dir, "v" * 80), "wb") as f:
        f.write(b"long path from a tool\n")
    with open(os.path.join(src, "tool.txt"), "wb") as f:
        f.write(tool[0].encode() + b"\n")
    os.link(os.path.join(src, "tool.txt"), os.path.join(src, "tool-link"))
    os.symlink("tool.txt", os.path.join(src, "tool-sym"))
    open(os.path.join(src, ".wh.big"), "wb").close()  # whiteout of the big layer's dir
    return subprocess.run(
        [*tool, "-C", src, "-cf", "-", "."], check=True, capture_output=True
    ).stdout


def _layers(tmp: str) -> list[bytes]:
    with open("/bin/busybox", "rb") as f:
        busybox = f.read()
    reg, dir_, sym, lnk = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
    long_name = "deep/" + "n" * 120 + "/" + "m" * 130
    one = _python_layer(
        tarfile.PAX_FORMAT,
        [
            ("bin", dir_, b"", ""),
            ("bin/busybox", reg, busybox, ""),
            ("bin/sh", sym, b"", "busybox"),
            ("etc", dir_, b"", ""),
            ("etc/msg", reg, b"version one\n", ""),
            ("etc/msg-link", lnk, b"", "etc/msg"),
            ("etc/empty", reg, b"", ""),
            ("etc/xattr", reg, b"x\n", ""),
            ("deep", dir_, b"", ""),
            ("deep/" + "n" * 120, dir_, b"", ""),
            (long_name, reg, b"long name\n", ""),
            ("opq", dir_, b"", ""),
            ("opq/old", reg, b"old\n", ""),
            ("gone", reg, b"to be deleted\n", ""),
            ("big", dir_, b"", ""),
            ("big/blob", reg, os.urandom(BIG), ""),
        ],
    )
    two = _python_layer(
        tarfile.GNU_FORMAT,
        [
            ("etc/msg", reg, b"version two, longer\n", ""),
            (".wh.gone", reg, b"", ""),
            ("opq", dir_, b"", ""),
            ("opq/.wh..wh..opq", reg, b"", ""),
            ("opq/new", reg, b"new\n", ""),
            ("gnu/" + "g" * 150, reg, b"gnu long name\n", ""),
        ],
    )
    busybox_tar = shutil.which("busybox")
    assert busybox_tar, "busybox is required"
    return [
        one,
        two,
        _tool_layer(tmp, ["tar", "--format=gnu"]),
        _tool_layer(tmp, [busybox_tar, "tar"]),
    ]


def _archive(layers: list[bytes], tag: str) -> tuple[bytes, list[str]]:
    diff_ids = [_digest(layer) for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/busybox", "cat", "/etc/msg"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        paths = []
        for layer, diff in zip(layers, diff_ids):
            paths.append(f"{diff[7:]}/layer.tar")
            add(paths[-1], layer)
        add("config.json", config)
        add(
            "manifest.json",
            json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": paths}]).encode(),
        )
    return buf.getvalue(), diff_ids


def _du(path: str) -> int:
    out = subprocess.run(["du", "-s", "-B1", path], capture_output=True, check=True).stdout
    return int(out.split()[0])


def _df_layers(daemon) -> int:
    status, body = api_request(daemon, "GET", "/system/df")
    assert status == 200, body
    return json.loads(body)["LayersSize"]


def _saved_layers(data: bytes) -> dict[str, bytes]:
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for member in tf:
            if member.name.startswith("blobs/sha256/") and member.isfile():
                found["sha256:" + member.name.rsplit("/", 1)[1]] = tf.extractfile(member).read()
    return found


@pytest.fixture(scope="module")
def loaded(daemon, tmp_path_factory):
    """The four-layer image, loaded once; removed afterwards."""
    tmp = str(tmp_path_factory.mktemp("tarsplit"))
    layers = _layers(tmp)
    archive, diff_ids = _archive(layers, "tarsplit/app:1")
    data_root = os.path.join(daemon.root, "data")
    before, df_before = _du(data_root), _df_layers(daemon)
    daemon.cli("load", input=archive, check=True)
    after, df_after = _du(data_root), _df_layers(daemon)
    try:
        yield {
            "layers": layers,
            "diff_ids": diff_ids,
            "grew": after - before,
            "df_grew": df_after - df_before,
            "root": data_root,
            "archive": archive,
        }
    finally:
        daemon.cli("rmi", "-f", "tarsplit/app:1")


def test_loaded_layers_keep_no_tar_in_the_content_store(loaded):
    blobs = os.path.join(loaded["root"], "content", "blobs", "sha256")
    for diff in loaded["diff_ids"]:
        assert not os.path.exists(os.path.join(blobs, diff[7:])), diff
        assert os.listdir(os.path.join(loaded["root"], "tarsplit", diff[7:]))


def test_loading_again_keeps_no_tar_either(daemon, loaded):
    daemon.cli("load", input=loaded["archive"], check=True)
    blobs = os.path.join(loaded["root"], "content", "blobs", "sha256")
    for diff in loaded["diff_ids"]:
        assert not os.path.exists(os.path.join(blobs, diff[7:])), diff


def test_disk_use_grows_by_the_layers_once(loaded):
    total = sum(len(layer) for layer in loaded["layers"])
    # Once: the extracted files plus small metadata; twice would be at least 2 * total.
    assert loaded["grew"] < 1.3 * total, (loaded["grew"], total)
    # system df counts what is on disk, so it reports the layers once too
    assert 0.7 * total < loaded["df_grew"] < 1.3 * total, (loaded["df_grew"], total)


def test_save_gives_back_the_loaded_layer_tars(docker, loaded, tmp_path):
    path = str(tmp_path / "saved.tar")
    docker("save", "-o", path, "tarsplit/app:1", check=True)
    with open(path, "rb") as f:
        saved = _saved_layers(f.read())
    for diff, layer in zip(loaded["diff_ids"], loaded["layers"]):
        assert _digest(saved[diff]) == diff
        assert saved[diff] == layer


def test_container_runs_from_the_layers(docker, loaded):
    out = docker(
        "run",
        "--rm",
        "tarsplit/app:1",
        "/bin/busybox",
        "sh",
        "-c",
        "cat /etc/msg /etc/msg-link /tool.txt; ls /opq; ls / | grep -c -e '^gone$' -e '^big$' || true",
        check=True,
    )
    assert out.stdout == (b"version two, longer\nversion one\n/usr/bin/busybox\nnew\n0\n"), (
        out.stdout
    )


def test_push_gives_the_same_diff_ids(docker, loaded):
    registry = start_registry()
    target = f"{registry.host}/tarsplit/app:1"
    try:
        docker("tag", "tarsplit/app:1", target, check=True)
        docker("push", target, check=True)
        accept = "application/vnd.docker.distribution.manifest.v2+json"
        req = urllib.request.Request(
            f"http://{registry.host}/v2/tarsplit/app/manifests/1", headers={"Accept": accept}
        )
        manifest = json.loads(urllib.request.urlopen(req, timeout=30).read())
        got = []
        for desc in manifest["layers"]:
            url = f"http://{registry.host}/v2/tarsplit/app/blobs/{desc['digest']}"
            blob = urllib.request.urlopen(url, timeout=60).read()
            assert _digest(blob) == desc["digest"]
            got.append(_digest(gzip.decompress(blob)))
        assert got == loaded["diff_ids"]
    finally:
        docker("rmi", target)
        registry.stop()


def _small_image(daemon, tag: str, tmp: str) -> tuple[list[bytes], list[str]]:
    layers = [
        _python_layer(
            tarfile.PAX_FORMAT,
            [("f", tarfile.REGTYPE, b"a" * 5000, ""), ("g", tarfile.REGTYPE, b"ggg\n", "")],
        )
    ]
    archive, diff_ids = _archive(layers, tag)
    daemon.cli("load", input=archive, check=True)
    return layers, diff_ids


def test_a_modified_layer_is_refused_not_saved_wrong(daemon, docker, tmp_path):
    tag = "tarsplit/modified:1"
    _, diff_ids = _small_image(daemon, tag, str(tmp_path))
    try:
        layer_dir = os.path.join(daemon.root, "data", "overlay2", diff_ids[0][7:], "diff")
        with open(os.path.join(layer_dir, "f"), "r+b") as f:
            f.write(b"X")  # same size, other bytes
        out = docker("save", "-o", str(tmp_path / "bad.tar"), tag)
        assert out.returncode != 0, "a cut stream must fail the save"
        with open(daemon.log, "rb") as f:
            assert f"layer {diff_ids[0]} cannot be rebuilt".encode() in f.read()
    finally:
        docker("rmi", "-f", tag)


def test_a_data_root_holding_tars_still_saves(daemon, docker, tmp_path):
    """Layers stored before tar-split: the tar in the content store, no split file."""
    tag = "tarsplit/legacy:1"
    layers, diff_ids = _small_image(daemon, tag, str(tmp_path))
    try:
        data = os.path.join(daemon.root, "data")
        shutil.rmtree(os.path.join(data, "tarsplit", diff_ids[0][7:]))
        with open(os.path.join(data, "content", "blobs", "sha256", diff_ids[0][7:]), "wb") as f:
            f.write(layers[0])
        path = str(tmp_path / "legacy.tar")
        docker("save", "-o", path, tag, check=True)
        with open(path, "rb") as f:
            assert _saved_layers(f.read())[diff_ids[0]] == layers[0]
    finally:
        docker("rmi", "-f", tag)


def test_start_up_converts_layers_stored_as_tars(tmp_path_factory):
    """A data root from before tar-split: the next start records the layers and drops the
    tars from the content store, and ``save`` still gives the same bytes."""
    root = tempfile.mkdtemp(prefix="dyts-", dir="/tmp")
    engine = start_dockyardd(os.path.join(root, "dy"))
    try:
        layers, diff_ids = _small_image(engine, "tarsplit/old:1", root)
        data = os.path.join(engine.root, "data")
        blob = os.path.join(data, "content", "blobs", "sha256", diff_ids[0][7:])
        split_dir = os.path.join(data, "tarsplit", diff_ids[0][7:])
        engine.proc.send_signal(signal.SIGTERM)
        engine.proc.wait(20)
        shutil.rmtree(split_dir)  # as an older dockyardd left it: the tar, no split
        with open(blob, "wb") as f:
            f.write(layers[0])
        engine = start_dockyardd(engine.root)
        deadline = time.monotonic() + 20
        while os.path.exists(blob):
            assert time.monotonic() < deadline, "the stored tar was not converted"
            time.sleep(0.05)
        assert os.listdir(split_dir)
        path = os.path.join(root, "converted.tar")
        engine.cli("save", "-o", path, "tarsplit/old:1", check=True)
        with open(path, "rb") as f:
            assert _saved_layers(f.read())[diff_ids[0]] == layers[0]
    finally:
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_an_unrecordable_layer_keeps_its_tar(daemon, docker, tmp_path):
    """A name written twice in one tar: its first payload is not on disk, so the tar stays
    in the content store (and the daemon says so in its log)."""
    tag = "tarsplit/twice:1"
    layer = _python_layer(
        tarfile.PAX_FORMAT,
        [("a", tarfile.REGTYPE, b"first\n", ""), ("a", tarfile.REGTYPE, b"second\n", "")],
    )
    archive, diff_ids = _archive([layer], tag)
    daemon.cli("load", input=archive, check=True)
    try:
        blob = os.path.join(daemon.root, "data", "content", "blobs", "sha256", diff_ids[0][7:])
        assert os.path.exists(blob)
        with open(daemon.log, "rb") as f:
            assert f"layer {diff_ids[0]}: keeping its tar".encode() in f.read()
        path = str(tmp_path / "twice.tar")
        docker("save", "-o", path, tag, check=True)
        with open(path, "rb") as f:
            assert _saved_layers(f.read())[diff_ids[0]] == layer
    finally:
        docker("rmi", "-f", tag)


def test_vfs_layers_round_trip_too(tmp_path_factory):
    """vfs: each layer dir is a full copy of its parent, whiteouts delete; the rebuild
    reads only the files the layer's own tar wrote."""
    root = tempfile.mkdtemp(prefix="dyvfs-", dir="/tmp")
    engine = start_dockyardd(os.path.join(root, "dy"), "--storage-driver", "vfs")
    try:
        layers = _layers(str(tmp_path_factory.mktemp("vfs")))
        archive, diff_ids = _archive(layers, "tarsplit/vfs:1")
        engine.cli("load", input=archive, check=True)
        data = os.path.join(engine.root, "data")
        assert os.path.isdir(os.path.join(data, "vfs"))
        for diff in diff_ids:
            assert not os.path.exists(os.path.join(data, "content", "blobs", "sha256", diff[7:]))
        path = os.path.join(root, "vfs.tar")
        engine.cli("save", "-o", path, "tarsplit/vfs:1", check=True)
        with open(path, "rb") as f:
            saved = _saved_layers(f.read())
        assert [saved[d] for d in diff_ids] == layers
        out = engine.cli(
            "run", "--rm", "tarsplit/vfs:1", "/bin/busybox", "cat", "/etc/msg", check=True
        )
        assert out.stdout == b"version two, longer\n"
    finally:
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)
