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
_HASH_CACHE_MAX = 256  # upload sessions whose running hash a process remembers


def hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK * 4):
            h.update(chunk)
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
        while view:
            view = view[os.write(self._fd, view) :]
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
