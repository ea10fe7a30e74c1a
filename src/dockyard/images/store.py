"""SQL for image records, references and the layer chain (blocking world, fast queries).

Vocabulary: an image ``id`` is ``sha256:`` + the digest of its config blob; a layer is keyed
by its OCI ``chain_id`` (what the storage driver names it) and knows its ``diff_id`` (digest of
the uncompressed tar, kept in the content store) and its parent chain id.  A reference
``name`` is the full normalised form (``docker.io/library/busybox:latest`` or ``...@sha256:``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["ImageRow", "LayerRow", "Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    size INTEGER NOT NULL,
    top_layer TEXT,
    parent TEXT NOT NULL DEFAULT '',
    last_tag_time TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
    added_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image_id);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
"""


@dataclass(frozen=True, slots=True)
class ImageRow:
    id: str
    created: int
    size: int
    top_layer: str | None
    parent: str
    last_tag_time: str
    added_ns: int


@dataclass(frozen=True, slots=True)
class LayerRow:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int


class Store:
    """Image metadata tables; every mutation is one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) may leave the transaction open;
            # left so, every later BEGIN on this connection would fail.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    # images
    def images(self) -> list[ImageRow]:
        rows = self._conn.execute("SELECT * FROM images ORDER BY created DESC, added_ns DESC")
        return [ImageRow(*r) for r in rows]

    def image(self, image_id: str) -> ImageRow | None:
        row = self._conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        return ImageRow(*row) if row else None

    def images_by_prefix(self, hex_prefix: str) -> list[str]:
        like = "sha256:" + hex_prefix.replace("%", "").replace("_", "") + "%"
        return [r[0] for r in self._conn.execute("SELECT id FROM images WHERE id LIKE ?", (like,))]

    def add_image(self, row: ImageRow, chain: list[str]) -> bool:
        """Record an image over an existing layer chain; False if it was already there."""
        with self.transaction() as tx:
            if tx.execute("SELECT 1 FROM images WHERE id = ?", (row.id,)).fetchone():
                return False
            tx.execute(
                "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.created,
                    row.size,
                    row.top_layer,
                    row.parent,
                    row.last_tag_time,
                    row.added_ns,
                ),
            )
            tx.executemany(
                "INSERT INTO image_layers VALUES (?, ?, ?)",
                [(row.id, i, c) for i, c in enumerate(chain)],
            )
        return True

    def delete_image(self, image_id: str) -> None:
        with self.transaction() as tx:
            tx.execute("DELETE FROM refs WHERE image_id = ?", (image_id,))
            tx.execute("DELETE FROM images WHERE id = ?", (image_id,))

    def children(self, image_id: str) -> list[str]:
        return [
            r[0] for r in self._conn.execute("SELECT id FROM images WHERE parent = ?", (image_id,))
        ]

    def image_chain(self, image_id: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY position", (image_id,)
        )
        return [r[0] for r in rows]

    # references
    def refs(self) -> list[tuple[str, str]]:
        return list(self._conn.execute("SELECT name, image_id FROM refs ORDER BY name"))

    def refs_of(self, image_id: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT name FROM refs WHERE image_id = ? ORDER BY name", (image_id,)
        )
        return [r[0] for r in rows]

    def resolve_ref(self, name: str) -> str | None:
        row = self._conn.execute("SELECT image_id FROM refs WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_ref(self, name: str, image_id: str, tag_time: str) -> str | None:
        """Point ``name`` at ``image_id``; returns the image it pointed at before, if other."""
        with self.transaction() as tx:
            row = tx.execute("SELECT image_id FROM refs WHERE name = ?", (name,)).fetchone()
            tx.execute("INSERT OR REPLACE INTO refs VALUES (?, ?)", (name, image_id))
            tx.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (tag_time, image_id))
        previous = row[0] if row else None
        return previous if previous != image_id else None

    def delete_ref(self, name: str) -> None:
        with self.transaction() as tx:
            tx.execute("DELETE FROM refs WHERE name = ?", (name,))

    # layers
    def layer(self, chain_id: str) -> LayerRow | None:
        row = self._conn.execute("SELECT * FROM layers WHERE chain_id = ?", (chain_id,)).fetchone()
        return LayerRow(*row) if row else None

    def layers(self) -> list[LayerRow]:
        return [LayerRow(*r) for r in self._conn.execute("SELECT * FROM layers")]

    def add_layer(self, row: LayerRow) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO layers VALUES (?, ?, ?, ?)",
                (row.chain_id, row.diff_id, row.parent, row.size),
            )

    def unused_leaf_layers(self) -> list[LayerRow]:
        """Layers that no image's chain holds and no other layer stands on; delete these first."""
        rows = self._conn.execute(
            "SELECT * FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)"
            " AND chain_id NOT IN (SELECT parent FROM layers WHERE parent IS NOT NULL)"
        )
        return [LayerRow(*r) for r in rows]

    def delete_layer(self, chain_id: str) -> None:
        with self.transaction() as tx:
            tx.execute("DELETE FROM layers WHERE chain_id = ?", (chain_id,))

    def diff_id_users(self, diff_id: str) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM layers WHERE diff_id = ?", (diff_id,)
        ).fetchone()
        return int(row[0])
