"""LayerSink: streaming decompression with both digests checked, nothing left on failure."""

import gzip
import hashlib
import io
import os
import tarfile

import pytest
import zstandard

from dockyard.content import LocalStore
from dockyard.distribution.download import LayerSink
from dockyard.errors import InvalidParameter


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = os.urandom(300_000)
        info = tarfile.TarInfo("f")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _feed(sink: LayerSink, blob: bytes, step: int = 7000) -> str:
    for i in range(0, len(blob), step):
        sink.feed(blob[i : i + step])
    return sink.finish()


@pytest.fixture
def store(tmp_path):
    return LocalStore(str(tmp_path))


def _ingests(store) -> list:
    return os.listdir(os.path.join(store.root, "ingest"))


@pytest.mark.parametrize(
    "compress",
    [
        gzip.compress,
        lambda b: gzip.compress(b[:1000]) + gzip.compress(b[1000:]),  # multi-member
        lambda b: zstandard.ZstdCompressor().compress(b),
        lambda b: b"".join(
            zstandard.ZstdCompressor().compress(b[i : i + 70_000]) for i in range(0, len(b), 70_000)
        ),  # frames
        lambda b: b,  # uncompressed tar
    ],
)
def test_decompressed_into_the_store(store, compress):
    tar = _tar()
    blob = compress(tar)
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar))
    assert _feed(sink, blob) == _digest(tar)
    with store.open(_digest(tar)) as f:
        assert f.read() == tar
    assert _ingests(store) == []


def test_compressed_digest_mismatch_leaves_nothing(store):
    tar = _tar()
    blob = gzip.compress(tar)
    bad = bytearray(blob)
    bad[-20] ^= 1
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar))
    with pytest.raises(InvalidParameter, match="verification failed"):
        _feed(sink, bytes(bad))
    sink.abort()
    assert list(store.walk()) == [] and _ingests(store) == []


def test_diff_id_mismatch_leaves_nothing(store):
    tar = _tar()
    blob = gzip.compress(tar)
    sink = LayerSink(store, _digest(blob), len(blob), "sha256:" + "0" * 64)
    with pytest.raises(InvalidParameter, match="diff id"):
        _feed(sink, blob)
    assert list(store.walk()) == [] and _ingests(store) == []


def test_more_bytes_than_the_manifest_says(store):
    tar = _tar()
    blob = gzip.compress(tar)
    sink = LayerSink(store, _digest(blob), len(blob) - 10, _digest(tar))
    with pytest.raises(InvalidParameter, match="more than"):
        _feed(sink, blob)
    sink.abort()
    assert _ingests(store) == []


@pytest.mark.parametrize(
    ("compress", "name"),
    [(gzip.compress, "gzip"), (lambda b: zstandard.ZstdCompressor().compress(b), "zstd")],
)
def test_truncated_stream_with_matching_digest_is_refused(store, compress, name):
    tar = _tar()
    blob = compress(tar)[:-100]  # the registry serves (and names) a cut stream
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar))
    with pytest.raises(InvalidParameter, match=f"{name} stream is truncated|corrupt"):
        _feed(sink, blob)
    sink.abort()
    assert list(store.walk()) == [] and _ingests(store) == []


class _ShortPipe(io.BytesIO):
    """A pipe whose writes a signal cuts short: each takes at most 1000 bytes."""

    def write(self, data) -> int:  # type: ignore[no-untyped-def,override]
        return super().write(bytes(data[:1000]))


def test_tee_only_sink_writes_nothing_to_the_store(store):
    """``store=False``: the tar goes whole to the pipe (short writes resumed), and nothing to
    the content store; the diff id is the apply's to check."""
    tar = _tar()
    blob = gzip.compress(tar)
    pipe = _ShortPipe()
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar), pipe, store=False)
    assert _feed(sink, blob) == _digest(tar)
    assert pipe.getvalue() == tar
    assert list(store.walk()) == [] and _ingests(store) == []


def test_tee_only_sink_still_checks_the_compressed_digest(store):
    tar = _tar()
    blob = gzip.compress(tar)
    bad = bytearray(blob)
    bad[-20] ^= 1
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar), io.BytesIO(), store=False)
    with pytest.raises(InvalidParameter, match="verification failed"):
        _feed(sink, bytes(bad))
    sink.abort()
    assert _ingests(store) == []


def test_tee_and_store_get_the_same_tar(store):
    tar = _tar()
    blob = gzip.compress(tar)
    pipe = _ShortPipe()
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar), pipe)
    assert _feed(sink, blob) == _digest(tar)
    assert pipe.getvalue() == tar
    with store.open(_digest(tar)) as f:
        assert f.read() == tar


class _ClosedPipe(io.BytesIO):
    """The apply failed and closed its end."""

    def write(self, data) -> int:  # type: ignore[no-untyped-def,override]
        raise BrokenPipeError(32, "Broken pipe")


def test_a_failed_apply_is_reported_once_the_digest_is_known(store):
    """The download goes on hashing after the apply stopped: a good blob reports the apply's
    failure (a hostile tar), a corrupt one the verification failure (dockerd's error)."""
    tar = _tar()
    blob = gzip.compress(tar)
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar), _ClosedPipe(), store=False)
    with pytest.raises(InvalidParameter, match="applying it failed") as info:
        _feed(sink, blob)
    assert isinstance(info.value.__cause__, BrokenPipeError)
    bad = bytes([blob[0] ^ 1]) + blob[1:]  # no longer gzip: the tar is garbage at once
    sink = LayerSink(store, _digest(blob), len(blob), _digest(tar), _ClosedPipe(), store=False)
    with pytest.raises(InvalidParameter, match="verification failed"):
        _feed(sink, bad)
    assert list(store.walk()) == [] and _ingests(store) == []
