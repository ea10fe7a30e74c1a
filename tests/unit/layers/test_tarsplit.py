"""Tests for dockyard.layers.tarsplit: a layer's tar rebuilt byte for byte from its directory."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import Internal
from dockyard.layers import apply_tar
from dockyard.layers.tarsplit import Recorder, Unrecordable, open_tar, read_header, record_tar

MTIME = 1_600_000_000


def _info(name: str, type_: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mtime = MTIME
    info.mode = 0o755 if type_ == tarfile.DIRTYPE else 0o644
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def python_tar(fmt: int, entries: list[tuple[tarfile.TarInfo, bytes]], tail: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in entries:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue() + tail


def record(tar: bytes, root: Path, whiteouts: str = "overlay", *, devices: bool = True) -> Path:
    """Apply ``tar`` into ``root`` while recording; return the split file beside it."""
    root.mkdir(parents=True, exist_ok=True)
    rec = Recorder(io.BytesIO(tar))
    apply_tar(rec, str(root), whiteouts=whiteouts, allow_devices=devices, recorder=rec)  # type: ignore[arg-type]
    split = rec.finish()
    assert split.size == len(tar)
    assert split.digest == "sha256:" + hashlib.sha256(tar).hexdigest()
    path = root.parent / (root.name + ".tsz")
    path.write_bytes(split.data)
    return path


def rebuild(split: Path, root: Path) -> bytes:
    with open_tar(str(split), str(root)) as f:
        return f.read()


def roundtrip(tar: bytes, tmp_path: Path, whiteouts: str = "overlay") -> Path:
    root = tmp_path / f"layer-{whiteouts}"
    split = record(tar, root, whiteouts)
    assert rebuild(split, root) == tar
    assert read_header(str(split)) == ("sha256:" + hashlib.sha256(tar).hexdigest(), len(tar))
    return split


def rich_entries() -> list[tuple[tarfile.TarInfo, bytes]]:
    long_dir = "d/" + "x" * 120
    return [
        (_info("d", tarfile.DIRTYPE), b""),
        (_info("d/file", mode=0o600, uid=1000, gid=1000), b"hello\n" * 1000),
        (_info("d/empty"), b""),
        (_info("d/one-block"), b"y" * 512),
        (_info("d/link", tarfile.SYMTYPE, linkname="file"), b""),
        (_info("d/hard", tarfile.LNKTYPE, linkname="d/file"), b""),
        (_info("d/fifo", tarfile.FIFOTYPE), b""),
        (_info("d/null", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        (_info(long_dir, tarfile.DIRTYPE), b""),
        (_info(long_dir + "/" + "f" * 150), b"long name\n"),
        (_info("d/longlink", tarfile.SYMTYPE, linkname="t" * 200), b""),
        (_info("gone/.wh.old"), b""),
        (_info("opaque", tarfile.DIRTYPE), b""),
        (_info("opaque/.wh..wh..opq"), b""),
        (_info("opaque/kept"), os.urandom(70_000)),
        (_info(".wh..wh.plnk", tarfile.DIRTYPE), b""),
    ]


@pytest.mark.parametrize("whiteouts", ["overlay", "naive"])
@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_python_formats_round_trip(tmp_path: Path, fmt: int, whiteouts: str) -> None:
    tar = python_tar(fmt, rich_entries())
    roundtrip(tar, tmp_path, whiteouts)


def test_ustar_round_trips(tmp_path: Path) -> None:
    entries = [e for e in rich_entries() if len(e[0].name) < 100 and len(e[0].linkname) < 100]
    roundtrip(python_tar(tarfile.USTAR_FORMAT, entries), tmp_path)


def test_pax_xattrs_and_unicode_names_round_trip(tmp_path: Path) -> None:
    info = _info("caf\u00e9/\u00fcber.txt")
    info.pax_headers = {"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.overlay.opaque": "y"}
    bad = _info("raw-\udcff-name")  # not UTF-8 on disk: surrogateescape both ways
    tar = python_tar(tarfile.PAX_FORMAT, [(info, b"data"), (bad, b"more")])
    roundtrip(tar, tmp_path)


def test_trailing_bytes_and_extra_zero_blocks_round_trip(tmp_path: Path) -> None:
    tar = python_tar(tarfile.PAX_FORMAT, [(_info("a"), b"a" * 3000)], tail=b"\0" * 4096 + b"junk")
    roundtrip(tar, tmp_path)


def test_empty_tar_round_trips(tmp_path: Path) -> None:
    roundtrip(b"\0" * 1024, tmp_path)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
def test_large_file_payloads_are_not_in_the_metadata(tmp_path: Path, fmt: int) -> None:
    entries = [(_info(f"big{i}"), os.urandom(2 << 20)) for i in range(3)]
    split = roundtrip(python_tar(fmt, entries), tmp_path)
    assert split.stat().st_size < 4096


def _tree(base: Path) -> Path:
    src = base / "src"
    (src / "dir/sub").mkdir(parents=True)
    (src / "dir/file").write_bytes(b"content\n" * 100)
    (src / "dir/empty").write_bytes(b"")
    os.link(src / "dir/file", src / "dir/hardlink")
    os.symlink("file", src / "dir/symlink")
    (src / ("n" * 40) / ("m" * 40) / ("o" * 40)).mkdir(parents=True)
    (src / ("n" * 40) / ("m" * 40) / ("o" * 40) / ("p" * 60)).write_bytes(b"deep\n")
    (src / "dir/.wh.deleted").write_bytes(b"")
    (src / "dir/sub/.wh..wh..opq").write_bytes(b"")
    os.mkfifo(src / "dir/fifo")
    for p in sorted(src.rglob("*")):
        os.utime(p, (MTIME, MTIME), follow_symlinks=False)
    return src


@pytest.mark.parametrize("fmt", ["gnu", "posix", "ustar", "oldgnu"])
def test_gnu_tar_round_trips(tmp_path: Path, fmt: str) -> None:
    src = _tree(tmp_path)
    tar = subprocess.run(
        ["tar", "-C", str(src), f"--format={fmt}", "-cf", "-", "."],
        check=True,
        capture_output=True,
    ).stdout
    roundtrip(tar, tmp_path)


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_gnu_tar_sparse_files_round_trip(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(1 << 20)
        f.write(b"data in the middle")
        f.seek(3 << 20)
        f.write(b"end")
    tar = subprocess.run(
        ["tar", "-C", str(src), f"--format={fmt}", "--sparse", "-cf", "-", "."],
        check=True,
        capture_output=True,
    ).stdout
    roundtrip(tar, tmp_path)


def test_busybox_tar_round_trips(tmp_path: Path) -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is required (apt-get install busybox-static)")
    src = _tree(tmp_path)
    tar = subprocess.run(
        [busybox, "tar", "-C", str(src), "-cf", "-", "."], check=True, capture_output=True
    ).stdout
    roundtrip(tar, tmp_path)


def test_name_written_twice_is_unrecordable(tmp_path: Path) -> None:
    tar = python_tar(tarfile.PAX_FORMAT, [(_info("a"), b"first"), (_info("a"), b"second")])
    rec = Recorder(io.BytesIO(tar))
    root = tmp_path / "root"
    root.mkdir()
    apply_tar(rec, str(root), whiteouts="overlay", recorder=rec)  # type: ignore[arg-type]
    with pytest.raises(Unrecordable):
        rec.finish()
    assert rec.digest == "sha256:" + hashlib.sha256(tar).hexdigest()  # checkable all the same


def test_whiteout_of_an_earlier_payload_is_unrecordable(tmp_path: Path) -> None:
    tar = python_tar(
        tarfile.PAX_FORMAT,
        [(_info("d", tarfile.DIRTYPE), b""), (_info("d/a"), b"x"), (_info(".wh.d"), b"")],
    )
    rec = Recorder(io.BytesIO(tar))
    root = tmp_path / "root"
    root.mkdir()
    apply_tar(rec, str(root), whiteouts="naive", recorder=rec)  # type: ignore[arg-type]
    with pytest.raises(Unrecordable):
        rec.finish()


def test_replacing_a_lower_file_in_a_later_layer(tmp_path: Path) -> None:
    """vfs: the upper layer's dir is a copy of the lower one, and rewrites the file."""
    lower_tar = python_tar(
        tarfile.PAX_FORMAT, [(_info("etc", tarfile.DIRTYPE), b""), (_info("etc/conf"), b"v1\n")]
    )
    upper_tar = python_tar(
        tarfile.PAX_FORMAT, [(_info("etc/conf"), b"version two\n"), (_info("etc/.wh.x"), b"")]
    )
    lower = tmp_path / "lower"
    lower_split = record(lower_tar, lower, "naive")
    upper = tmp_path / "upper"
    subprocess.run(["cp", "-a", str(lower), str(upper)], check=True)
    upper_split = record(upper_tar, upper, "naive")
    assert rebuild(lower_split, lower) == lower_tar
    assert rebuild(upper_split, upper) == upper_tar


