"""SQL for the build cache (blocking world, fast queries, event-loop thread).

A row maps a step's cache key (``cache.step_key``) to the image that step produced.  Rows
outlive daemon restarts; a row whose image was removed is a miss and is dropped then.
``build_facts`` keeps, per key, the parts the key was made of (``explain.Facts``), so that
``--explain-cache`` can say which part a later miss changed.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from dockyard.build.explain import Facts

__all__ = ["CacheRow", "Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
CREATE TABLE IF NOT EXISTS build_facts (
    key TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    parent TEXT NOT NULL,
    facts TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS build_facts_step ON build_facts(step, created_ns);
CREATE INDEX IF NOT EXISTS build_facts_parent ON build_facts(parent, created_ns);
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
        """Forget ``key``; its facts stay (a later miss of it says its image went) until
        ``drop_orphan_facts`` (every ``builder prune``)."""
        self.conn.execute("DELETE FROM build_cache WHERE key = ?", (key,))

    def drop_orphan_facts(self) -> None:
        self.conn.execute("DELETE FROM build_facts WHERE key NOT IN (SELECT key FROM build_cache)")

    def put_facts(self, key: str, facts: Facts) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO build_facts (key, step, parent, facts, created_ns)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, facts.step, facts.parent, facts.encode(), time.time_ns()),
        )

    def has_facts(self, key: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM build_facts WHERE key = ?", (key,)).fetchone()
        return row is not None

    def facts_of_step(self, step: str, limit: int = 32) -> list[Facts]:
        """Earlier facts of the instruction ``step``, newest first."""
        rows = self.conn.execute(
            "SELECT step, parent, facts FROM build_facts WHERE step = ?"
            " ORDER BY created_ns DESC LIMIT ?",
            (step, limit),
        )
        return [Facts.decode(*row) for row in rows]

    def steps_on_parent(self, parent: str, limit: int = 8) -> list[str]:
        """The instructions built earlier on ``parent``, newest first."""
        rows = self.conn.execute(
            "SELECT step FROM build_facts WHERE parent = ? ORDER BY created_ns DESC LIMIT ?",
            (parent, limit),
        )
        return [str(row[0]) for row in rows]
