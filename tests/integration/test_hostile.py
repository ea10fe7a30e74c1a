"""Hostile input to the image endpoints and the API: tarballs built to escape the data root,
corrupt or truncated uploads, bad references, malformed queries, clients that hang up.

Every case checks the same things: the status Docker answers (400 bad input, 404 unknown),
a message that names the problem, that no image appeared, that no blob was left behind in
the content store, that nothing was written to a per-test sentinel directory the attack
aims at, and that the daemon still answers afterwards.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import struct
import tarfile
import tempfile
import time
import urllib.parse
import uuid

import pytest
from engines import api_request

UP = "../" * 14  # more than enough to climb from any work dir to /


# ---- raw HTTP on the daemon's unix socket --------------------------------------------------
def request(
    daemon,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    hdrs = {"Content-Type": "application/x-tar"} if body is not None else {}
    hdrs.update(headers or {})
    return api_request(daemon, method, path, body, hdrs, timeout)


def message(body: bytes) -> str:
    try:
        return json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        pass
    try:  # a JSON stream ending with an error (load)
        return json.loads(body.splitlines()[-1])["errorDetail"]["message"]
    except (ValueError, KeyError, TypeError, IndexError):
        return body.decode(errors="replace")


def image_ids(daemon) -> list[tuple[str, list[str]]]:
    status, body = request(daemon, "GET", "/images/json?all=1")
    assert status == 200, body
    return sorted((img["Id"], sorted(img["RepoTags"] or [])) for img in json.loads(body))


def blobs(daemon) -> set[str]:
    return set(os.listdir(os.path.join(daemon.root, "data", "content", "blobs", "sha256")))


def driver_dirs(daemon) -> set[str]:
    """Layer directories of the storage driver (overlay2 layout; other drivers: their dir)."""
    data = os.path.join(daemon.root, "data")
    found: set[str] = set()
    for name in ("overlay2", "vfs/dir", "naive"):
        top = os.path.join(data, name)
        if os.path.isdir(top):
            found |= {f"{name}/{d}" for d in os.listdir(top)}
            if os.path.isdir(os.path.join(top, "l")):
                found |= {f"{name}/l/{d}" for d in os.listdir(os.path.join(top, "l"))}
    return found


def describe_blobs(daemon, names: set[str]) -> list[str]:
    out = []
    for name in sorted(names):
        path = os.path.join(daemon.root, "data", "content", "blobs", "sha256", name)
        with open(path, "rb") as f:
            head = f.read(1)
        out.append(f"{name[:12]} ({'image config' if head == b'{' else 'layer'})")
    return out


def ping(daemon) -> bool:
    try:
        status, body = request(daemon, "GET", "/_ping", timeout=5)
    except OSError:
        return False
    return status == 200 and body == b"OK"


def leftover_work(daemon) -> list[str]:
    return glob.glob(os.path.join(daemon.root, "data", "tmp", "load-*"))


@pytest.fixture
def sentinel():
    """An empty directory under /tmp that the attacks try to write into."""
    path = tempfile.mkdtemp(prefix="dyh-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Guard:
    """Snapshot before a hostile request; ``check`` asserts nothing changed after it."""

    def __init__(self, daemon, sentinel: str) -> None:
        self.daemon = daemon
        self.sentinel = sentinel
        self.images = image_ids(daemon)
        self.blobs = blobs(daemon)
        self.layers = driver_dirs(daemon)

    def check(self, *, blobs_too: bool = True) -> None:
        assert os.path.isdir(self.sentinel) and not os.path.islink(self.sentinel)
        assert os.listdir(self.sentinel) == [], "something was written outside the data root"
        assert ping(self.daemon), "daemon no longer answers /_ping"
        assert image_ids(self.daemon) == self.images, "an image got listed"
        assert driver_dirs(self.daemon) == self.layers, "storage driver layer dirs changed"
        if blobs_too:
            new = blobs(self.daemon) - self.blobs
            assert not new, f"blobs left in the content store: {describe_blobs(self.daemon, new)}"
        deadline = time.monotonic() + 3
        while leftover_work(self.daemon) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not leftover_work(self.daemon), "load work dir left behind"


@pytest.fixture
def guard(daemon, sentinel):
    return Guard(daemon, sentinel)


def assert_load_error(status: int, body: bytes, *words: str) -> None:
    """``POST /images/load`` answers 200 and reports a bad archive inside its JSON stream,
    as dockerd does (moby's postImagesLoad writes the error after the header)."""
    assert status == 200, body
    *_, last = [json.loads(line) for line in body.splitlines() if line.strip()]
    msg = last["errorDetail"]["message"]
    assert msg and last["error"] == msg, last
    for word in words:
        assert word.lower() in msg.lower(), f"{word!r} not in message {msg!r}"


def assert_error(status: int, body: bytes, want_status: int, *words: str) -> None:
    msg = message(body)
    assert status == want_status, f"status {status}, wanted {want_status}: {msg}"
    assert json.loads(body).get("message"), body
    for word in words:
        assert word.lower() in msg.lower(), f"{word!r} not in message {msg!r}"


# ---- building tarballs ---------------------------------------------------------------------
def member(
    name: str,
    data: bytes = b"",
    *,
    type=tarfile.REGTYPE,
    linkname: str = "",
    mode: int = 0o644,
    devmajor: int = 0,
    devminor: int = 0,
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = type
    info.mode = mode
    info.mtime = 1_700_000_000
    info.linkname = linkname
    info.devmajor, info.devminor = devmajor, devminor
    if type == tarfile.REGTYPE:
        info.size = len(data)
    return info, data


def make_tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def plain_layer(size: int = 4096) -> bytes:
    return make_tar(
        [member("etc", type=tarfile.DIRTYPE, mode=0o755), member("etc/hello", os.urandom(size))]
    )


def image_config(diff_ids: list[str]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z"} for _ in diff_ids],
        }
    ).encode()


def save_tar(
    layers: list[bytes],
    *,
    diff_ids: list[str] | None = None,
    manifest: object | None = None,
    extra: list[tuple[tarfile.TarInfo, bytes]] = (),
    tag: str | None = None,
) -> bytes:
    """A docker-save (20.10 layout) tarball holding ``layers``; ``diff_ids`` default to the
    layers' real digests, ``manifest`` to one that names them."""
    diff_ids = diff_ids if diff_ids is not None else [sha(layer) for layer in layers]
    config = image_config(diff_ids)
    config_name = sha(config)[7:] + ".json"
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    paths = []
    for i, layer in enumerate(layers):
        members.append(member(f"l{i}", type=tarfile.DIRTYPE, mode=0o755))
        members.append(member(f"l{i}/layer.tar", layer))
        paths.append(f"l{i}/layer.tar")
    members.append(member(config_name, config))
    members.extend(extra)
    if manifest is None:
        manifest = [
            {
                "Config": config_name,
                "Layers": paths,
                "RepoTags": [tag or f"hostile-{uuid.uuid4().hex[:12]}:latest"],
            }
        ]
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    members.append(member("manifest.json", raw))
    return make_tar(members)


def load(daemon, data: bytes) -> tuple[int, bytes]:
    return request(daemon, "POST", "/images/load?quiet=1", body=data)


# ---- 1. hostile load archives ----------------------------------------------------------------
def test_load_outer_dotdot_entry(daemon, guard, sentinel):
    data = save_tar([plain_layer()], extra=[member(f"{UP}{sentinel[1:]}/pwned", b"x")])
    status, body = load(daemon, data)
    assert_load_error(status, body, "escapes")
    guard.check()


def test_load_outer_absolute_entry(daemon, guard, sentinel):
    data = save_tar([plain_layer()], extra=[member(f"{sentinel}/pwned", b"x")])
    status, body = load(daemon, data)
    assert_load_error(status, body, "absolute")
    guard.check()


@pytest.mark.parametrize("target", ["abs", "rel"])
def test_load_outer_symlink_then_write_through(daemon, guard, sentinel, target):
    link = sentinel if target == "abs" else f"{UP}{sentinel[1:]}"
    data = save_tar(
        [plain_layer()],
        extra=[
            member("evil", type=tarfile.SYMTYPE, linkname=link),
            member("evil/pwned", b"x"),
        ],
    )
    status, body = load(daemon, data)
    assert_load_error(status, body, "invalid archive")
    guard.check()


def test_load_outer_device_node(daemon, guard):
    data = save_tar(
        [plain_layer()],
        extra=[
            member("null", type=tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        ],
    )
    status, body = load(daemon, data)
    assert_load_error(status, body, "device")
    guard.check()


@pytest.mark.parametrize("field", ["Config", "Layers"])
def test_load_manifest_escaping_path(daemon, guard, field):
    layer = plain_layer()
    config = image_config([sha(layer)])
    entry = {"Config": "c.json", "Layers": ["l0/layer.tar"], "RepoTags": ["hostile-m:latest"]}
    entry[field] = "../../etc/passwd" if field == "Config" else ["../../etc/passwd"]
    data = make_tar(
        [
            member("l0", type=tarfile.DIRTYPE, mode=0o755),
            member("l0/layer.tar", layer),
            member("c.json", config),
            member("manifest.json", json.dumps([entry]).encode()),
        ]
    )
    status, body = load(daemon, data)
    assert_load_error(status, body, "escapes")
    guard.check()


def test_load_manifest_absolute_path(daemon, guard):
    layer = plain_layer()
    data = save_tar([layer], manifest=[{"Config": "/etc/passwd", "Layers": ["l0/layer.tar"]}])
    status, body = load(daemon, data)
    assert_load_error(status, body, "absolute")
    guard.check()


def test_load_manifest_not_json(daemon, guard):
    data = save_tar([plain_layer()], manifest=b"{this is: not json")
    status, body = load(daemon, data)
    assert_load_error(status, body, "manifest.json", "json")
    guard.check()


def test_load_layer_digest_mismatch(daemon, guard):
    layer = plain_layer(64 << 10)
    wrong = sha(b"something else")
    data = save_tar([layer], diff_ids=[wrong])
    status, body = load(daemon, data)
    assert_load_error(status, body, wrong[7:19])
    assert "digest" in message(body).lower() or "mismatch" in message(body).lower(), message(body)
    guard.check()  # includes: the layer blob is not left in data/content/blobs/sha256


def test_load_second_layer_digest_mismatch(daemon, guard):
    """The first layer is good and ingested, the second one lies: both blobs go away."""
    good, bad = plain_layer(), plain_layer()
    data = save_tar([good, bad], diff_ids=[sha(good), sha(b"nope")])
    status, body = load(daemon, data)
    assert_load_error(status, body)
    guard.check()


def test_load_truncated(daemon, guard):
    data = save_tar([plain_layer(256 << 10)])
    status, body = load(daemon, data[: len(data) // 2])
    assert_load_error(status, body, "invalid archive")
    guard.check()


def test_load_truncated_real_save(daemon, guard):
    status, full = request(daemon, "GET", "/images/get?names=busybox")
    assert status == 200
    status, body = load(daemon, full[: len(full) // 2])
    assert_load_error(status, body, "invalid archive")
    guard.check()


def test_load_random_bytes(daemon, guard):
    status, body = load(daemon, os.urandom(100_000))
    assert_load_error(status, body, "invalid archive")
    guard.check()


# ---- 2. hostile layers inside a valid archive --------------------------------------------------
def hostile_layers(sentinel: str) -> dict[str, tuple[list[tuple[tarfile.TarInfo, bytes]], str]]:
    return {
        "dotdot": ([member(f"{UP}{sentinel[1:]}/pwned", b"x")], "escapes"),
        "absolute": ([member(f"{sentinel}/pwned", b"x")], "absolute"),
        "symlink": (
            [member("evil", type=tarfile.SYMTYPE, linkname=sentinel), member("evil/pwned", b"x")],
            "symlink",
        ),
        "symlink-rel": (
            [
                member("evil", type=tarfile.SYMTYPE, linkname=f"{UP}{sentinel[1:]}"),
                member("evil/pwned", b"x"),
            ],
            "symlink",
        ),
        "hardlink": (
            [member("passwd", type=tarfile.LNKTYPE, linkname=f"{UP[:12]}etc/passwd")],
            "escapes",
        ),
        "chardev": (
            [member("null", type=tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)],
            "device",
        ),
    }


@pytest.mark.parametrize(
    "case", ["dotdot", "absolute", "symlink", "symlink-rel", "hardlink", "chardev"]
)
def test_load_hostile_layer(daemon, guard, sentinel, case):
    members, word = hostile_layers(sentinel)[case]
    layer = make_tar([member("ok", b"fine")] + members)
    data = save_tar([layer])  # correct digests: only the layer's content is hostile
    status, body = load(daemon, data)
    assert_load_error(status, body, word)
    guard.check()  # also: neither the layer blob nor the config blob is left behind


def test_load_hostile_second_layer_over_symlink(daemon, guard, sentinel):
    """Layer 1 holds a symlink to the sentinel, layer 2 writes through it.  Whether the
    daemon accepts this (overlay: layer 2 is its own tree) or refuses it, the write must
    land inside the data root."""
    one = make_tar([member("evil", type=tarfile.SYMTYPE, linkname=sentinel)])
    two = make_tar([member("evil", type=tarfile.DIRTYPE, mode=0o755), member("evil/pwned", b"x")])
    tag = f"hostile-two-{uuid.uuid4().hex[:8]}:latest"
    status, body = load(daemon, save_tar([one, two], tag=tag))
    try:
        assert status in (200, 400), body
        assert os.listdir(sentinel) == []
        assert ping(daemon)
    finally:
        if status == 200:
            request(daemon, "DELETE", f"/images/{tag}")
    guard.check()


# ---- 3. hostile import bodies -------------------------------------------------------------------
def import_(daemon, data: bytes, repo: str = "hostile-import") -> tuple[int, bytes]:
    return request(daemon, "POST", f"/images/create?fromSrc=-&repo={repo}&tag=latest", body=data)


def test_import_corrupt_gzip(daemon, guard):
    raw = gzip.compress(make_tar([member("a", os.urandom(200_000))]), mtime=0)
    corrupt = bytearray(raw)
    for i in range(40, min(len(corrupt), 4000)):
        corrupt[i] ^= 0x5A  # keep the 10-byte header valid, break the deflate stream
    status, body = import_(daemon, bytes(corrupt))
    assert_error(status, body, 400)
    guard.check()


def test_import_truncated_gzip(daemon, guard):
    raw = gzip.compress(make_tar([member("a", os.urandom(200_000))]), mtime=0)
    status, body = import_(daemon, raw[: len(raw) // 2])
    assert_error(status, body, 400)
    guard.check()


def test_import_dotdot_entries(daemon, guard, sentinel):
    data = make_tar([member("ok", b"x"), member(f"{UP}{sentinel[1:]}/pwned", b"x")])
    status, body = import_(daemon, data)
    assert_error(status, body, 400, "escapes")
    guard.check()


def test_import_symlink_then_write_through(daemon, guard, sentinel):
    data = make_tar(
        [member("evil", type=tarfile.SYMTYPE, linkname=sentinel), member("evil/pwned", b"x")]
    )
    status, body = import_(daemon, data)
    assert_error(status, body, 400, "symlink")
    guard.check()


def test_import_empty_body(daemon, guard):
    status, body = import_(daemon, b"")
    assert_error(status, body, 400)
    guard.check()


def test_import_random_bytes(daemon, guard):
    status, body = import_(daemon, os.urandom(100_000))
    assert_error(status, body, 400)
    guard.check()


# ---- 4. invalid references ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["UPPERCASE", "upper/CASE"])
def test_cli_tag_uppercase(docker, guard, name):
    result = docker("tag", "busybox", name)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert err.startswith(
        f'Error parsing reference: "{name}" is not a valid repository/tag: invalid reference format'
    ), err
    assert "must be lowercase" in err, err
    guard.check()


def test_cli_tag_uppercase_namespace_is_refused_as_dockerd_does(dockerd, daemon):
    """``UPPER/case``: docker CLI 28 takes the upper-case first component for a registry
    host and sends the tag, but dockerd 20.10's grammar has no such rule (only "." / ":" /
    "localhost" make a host), so the daemon refuses the Hub name as not lowercase."""
    for engine in (dockerd, daemon):
        result = engine.cli("tag", "busybox", "UPPER/case")
        try:
            assert result.returncode != 0, engine
            assert result.stderr.decode() == (
                "Error response from daemon: invalid reference format: "
                "repository name must be lowercase\n"
            ), engine
        finally:
            if result.returncode == 0:
                engine.cli("rmi", "UPPER/case")


def test_cli_tag_two_colons(docker, guard):
    result = docker("tag", "busybox", "a:b:c")
    assert result.returncode != 0
    assert result.stderr.decode() == (
        'Error parsing reference: "a:b:c" is not a valid repository/tag: invalid reference format\n'
    )
    guard.check()


@pytest.mark.parametrize("repo", ["UPPERCASE", "upper/CASE", "a:b:c", "-x"])
def test_api_tag_invalid(daemon, guard, repo):
    status, body = request(daemon, "POST", f"/images/busybox/tag?repo={urllib.parse.quote(repo)}")
    assert_error(status, body, 400, "invalid reference format")
    guard.check()


def test_inspect_bad_reference(daemon, guard, docker):
    status, body = request(daemon, "GET", "/images/BAD::REF/json")
    assert status == 400
    assert message(body) == "invalid reference format"
    result = docker("image", "inspect", "BAD::REF")
    assert result.returncode != 0
    assert result.stderr.decode() == "Error response from daemon: invalid reference format\n"
    guard.check()


def test_delete_bad_reference(daemon, guard, docker):
    status, body = request(daemon, "DELETE", "/images/-x")
    assert status == 400
    assert message(body) == "invalid reference format"
    result = docker("rmi", "--", "-x")
    assert result.returncode != 0
    assert result.stderr.decode() == "Error response from daemon: invalid reference format\n"
    guard.check()


def test_inspect_unknown_image(daemon, guard, docker):
    status, body = request(daemon, "GET", "/images/nosuch/json")
    assert status == 404
    assert message(body) == "No such image: nosuch:latest"
    result = docker("image", "inspect", "nosuch")
    assert result.returncode != 0
    assert result.stderr.decode() == "Error response from daemon: No such image: nosuch:latest\n"
    guard.check()


# ---- 5. clients that hang up -------------------------------------------------------------------
def test_load_client_hangs_up(daemon, guard):
    status, full = request(daemon, "GET", "/images/get?names=busybox")
    assert status == 200
    half = full[: len(full) // 2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(daemon.sock)
    sock.sendall(
        b"POST /images/load HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    for i in range(0, len(half), 64 << 10):
        chunk = half[i : i + (64 << 10)]
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    time.sleep(0.3)
    guard.check()
    # The lock is free again: a real load right after works.
    status, body = load(daemon, full)
    assert status == 200, body
    assert b"busybox" in body


def test_save_client_hangs_up(daemon, guard):
    for _ in range(3):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(daemon.sock)
        sock.sendall(b"GET /images/get?names=busybox HTTP/1.1\r\nHost: d\r\n\r\n")
        got = b""
        while len(got) < 8192:
            chunk = sock.recv(4096)
            assert chunk
            got += chunk
        assert got.startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    time.sleep(0.3)
    guard.check()
    status, full = request(daemon, "GET", "/images/get?names=busybox", timeout=60)
    assert status == 200
    names = []
    with tarfile.open(fileobj=io.BytesIO(full), mode="r:") as tar:
        for m in tar:
            names.append(m.name)
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None and len(f.read()) == m.size
    assert "manifest.json" in names and "index.json" in names


# ---- 6. malformed API input -------------------------------------------------------------------
def test_filters_not_json(daemon, guard):
    status, body = request(daemon, "GET", "/images/json?filters=notjson")
    assert_error(status, body, 400, "filter")
    guard.check()


def test_filters_unknown_key(daemon, guard):
    q = json.dumps({"bogus": ["x"]})
    status, body = request(daemon, "GET", f"/images/json?filters={urllib.parse.quote(q)}")
    assert status == 400
    assert message(body) == "Invalid filter 'bogus'"
    guard.check()


def test_version_too_new(daemon, guard):
    status, body = request(daemon, "GET", "/v1.99/version")
    assert_error(status, body, 400, "client version 1.99 is too new")
    assert "Maximum supported API version is" in message(body)
    guard.check()


def test_version_too_old(daemon, guard):
    status, body = request(daemon, "GET", "/v1.11/version")
    assert_error(status, body, 400, "client version 1.11 is too old")
    assert "Minimum supported API version is" in message(body)
    guard.check()


def test_unknown_path(daemon, guard):
    status, body = request(daemon, "GET", "/nonexistent")
    assert status == 404
    assert message(body) == "page not found"
    guard.check()
