"""The local volume driver's create is durable before it returns: the new ``_data``
directory, the volume's directory holding it and the volumes root holding that are all
fsynced (README "Acknowledged means durable"), so a power cut after the API answered cannot
lose the directory the metadata record names.  The real fsync runs; the test records which
directories it was called on."""

from __future__ import annotations

import os

from dockyard.volumes.local import LocalDriver


def test_create_fsyncs_the_new_directories_and_their_parents(tmp_path, monkeypatch):
    root = tmp_path / "volumes"
    driver = LocalDriver(str(root))
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = driver.create("v1")
    assert path == str(root / "v1" / "_data") and os.path.isdir(path)
    for directory in (root / "v1" / "_data", root / "v1", root):
        assert str(directory) in synced, synced
    # the child before its parent: the parent's entry is synced once the child exists
    assert synced.index(str(root / "v1")) < synced.index(str(root))


def test_create_of_an_existing_volume_keeps_its_data(tmp_path):
    driver = LocalDriver(str(tmp_path / "volumes"))
    path = driver.create("v1")
    with open(os.path.join(path, "keep"), "w") as f:
        f.write("x")
    assert driver.create("v1") == path
    assert os.listdir(path) == ["keep"]


def test_create_that_fails_halfway_leaves_no_directory(tmp_path, monkeypatch):
    """A full disk let ``volumes/NAME`` in and refused ``_data`` (seen in CI's disk-full
    test): the half-made directory, which no record names, goes with the error."""
    root = tmp_path / "volumes"
    driver = LocalDriver(str(root))
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777, **kw):
        if str(path).endswith("_data"):
            raise OSError(28, "No space left on device", str(path))
        return real_mkdir(path, mode, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    try:
        driver.create("v1")
    except OSError as exc:
        assert exc.errno == 28
    else:
        raise AssertionError("create succeeded without _data")
    assert os.listdir(root) == []
