"""Tar-split: rebuild a layer's exact tar from its extracted directory (blocking world).

Docker keeps each image layer once, extracted, plus vbatts/tar-split metadata from which the
original tar (whose sha256 is the layer's diff id) is regenerated for ``save`` and push.
This module does the same with its own compact format:

- while ``apply_tar`` reads a layer, a ``Recorder`` wraps the input stream and keeps every
  byte that is not a regular file's payload: headers (ustar, GNU long names, PAX records
  with xattrs), padding, the end-of-archive blocks and any trailing bytes.  A payload that
  ``apply_tar`` writes to a file is replaced by a reference (path, size);
- ``open_tar`` streams the tar back: raw bytes from the metadata, payloads read from the
  layer directory (by fd walk, never through a symlink).  Whiteouts, devices, links and
  directories carry no payload, so they come back from the recorded headers, never from
  disk: overlay's 0:0 devices and opaque xattrs are never read.

Payloads that cannot be read back from disk stay inline in the metadata: sparse files
(their archive data is not the file's bytes), data of entries that are not extracted
(aufs ``.wh..wh.*`` bookkeeping, hard links with a size).  A payload that a later entry of
the same tar removes (a name written twice, a whiteout of a file added earlier) is gone
from disk: ``Recorder.finish`` then raises ``Unrecordable`` and the caller keeps the tar.

File format: ``MAGIC``, the tar's size (u64 BE) and sha256 (32 bytes), then one zstd frame
of records: ``R`` u32 length + raw bytes; ``F`` u64 size + u32 length + path (UTF-8,
surrogateescape); ``E`` the end.  The rebuild hashes what it emits and holds back its last
block (which ends with the end-of-archive blocks) until the digest matches, so a layer
changed on disk gives an error and never a complete, wrong tar.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import struct
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

from dockyard.errors import Internal, InvalidParameter
from dockyard.layers import whiteout
from dockyard.layers._tree import Parts, Tree, normalise

__all__ = [
    "Recorder",
    "Split",
    "TarStream",
    "Unrecordable",
    "open_tar",
    "read_header",
    "record_tar",
]

MAGIC = b"DYTSPLIT1\n"
_HEAD = struct.Struct(">Q32s")
_RAW = struct.Struct(">I")
_FILE = struct.Struct(">QI")
log = logging.getLogger("dockyard.layers")

_CHUNK = 1 << 20
_RAW_MAX = 1 << 24  # a raw record is split beyond this (bounds the reader's buffer)
_LEVEL = 3
_META_BLOCK = 1 << 16


class Unrecordable(Exception):
    """The layer's tar cannot be rebuilt from its directory: keep the tar itself."""


class Split:
    """A finished recording: the metadata file's bytes and the tar's size and digest."""

    __slots__ = ("data", "digest", "size")

    def __init__(self, data: bytes, digest: str, size: int) -> None:
        self.data = data
        self.digest = digest
        self.size = size


