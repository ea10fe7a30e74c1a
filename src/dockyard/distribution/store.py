"""Where layer blobs came from and went to (blocking world, fast queries).

moby's distribution/metadata ``v2metadata``: for each diff id, the compressed blob digests it
was pulled as or pushed as, and in which repository (``registry/path``).  Pull uses it to
skip a download whose uncompressed blob is already stored; push uses it to send the same
compressed digest again (no recompression, identical manifests) and to mount a blob from
another repository of the same registry instead of uploading it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["BlobSource", "Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_sources (
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    repository TEXT NOT NULL,
    PRIMARY KEY (diff_id, digest, repository)
);
CREATE INDEX IF NOT EXISTS blob_sources_digest ON blob_sources(digest);
"""


@dataclass(frozen=True, slots=True)
class BlobSource:
    diff_id: str
    digest: str
    media_type: str
    size: int
    repository: str  # full name with its registry: "127.0.0.1:5000/library/busybox"


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA)

    def add(self, source: BlobSource) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO blob_sources VALUES (?, ?, ?, ?, ?)",
            (source.diff_id, source.digest, source.media_type, source.size, source.repository),
        )

    def by_diff_id(self, diff_id: str) -> list[BlobSource]:
        rows = self._conn.execute(
            "SELECT * FROM blob_sources WHERE diff_id = ? ORDER BY rowid DESC", (diff_id,)
        )
        return [BlobSource(*r) for r in rows]

    def diff_id_of(self, digest: str) -> str | None:
        row = self._conn.execute(
            "SELECT diff_id FROM blob_sources WHERE digest = ? LIMIT 1", (digest,)
        ).fetchone()
        return row[0] if row else None
