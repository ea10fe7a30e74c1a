import errno
import sqlite3

from dockyard.errors import DiskFull, Internal, NotFound, disk_full


def _raise_wrapped(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise Internal(f"content store: writing: {exc}") from exc
    except Internal as outer:
        return outer


def test_enospc_and_edquot_anywhere_in_the_chain():
    for code in (errno.ENOSPC, errno.EDQUOT):
        inner = OSError(code, "No space left on device", "/data/content/ingest/x")
        full = disk_full(_raise_wrapped(inner), "/data")
        assert isinstance(full, DiskFull) and isinstance(full, Internal)
        assert "no space left on device" in full.message
        assert "/data" in full.message and "/data/content/ingest/x" in full.message


def test_sqlite_full():
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA max_page_count=2")
    db.execute("CREATE TABLE t (x TEXT)")
    try:
        for _ in range(100):
            db.execute("INSERT INTO t VALUES (?)", ("x" * 4000,))
    except sqlite3.OperationalError as exc:
        full = disk_full(exc, "/var/lib/dockyard")
    assert full is not None and "database or disk is full" in full.message
    assert "/var/lib/dockyard" in full.message


def test_other_errors_are_not_disk_full():
    assert disk_full(_raise_wrapped(OSError(errno.EIO, "I/O error")), "/d") is None
    assert disk_full(NotFound("no such image"), "/d") is None
    assert disk_full(ValueError("x"), "/d") is None
