"""The data root's file system full (issue 14): a dockyardd whose data root is a 96 MB ext4
loop mount, filled by a file outside any record.  Every write fails with dockerd's 500 and a
message naming "no space left on device" and the data root; nothing stored is damaged, no
half-written debris stays, and once the filler is gone everything works again."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest
from engines import api_request, make_busybox, start_dockyardd

FULL = b"no space left on device"


def _mounted(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split()[4] == real for line in f)


@pytest.fixture
def small_daemon():
    """(engine, data root) on a fresh 96 MB ext4 file; mount and loop device always go."""
    base = tempfile.mkdtemp(prefix="dyf-", dir="/tmp")
    image = os.path.join(base, "disk.img")
    root = os.path.join(base, "dy")
    data = os.path.join(root, "data")
    engine = None
    try:
        with open(image, "wb") as f:
            f.truncate(96 << 20)
        # -m 0: no blocks reserved for root (the daemon is root: reserved blocks would
        # make "full" depend on who writes).
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", image], check=True)
        os.makedirs(data)
        subprocess.run(["mount", "-o", "loop", image, data], check=True)
        engine = start_dockyardd(root)
        make_busybox(engine)
        yield engine, data
    finally:
        if engine is not None:
            engine.stop()  # removes containers, detaches every mount under root
        if _mounted(data):
            subprocess.run(["umount", "-l", data], check=False)
        out = subprocess.run(["losetup", "-j", image], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            subprocess.run(["losetup", "-d", line.split(":")[0]], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _fill(path: str, leave: int = 0) -> None:
    """Allocate every free block of the file system holding ``path`` but ``leave`` bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        st = os.statvfs(os.path.dirname(path))
        offset = max(0, st.f_bavail * st.f_frsize - leave) & ~0xFFFF
        if offset:
            os.posix_fallocate(fd, 0, offset)
        if leave:
            return
        chunk = 64 << 20
        while chunk >= 4096:
            try:
                os.posix_fallocate(fd, offset, chunk)
                offset += chunk
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    finally:
        os.close(fd)
    assert os.statvfs(path).f_bavail == 0


def _tree(data: str) -> set[str]:
    out = set()
    for dirpath, dirs, files in os.walk(data):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, name), data))
    return out


