"""The daemon's one metadata database (SQLite, WAL), opened once (blocking world).

Durability: WAL with ``synchronous=FULL`` (see ``open_db``).  Files a record points at are
made durable before the record is committed (``fsutil.atomic_write``, the content store's
commit, the storage driver's ``sync``), so a committed record never names missing bytes.

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
    # FULL: every commit fsyncs the WAL before it returns, so a write the API acknowledged
    # (create, tag, commit, volume or network create) survives a power cut.  NORMAL in WAL
    # mode never corrupts the database either, but syncs only at checkpoints: a power loss
    # may silently drop the last acknowledged transactions (sqlite.org/pragma.html#pragma_synchronous).
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