def test_modified_layer_is_refused(tmp_path: Path) -> None:
    tar = python_tar(tarfile.PAX_FORMAT, [(_info("a"), b"a" * 2000), (_info("b"), b"b" * 100)])
    root = tmp_path / "root"
    split = record(tar, root)
    (root / "a").write_bytes(b"A" * 2000)  # same size, other bytes: the digest catches it
    with open_tar(str(split), str(root)) as f:
        with pytest.raises(Internal, match="modified"):
            f.read()
    (root / "b").write_bytes(b"short")
    with pytest.raises(Internal, match="was modified"):
        rebuild(split, root)
    (root / "a").unlink()
    with pytest.raises(Internal, match="missing"):
        rebuild(split, root)


def test_rebuild_never_emits_a_complete_wrong_tar(tmp_path: Path) -> None:
    tar = python_tar(tarfile.PAX_FORMAT, [(_info("a"), b"a" * 2000)])
    root = tmp_path / "root"
    split = record(tar, root)
    (root / "a").write_bytes(b"A" * 2000)
    got = bytearray()
    with open_tar(str(split), str(root)) as f:
        with pytest.raises(Internal):
            while chunk := f.read(100):
                got += chunk
    assert len(got) < len(tar)


def test_corrupt_metadata_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsz"
    bad.write_bytes(b"not a split")
    with pytest.raises(Internal, match="not a tar-split"):
        open_tar(str(bad), str(tmp_path))


