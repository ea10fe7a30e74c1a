"""Pushed layers' gzip is deterministic: the digest of a known layer tar is pinned.

A push to a second registry compresses the layer again (only its digest is remembered, per
registry), and sends the same digests only because isal level 1, no file name and mtime 0
give the same bytes every time.  An isal upgrade (or a change of level or header) that
changes those bytes would silently give the same image new layer digests on new registries;
this test catches it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
import zlib

from dockyard.distribution.push import _Compressor

# the input, then what the push sends for it (isal 1.9.1, level 1)
TAR_SHA256 = "a9e4a01d197b3b0c234f7ee38fbffd37c30d62dbe322e04bdd065e637746c968"
TAR_SIZE = 2_775_040
GZIP_DIGEST = "sha256:ed78b694982bbc6a36c7bbfff89bde2fbf1380f648e99ecb29a0e5fb035e1638"
GZIP_SIZE = 1_618_209


def _stream(n: int) -> bytes:
    """``n`` incompressible but reproducible bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"dockyard-%d" % i).digest()
        i += 1
    return bytes(out[:n])


def known_tar() -> bytes:
    """A ustar layer of repetitive, incompressible and text content (over 2 MiB, so the
    compressor is fed several chunks)."""
    files = [
        ("etc/motd", b"hello from dockyard\n" * 4000),
        ("bin/blob", _stream(1_500_000)),
        ("usr/share/doc", b"".join(b"line %d of a readable file\n" % i for i in range(40000))),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = "root"
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def _compress(data: bytes) -> tuple[bytes, _Compressor]:
    compressor = _Compressor(lambda: io.BytesIO(data), asyncio.get_running_loop())
    worker = asyncio.create_task(asyncio.to_thread(compressor.run))
    out = b"".join([chunk async for chunk in compressor.chunks(lambda n: None)])
    await worker
    return out, compressor


def test_the_input_is_the_known_tar():
    data = known_tar()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (TAR_SIZE, TAR_SHA256)


def test_compressed_digest_is_pinned():
    data = known_tar()
    out, compressor = asyncio.run(_compress(data))
    assert zlib.decompress(out, 31) == data
    assert "sha256:" + hashlib.sha256(out).hexdigest() == "sha256:" + compressor.hash.hexdigest()
    assert compressor.size == len(out)
    assert ("sha256:" + compressor.hash.hexdigest(), compressor.size) == (GZIP_DIGEST, GZIP_SIZE)


def test_twice_gives_the_same_bytes():
    data = known_tar()
    first, _ = asyncio.run(_compress(data))
    second, _ = asyncio.run(_compress(data))
    assert first == second
    assert first[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0
