"""Disk usage of a directory tree, as Docker counts it (blocking world).

Like moby's ``pkg/directory.Size``: the apparent size of every non-directory entry,
hard-linked inodes counted once, symlinks never followed.
"""

from __future__ import annotations

import os
import stat

__all__ = ["disk_usage"]


def disk_usage(top: str, one_filesystem: bool = False) -> int:
    """Bytes under ``top``; ``one_filesystem`` skips mount points below it (a container's
    merged root, a tmpfs volume), so nothing is counted twice or counted off-disk."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [top]
    dev = os.lstat(top).st_dev
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed meanwhile
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if not one_filesystem or st.st_dev == dev:
                        stack.append(entry.path)
                    continue
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += st.st_size
    return total
