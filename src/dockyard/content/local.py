"""The on-disk content store (blocking world: call from a thread in the daemon).

Layout under ``root``::

    blobs/sha256/<hex>   committed blobs, read-only by convention, named by their digest
    ingest/<random>      writes in progress, one private temp file per writer

Commit follows containerd's plugins/content/local/writer.go: fsync the temp file, check size
and digest, ``rename`` into ``blobs/`` (same filesystem, so atomic), fsync the directory.  A
blob is therefore either absent or complete, and its name is the proof of its content.
Nothing after the rename raises: the blob is already visible, so later failures are logged.
If the blob already exists the temp file is dropped and the commit succeeds.

Invariants: no path is built from a digest that has not been validated (``sha256:`` plus 64
lowercase hex), so no caller-supplied string can escape ``root``.  Files in ``ingest/`` belong
to live writers or to a crashed process; ``clean_ingests()`` at start-up removes the latter.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import BinaryIO

from dockyard.content.base import Info
from dockyard.errors import Internal, InvalidParameter, NotFound
from dockyard.fsutil import fsync_dir

__all__ = ["LocalStore", "LocalWriter"]

log = logging.getLogger(__name__)

_HEX = re.compile(r"[a-f0-9]{64}")
_ALGORITHM = "sha256"


def _hex(digest: str) -> str:
    """The hex part of a valid ``sha256:`` digest; ``InvalidParameter`` otherwise."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or algorithm != _ALGORITHM:
        raise InvalidParameter(
            f"invalid digest {digest!r}: the content store holds only sha256:<64 hex> digests"
        )
    if _HEX.fullmatch(encoded) is None:
        raise InvalidParameter(f"invalid digest {digest!r}: expected sha256: and 64 lowercase hex")
    return encoded


def _info(digest: str, st: os.stat_result) -> Info:
    return Info(digest, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))


@contextmanager
def _disk_errors(what: str) -> Iterator[None]:
    """The boundary for ``OSError`` (ENOSPC, EIO, EACCES…): re-raised as ``Internal``."""
    try:
        yield
    except OSError as exc:
        raise Internal(f"content store: {what}: {exc}") from exc


class LocalStore:
    """A ``content.Store`` on the local filesystem under ``root``; creates its directories."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._blobs = os.path.join(root, "blobs", _ALGORITHM)
        self._ingest = os.path.join(root, "ingest")
        os.makedirs(self._blobs, mode=0o700, exist_ok=True)
        os.makedirs(self._ingest, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        """The blob's file, for zero-copy serving (sendfile).  ``NotFound`` if absent."""
        path = os.path.join(self._blobs, _hex(digest))
        if not os.path.isfile(path):
            raise NotFound(f"content {digest} not found")
        return path

    # Provider

    def open(self, digest: str) -> BinaryIO:
        path = os.path.join(self._blobs, _hex(digest))
        with _disk_errors(f"opening {digest}"):
            try:
                return open(path, "rb")
            except FileNotFoundError as exc:
                raise NotFound(f"content {digest} not found") from exc

    def info(self, digest: str) -> Info:
        path = os.path.join(self._blobs, _hex(digest))
        with _disk_errors(f"inspecting {digest}"):
            try:
                st = os.stat(path)
            except FileNotFoundError as exc:
                raise NotFound(f"content {digest} not found") from exc
        return _info(digest, st)

    # Ingester

    def writer(
        self, ref: str, expected: str | None = None, expected_size: int | None = None
    ) -> LocalWriter:
        if expected is not None:
            _hex(expected)
        if expected_size is not None and expected_size < 0:
            raise InvalidParameter(f"invalid expected size {expected_size} for {ref}")
        with _disk_errors(f"opening an ingest for {ref}"):
            return LocalWriter(self._blobs, self._ingest, ref, expected, expected_size)

    # Manager

    def delete(self, digest: str) -> None:
        path = os.path.join(self._blobs, _hex(digest))
        with _disk_errors(f"deleting {digest}"):
            try:
                os.unlink(path)
            except FileNotFoundError as exc:
                raise NotFound(f"content {digest} not found") from exc

    def walk(self) -> Iterator[Info]:
        with os.scandir(self._blobs) as entries:
            for entry in entries:
                if _HEX.fullmatch(entry.name) is None:
                    continue  # not ours; never let it pass for a blob
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted (by GC) while walking
                yield _info(f"{_ALGORITHM}:{entry.name}", st)

    # Start-up

    def clean_ingests(self) -> tuple[int, int]:
        """Remove every ingest temp file; returns how many and the bytes given back.  Call only at
        start-up, before any writer exists: a live writer's temp file would be removed too."""
        removed = freed = 0
        with os.scandir(self._ingest) as entries:
            for entry in entries:
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                removed += 1
                freed += size
        if removed:
            log.info(
                "removed %d stale ingest file(s) (%d bytes) from %s", removed, freed, self._ingest
            )
        return removed, freed


class LocalWriter:
    """One ingest into a ``LocalStore``; see ``content.Writer`` for the contract."""

    def __init__(
        self,
        blobs: str,
        ingest: str,
        ref: str,
        expected: str | None,
        expected_size: int | None,
    ) -> None:
        self.ref = ref
        self._blobs = blobs
        self._expected = expected
        self._expected_size = expected_size
        self._hash = hashlib.sha256()
        self._size = 0
        self._tmp = os.path.join(ingest, secrets.token_hex(16))
        self._fd: int | None = os.open(
            self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
        )

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        fd = self._open_fd()
        if self._expected_size is not None and self._size + len(data) > self._expected_size:
            self.abort()
            raise InvalidParameter(
                f"size mismatch: expected {self._expected_size} bytes, got more "
                f"(writing {self.ref})"
            )
        view = memoryview(data)
        try:
            with _disk_errors(f"writing {self.ref}"):
                while view:
                    view = view[os.write(fd, view) :]
        except BaseException:
            self.abort()
            raise
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    def digest(self) -> str:
        return f"{_ALGORITHM}:{self._hash.hexdigest()}"

    def commit(self) -> str:
        fd = self._open_fd()
        self._fd = None
        try:
            with _disk_errors(f"flushing {self.ref}"):
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            self._discard()
            raise
        os.close(fd)
        digest = self.digest()
        if self._expected_size is not None and self._size != self._expected_size:
            self._discard()
            raise InvalidParameter(
                f"size mismatch: expected {self._expected_size} bytes, got {self._size} "
                f"(writing {self.ref})"
            )
        if self._expected is not None and digest != self._expected:
            self._discard()
            raise InvalidParameter(
                f"digest mismatch: expected {self._expected}, got {digest} (writing {self.ref})"
            )
        target = os.path.join(self._blobs, self._hash.hexdigest())
        if os.path.exists(target):
            # Already-exists is success; same digest, same bytes.
            self._discard()
            return digest
        try:
            with _disk_errors(f"committing {self.ref} as {digest}"):
                os.rename(self._tmp, target)
        except BaseException:
            self._discard()
            raise
        self._tmp = ""
        # The blob is visible from here on: report problems, never raise them.
        try:
            fsync_dir(os.path.dirname(target))
        except OSError as exc:
            log.warning("content %s committed but its directory fsync failed: %s", digest, exc)
        return digest

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._discard()

    def __enter__(self) -> LocalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _open_fd(self) -> int:
        if self._fd is None:
            raise Internal(f"content writer for {self.ref} is already committed or aborted")
        return self._fd

    def _discard(self) -> None:
        if not self._tmp:
            return
        tmp, self._tmp = self._tmp, ""
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove ingest file %s: %s", tmp, exc)
