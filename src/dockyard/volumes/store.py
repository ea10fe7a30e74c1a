"""SQL for volume records (blocking world, small queries on the loop thread)."""

from __future__ import annotations

import sqlite3

import msgspec

__all__ = ["Store", "Volume"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    record BLOB NOT NULL
);
"""


class Volume(msgspec.Struct):
    name: str
    driver: str
    created_at: str  # RFC 3339, as moby shows it
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, str] = msgspec.field(default_factory=dict)


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA)

    def all(self) -> list[Volume]:
        rows = self._conn.execute("SELECT record FROM volumes ORDER BY name")
        return [msgspec.json.decode(r[0], type=Volume) for r in rows]

    def get(self, name: str) -> Volume | None:
        row = self._conn.execute("SELECT record FROM volumes WHERE name = ?", (name,)).fetchone()
        return msgspec.json.decode(row[0], type=Volume) if row else None

    def insert(self, v: Volume) -> None:
        """A name already taken raises sqlite3.IntegrityError."""
        self._conn.execute("INSERT INTO volumes VALUES (?, ?)", (v.name, msgspec.json.encode(v)))

    def delete(self, name: str) -> None:
        self._conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