def test_reads_are_full_until_the_end(tmp_path: Path) -> None:
    """tarfile.copyfileobj takes a short read for the end of the data."""
    tar = python_tar(tarfile.PAX_FORMAT, [(_info(f"f{i}"), os.urandom(300_000)) for i in range(5)])
    root = tmp_path / "root"
    split = record(tar, root)
    for size in (1000, 512, 16384, 1 << 20, 3 << 20):
        got = bytearray()
        with open_tar(str(split), str(root)) as f:
            while chunk := f.read(size):
                got += chunk
                assert len(chunk) == size or len(got) == len(tar)
        assert got == tar


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_record_tar_describes_an_already_applied_layer(tmp_path: Path, fmt: str) -> None:
    """Start-up conversion: the stored tar is recorded without applying it again."""
    src = _tree(tmp_path)
    with open(src / "sparse", "wb") as f:
        f.truncate(1 << 20)
        f.write(b"head")
    tar = subprocess.run(
        ["tar", "-C", str(src), f"--format={fmt}", "--sparse", "-cf", "-", "."],
        check=True,
        capture_output=True,
    ).stdout
    root = tmp_path / "root"
    root.mkdir()
    apply_tar(io.BytesIO(tar), str(root), whiteouts="overlay")
    split = record_tar(io.BytesIO(tar))
    assert split.digest == "sha256:" + hashlib.sha256(tar).hexdigest()
    path = tmp_path / "split"
    path.write_bytes(split.data)
    assert rebuild(path, root) == tar


def test_record_tar_of_a_layer_that_lost_a_payload_fails_its_rebuild(tmp_path: Path) -> None:
    tar = python_tar(tarfile.PAX_FORMAT, [(_info("a"), b"first"), (_info("a"), b"other")])
    root = tmp_path / "root"
    root.mkdir()
    apply_tar(io.BytesIO(tar), str(root), whiteouts="overlay")
    path = tmp_path / "split"
    path.write_bytes(record_tar(io.BytesIO(tar)).data)
    with pytest.raises(Internal):
        rebuild(path, root)


def test_inline_data_is_flushed_early_and_still_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small raw records: the early flush of inline (sparse) data keeps the bytes right."""
    from dockyard.layers import tarsplit

    monkeypatch.setattr(tarsplit, "_RAW_MAX", 1000)
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        for i in range(8):
            f.seek(i << 20)
            f.write(os.urandom(30_000))
    (src / "after").write_bytes(os.urandom(50_000))
    tar = subprocess.run(
        ["tar", "-C", str(src), "--format=gnu", "--sparse", "-cf", "-", "sparse", "after"],
        check=True,
        capture_output=True,
    ).stdout
    split = roundtrip(tar, tmp_path)
    assert split.stat().st_size > 200_000  # the sparse data is inline, "after" is not
    assert split.stat().st_size < 300_000


def test_many_directories_do_not_exhaust_fds(tmp_path: Path) -> None:
    entries = [(_info(f"d{i}/sub/f"), b"x" * 10) for i in range(700)]
    tar = python_tar(tarfile.PAX_FORMAT, entries)
    root = tmp_path / "root"
    split = record(tar, root)
    before = len(os.listdir("/proc/self/fd"))
    with open_tar(str(split), str(root)) as f:
        data = f.read(len(tar) - 2048)
        assert len(os.listdir("/proc/self/fd")) < before + 300
        data += f.read()
    assert data == tar
    assert len(os.listdir("/proc/self/fd")) == before


def test_missing_layer_dir_is_an_error(tmp_path: Path) -> None:
    tar = python_tar(tarfile.PAX_FORMAT, [(_info("a"), b"a")])
    root = tmp_path / "root"
    split = record(tar, root)
    shutil.rmtree(root)
    with pytest.raises(Internal, match="cannot be rebuilt"):
        rebuild(split, root)
