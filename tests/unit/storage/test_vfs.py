"""The storage suite against vfs, plus what only vfs does: full copies of the parent."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.storage import open_driver
from dockyard.storage.vfs import Vfs

from .suite import *
from .suite import layer_id, unmount_all_under


@pytest.fixture()
def driver(tmp_path: Path) -> Iterator[Vfs]:
    yield Vfs(str(tmp_path / "data"))
    unmount_all_under(str(tmp_path))


def test_copy_preserves_links_xattrs_owners_modes(driver: Vfs) -> None:
    base = Path(driver.create(layer_id(1), None))
    (base / "f").write_text("data")
    os.link(base / "f", base / "hard")
    (base / "sym").symlink_to("/nowhere")
    os.chown(base / "f", 1234, 5678)
    os.chmod(base / "f", 0o4711)
    os.setxattr(base / "f", "user.k", b"v")
    os.setxattr(base / "f", "trusted.t", b"w")
    (base / "d").mkdir(mode=0o1777)
    os.chmod(base / "d", 0o1777)
    child = Path(driver.create(layer_id(2), layer_id(1)))
    st = (child / "f").lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4711)
    assert (child / "hard").lstat().st_ino == st.st_ino != (base / "f").lstat().st_ino
    assert os.readlink(child / "sym") == "/nowhere"
    assert os.getxattr(child / "f", "user.k") == b"v"
    assert os.getxattr(child / "f", "trusted.t") == b"w"
    assert stat.S_IMODE((child / "d").lstat().st_mode) == 0o1777
    assert driver.whiteouts == "naive"


def test_open_driver_vfs(tmp_path: Path) -> None:
    driver = open_driver("vfs", str(tmp_path / "data"))
    assert driver.name == "vfs" and driver.status() == []
