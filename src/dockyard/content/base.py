"""Content store roles, as containerd's core/content (blocking world: call from a thread).

Vocabulary:

- *blob*: immutable bytes named by their digest, ``sha256:<64 lowercase hex>``.  A digest
  is always validated before it names a file; a malformed one raises ``InvalidParameter``.
- *ingest*: a write in progress, opened by ``Ingester.writer(ref)``.  ``ref`` is the caller's
  label for it (``"layer-sha256:..."``, ``"manifest-..."``), used in messages and logs.  Each
  writer owns a private temp file, so concurrent writers never see each other's bytes.
- *commit*: verify the bytes against the expected digest and size, then make the blob visible
  atomically.  Committing content that is already present succeeds (already-exists is
  success), so two pulls of one layer may race harmlessly.

Lifecycle of a write::

    with store.writer("layer", expected=desc_digest, expected_size=desc_size) as w:
        for chunk in stream:
            w.write(chunk)
        w.commit()          # verified + visible, or InvalidParameter and nothing left behind
    # leaving the block without commit() aborts and removes the temp file

Errors: ``NotFound`` for a missing blob, ``InvalidParameter`` for a malformed digest or a
digest/size mismatch.  Each caller asks for the narrowest role it needs: a puller takes an
``Ingester``, ``save`` a ``Provider``, GC a ``Manager``.  Only GC deletes blobs (leases keep
wanted-but-unreferenced content alive).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import BinaryIO, Protocol

__all__ = ["Info", "Ingester", "Manager", "Provider", "Store", "Writer"]


@dataclass(frozen=True, slots=True)
class Info:
    """What the store knows about one committed blob."""

    digest: str
    size: int
    created_at: datetime  # UTC, from the blob file's mtime (set once, at commit)


class Provider(Protocol):
    """Reads committed blobs."""

    def open(self, digest: str) -> BinaryIO:
        """A readable, seekable file of the blob; the caller closes it.  ``NotFound`` if absent."""
        ...

    def info(self, digest: str) -> Info:
        """The blob's size and creation time.  ``NotFound`` if absent."""
        ...


class Writer(Protocol):
    """One ingest: write bytes, then ``commit()`` or ``abort()``; exactly one of them ends it.

    Usable as a context manager that aborts on exit unless committed.  ``abort()`` after an
    end is a no-op; ``write()`` or ``commit()`` after one raises ``Internal`` (a caller bug).
    """

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, data: bytes) -> int:
        """Append ``data``; returns its length.  ``InvalidParameter`` (and the ingest is aborted)
        as soon as more than ``expected_size`` bytes arrive."""
        ...

    def digest(self) -> str:
        """The running ``sha256:`` digest of the bytes written so far."""
        ...

    def commit(self) -> str:
        """Verify size and digest against the expectations, make the blob visible, return its
        digest.  On mismatch raise ``InvalidParameter`` ("digest mismatch: expected ..., got
        ...") and discard the temp file.  Already-present content is success."""
        ...

    def abort(self) -> None:
        """Discard the ingest; idempotent."""
        ...

    def __enter__(self) -> Writer: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Ingester(Protocol):
    """Opens writes."""

    def writer(
        self, ref: str, expected: str | None = None, expected_size: int | None = None
    ) -> Writer:
        """Start an ingest labelled ``ref``.  ``expected`` (validated now, ``InvalidParameter``
        if malformed) and ``expected_size`` are checked at commit."""
        ...


class Manager(Protocol):
    """Inspects and deletes committed blobs."""

    def info(self, digest: str) -> Info:
        """As ``Provider.info``."""
        ...

    def delete(self, digest: str) -> None:
        """Remove the blob.  ``NotFound`` if absent.  Only GC calls this."""
        ...

    def walk(self) -> Iterator[Info]:
        """Every committed blob, in no particular order."""
        ...


class Store(Provider, Ingester, Manager, Protocol):
    """All roles together; what a driver implements and what the daemon wires."""
