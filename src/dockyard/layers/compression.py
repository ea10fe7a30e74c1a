"""Layer compression: sniff the magic bytes and decompress as a stream (blocking world).

Layers arrive gzip-compressed (Docker's default), occasionally bzip2/xz (``docker import``,
``ADD`` of local archives) or zstd (OCI ``+zstd`` media types), or uncompressed
(``docker save`` tarballs).  The media type is not always trustworthy or present, so, like
moby's ``pkg/archive.DecompressStream``, we look at the first bytes.  Inputs may be pipes
or HTTP bodies, so nothing here seeks: the sniffed prefix is replayed in front of the rest.

zstd needs the optional ``zstandard`` package; without it a zstd layer is refused with an
``InvalidParameter`` that says what to install.  Decompression errors surface while
reading (``READ_ERRORS``); ``apply_tar``
turns them into ``InvalidParameter``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import BinaryIO, cast

from dockyard.errors import InvalidParameter

__all__ = ["READ_ERRORS", "decompress"]

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"
_SNIFF = 6

# Exceptions a decompressing reader raises on corrupt or truncated input.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error)


class _Replay(io.RawIOBase):
    """Serve ``prefix`` first, then the rest of ``stream``: a peek without seeking."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_prefix(stream: BinaryIO) -> bytes:
    prefix = b""
    while len(prefix) < _SNIFF:
        chunk = stream.read(_SNIFF - len(prefix))
        if not chunk:
            break
        prefix += chunk
    return prefix


def decompress(stream: BinaryIO) -> BinaryIO:
    """Return a readable, uncompressed view of ``stream`` (gzip, bzip2, xz, zstd or plain)."""
    prefix = _read_prefix(stream)
    raw = cast(BinaryIO, io.BufferedReader(_Replay(prefix, stream), 1 << 16))
    if prefix.startswith(_GZIP):
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if prefix.startswith(_BZIP2):
        return cast(BinaryIO, bz2.BZ2File(raw, mode="rb"))
    if prefix.startswith(_XZ):
        return cast(BinaryIO, lzma.LZMAFile(raw, mode="rb"))
    if prefix.startswith(_ZSTD):
        try:
            import zstandard  # type: ignore[import-not-found,unused-ignore]  # optional, lazy
        except ImportError as exc:
            raise InvalidParameter(
                "layer is zstd-compressed but the zstandard module is not installed: "
                "install it with `pip install zstandard`"
            ) from exc
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return cast(BinaryIO, io.BufferedReader(reader))
    return raw
