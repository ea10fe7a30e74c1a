"""``resolve_user`` reads the container's /etc/passwd and /etc/group as the container sees
them: symlinks are followed inside the root (never out to the host's files), and a FIFO
in their place neither blocks nor feeds the lookup."""

from __future__ import annotations

import os

import pytest

from dockyard.containers.bundle import resolve_user
from dockyard.errors import InvalidParameter


def _etc(directory, uid: int) -> None:
    directory.mkdir(parents=True)
    (directory / "passwd").write_text(f"root:x:0:0::/:/bin/sh\napp:x:{uid}:{uid + 1}::/:/bin/sh\n")
    (directory / "group").write_text(f"root:x:0:\napp:x:{uid + 1}:\nextra:x:77:app\n")


def test_an_absolute_etc_symlink_is_followed_inside_the_root(tmp_path):
    host = tmp_path / "host" / "etc"
    _etc(host, 4242)  # the path the link names, as seen from the host
    root = tmp_path / "root"
    _etc(root / str(host).lstrip("/"), 1234)  # the same path inside the container
    os.symlink(str(host), root / "etc")
    user = resolve_user(str(root), "app", [])
    assert (user.uid, user.gid, user.additional_gids) == (1234, 1235, [77])


def test_a_relative_passwd_symlink_that_climbs_stays_in_the_root(tmp_path):
    root = tmp_path / "root"
    _etc(root / "real", 1234)
    (root / "etc").mkdir()
    os.symlink("../../../../../../real/passwd", root / "etc" / "passwd")
    user = resolve_user(str(root), "app:0", [])
    assert (user.uid, user.gid) == (1234, 0)


def test_a_fifo_in_place_of_group_does_not_block(tmp_path):
    root = tmp_path / "root"
    _etc(root / "etc", 1234)
    os.unlink(root / "etc" / "group")
    os.mkfifo(root / "etc" / "group")
    assert resolve_user(str(root), "app", []).uid == 1234
    with pytest.raises(InvalidParameter, match="unable to find group extra"):
        resolve_user(str(root), "app:extra", [])
