"""Appending to an upload session's data file (blocking world).

Each process remembers the running sha256 of the sessions it wrote last (``hashes``, owned
by the storage): a PUT on the same connection then verifies without reading the data again;
a chunk that arrives at another worker process starts from the file and the hash is taken
at commit instead.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from dockyard.distribution.registry.errors import RegistryError

if TYPE_CHECKING:
    from hashlib import _Hash as Hash
else:
    Hash = object

__all__ = ["Hash", "UploadFile", "hash_file"]

_CHUNK = 1 << 20
# Bytes per write(2).  The kernel sizes the page-cache folios of a buffered write from the
# write's length (ext4 has large folios): one 4 MiB write takes 2 MiB folios from the buddy
# allocator, 32 KiB takes order-3 folios, which come from the per-CPU lists of pages just
# freed.  Under a VM that hands free memory back to its host (free page reporting), the
# large ones are cold pages: on the 2-core KVM guest of the benchmarks, writing 500 MB cost
# 1.4 s of system time in 4 MiB writes, 0.5-0.8 s in 64-256 KiB writes and 0.2 s in 32 KiB
# writes (distribution's registry writes 32 KiB at a time too).  On bare metal small writes
# only cost more syscalls (32 per MiB).
_WRITE = 32 << 10
_HASH_CACHE_MAX = 256  # upload sessions whose running hash a process remembers


def hash_file(path: str) -> str:
    """The digest of a session's data (a PUT on another worker than the last PATCH).
    One reused buffer: a fresh 4 MiB ``bytes`` per read is 1024 page faults."""
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return "sha256:" + h.hexdigest()


class UploadFile:
    """Appends to an upload's data file, extending the process's running hash."""

    def __init__(
        self, hashes: dict[str, tuple[int, Hash]], limit: int, upload_id: str, path: str
    ) -> None:
        self._hashes = hashes
        self._limit = limit
        self._id = upload_id
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = os.fstat(self._fd).st_size
        cached = hashes.pop(upload_id, None)
        self._hash = cached[1] if cached is not None and cached[0] == self._size else None
        if self._hash is None and self._size == 0:
            self._hash = hashlib.sha256()

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        limit = self._limit
        if limit and self._size + len(data) > limit:
            raise RegistryError(
                "PAYLOAD_TOO_LARGE", f"a blob may hold at most {limit} bytes on this registry"
            )
        view = memoryview(data)
        fd = self._fd
        while view:
            view = view[os.write(fd, view[:_WRITE]) :]
        if self._hash is not None:
            self._hash.update(data)
        self._size += len(data)

    def close(self) -> None:
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        if self._hash is not None:
            hashes = self._hashes
            if len(hashes) >= _HASH_CACHE_MAX:
                hashes.pop(next(iter(hashes)))
            hashes[self._id] = (self._size, self._hash)
