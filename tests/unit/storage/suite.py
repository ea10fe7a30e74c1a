"""Conformance suite for dockyard.storage drivers.

Each ``test_<driver>.py`` defines a ``driver`` fixture (a fresh driver under tmp_path whose
teardown unmounts everything below it) and star-imports these tests.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from dockyard.errors import Internal, InvalidParameter, NotFound
from dockyard.layers import apply_tar
from dockyard.runtime import linux
from dockyard.storage import Driver

__all__ = [
    "layer_id",
    "mounts_under",
    "tar_of",
    "test_bad_ids_and_missing_layers",
    "test_chain_merged_view",
    "test_create_base_layer_is_empty",
    "test_create_over_leftover_starts_over",
    "test_mount_and_unmount_are_idempotent",
    "test_remove_is_idempotent_and_unmounts",
    "test_rw_layer_without_parent",
    "test_size_counts_hard_links_once",
    "test_status_pairs",
    "unmount_all_under",
]

MTIME = 1_600_000_000


def layer_id(n: int | str) -> str:
    return f"{n:0>64}" if isinstance(n, str) else f"{n:064x}"


Entry = tuple[str, str, bytes | str, dict[str, object]]


def tar_of(*entries: tuple) -> bytes:
    """Build a PAX tar from (type, name, data-or-linkname[, options]) tuples.

    type is one of "f" (file), "d" (dir), "l" (symlink), "h" (hard link).
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, payload, *rest in entries:
            opts: dict = rest[0] if rest else {}
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            info.uid, info.gid = opts.get("owner", (0, 0))
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in opts.get("xattrs", {}).items()}
            info.mode = opts.get("mode", 0o755 if kind == "d" else 0o644)
            if kind == "f":
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}[kind]
            info.linkname = payload if kind in "lh" else ""
            tf.addfile(info)
    return buf.getvalue()


def apply(driver: Driver, lid: str, parent: str | None, data: bytes) -> None:
    target = driver.create(lid, parent)
    apply_tar(io.BytesIO(data), target, whiteouts=driver.whiteouts)


def mounts_under(path: str) -> list[str]:
    real = os.path.realpath(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split(" ")[4].replace("\\040", " ") for line in f]
    return [p for p in points if p.startswith(real)]


def unmount_all_under(path: str) -> None:
    """Teardown: lazily unmount every mount below ``path``, deepest first."""
    for point in sorted(mounts_under(path), key=len, reverse=True):
        linux.umount2(point, linux.MNT_DETACH)


def _names(path: str | Path) -> list[str]:
    return sorted(os.listdir(path))


# --- the suite --------------------------------------------------------------------------

BASE = tar_of(
    ("d", "bin", ""),
    ("f", "bin/sh", b"#!shell", {"mode": 0o4755}),
    ("h", "bin/sh2", "bin/sh"),
    ("d", "etc", ""),
    ("f", "etc/passwd", b"root:x:0:0", {"xattrs": {"user.origin": "base"}}),
    ("f", "etc/group", b"root:x:0", {"owner": (1000, 1001), "mode": 0o600}),
    ("d", "opt/app", ""),
    ("f", "opt/app/a", b"a"),
    ("f", "opt/app/b", b"b"),
    ("d", "var/log", ""),
    ("f", "var/log/x", b"x"),
    ("l", "sh", "/bin/sh"),
)
MIDDLE = tar_of(
    ("f", "etc/.wh.passwd", b""),
    ("d", "opt/app", ""),
    ("f", "opt/app/.wh..wh..opq", b""),
    ("f", "opt/app/c", b"c"),
    ("f", "etc/hostname", b"box"),
)
TOP = tar_of(
    ("f", "var/.wh.log", b""),
    ("f", "opt/app/d", b"d"),
)


def test_create_base_layer_is_empty(driver: Driver) -> None:
    path = driver.create(layer_id(1), None)
    assert os.path.isdir(path) and _names(path) == []
    assert driver.exists(layer_id(1))
    assert not driver.exists(layer_id(2))


def test_diff_dir_names_the_directory_create_returned(driver: Driver) -> None:
    """The tar-split rebuild reads a layer's files from ``diff_dir``."""
    base = driver.create(layer_id(1), None)
    child = driver.create(layer_id(2), layer_id(1))
    assert driver.diff_dir(layer_id(1)) == base
    assert driver.diff_dir(layer_id(2)) == child


