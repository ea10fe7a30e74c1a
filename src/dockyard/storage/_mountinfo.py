"""Read /proc/self/mountinfo (blocking world): is a path mounted, what filesystem backs it.

The kernel's table is the truth about mounts, so drivers ask it instead of keeping
reference counts that a daemon restart would lose (proc(5), "/proc/pid/mountinfo").
Mount points are octal-escaped there (``\\040`` for a space).
"""

from __future__ import annotations

import os
import re

__all__ = ["backing_filesystem", "is_mounted", "mount_points"]

_ESCAPE = re.compile(r"\\([0-7]{3})")
# Docker reports ext2/3/4 as "extfs" (moby daemon/graphdriver/driver_linux.go FsNames).
_FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs"}


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_points() -> list[tuple[str, str]]:
    """(mount point, filesystem type) for every mount in this mount namespace, in order."""
    out: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split(" ")
            if len(fields) < 5 or not right:
                continue
            out.append((_unescape(fields[4]), right.split(" ", 1)[0]))
    return out


def is_mounted(path: str) -> bool:
    """Whether something is mounted exactly on ``path``."""
    real = os.path.realpath(path)
    return any(point == real for point, _ in mount_points())


def backing_filesystem(path: str) -> str:
    """The filesystem type holding ``path``, named as ``docker info`` names it."""
    real = os.path.realpath(path)
    best, fstype = "", "unknown"
    for point, kind in mount_points():
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, kind
    return _FS_NAMES.get(fstype, fstype)
