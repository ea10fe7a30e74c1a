"""The registry's storage roles (blocking world: the server calls them from threads).

Vocabulary:

- *blob*: immutable bytes named by their ``sha256:`` digest, stored once for the whole
  registry.  A blob's mtime is its *last use* (commit, re-upload, mount, HEAD), which
  online GC reads to spare blobs a push is still working with.
- *link*: a blob's membership of a repository.  A repository serves only blobs linked to
  it (a pull from ``a`` cannot read ``b``'s private layers by digest); an upload or a mount
  creates the link, a blob DELETE removes it, GC removes the data once nothing links or
  references it.
- *revision*: a manifest stored in a repository (its bytes are a blob; the revision holds
  its media type).  A *tag* names one revision.  A *referrer* is a revision whose manifest
  has a ``subject``, indexed under that subject for the referrers API.
- *upload*: a resumable session (``BLOB_UPLOAD``) writing one blob; its data becomes a blob
  only after its digest and size are verified.

Every write is atomic (temp file, fsync, rename, fsync of the directory); names and digests
are validated (``names``) before any of them builds a path.  Errors are ``RegistryError``s
with the spec's codes.  Writers hold ``lock.shared(lock_path)`` between checking a blob and
recording its use; GC's sweep holds it exclusively (see ``gc``).

``filesystem.FilesystemStorage`` implements every role; the service asks for ``Storage``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

__all__ = [
    "BlobStore",
    "Collector",
    "MetadataStore",
    "Revision",
    "Storage",
    "UploadStore",
    "UploadWriter",
]


@dataclass(frozen=True, slots=True)
class Revision:
    """A manifest as a repository holds it."""

    digest: str
    media_type: str
    mtime: float


class BlobStore(Protocol):
    """Blobs and their links to repositories (serving, mounting, publishing)."""

    def blob_path(self, name: str, digest: str) -> tuple[str, int]:
        """The file and size of a blob linked to ``name`` (for sendfile); ``BLOB_UNKNOWN``."""
        ...

    def blob_file(self, digest: str) -> str:
        """Where the blob lives once stored (it may not be yet)."""
        ...

    def open_blob(self, digest: str) -> BinaryIO: ...

    def has_link(self, name: str, digest: str) -> bool: ...

    def touch_blob(self, name: str, digest: str, if_older: float = 0.0) -> None:
        """Record a use of a linked blob (for GC); ``BLOB_UNKNOWN``."""
        ...

    def link_blob(self, name: str, digest: str) -> bool:
        """Link an existing blob to ``name`` (a mount), refreshing its last use; False if
        the blob is not stored."""
        ...

    def unlink_blob(self, name: str, digest: str) -> None:
        """Remove ``name``'s link; ``BLOB_UNKNOWN`` if there was none."""
        ...

    def fetch_path(self, digest: str) -> str:
        """The file a pull-through fetch of ``digest`` writes, whichever worker runs it."""
        ...

    def scratch_path(self) -> str:
        """A fresh temp file name on the blobs' filesystem (for ``publish_file``)."""
        ...

    def publish_file(self, name: str, path: str, digest: str) -> None:
        """Make ``path`` (its digest verified by the caller) the blob, linked to ``name``."""
        ...


class UploadWriter(Protocol):
    """Appends to one upload session."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class UploadStore(Protocol):
    """Resumable upload sessions."""

    def start_upload(self, name: str) -> str:
        """A new session's id."""
        ...

    def upload_size(self, name: str, upload_id: str) -> int:
        """Bytes received so far; ``BLOB_UPLOAD_UNKNOWN`` if no such session for ``name``."""
        ...

    def append(self, name: str, upload_id: str, offset: int | None) -> UploadWriter:
        """A writer at the end of the session; with ``offset``, ``RANGE_INVALID`` unless it
        is the current size (chunks must come in order)."""
        ...

    def commit_upload(self, name: str, upload_id: str, digest: str) -> int:
        """Verify and publish the session's data as ``digest``, linked to ``name``; returns
        its size.  ``DIGEST_INVALID`` (and the session is gone) on mismatch."""
        ...

    def cancel_upload(self, name: str, upload_id: str) -> None: ...

    def expire_uploads(self, idle_seconds: float) -> int:
        """Remove sessions idle for longer; returns how many."""
        ...


class MetadataStore(Protocol):
    """Manifests, tags, referrers and the repository list."""

    def put_manifest(
        self,
        name: str,
        data: bytes,
        media_type: str,
        tag: str | None,
        manifest: object,
        check_blobs: bool = True,
    ) -> str:
        """Store a parsed manifest (its blobs and children must be in ``name`` unless
        ``check_blobs`` is false: ``MANIFEST_BLOB_UNKNOWN``); returns its digest."""
        ...

    def get_manifest(self, name: str, reference: str) -> tuple[Revision, bytes]:
        """By tag or digest; ``MANIFEST_UNKNOWN``."""
        ...

    def resolve(self, name: str, reference: str) -> str:
        """The digest a tag or digest names; ``MANIFEST_UNKNOWN``."""
        ...

    def delete_manifest(self, name: str, reference: str) -> None:
        """By digest (the revision and every tag naming it) or by tag (the tag only)."""
        ...

    def tags(self, name: str) -> list[str]:
        """Sorted; ``NAME_UNKNOWN`` for a repository without manifests."""
        ...

    def tag_age(self, name: str, tag: str) -> float | None: ...

    def touch_tag(self, name: str, tag: str) -> None: ...

    def repositories(self) -> list[str]: ...

    def referrers(self, name: str, digest: str) -> list[dict[str, object]]: ...


class Collector(Protocol):
    """What online GC needs besides reading manifests."""

    def revisions(self, name: str) -> list[Revision]: ...

    def remove_revision(self, name: str, digest: str) -> None: ...

    def walk_blobs(self) -> Iterator[tuple[str, float]]:
        """Every stored blob as (digest, last use)."""
        ...

    def blob_size(self, digest: str) -> int: ...

    def has_blob(self, digest: str) -> bool: ...

    def delete_blob(self, digest: str, unused_since: float) -> bool:
        """Under the exclusive lock: delete unless used at or after ``unused_since``."""
        ...

    def links(self, name: str) -> list[str]: ...

    def remove_link(self, name: str, digest: str) -> None: ...


class Storage(BlobStore, UploadStore, MetadataStore, Collector, Protocol):
    """Every role: what a back end implements."""

    root: str
    lock_path: str
    max_blob_size: int
