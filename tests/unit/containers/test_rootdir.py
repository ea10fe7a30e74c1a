"""Path resolution inside a root, by openat2 and by the fd walk: the same answers, and
neither ever leaves the root."""

from __future__ import annotations

import os

import pytest

from dockyard.containers import rootdir


@pytest.fixture(params=["openat2", "walk"])
def mode(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(rootdir, "_openat2", [False])
    elif not rootdir._has_openat2():
        pytest.fail("this kernel has no openat2 (Linux 5.6+ is required here)")
    return request.param


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside\n")
    (root / "d").mkdir()
    (root / "d" / "up").symlink_to("../../../..")
    (root / "d" / "abs").symlink_to("/")
    (root / "d" / "etc").symlink_to("/etc")
    (root / "d" / "loop").symlink_to("loop")
    (root / "d" / "rel").symlink_to("../etc/passwd")
    (tmp_path / "outside").write_text("host\n")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def _read(root_fd: int, path: str) -> str:
    fd = rootdir.open_in_root(root_fd, path, os.O_RDONLY)
    try:
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "etc/passwd",
        "/../../etc/passwd",
        "/d/up/etc/passwd",
        "/d/abs/etc/passwd",
        "/d/etc/passwd",
        "/d/rel",
        "/d/abs/d/abs/../../etc/./passwd",
    ],
)
def test_symlinks_and_dotdot_stay_inside(mode, tree, path):
    assert _read(tree, path) == "inside\n"


def test_outside_names_are_not_found(mode, tree):
    with pytest.raises(FileNotFoundError):
        rootdir.open_in_root(tree, "/d/up/outside")
    with pytest.raises(FileNotFoundError):
        rootdir.open_in_root(tree, "/../outside")


def test_loops_are_refused(mode, tree):
    with pytest.raises(OSError) as exc:
        rootdir.open_in_root(tree, "/d/loop")
    assert exc.value.errno == 40  # ELOOP


def test_open_parent_does_not_follow_the_last_link(mode, tree):
    fd, name = rootdir.open_parent(tree, "/d/abs/d/etc")
    try:
        assert name == "etc"
        assert os.readlink(name, dir_fd=fd) == "/etc"
    finally:
        os.close(fd)
    fd, name = rootdir.open_parent(tree, "/d/..")
    try:
        assert name == "" and sorted(os.listdir(f"/proc/self/fd/{fd}")) == ["d", "etc"]
    finally:
        os.close(fd)
