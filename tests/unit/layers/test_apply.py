"""Tests for dockyard.layers: apply_tar semantics, whiteouts, hostile tars, decompress."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.errors import InvalidParameter
from dockyard.layers import apply_tar, decompress

MTIME = 1_600_000_000


@dataclass
class E:
    """One tar entry to build."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    linkname: str = ""
    mtime: int = MTIME
    pax: dict[str, str] = field(default_factory=dict)
    dev: tuple[int, int] = (0, 0)


def D(name: str, mode: int = 0o755, **kw: object) -> E:
    return E(name, tarfile.DIRTYPE, mode=mode, **kw)  # type: ignore[arg-type]


def S(name: str, target: str) -> E:
    return E(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def H(name: str, target: str) -> E:
    return E(name, tarfile.LNKTYPE, linkname=target)


def make_tar(*entries: E) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.type
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = e.mtime
            info.linkname = e.linkname
            info.pax_headers = dict(e.pax)
            info.devmajor, info.devminor = e.dev
            if e.type == tarfile.REGTYPE:
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def apply(data: bytes, root: Path, whiteouts: str = "overlay", **kw: bool) -> int:
    stream = io.BytesIO(data)
    return apply_tar(stream, str(root), whiteouts=whiteouts, **kw)  # type: ignore[arg-type]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture()
def sentinel(tmp_path: Path):
    """A directory beside root that no layer may touch; checked after the test."""
    s = tmp_path / "sentinel"
    s.mkdir()
    (s / "passwd").write_text("root:x:0:0\n")
    (s / "sub").mkdir()

    def snapshot() -> list[tuple[str, int, int, bytes | None]]:
        out = []
        for p in sorted([s, *s.rglob("*")]):
            st = p.lstat()
            out.append(
                (str(p), st.st_mode, st.st_mtime_ns, p.read_bytes() if p.is_file() else None)
            )
        return out

    before = snapshot()
    yield s
    assert snapshot() == before, "a layer wrote outside its root"


# --- ordinary content -------------------------------------------------------------------


def test_files_dirs_modes_owners_times(root: Path) -> None:
    size = apply(
        make_tar(
            D("./etc", 0o755, uid=10, gid=20),
            E("./etc/hosts", data=b"127.0.0.1 localhost\n", mode=0o640, uid=1000, gid=1001),
            E("usr/bin/su", data=b"ELF", mode=0o4755),
            D("tmp", 0o1777),
            E("deep/missing/parent/file", data=b"x"),
        ),
        root,
    )
    assert size == len(b"127.0.0.1 localhost\n") + 3 + 1
    hosts = (root / "etc/hosts").lstat()
    assert (hosts.st_uid, hosts.st_gid) == (1000, 1001)
    assert stat.S_IMODE(hosts.st_mode) == 0o640
    assert hosts.st_mtime == MTIME
    assert (root / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert stat.S_IMODE((root / "usr/bin/su").lstat().st_mode) == 0o4755
    assert stat.S_IMODE((root / "tmp").lstat().st_mode) == 0o1777
    etc = (root / "etc").lstat()
    assert (etc.st_uid, etc.st_gid) == (10, 20)
    assert etc.st_mtime == MTIME  # set after its children were written
    assert stat.S_IMODE((root / "deep/missing").lstat().st_mode) == 0o755


def test_symlinks_point_anywhere_and_keep_owner(root: Path) -> None:
    apply(make_tar(S("bin", "usr/bin"), S("abs", "/etc/shadow"), S("up", "../../../x")), root)
    assert os.readlink(root / "bin") == "usr/bin"
    assert os.readlink(root / "abs") == "/etc/shadow"
    assert os.readlink(root / "up") == "../../../x"
    assert (root / "abs").lstat().st_mtime == MTIME


def test_hard_links(root: Path) -> None:
    apply(
        make_tar(D("a"), E("a/file", data=b"data"), H("b/link", "a/file"), H("abs", "/a/file")),
        root,
    )
    st = (root / "a/file").stat()
    assert st.st_nlink == 3
    assert (root / "b/link").stat().st_ino == st.st_ino
    assert (root / "abs").stat().st_ino == st.st_ino


def test_user_xattrs_round_trip_and_overlay_xattrs_are_dropped(root: Path) -> None:
    apply(
        make_tar(
            D(
                "d",
                pax={"SCHILY.xattr.user.dir": "yes", "SCHILY.xattr.trusted.overlay.opaque": "y"},
            ),
            E(
                "d/f",
                data=b"x",
                pax={
                    "SCHILY.xattr.user.comment": "hello",
                    "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                },
            ),
        ),
        root,
    )
    assert os.getxattr(root / "d/f", "user.comment") == b"hello"
    assert os.getxattr(root / "d", "user.dir") == b"yes"
    assert "trusted.overlay.opaque" not in os.listxattr(root / "d")
    assert "trusted.overlay.redirect" not in os.listxattr(root / "d/f")


def test_replace_entries_of_another_type(root: Path) -> None:
    (root / "dir").mkdir()
    (root / "dir/keep").write_text("lower")
    (root / "was_dir").mkdir()
    (root / "was_dir/child").write_text("x")
    (root / "was_file").write_text("x")
    (root / "was_link").symlink_to("elsewhere")
    apply(
        make_tar(
            D("dir", 0o700),
            E("was_dir", data=b"now a file"),
            D("was_file"),
            S("was_link", "new-target"),
        ),
        root,
        "naive",
    )
    assert (root / "dir/keep").read_text() == "lower"
    assert stat.S_IMODE((root / "dir").lstat().st_mode) == 0o700
    assert (root / "was_dir").read_bytes() == b"now a file"
    assert (root / "was_file").is_dir()
    assert os.readlink(root / "was_link") == "new-target"


def test_root_entry_and_dot_slash_names(root: Path) -> None:
    apply(make_tar(D("./", 0o711), E("./a", data=b"1"), E("b/./../c", data=b"2")), root)
    assert stat.S_IMODE(root.lstat().st_mode) == 0o711
    assert (root / "a").read_bytes() == b"1"
    assert (root / "c").read_bytes() == b"2"


def test_fifo_allowed_and_devices_only_on_request(root: Path) -> None:
    apply(make_tar(E("fifo", tarfile.FIFOTYPE, mode=0o600)), root)
    assert stat.S_ISFIFO((root / "fifo").lstat().st_mode)
    apply(make_tar(E("null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3))), root, allow_devices=True)
    st = (root / "null").lstat()
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


# --- whiteouts --------------------------------------------------------------------------


def test_overlay_whiteouts_and_opaque(root: Path) -> None:
    apply(
        make_tar(
            D("gone"),
            E("etc/.wh.passwd", uid=5, gid=6),
            D("opq"),
            E("opq/.wh..wh..opq"),
            E("opq/new", data=b"n"),
            E(".wh..wh.plnk"),
        ),
        root,
    )
    wh = (root / "etc/passwd").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert (wh.st_uid, wh.st_gid) == (5, 6)
    assert os.getxattr(root / "opq", "trusted.overlay.opaque") == b"y"
    assert sorted(p.name for p in root.rglob(".wh.*")) == []
    assert (root / "opq/new").read_bytes() == b"n"


def test_naive_whiteouts_remove_and_opaque_prunes(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("old")
    (root / "tree/sub").mkdir(parents=True)
    (root / "tree/sub/f").write_text("old")
    (root / "link").symlink_to("/etc")
    for d in ("opq", "opq2"):
        (root / d / "old/deeper").mkdir(parents=True)
        (root / d / "old_file").write_text("old")
        (root / d / "kept_dir/old_child").mkdir(parents=True)
    apply(
        make_tar(
            E("etc/.wh.passwd"),
            E(".wh.tree"),
            E(".wh.link"),
            E("nowhere/.wh.x"),
            E("opq/.wh..wh..opq"),
            E("opq/new", data=b"n"),
            E("opq/kept_dir/new", data=b"n"),
            # marker after the entries: same result
            E("opq2/new", data=b"n"),
            E("opq2/kept_dir/new", data=b"n"),
            E("opq2/.wh..wh..opq"),
        ),
        root,
        "naive",
    )
    assert not (root / "etc/passwd").exists()
    assert not (root / "tree").exists()
    assert not os.path.lexists(root / "link")
    assert not (root / "nowhere").exists()
    for d in ("opq", "opq2"):
        assert sorted(os.listdir(root / d)) == ["kept_dir", "new"]
        assert os.listdir(root / d / "kept_dir") == ["new"]
    assert sorted(p.name for p in root.rglob(".wh.*")) == []


# --- hostile tars -----------------------------------------------------------------------

HOSTILE = {
    "absolute": (make_tar(E("/etc/passwd", data=b"pwn")), "absolute"),
    "dotdot": (make_tar(E("../sentinel/pwn", data=b"pwn")), "escapes the layer root"),
    "inner_dotdot": (make_tar(E("a/../../sentinel/pwn", data=b"pwn")), "escapes the layer root"),
    "through_symlink": (
        make_tar(S("evil", "../sentinel"), E("evil/passwd", data=b"pwn")),
        "symlink",
    ),
    "through_abs_symlink": (make_tar(S("evil", "/"), E("evil/tmp/pwn", data=b"pwn")), "symlink"),
    "dir_through_symlink": (make_tar(S("evil", "../sentinel"), D("evil/sub/newdir")), "symlink"),
    "symlink_through_symlink": (make_tar(S("evil", "../sentinel"), S("evil/ln", "/x")), "symlink"),
    "whiteout_through_symlink": (
        make_tar(S("evil", "../sentinel"), E("evil/.wh.passwd")),
        "symlink",
    ),
    "opaque_through_symlink": (
        make_tar(S("evil", "../sentinel"), E("evil/.wh..wh..opq")),
        "symlink",
    ),
    "hardlink_escape": (make_tar(H("pwn", "../sentinel/passwd")), "escapes the layer root"),
    "hardlink_through_symlink": (
        make_tar(S("evil", "../sentinel"), H("pwn", "evil/passwd")),
        "symlink",
    ),
    "hardlink_to_outside_symlink": (
        make_tar(S("evil", "../sentinel/passwd"), H("pwn", "evil")),
        "symlink pointing outside",
    ),
    "hardlink_to_abs_symlink": (
        make_tar(S("evil", "/etc/passwd"), H("pwn", "evil")),
        "symlink pointing outside",
    ),
    "whiteout_of_dotdot": (make_tar(D("a"), E("a/.wh...")), "whiteout of no name"),
    "hardlink_missing": (make_tar(H("pwn", "nothing")), "not found"),
    "device": (
        make_tar(E("dev/sda", tarfile.CHRTYPE, dev=(8, 0))),
        "device nodes are not allowed in image layers",
    ),
    "block_device": (
        make_tar(E("sda", tarfile.BLKTYPE, dev=(8, 0))),
        "device nodes are not allowed in image layers",
    ),
}


@pytest.mark.parametrize("whiteouts", ["overlay", "naive"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_is_refused(case: str, whiteouts: str, root: Path, sentinel: Path) -> None:
    data, message = HOSTILE[case]
    with pytest.raises(InvalidParameter, match=message):
        apply(data, root, whiteouts)


def test_preexisting_symlink_in_root_is_not_followed(root: Path, sentinel: Path) -> None:
    """vfs roots are copies of the parent layer, which may hold hostile symlinks."""
    (root / "evil").symlink_to(sentinel)
    with pytest.raises(InvalidParameter, match="symlink"):
        apply(make_tar(E("evil/passwd", data=b"pwn")), root, "naive")
    with pytest.raises(InvalidParameter, match="symlink"):
        apply(make_tar(E("evil/.wh.passwd")), root, "naive")


def test_file_over_symlink_replaces_the_symlink(root: Path, sentinel: Path) -> None:
    apply(
        make_tar(
            S("evil", "../sentinel/passwd"),
            E("evil", data=b"mine"),
            S("evil2", "../sentinel/sub"),
            D("evil2"),
        ),
        root,
    )
    assert (root / "evil").read_bytes() == b"mine"
    assert (root / "evil2").is_dir() and not (root / "evil2").is_symlink()


def test_hardlink_to_inside_symlink_links_the_symlink(root: Path, sentinel: Path) -> None:
    apply(make_tar(E("f", data=b"x"), S("rel", "f"), H("again", "rel")), root)
    assert (root / "again").is_symlink() and os.readlink(root / "again") == "f"


# --- broken input -----------------------------------------------------------------------


def test_truncated_tar_is_refused(root: Path) -> None:
    data = make_tar(E("a", data=b"x" * 5000), E("b", data=b"y" * 5000))
    second_header = 512 + 5120
    for cut in (100, 1000, 512 + 2000, second_header + 100, second_header + 512 + 4000):
        with pytest.raises(InvalidParameter, match="invalid layer tar"):
            apply(data[:cut], root)


def test_corrupt_header_is_refused(root: Path) -> None:
    data = bytearray(make_tar(E("a", data=b"x" * 100), E("b", data=b"y")))
    second = data.index(b"b\x00", 1024)  # a second header (after pax header + data)
    data[second] = ord("c")  # checksum no longer matches
    with pytest.raises(InvalidParameter, match="invalid layer tar"):
        apply(bytes(data), root)
    with pytest.raises(InvalidParameter, match="invalid layer tar"):
        apply(os.urandom(4096), root)


def test_truncated_gzip_is_refused(root: Path) -> None:
    data = gzip.compress(make_tar(E("a", data=os.urandom(50_000))))
    with pytest.raises(InvalidParameter, match="invalid layer tar"):
        apply_tar(decompress(io.BytesIO(data[:-100])), str(root), whiteouts="overlay")


# --- decompress -------------------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """Non-seekable, returns at most 3 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = min(3, len(b), len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("codec", ["plain", "gzip", "bz2", "xz"])
def test_decompress_sniffs_and_streams(codec: str, root: Path) -> None:
    raw = make_tar(D("d"), E("d/f", data=b"hello" * 1000))
    packed = {
        "plain": raw,
        "gzip": gzip.compress(raw),
        "bz2": bz2.compress(raw),
        "xz": lzma.compress(raw),
    }[codec]
    stream = decompress(_Pipe(packed))  # type: ignore[arg-type]
    assert apply_tar(stream, str(root), whiteouts="overlay") == 5000
    assert (root / "d/f").read_bytes() == b"hello" * 1000


def test_decompress_short_input() -> None:
    assert decompress(io.BytesIO(b"ab")).read() == b"ab"
    assert decompress(io.BytesIO(b"")).read() == b""


def test_size_counts_symlinks_as_dockerds_overlay2_does(root: Path) -> None:
    """dockerd's overlay2 sizes a layer with ``directory.Size`` of its diff: regular files
    plus each symlink's lstat size (the length of its target); directories and hard links
    (one inode) add nothing.  A layer that only adds a symlink is not an empty layer."""
    assert apply(make_tar(S("entrypoint.sh", "usr/local/bin/run.sh")), root) == 20
    assert os.lstat(root / "entrypoint.sh").st_size == 20
    data = make_tar(D("d"), E("d/f", data=b"12345"), H("d/h", "d/f"), S("d/s", "f"))
    assert apply(data, root) == 5 + 1
