"""The daemon's one metadata database (SQLite, WAL), opened once (blocking world).

Each package keeps its SQL in its own ``store.py`` and its schema there; this module only
opens the connection with the settings every store relies on.
"""

from __future__ import annotations

import sqlite3

__all__ = ["open_db"]


def open_db(path: str) -> sqlite3.Connection:
    """Open (creating) the metadata database; callers use it from the event-loop thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a power loss may drop the last transactions but never corrupts.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
