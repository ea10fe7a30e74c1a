"""The storage suite against overlay2, plus its layout, long chains and driver choice."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import InvalidParameter
from dockyard.layers import apply_tar
from dockyard.storage import open_driver
from dockyard.storage.overlay2 import Overlay2, supported

from .suite import *
from .suite import layer_id, mounts_under, tar_of, unmount_all_under


@pytest.fixture()
def driver(tmp_path: Path) -> Iterator[Overlay2]:
    if not supported(str(tmp_path)):
        pytest.skip("overlayfs does not mount here")
    yield Overlay2(str(tmp_path / "data"))
    unmount_all_under(str(tmp_path))


def _options(point: str) -> str:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            if line.split(" ")[4] == point:
                return line.split(" - ")[1]
    raise AssertionError(f"{point} is not mounted")


def test_layout_matches_moby(driver: Overlay2) -> None:
    home = Path(driver.home)
    driver.create(layer_id(1), None)
    driver.create(layer_id(2), layer_id(1))
    driver.create(layer_id(3), layer_id(2))
    short = {n: (home / layer_id(n) / "link").read_text() for n in (1, 2, 3)}
    for n, s in short.items():
        assert len(s) == 26
        assert os.readlink(home / "l" / s) == f"../{layer_id(n)}/diff"
    assert not (home / layer_id(1) / "lower").exists()
    assert (home / layer_id(3) / "lower").read_text() == f"l/{short[2]}:l/{short[1]}"
    assert (home / layer_id(3) / "work").is_dir()
    driver.remove(layer_id(3))
    assert not (home / "l" / short[3]).exists()
    assert sorted(os.listdir(home / "l")) == sorted([short[1], short[2]])


def test_whiteouts_are_overlay_format(driver: Overlay2) -> None:
    assert driver.whiteouts == "overlay"
    diff = driver.create(layer_id(1), None)
    apply_tar(
        io.BytesIO(tar_of(("f", ".wh.x", b""), ("f", "d/.wh..wh..opq", b""))),
        diff,
        whiteouts="overlay",
    )
    assert os.stat(os.path.join(diff, "x"), follow_symlinks=False).st_rdev == 0
    assert os.getxattr(os.path.join(diff, "d"), "trusted.overlay.opaque") == b"y"


@pytest.mark.parametrize("depth", [3, 120])
def test_chain_beyond_one_page_of_mount_options(driver: Overlay2, depth: int) -> None:
    parent = None
    for n in range(1, depth + 1):
        diff = driver.create(layer_id(n), parent)
        apply_tar(
            io.BytesIO(tar_of(("f", f"layer{n}", b"x"), ("f", "top", str(n).encode()))),
            diff,
            whiteouts="overlay",
        )
        parent = layer_id(n)
    rw = layer_id("aa")
    driver.prepare(rw, parent)
    root = driver.mount(rw)
    try:
        names = os.listdir(root)
        assert len(names) == depth + 1 and "layer1" in names and f"layer{depth}" in names
        assert Path(root, "top").read_text() == str(depth)
        # short chains use mount(2) (lowerdir=), long ones the fsconfig path (lowerdir+=)
        assert ("lowerdir+=" in _options(root)) == (depth > 30)
    finally:
        driver.unmount(rw)
    assert mounts_under(driver.home) == []


def test_open_driver_probes_overlay(tmp_path: Path) -> None:
    root = tmp_path / "data"
    try:
        chosen = open_driver(None, str(root))
        assert chosen.name == ("overlay2" if supported(str(root)) else "vfs")
        assert [p for p in os.listdir(root) if p.startswith(".overlay-probe")] == []
        with pytest.raises(InvalidParameter, match="unknown storage driver"):
            open_driver("aufs", str(root))
    finally:
        unmount_all_under(str(tmp_path))