class Recorder:
    """A read-only file object over the layer tar that records it as ``apply_tar`` reads.

    ``apply_tar`` calls ``payload`` before it copies a regular file's data, ``flush`` before
    each header, and ``removed`` (through ``Tree.on_remove``) whenever it deletes a path."""

    def __init__(self, stream: BinaryIO) -> None:
        self._src = stream
        self._pos = 0  # bytes read from the source
        self._cut = 0  # bytes before this are recorded (raw or as a payload)
        self._buf = bytearray()  # source bytes from self._cut on that are not recorded yet
        self._safe = 0  # bytes before this are raw for sure: flushed early if many
        self._hash = hashlib.sha256()
        self._cobj = zstandard.ZstdCompressor(level=_LEVEL).compressobj()
        self._out = io.BytesIO()
        self._payloads: list[Parts] = []
        self._removals: dict[Parts, int] = {}

    # -- the file object tarfile reads ------------------------------------------------------
    def read(self, size: int = -1) -> bytes:
        data = self._src.read(size)
        if not data:
            return b""
        start = self._pos
        self._pos += len(data)
        self._hash.update(data)
        if self._pos > self._cut:
            self._buf += data[max(0, self._cut - start) :]
            if len(self._buf) > _RAW_MAX and self._safe > self._cut:
                self.flush(self._safe)  # inline data (a sparse file): bound the memory
        return data

    # -- hooks from apply_tar ---------------------------------------------------------------
    def payload(self, member: tarfile.TarInfo, parts: Parts) -> None:
        """``member``'s data is about to be written to the file at ``parts``."""
        start = member.offset_data
        if member.size <= 0 or member.sparse is not None or not self._cut <= start <= self._pos:
            # Nothing to reference, not the file's bytes (sparse), or not where expected:
            # the data stays inline (always correct).
            self._safe = max(self._safe, start + max(member.size, 0))
            return
        self._raw(bytes(self._buf[: start - self._cut]))
        path = "/".join(parts).encode("utf-8", "surrogateescape")
        self._emit(b"F" + _FILE.pack(member.size, len(path)) + path)
        end = start + member.size
        del self._buf[: end - self._cut]  # the payload bytes already read, if any
        self._cut = end
        self._payloads.append(parts)

    def flush(self, offset: int) -> None:
        """Everything before ``offset`` (the next header) is recorded as raw bytes."""
        self._safe = max(self._safe, offset)
        upto = min(offset, self._pos)
        if upto > self._cut:
            self._raw(bytes(self._buf[: upto - self._cut]))
            del self._buf[: upto - self._cut]
            self._cut = upto

    def removed(self, path: Parts) -> None:
        """``apply_tar`` deleted ``path`` (and what is below it)."""
        self._removals[path] = len(self._payloads)

    @property
    def digest(self) -> str:
        """The sha256 of what was read so far (the whole tar once ``finish`` ran, even when
        it raised ``Unrecordable``)."""
        return "sha256:" + self._hash.hexdigest()

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> Split:
        """Record the rest of the stream (end blocks, trailing bytes) and return the split.

        Raises ``Unrecordable`` when a referenced payload was removed later in the tar."""
        while self.read(_CHUNK):
            pass
        self.flush(self._pos)
        for index, parts in enumerate(self._payloads):
            for i in range(1, len(parts) + 1):
                if self._removals.get(parts[:i], -1) > index:
                    raise Unrecordable(
                        f"{'/'.join(parts)!r} is replaced later in the same tar, so its first "
                        "content is not on disk"
                    )
        self._emit(b"E")
        self._out.write(self._cobj.flush())
        head = MAGIC + _HEAD.pack(self._pos, self._hash.digest())
        return Split(head + self._out.getvalue(), "sha256:" + self._hash.hexdigest(), self._pos)

    def _raw(self, data: bytes) -> None:
        for i in range(0, len(data), _RAW_MAX):
            piece = data[i : i + _RAW_MAX]
            self._emit(b"R" + _RAW.pack(len(piece)) + piece)

    def _emit(self, record: bytes) -> None:
        self._out.write(self._cobj.compress(record))


def record_tar(stream: BinaryIO) -> Split:
    """Record a tar that was applied earlier, without applying it again.

    For a layer stored before tar-split (its tar in the content store): every regular file
    is taken to be on disk at its name, which only a rebuild can confirm, so the caller
    verifies the split (``open_tar`` reads to the end) before relying on it."""
    recorder = Recorder(stream)
    try:
        tf = tarfile.open(fileobj=recorder, mode="r|")  # type: ignore[call-overload]
        while True:
            if tf.firstmember is None:  # type: ignore[attr-defined]
                recorder.flush(tf.offset)
            member = tf.next()
            if member is None:
                break
            if not member.isreg():
                continue
            try:
                parts = normalise(member.name)
            except InvalidParameter:
                continue  # apply refuses it anyway: the layer never held it
            if parts and whiteout.classify(parts[-1]) is whiteout.Kind.NONE:
                recorder.payload(member, parts)
    except tarfile.TarError as exc:
        raise Unrecordable(f"the stored tar cannot be read: {exc}") from exc
    return recorder.finish()


