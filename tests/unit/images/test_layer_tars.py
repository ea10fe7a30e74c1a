"""LayerTars.apply on a tar nothing checked yet (a pull streams it straight into the apply):
the recorder's digest decides, and a tar its layer cannot rebuild is reported, not lost."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.content import LocalStore
from dockyard.errors import InvalidParameter
from dockyard.images.layer import LayerTars, apply_stream
from dockyard.storage.vfs import Vfs

CHAIN = "sha256:" + "c" * 64


def _tar(*entries: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.fixture
def tars(tmp_path: Path) -> LayerTars:
    return LayerTars(
        LocalStore(str(tmp_path / "content")), Vfs(str(tmp_path)), str(tmp_path / "tarsplit")
    )


def _apply(tars: LayerTars, tar: bytes, diff_id: str) -> tuple[int, bool]:
    target = tars.create(CHAIN, None, diff_id)
    return apply_stream(tars, diff_id, CHAIN, target, io.BytesIO(tar), checked=False)


def test_matching_tar_is_recorded(tars: LayerTars) -> None:
    tar = _tar(("a", b"x" * 5000))
    assert _apply(tars, tar, _digest(tar)) == (5000, True)
    with tars.open(_digest(tar)) as f:
        assert f.read() == tar


def test_wrong_diff_id_fails_and_leaves_no_layer(tars: LayerTars) -> None:
    tar = _tar(("a", b"x" * 5000))
    wrong = _digest(b"another tar")
    with pytest.raises(InvalidParameter, match="not the diff id"):
        _apply(tars, tar, wrong)
    assert not tars.driver.exists(CHAIN[7:])
    assert not tars.has(wrong) and not os.listdir(tars.root)


def test_unrecordable_tar_is_applied_but_not_recorded(tars: LayerTars) -> None:
    tar = _tar(("a", b"first"), ("a", b"second"))
    assert _apply(tars, tar, _digest(tar)) == (11, False)
    assert tars.driver.exists(CHAIN[7:])
    assert not tars.has(_digest(tar))  # the caller must store the tar itself
