"""Tests for dockyard.containers.diff: changes, diff_tar, export_tar over overlay2 dirs."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.containers.diff import changes, diff_tar, export_tar

OLD = 1_500_000_000


def _whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def _opaque(path: Path) -> None:
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def _write(path: Path, data: bytes = b"x", mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path, Path]:
    """upper, top lower, bottom lower."""
    upper, top, bottom = tmp_path / "upper", tmp_path / "l1", tmp_path / "l0"
    for d in (upper, top, bottom):
        d.mkdir()
    return upper, top, bottom


def _kinds(upper: Path, lower: list[Path]) -> list[tuple[str, int]]:
    return [(c["Path"], c["Kind"]) for c in changes(str(upper), [str(p) for p in lower])]


def _read(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def test_added_file_in_new_dir(layers):
    upper, top, bottom = layers
    _write(bottom / "etc" / "passwd")
    _write(upper / "new" / "sub" / "f")
    assert _kinds(upper, [top, bottom]) == [("/new", 1), ("/new/sub", 1), ("/new/sub/f", 1)]


def test_added_file_in_existing_dir_reports_parent_modified(layers):
    upper, top, bottom = layers
    _write(bottom / "data" / "old")
    _write(upper / "data" / "f")
    assert _kinds(upper, [top, bottom]) == [("/data", 0), ("/data/f", 1)]


def test_modified_file_in_existing_dir(layers):
    upper, top, bottom = layers
    _write(bottom / "etc" / "passwd", b"root")
    _write(top / "etc" / "hosts")  # the dir in two layers, the file only in the bottom one
    _write(upper / "etc" / "passwd", b"root\nme")
    assert _kinds(upper, [top, bottom]) == [("/etc", 0), ("/etc/passwd", 0)]


def test_deleted_file_via_whiteout(layers):
    upper, top, bottom = layers
    _write(top / "etc" / "gone")
    _write(top / "etc" / "kept")
    (upper / "etc").mkdir()
    _whiteout(upper / "etc" / "gone")
    assert _kinds(upper, [top, bottom]) == [("/etc", 0), ("/etc/gone", 2)]


def test_lower_whiteout_hides_lower_layers(layers):
    upper, top, bottom = layers
    _write(bottom / "f")
    _whiteout(top / "f")  # deleted by the top image layer
    _write(upper / "f")  # so re-creating it is an addition
    _write(bottom / "d" / "x")
    _write(top / "d", b"now a file")  # a file over a dir hides its children
    _write(upper / "g")
    assert _kinds(upper, [top, bottom]) == [("/f", 1), ("/g", 1)]


def test_opaque_dir(layers):
    upper, top, bottom = layers
    _write(bottom / "var" / "cache" / "a")
    _write(bottom / "var" / "cache" / "b")
    (upper / "var" / "cache").mkdir(parents=True)
    _opaque(upper / "var" / "cache")
    _write(upper / "var" / "cache" / "a")  # re-created after rm -rf: new
    _write(upper / "fresh" / "x")
    _opaque(upper / "fresh")
    assert _kinds(upper, [top, bottom]) == [
        ("/fresh", 1),
        ("/fresh/x", 1),
        ("/var", 0),
        ("/var/cache", 0),
        ("/var/cache/a", 1),
    ]


def test_opaque_dir_in_lower_layer_hides_bottom(layers):
    upper, top, bottom = layers
    _write(bottom / "opt" / "a")
    _write(top / "opt" / "b")
    _opaque(top / "opt")
    _write(upper / "opt" / "a")
    _write(upper / "opt" / "b")
    assert _kinds(upper, [top, bottom]) == [("/opt", 0), ("/opt/a", 1), ("/opt/b", 0)]


def test_symlink_is_not_followed(layers):
    upper, top, bottom = layers
    (bottom / "real").mkdir()
    _write(bottom / "real" / "f")
    os.symlink("real", upper / "link")  # a new symlink to a dir of the image
    os.symlink("/nonexistent", upper / "dangling")
    assert _kinds(upper, [top, bottom]) == [("/dangling", 1), ("/link", 1)]


def test_no_lower_layers(layers):
    upper, _, _ = layers
    _write(upper / "a" / "b")
    assert _kinds(upper, []) == [("/a", 1), ("/a/b", 1)]


def test_diff_tar_round_trip(layers):
    upper, _, _ = layers
    _write(upper / "etc" / "passwd", b"root:x:0:0\n", 0o640)
    os.chown(upper / "etc" / "passwd", 1000, 1001)
    os.utime(upper / "etc" / "passwd", (OLD, OLD + 0.75))
    _whiteout(upper / "etc" / "shadow")
    _whiteout(upper / "gone-dir")
    (upper / "cache").mkdir(mode=0o750)
    _opaque(upper / "cache")
    _write(upper / "cache" / "keep", b"k")
    os.symlink("../etc/passwd", upper / "cache" / "link")
    os.link(upper / "etc" / "passwd", upper / "hard")
    os.mkfifo(upper / "fifo")

    buf = io.BytesIO()
    diff_tar(str(upper), buf)
    raw = buf.getvalue()
    members = _read(raw)

    assert set(members) == {
        "cache",
        "cache/.wh..wh..opq",
        "cache/keep",
        "cache/link",
        "etc",
        "etc/passwd",
        "etc/.wh.shadow",
        "fifo",
        ".wh.gone-dir",
        "hard",
    }
    passwd = members["etc/passwd"]
    assert passwd.isreg() and passwd.mode == 0o100640  # type bits as moby writes them
    assert (passwd.uid, passwd.gid, passwd.mtime) == (1000, 1001, OLD)
    assert passwd.uname == passwd.gname == ""
    for wh in ("etc/.wh.shadow", ".wh.gone-dir", "cache/.wh..wh..opq"):
        assert members[wh].isreg() and members[wh].size == 0
    assert members["cache/.wh..wh..opq"].mode == 0o750  # an opaque marker has none (moby)
    names = list(members)
    assert names.index("cache") < names.index("cache/.wh..wh..opq") < names.index("cache/keep")
    assert members["cache"].isdir()
    assert members["cache/link"].issym() and members["cache/link"].linkname == "../etc/passwd"
    hard = members["hard"]
    assert hard.islnk() and hard.linkname == "etc/passwd"
    assert members["fifo"].isfifo()
    assert not any("trusted.overlay" in k for m in members.values() for k in m.pax_headers)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        assert tf.extractfile("etc/passwd").read() == b"root:x:0:0\n"


def test_diff_tar_raw_names_and_format(layers):
    upper, _, _ = layers
    _write(upper / "d" / "f")
    buf = io.BytesIO()
    diff_tar(str(upper), buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        assert [m.name for m in tf.getmembers()] == ["d", "d/f"]
    header_names = [buf.getvalue()[0:100], buf.getvalue()[512:612]]
    assert header_names[0].rstrip(b"\0") == b"d/"
    assert header_names[1].rstrip(b"\0") == b"d/f"


def test_diff_tar_security_capability_xattr(layers):
    upper, _, _ = layers
    _write(upper / "ping")
    cap = bytes.fromhex("0000000200200000000000000000000000000000")  # v2, cap_net_raw
    try:
        os.setxattr(upper / "ping", "security.capability", cap)
    except OSError:
        pytest.skip("security.capability not settable here")
    buf = io.BytesIO()
    diff_tar(str(upper), buf)
    member = _read(buf.getvalue())["ping"]
    value = member.pax_headers["SCHILY.xattr.security.capability"]
    assert value.encode("utf-8", "surrogateescape") == cap


def test_export_tar(tmp_path):
    root = tmp_path / "rootfs"
    _write(root / "bin" / "sh", b"#!elf", 0o755)
    os.symlink("/bin/sh", root / "bin" / "ash")
    os.symlink("/etc", root / "etc-link")  # absolute: must not be followed to the host
    (root / "empty").mkdir()
    _write(root / ".dockerenv", b"")
    _whiteout(root / "dev-null-ish")  # a merged root holds no whiteouts: kept as a device

    buf = io.BytesIO()
    export_tar(str(root), buf)
    members = _read(buf.getvalue())
    assert set(members) == {
        ".dockerenv",
        "bin",
        "bin/ash",
        "bin/sh",
        "dev-null-ish",
        "empty",
        "etc-link",
    }
    assert members["bin/sh"].mode == 0o100755
    assert members["bin/ash"].issym() and members["bin/ash"].linkname == "/bin/sh"
    assert members["etc-link"].issym()
    assert members["empty"].isdir()
    assert members["dev-null-ish"].ischr()
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        assert tf.extractfile("bin/sh").read() == b"#!elf"


def test_diff_tar_applies_back_to_the_same_upper_dir(layers, tmp_path):
    from dockyard.layers import apply_tar

    upper, _, _ = layers
    _write(upper / "etc" / "passwd", b"root\n")
    _whiteout(upper / "etc" / "shadow")
    (upper / "cache").mkdir()
    _opaque(upper / "cache")
    _write(upper / "cache" / "keep")
    os.symlink("../etc/passwd", upper / "cache" / "link")
    buf = io.BytesIO()
    diff_tar(str(upper), buf)
    buf.seek(0)
    target = tmp_path / "applied"
    target.mkdir()
    apply_tar(buf, str(target), whiteouts="overlay")
    assert _kinds(target, []) == _kinds(upper, [])
    st = os.lstat(target / "etc" / "shadow")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(target / "cache", "trusted.overlay.opaque") == b"y"
    assert os.readlink(target / "cache" / "link") == "../etc/passwd"
    assert (target / "etc" / "passwd").read_bytes() == b"root\n"


def test_the_runtime_mount_points_are_not_changes(layers):
    upper, top, _ = layers
    _write(top / "etc" / "passwd")
    for name in ("hosts", "hostname", "resolv.conf"):
        _write(upper / "etc" / name, b"")
    _write(upper / "test", b"")
    assert _kinds(upper, [top]) == [("/test", 1)]
    # a real change beside them keeps the directory; deleting one is a change too
    _write(upper / "etc" / "passwd", b"y")
    assert _kinds(upper, [top]) == [("/etc", 0), ("/etc/passwd", 0), ("/test", 1)]
    (upper / "etc" / "passwd").unlink()
    (upper / "etc" / "hosts").unlink()
    _write(top / "etc" / "hosts")
    _whiteout(upper / "etc" / "hosts")
    assert _kinds(upper, [top]) == [("/etc", 0), ("/etc/hosts", 2), ("/test", 1)]
