"""dockyard.content.local: verified ingest, atomic commit, lookups, start-up cleanup."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from dockyard.content import Info, LocalStore, write_blob
from dockyard.errors import Internal, InvalidParameter, NotFound

DATA = b"hello, content store\n"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
MISSING = "sha256:" + "0" * 64


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(str(tmp_path / "content"))


def ingest_files(store: LocalStore) -> list[str]:
    return os.listdir(os.path.join(store.root, "ingest"))


def test_round_trip(store: LocalStore) -> None:
    assert write_blob(store, DATA) == DIGEST
    with store.open(DIGEST) as f:
        assert f.read() == DATA
    info = store.info(DIGEST)
    assert isinstance(info, Info)
    assert (info.digest, info.size) == (DIGEST, len(DATA))
    assert info.created_at.tzinfo is not None
    assert store.path(DIGEST) == os.path.join(store.root, "blobs", "sha256", DIGEST[7:])
    assert [i.digest for i in store.walk()] == [DIGEST]
    assert ingest_files(store) == []


def test_streamed_write_with_expectations(store: LocalStore) -> None:
    with store.writer("layer", expected=DIGEST, expected_size=len(DATA)) as w:
        w.write(DATA[:5])
        w.write(bytearray(DATA[5:]))
        assert w.size == len(DATA)
        assert w.digest() == DIGEST
        assert w.commit() == DIGEST
    assert store.info(DIGEST).size == len(DATA)


def test_digest_mismatch_leaves_nothing(store: LocalStore) -> None:
    wrong = "sha256:" + "1" * 64
    with pytest.raises(InvalidParameter, match=f"digest mismatch: expected {wrong}, got {DIGEST}"):
        write_blob(store, DATA, expected=wrong)
    assert list(store.walk()) == []
    assert ingest_files(store) == []
    with pytest.raises(NotFound):
        store.info(wrong)


def test_size_mismatch_leaves_nothing(store: LocalStore) -> None:
    w = store.writer("short", expected_size=len(DATA) + 1)
    w.write(DATA)
    with pytest.raises(InvalidParameter, match="size mismatch"):
        w.commit()
    over = store.writer("long", expected_size=3)
    with pytest.raises(InvalidParameter, match="size mismatch"):
        over.write(DATA)
    assert list(store.walk()) == []
    assert ingest_files(store) == []


def test_context_manager_aborts_uncommitted(store: LocalStore) -> None:
    with pytest.raises(RuntimeError), store.writer("boom") as w:
        w.write(DATA)
        assert len(ingest_files(store)) == 1
        raise RuntimeError("caller failed mid-stream")
    assert ingest_files(store) == []
    assert list(store.walk()) == []


def test_writer_is_single_use(store: LocalStore) -> None:
    w = store.writer("once")
    w.write(DATA)
    w.commit()
    w.abort()  # no-op after commit
    with pytest.raises(Internal):
        w.write(DATA)
    with pytest.raises(Internal):
        w.commit()
    assert store.info(DIGEST).size == len(DATA)


def test_already_exists_is_success(store: LocalStore) -> None:
    assert write_blob(store, DATA) == DIGEST
    before = os.stat(store.path(DIGEST)).st_ino
    assert write_blob(store, DATA, expected=DIGEST) == DIGEST
    assert os.stat(store.path(DIGEST)).st_ino == before
    assert ingest_files(store) == []


def test_concurrent_identical_commits(store: LocalStore) -> None:
    data = os.urandom(1 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            with store.writer("same", expected=digest) as w:
                for i in range(0, len(data), 65536):
                    w.write(data[i : i + 65536])
                barrier.wait()
                results.append(w.commit())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=ingest) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [digest] * 8
    with store.open(digest) as f:
        assert f.read() == data
    assert [i.digest for i in store.walk()] == [digest]
    assert ingest_files(store) == []


def test_missing_blob(store: LocalStore) -> None:
    for call in (store.open, store.info, store.path, store.delete):
        with pytest.raises(NotFound, match=f"content {MISSING} not found"):
            call(MISSING)


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 65,
        "sha512:" + "a" * 128,
        "sha256:../../../etc/passwd",
        "sha256:" + "a" * 63 + "/",
        "a" * 64,
    ],
)
def test_malformed_digest(store: LocalStore, digest: str) -> None:
    for call in (store.open, store.info, store.path, store.delete):
        with pytest.raises(InvalidParameter):
            call(digest)
    with pytest.raises(InvalidParameter):
        store.writer("x", expected=digest)
    assert ingest_files(store) == []


def test_delete(store: LocalStore) -> None:
    write_blob(store, DATA)
    store.delete(DIGEST)
    with pytest.raises(NotFound):
        store.open(DIGEST)
    assert list(store.walk()) == []


def test_walk_ignores_foreign_files(store: LocalStore) -> None:
    write_blob(store, DATA)
    blobs = os.path.join(store.root, "blobs", "sha256")
    Path(blobs, "not-a-digest").write_bytes(b"x")
    os.mkdir(os.path.join(blobs, "f" * 64))
    assert [i.digest for i in store.walk()] == [DIGEST]


def test_clean_ingests_removes_crash_leftovers(tmp_path: Path) -> None:
    root = str(tmp_path / "content")
    first = LocalStore(root)
    w = first.writer("interrupted")
    w.write(DATA)  # the "process" dies here: no commit, no abort
    Path(root, "ingest", "stale").write_bytes(b"partial")

    restarted = LocalStore(root)
    assert restarted.clean_ingests() == (2, len(DATA) + len(b"partial"))  # files, bytes
    assert ingest_files(restarted) == []
    assert list(restarted.walk()) == []
    assert restarted.clean_ingests() == (0, 0)
    assert write_blob(restarted, DATA) == DIGEST
