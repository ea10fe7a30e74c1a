"""Reading and writing cgroup interface files (synchronous world)."""

from __future__ import annotations

import os

__all__ = ["read", "remove_dir", "write"]


def read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def write(path: str, value: str | int) -> None:
    """One ``write(2)`` of the whole value: cgroup files act on each write call."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def remove_dir(path: str) -> None:
    """rmdir a cgroup (its interface files are virtual, so rmdir is allowed); ENOENT is fine.

    A cgroup whose last process has exited can still be busy for a moment while the
    kernel finishes tearing the task down, so EBUSY is retried briefly.
    """
    for _ in range(200):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != 16:  # EBUSY
                raise
            os.sched_yield()
            import time

            time.sleep(0.005)
    os.rmdir(path)