def read_header(path: str) -> tuple[str, int]:
    """The (digest, size) of the tar a split file rebuilds, without reading the rest."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + _HEAD.size)
    return _parse_head(head, path)


def _parse_head(head: bytes, path: str) -> tuple[str, int]:
    if len(head) != len(MAGIC) + _HEAD.size or not head.startswith(MAGIC):
        raise Internal(f"layer metadata {path} is not a tar-split file (corrupt?)")
    size, digest = _HEAD.unpack(head[len(MAGIC) :])
    return "sha256:" + digest.hex(), size


class TarStream(io.RawIOBase):
    """The rebuilt tar as a read-only, non-seekable file object; ``size`` is known upfront."""

    def __init__(self, path: str, root: str) -> None:
        super().__init__()
        self._file = open(path, "rb")
        try:
            self.digest, self.size = _parse_head(self._file.read(len(MAGIC) + _HEAD.size), path)
        except BaseException:
            self._file.close()
            raise
        self._chunks = _rebuild(self._file, path, root, self.digest)
        self._pending = b""
        self._at = 0  # read offset into _pending (slicing a 1 MiB chunk per read is costly)

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while self._at >= len(self._pending):
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._pending, self._at = chunk, 0
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if not view or not self._fill():
            return 0
        n = min(len(view), len(self._pending) - self._at)
        view[:n] = self._pending[self._at : self._at + n]
        self._at += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if self._fill() and self._at == 0 and len(self._pending) == size:
            self._at = size
            return self._pending  # a whole chunk: no copy
        out = bytearray()
        while len(out) < size and self._fill():
            take = min(size - len(out), len(self._pending) - self._at)
            out += self._pending[self._at : self._at + take]
            self._at += take
        return bytes(out)

    def readall(self) -> bytes:
        out = bytearray()
        while self._fill():
            out += self._pending[self._at :]
            self._at = len(self._pending)
        return bytes(out)

    def close(self) -> None:
        if not self.closed:
            self._chunks.close()
            self._file.close()
        super().close()


def open_tar(path: str, root: str) -> TarStream:
    """Stream back the tar recorded in the split file ``path`` for the layer dir ``root``."""
    return TarStream(path, root)


def _rebuild(meta: BinaryIO, path: str, root: str, digest: str) -> Iterator[bytes]:
    """Yield the tar's bytes; the last chunk only once the whole tar hashed to ``digest``."""
    try:
        tree = Tree(root)
    except OSError as exc:
        log.error("layer %s cannot be rebuilt: %s", digest, exc)
        raise Internal(f"layer {digest} cannot be rebuilt: its directory: {exc}") from exc
    reader = zstandard.ZstdDecompressor().stream_reader(meta, read_across_frames=False)
    hasher = hashlib.sha256()
    held = b""
    out = bytearray()  # headers and small files, gathered into ~1 MiB blocks
    try:
        for chunk in _records(_Meta(reader, path), tree):
            if not out and len(chunk) >= _CHUNK:
                block = chunk  # a large file's read: no copy
            else:
                out += chunk
                if len(out) < _CHUNK:
                    continue
                block = bytes(out)
                out.clear()
            hasher.update(block)
            if held:
                yield held
            held = block
        if out:
            hasher.update(out)
            if held:
                yield held
            held = bytes(out)
        if "sha256:" + hasher.hexdigest() != digest:
            raise Internal(
                f"layer {digest} cannot be rebuilt: its files under {root} were modified "
                "(the rebuilt tar has another digest); pull or load the image again"
            )
        if held:
            yield held
    except Internal as exc:
        # Often raised mid-stream (save, push), where the client only sees a cut stream.
        log.error("%s", exc.message)
        raise
    finally:
        tree.close()
        reader.close()


class _Meta:
    """The decompressed record stream, read in blocks (records are mostly a few bytes)."""

    def __init__(self, reader: BinaryIO, path: str) -> None:
        self.reader = reader
        self.path = path
        self.buf = b""
        self.at = 0

    def take(self, n: int) -> bytes:
        end = self.at + n
        if end > len(self.buf):
            parts = [self.buf[self.at :]]
            have = len(parts[0])
            while have < n:
                data = self.reader.read(max(_META_BLOCK, n - have))
                if not data:
                    raise Internal(f"layer metadata {self.path} is truncated")
                parts.append(data)
                have += len(data)
            self.buf, self.at, end = b"".join(parts), 0, n
        out = self.buf[self.at : end]
        self.at = end
        return out


def _records(meta: _Meta, tree: Tree) -> Iterator[bytes]:
    while True:
        kind = meta.take(1)
        if kind == b"E":
            return
        if kind == b"R":
            (length,) = _RAW.unpack(meta.take(_RAW.size))
            yield meta.take(length)
        elif kind == b"F":
            size, length = _FILE.unpack(meta.take(_FILE.size))
            name = meta.take(length).decode("utf-8", "surrogateescape")
            yield from _payload(tree, tuple(name.split("/")), size)
        else:
            raise Internal(f"layer metadata {meta.path} is corrupt (unknown record {kind!r})")


def _payload(tree: Tree, parts: Parts, size: int) -> Iterator[bytes]:
    shown = "/".join(parts)
    tree.trim()  # the tree caches a directory fd per path: keep their number bounded
    try:
        pfd = tree.parent(parts[:-1], shown, create=False)
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
    except (OSError, InvalidParameter) as exc:  # InvalidParameter: a symlink on the way
        raise Internal(f"layer file {shown!r} is missing or was replaced: {exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            raise Internal(
                f"layer file {shown!r} was modified (expected {size} bytes, found "
                f"{st.st_size}); the layer cannot be rebuilt"
            )
        left = size
        while left:
            data = os.read(fd, min(_CHUNK, left))
            if not data:
                raise Internal(f"layer file {shown!r} shrank while being read")
            left -= len(data)
            yield data
    finally:
        os.close(fd)