def test_chain_merged_view(driver: Driver) -> None:
    l1, l2, l3, rw = (layer_id(n) for n in (1, 2, 3, "c0ffee"))
    apply(driver, l1, None, BASE)
    apply(driver, l2, l1, MIDDLE)
    apply(driver, l3, l2, TOP)
    driver.prepare(rw, l3)
    root = Path(driver.mount(rw))
    try:
        assert _names(root) == ["bin", "etc", "opt", "sh", "var"]
        assert _names(root / "etc") == ["group", "hostname"]  # passwd whited out
        assert _names(root / "opt/app") == ["c", "d"]  # opaque hides a, b
        assert _names(root / "var") == []  # log whited out
        assert (root / "bin/sh").read_bytes() == b"#!shell"
        assert stat.S_IMODE((root / "bin/sh").stat().st_mode) == 0o4755
        assert (root / "bin/sh").stat().st_ino == (root / "bin/sh2").stat().st_ino
        assert os.readlink(root / "sh") == "/bin/sh"
        group = (root / "etc/group").stat()
        assert (group.st_uid, group.st_gid, stat.S_IMODE(group.st_mode)) == (1000, 1001, 0o600)
        assert group.st_mtime == MTIME
        # the container writes
        (root / "etc/new").write_text("rw")
        (root / "bin/sh2").unlink()
    finally:
        driver.unmount(rw)
    root = Path(driver.mount(rw))
    try:
        assert (root / "etc/new").read_text() == "rw"
        assert not (root / "bin/sh2").exists()
    finally:
        driver.unmount(rw)
    # the image layers are untouched by the container: a second container sees them intact
    rw2 = layer_id("beef")
    driver.prepare(rw2, l1)
    root2 = Path(driver.mount(rw2))
    try:
        assert os.getxattr(root2 / "etc/passwd", "user.origin") == b"base"
        assert _names(root2 / "opt/app") == ["a", "b"]
        assert (root2 / "bin/sh2").exists()
    finally:
        driver.remove(rw2)


def test_mount_and_unmount_are_idempotent(driver: Driver) -> None:
    apply(driver, layer_id(1), None, BASE)
    rw = layer_id("aa")
    driver.prepare(rw, layer_id(1))
    first = driver.mount(rw)
    n = len(mounts_under(os.path.dirname(first)))
    assert driver.mount(rw) == first
    assert len(mounts_under(os.path.dirname(first))) == n
    driver.unmount(rw)
    driver.unmount(rw)
    assert mounts_under(os.path.dirname(first)) == []


def test_remove_is_idempotent_and_unmounts(driver: Driver) -> None:
    apply(driver, layer_id(1), None, BASE)
    rw = layer_id("aa")
    driver.prepare(rw, layer_id(1))
    root = driver.mount(rw)
    driver.remove(rw)
    assert not driver.exists(rw)
    assert mounts_under(os.path.dirname(root)) == []
    driver.remove(rw)
    driver.remove(layer_id(1))
    assert not driver.exists(layer_id(1))


def test_create_over_leftover_starts_over(driver: Driver) -> None:
    apply(driver, layer_id(1), None, BASE)
    half = driver.create(layer_id(2), layer_id(1))
    with open(os.path.join(half, "junk"), "w") as f:
        f.write("half-applied")
    again = driver.create(layer_id(2), layer_id(1))
    assert "junk" not in os.listdir(again)
    apply(driver, layer_id(2), layer_id(1), MIDDLE)
    driver.prepare(layer_id("aa"), layer_id(2))
    root = driver.mount(layer_id("aa"))
    try:
        assert "junk" not in os.listdir(root)
        assert _names(os.path.join(root, "opt/app")) == ["c"]
    finally:
        driver.unmount(layer_id("aa"))


def test_size_counts_hard_links_once(driver: Driver) -> None:
    apply(driver, layer_id(1), None, BASE)
    files = [b"#!shell", b"root:x:0:0", b"root:x:0", b"a", b"b", b"x"]
    assert driver.size(layer_id(1)) == sum(map(len, files)) + len("/bin/sh")


def test_bad_ids_and_missing_layers(driver: Driver) -> None:
    for bad in (
        "../../etc",
        "abc",
        layer_id(0xABC).upper(),
        layer_id(1) + "/x",
        layer_id(1) + "\n",
    ):
        with pytest.raises(InvalidParameter):
            driver.create(bad, None)
    with pytest.raises(NotFound):
        driver.create(layer_id(2), layer_id(1))
    with pytest.raises(NotFound):
        driver.mount(layer_id(3))
    with pytest.raises(NotFound):
        driver.size(layer_id(3))


def test_rw_layer_without_parent(driver: Driver) -> None:
    driver.prepare(layer_id("aa"), None)
    root = driver.mount(layer_id("aa"))
    with open(os.path.join(root, "f"), "w") as f:
        f.write("x")
    driver.unmount(layer_id("aa"))
    driver.remove(layer_id("aa"))


def test_status_pairs(driver: Driver) -> None:
    pairs: Iterable[tuple[str, str]] = driver.status()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)


def test_sync_flushes_a_layer_and_names_a_missing_one(driver: Driver) -> None:
    path = driver.create(layer_id(1), None)
    with open(os.path.join(path, "f"), "wb") as f:
        f.write(b"x" * 4096)
    driver.sync(layer_id(1))  # syncfs of the layer's filesystem; what it flushed is not observable
    with open(os.path.join(path, "f"), "rb") as f:
        assert f.read() == b"x" * 4096
    with pytest.raises(Internal) as exc:
        driver.sync(layer_id(9))
    assert layer_id(9) in exc.value.message
