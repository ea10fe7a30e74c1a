"""SQL for network records (blocking world, small queries on the loop thread)."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

__all__ = ["Network", "Store"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    record BLOB NOT NULL
);
"""


class Network(msgspec.Struct):
    id: str
    name: str
    driver: str  # bridge | host | null
    created: str
    bridge: str = ""  # the Linux bridge's name
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    ipam: list[dict[str, Any]] = msgspec.field(default_factory=list)  # Subnet/Gateway/IPRange
    ipam_options: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, str] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    predefined: bool = False


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA)

    def all(self) -> list[Network]:
        rows = self._conn.execute("SELECT record FROM networks")
        return [msgspec.json.decode(r[0], type=Network) for r in rows]

    def save(self, n: Network) -> None:
        """Insert or update; a name taken by another network raises sqlite3.IntegrityError."""
        self._conn.execute(
            "INSERT INTO networks VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "name = excluded.name, record = excluded.record",
            (n.id, n.name, msgspec.json.encode(n)),
        )

    def delete(self, nid: str) -> None:
        self._conn.execute("DELETE FROM networks WHERE id = ?", (nid,))
