"""SQL for the build cache (blocking world, fast queries, event-loop thread).

A row maps a step's cache key (``cache.step_key``) to the image that step produced.  Rows
outlive daemon restarts; a row whose image was removed is a miss and is dropped then.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

__all__ = ["CacheRow", "Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
"""


@dataclass(frozen=True, slots=True)
class CacheRow:
    key: str
    image_id: str
    created_ns: int
    last_used_ns: int


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT image_id FROM build_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.conn.execute(
            "UPDATE build_cache SET last_used_ns = ? WHERE key = ?", (time.time_ns(), key)
        )
        return str(row[0])

    def put(self, key: str, image_id: str) -> None:
        now = time.time_ns()
        self.conn.execute(
            "INSERT INTO build_cache (key, image_id, created_ns, last_used_ns) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id,"
            " last_used_ns = excluded.last_used_ns",
            (key, image_id, now, now),
        )

    def rows(self) -> list[CacheRow]:
        return [
            CacheRow(*r)
            for r in self.conn.execute(
                "SELECT key, image_id, created_ns, last_used_ns FROM build_cache"
            )
        ]

    def delete(self, key: str) -> None:
        self.conn.execute("DELETE FROM build_cache WHERE key = ?", (key,))