def _other_image(daemon) -> bytes:
    """A `docker save` tarball of a new image: busybox plus an 8 MB layer."""
    status, body = api_request(daemon, "GET", "/images/busybox/get", timeout=60)
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        base = tar.extractfile(manifest[0]["Layers"][0]).read()
    extra = io.BytesIO()
    with tarfile.open(fileobj=extra, mode="w") as tar:
        blob = os.urandom(8 << 20)
        info = tarfile.TarInfo("big")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    import hashlib

    config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(extra.getvalue()).hexdigest())
    config["history"] = [*(config.get("history") or []), {"created_by": "extra"}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        files = {
            "config.json": json.dumps(config).encode(),
            "base.tar": base,
            "extra.tar": extra.getvalue(),
            "manifest.json": json.dumps(
                [
                    {
                        "Config": "config.json",
                        "RepoTags": ["fullother:1"],
                        "Layers": ["base.tar", "extra.tar"],
                    }
                ]
            ).encode(),
        }
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _cp_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = os.urandom(64 << 10)
        info = tarfile.TarInfo("copied")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _post(daemon, path: str, body: object = None) -> tuple[int, bytes]:
    raw = json.dumps(body).encode() if body is not None else None
    return api_request(daemon, "POST", path, raw, timeout=60)


def _run(daemon, image: str, cmd: list[str]) -> tuple[int, bytes]:
    status, body = _post(daemon, "/containers/create", {"Image": image, "Cmd": cmd})
    if status != 201:
        return status, body
    cid = json.loads(body)["Id"]
    assert _post(daemon, f"/containers/{cid}/start")[0] == 204
    status, body = _post(daemon, f"/containers/{cid}/wait")
    assert status == 200 and json.loads(body)["StatusCode"] == 0
    _, logs = api_request(daemon, "GET", f"/containers/{cid}/logs?stdout=1")
    api_request(daemon, "DELETE", f"/containers/{cid}")
    return 201, logs


def _assert_full(result: tuple[int, bytes], data: str, what: str) -> None:
    """A 500 naming the disk; a load answers 200 first (as dockerd's does) and says the same
    in the stream's error line."""
    status, body = result
    if what == "load":
        assert status == 200, (what, status, body)
        message = json.loads(body.splitlines()[-1])["errorDetail"]["message"]
    else:
        assert status == 500, (what, status, body)
        message = json.loads(body)["message"]
    assert FULL.decode() in message and data in message, (what, message)


def test_full_data_root_fails_cleanly_and_recovers(small_daemon):
    daemon, data = small_daemon
    archive = _other_image(daemon)
    status, body = _post(
        daemon, "/containers/create?name=c1", {"Image": "busybox", "Cmd": ["true"]}
    )
    assert status == 201
    assert _post(daemon, "/containers/c1/start")[0] == 204
    assert _post(daemon, "/containers/c1/wait")[0] == 200
    # c2 runs through the filling and is killed on a full disk: its exit may not be
    # recordable, and must be cleaned up all the same (no overlay left mounted).
    assert (
        _post(daemon, "/containers/create?name=c2", {"Image": "busybox", "Cmd": ["sleep", "600"]})[
            0
        ]
        == 201
    )
    assert _post(daemon, "/containers/c2/start")[0] == 204
    merged2 = json.loads(api_request(daemon, "GET", "/containers/c2/json")[1])["GraphDriver"][
        "Data"
    ]["MergedDir"]
    busybox = json.loads(api_request(daemon, "GET", "/images/busybox/json")[1])
    before = _tree(data)
    filler = os.path.join(data, "filler")
    _fill(filler)
    try:
        _assert_full(
            api_request(daemon, "POST", "/images/load?quiet=1", archive, timeout=60), data, "load"
        )
        _assert_full(_post(daemon, "/containers/create", {"Image": "busybox"}), data, "create")
        _assert_full(_post(daemon, "/commit?container=c1&repo=fullcommit"), data, "commit")
        _assert_full(
            api_request(daemon, "PUT", "/containers/c1/archive?path=/", _cp_tar(), timeout=60),
            data,
            "cp",
        )
        _assert_full(_post(daemon, "/volumes/create", {"Name": "fullvol"}), data, "volume")
        # Metadata-only writes fit in the database's free pages when there are some.
        tagged = _post(daemon, "/images/busybox/tag?repo=fulltag&tag=1")
        if tagged[0] != 201:
            _assert_full(tagged, data, "tag")
        net = _post(
            daemon,
            "/networks/create",
            {"Name": "fullnet", "Options": {"com.docker.network.bridge.name": "dyfullbr0"}},
        )
        if net[0] != 201:
            _assert_full(net, data, "network create")
            assert not os.path.exists("/sys/class/net/dyfullbr0")  # unprogrammed
        # An existing container starts (an overlay mount needs no blocks) or says why not.
        started = _post(daemon, "/containers/c1/start")
        if started[0] != 204:
            _assert_full(started, data, "start")
        else:
            assert _post(daemon, "/containers/c1/wait")[0] == 200
        assert _post(daemon, "/containers/c2/kill")[0] == 204
        assert _post(daemon, "/containers/c2/wait")[0] == 200
        assert not _mounted(merged2)
        # Still serving, busybox intact; running needs disk and says so.
        assert api_request(daemon, "GET", "/_ping")[0] == 200
        status, body = api_request(daemon, "GET", "/images/busybox/json")
        assert status == 200 and json.loads(body)["Id"] == busybox["Id"]
        _assert_full(_run(daemon, "busybox", ["true"]), data, "run")
        # No half-written debris: nothing new on disk but the filler (and the database's
        # own files, which existed before).
        assert _tree(data) - before == {"filler"}
        assert os.listdir(os.path.join(data, "tmp")) == []
        assert os.listdir(os.path.join(data, "content", "ingest")) == []
    finally:
        os.unlink(filler)
    # Everything works again.
    status, body = api_request(daemon, "POST", "/images/load?quiet=1", archive, timeout=60)
    assert status == 200 and b"Loaded image: fullother:1" in body
    status, logs = _run(daemon, "fullother:1", ["sh", "-c", "wc -c < /big"])
    assert status == 201 and b"8388608" in logs
    status, logs = _run(daemon, "busybox", ["echo", "ran"])
    assert status == 201 and b"ran" in logs
    assert _post(daemon, "/images/busybox/tag?repo=fulltag&tag=2")[0] == 201
    assert _post(daemon, "/volumes/create", {"Name": "fullvol"})[0] == 201
    assert api_request(daemon, "DELETE", "/volumes/fullvol")[0] == 204
    status, body = _post(daemon, "/networks/create", {"Name": "fullnet2"})
    assert status == 201
    assert api_request(daemon, "PUT", "/containers/c1/archive?path=/", _cp_tar())[0] == 200
    status, body = _post(daemon, "/commit?container=c1&repo=fullcommit")
    assert status == 201
    status, logs = _run(daemon, "fullcommit", ["sh", "-c", "wc -c < /copied"])
    assert status == 201 and b"65536" in logs
    for name in ("fullnet", "fullnet2"):
        api_request(daemon, "DELETE", f"/networks/{name}")


def test_load_running_out_of_space_half_way_leaves_nothing(small_daemon):
    """Room for the unpacked archive but not for all of its layers: the load fails while
    applying, and takes away every temp file, blob and layer it wrote.  (The upload is
    unpacked as it arrives, never spooled, and each layer is applied from the unpacked
    file: a load needs twice its archive, where it needed three times.)"""
    daemon, data = small_daemon
    archive = _other_image(daemon)  # ~10 MB: unpacked as it arrives, then applied
    before = _tree(data)
    filler = os.path.join(data, "filler")
    _fill(filler, leave=len(archive) * 3 // 2)
    try:
        result = api_request(daemon, "POST", "/images/load?quiet=1", archive, timeout=60)
        _assert_full(result, data, "load")
        assert _tree(data) - before == {"filler"}
        assert os.listdir(os.path.join(data, "tmp")) == []
        assert os.listdir(os.path.join(data, "content", "ingest")) == []
        assert api_request(daemon, "GET", "/images/fullother:1/json")[0] == 404
    finally:
        os.unlink(filler)
    status, body = api_request(daemon, "POST", "/images/load?quiet=1", archive, timeout=60)
    assert status == 200 and b"Loaded image: fullother:1" in body
    status, logs = _run(daemon, "fullother:1", ["sh", "-c", "wc -c < /big"])
    assert status == 201 and b"8388608" in logs
