"""Durable file writes (blocking world: call from a thread in the daemon).

Every file that must survive a crash is written through ``atomic_write``: a temp name in the
same directory, fsync, rename over the target, fsync of the directory.  Readers therefore see
the old content or the new one, never a torn file.
"""

from __future__ import annotations

import os
import threading

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(path: str) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and, unless ``durable`` is false (state
    that a reboot makes meaningless anyway), durably."""
    directory = os.path.dirname(path) or "."
    # Per thread, not only per process: two threads replacing the same file at once (two
    # pushes of one tag to a registry worker) must not write into one temp file.
    tmp = os.path.join(
        directory, f".{os.path.basename(path)}.tmp-{os.getpid()}-{threading.get_native_id()}"
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    if durable:
        fsync_dir(directory)
