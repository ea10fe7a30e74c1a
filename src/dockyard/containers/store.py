"""SQL for container records (blocking world, fast queries on the loop thread).

A record is kept as one JSON document (the create request's Config and HostConfig, as
clients sent them, plus the State) beside the columns that queries need: id, unique name.
"""

from __future__ import annotations

import sqlite3

import msgspec

from dockyard.containers.record import Container

__all__ = ["Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    record BLOB NOT NULL
);
"""


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA)

    def all(self) -> list[Container]:
        rows = self._conn.execute("SELECT record FROM containers ORDER BY created_ns DESC")
        return [msgspec.json.decode(r[0], type=Container) for r in rows]

    def save(self, c: Container) -> None:
        """Insert or update; a name taken by another container raises sqlite3.IntegrityError."""
        self._conn.execute(
            "INSERT INTO containers VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "name = excluded.name, record = excluded.record",
            (c.id, c.name, c.created_ns, msgspec.json.encode(c)),
        )

    def delete(self, cid: str) -> None:
        self._conn.execute("DELETE FROM containers WHERE id = ?", (cid,))

    def by_name(self, name: str) -> str | None:
        row = self._conn.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None
