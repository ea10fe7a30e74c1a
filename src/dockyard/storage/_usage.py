"""Disk usage of a directory tree, as Docker counts it (blocking world).

Like moby's ``pkg/directory.Size``: the apparent size of every non-directory entry,
hard-linked inodes counted once, symlinks never followed.
"""

from __future__ import annotations

import os
import stat

__all__ = ["disk_usage"]


def disk_usage(top: str) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [top]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                    continue
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += st.st_size
    return total
