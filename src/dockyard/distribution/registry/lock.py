"""The GC lock (blocking world): writers share it, GC's sweep holds it alone.

Online GC must never delete a blob that a push is about to reference, and a client must
never see a manifest whose blobs are gone.  The window that matters is short: between a
writer checking that a blob exists (manifest PUT, upload commit, HEAD before a skipped
upload, cross-repository mount) and the write that records the use (revision link, repo
link, fresher mtime).  Writers take ``shared()`` around that window; GC's sweep takes
``exclusive()`` while it re-checks and deletes, so each such step happens wholly before or
wholly after a sweep, in every worker process and in a separate ``gc`` process alike.

``flock`` locks belong to an open file description, so each holder opens the file anew:
two holders in one process (threads, or a sweep beside requests) then behave as two
processes would.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["exclusive", "shared"]


@contextmanager
def _flock(path: str, operation: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # closing the last fd of the description releases the lock


def shared(path: str) -> AbstractContextManager[None]:
    """Hold the lock shared (writers); blocks while a sweep runs."""
    return _flock(path, fcntl.LOCK_SH)


def exclusive(path: str) -> AbstractContextManager[None]:
    """Hold the lock alone (GC sweep); waits for writers in their window."""
    return _flock(path, fcntl.LOCK_EX)
