"""One layer blob: fetched, verified and decompressed as it streams.

Two worlds meet here.  ``LayerSink`` is blocking (run in a thread): every compressed chunk
updates the compressed digest, goes through a streaming decompressor (gzip by ``isal``,
zstd by ``zstandard``, or none for plain tar), and the tar goes to a content-store ingest
whose commit checks the diff id, or to a pipe into a concurrent apply, or both.
``fetch_layer`` is asyncio: it reads the HTTP body and hands chunks of ~1 MiB to the sink in
a thread, the next chunk arriving while the sink works on the previous one, so downloads of
several layers and their decompression run side by side.

A broken transfer (reset, truncated body, read timeout) is resumed where it stopped with
``Range: bytes=N-`` (a registry that ignores Range gets its first N bytes skipped), after a
back-off, up to ``max-download-attempts`` tries in all, as moby's xfer/download.go.  The
sink keeps its decompressor state across attempts, so no byte is processed twice.

Guarantees: the sink's ``finish`` succeeds only if the compressed digest matches, and, when
it stores the tar, the diff id too: the diff-id blob becomes visible only then, and on any
failure the ingest is aborted and nothing is left in the content store.  A tar that only
goes to the pipe is written nowhere else: the apply at the other end checks its diff id
(``LayerTars.apply``), which is what spares writing and hashing the tar a second time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any, BinaryIO

import aiohttp

from dockyard.content import Ingester, Writer
from dockyard.distribution.transport import RegistryError, Repository, describe_error
from dockyard.errors import DockyardError, Internal, InvalidParameter
from dockyard.streampipe import PipeWriter

__all__ = ["LayerSink", "fetch_layer"]

log = logging.getLogger("dockyard.distribution")

_CHUNK = 1 << 20
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_RETRY_BASE = 1.0  # seconds; doubled per attempt (moby waits 5 s times the attempt)


class _Members:
    """A stream of concatenated compressed members (multi-member gzip, several zstd
    frames), streaming: a fresh decompressor for each member, as ``gzip -d`` and ``zstd -d``
    read them.  ``finish`` refuses a stream that stops inside a member."""

    name = ""

    def __init__(self) -> None:
        self._d = self._new()
        self.started = False

    def _new(self) -> Any:
        raise NotImplementedError

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self.started = True
            out.append(self._d.decompress(data))
            if self._d.eof:
                data = self._d.unused_data
                self._d = self._new()
                self.started = False
            else:
                data = b""
        return b"".join(out)

    def finish(self) -> bytes:
        if self.started:
            raise InvalidParameter(f"unexpected EOF: the {self.name} stream is truncated")
        return b""


class _Gzip(_Members):
    """Multi-member gzip (isal when present, zlib otherwise)."""

    name = "gzip"

    def __init__(self) -> None:
        try:
            from isal import isal_zlib as zlib_
        except ImportError:  # pragma: no cover - isal is a pinned dependency
            import zlib as zlib_  # type: ignore[no-redef]
        self._zlib = zlib_
        super().__init__()

    def _new(self) -> Any:
        return self._zlib.decompressobj(wbits=31)


class _Zstd(_Members):
    name = "zstd"

    def __init__(self) -> None:
        import zstandard

        self._zstd = zstandard
        super().__init__()

    def _new(self) -> Any:
        return self._zstd.ZstdDecompressor().decompressobj()


class _Plain:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class LayerSink:
    """Compressed bytes in, a verified diff-id blob and/or a tar on a pipe out (blocking world).

    ``digest``/``size`` are the manifest descriptor's; ``diff_id`` the config's.  ``tee`` is
    a pipe to a concurrent apply of the same tar; ``store=False`` (only with a ``tee``)
    leaves the tar out of the content store, the apply then being the one to check it."""

    def __init__(
        self,
        content: Ingester,
        digest: str,
        size: int,
        diff_id: str,
        tee: BinaryIO | PipeWriter | None = None,
        store: bool = True,
    ) -> None:
        if not store and tee is None:
            raise ValueError("a layer sink needs a content store or a tee")
        self.digest = digest
        self.tee = tee
        self.size = size
        self.diff_id = diff_id
        self.received = 0
        self._hash = hashlib.sha256()
        self._decoder: Any = None
        self._head = b""
        self._broken: BrokenPipeError | None = None  # the apply stopped reading the tee
        self._writer: Writer | None = (
            content.writer(f"layer-{digest}", expected=diff_id) if store else None
        )

    def feed(self, data: bytes) -> None:
        if self.received + len(data) > self.size:
            raise InvalidParameter(
                f"filesystem layer verification failed for digest {self.digest}: "
                f"the registry sent more than the {self.size} bytes the manifest gives"
            )
        self.received += len(data)
        self._hash.update(data)
        if self._broken is not None:
            return  # only the digest matters now: it decides which error to report
        if self._decoder is None:
            self._head += data
            if len(self._head) < 4 and self.received < self.size:
                return
            data, self._head = self._head, b""
            self._decoder = (
                _Gzip()
                if data.startswith(_GZIP)
                else _Zstd()
                if data.startswith(_ZSTD)
                else _Plain()
            )
        try:
            out = self._decoder.feed(data)
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidParameter(
                f"filesystem layer verification failed for digest {self.digest}: corrupt data: {exc}"
            ) from exc
        except Exception as exc:  # isal/zstd raise their own error classes
            if type(exc).__name__ in ("IsalError", "ZstdError", "error"):
                raise InvalidParameter(
                    f"filesystem layer verification failed for digest {self.digest}: corrupt data: {exc}"
                ) from exc
            raise
        if out:
            self._write(out)

    def _write(self, out: bytes) -> None:
        if self._writer is not None:
            self._writer.write(out)
        if self.tee is not None:
            try:
                done = self.tee.write(out)
                while done < len(out):  # an OS pipe's write cut short by a signal
                    done += self.tee.write(memoryview(out)[done:])
            except BrokenPipeError as exc:
                # The apply failed.  Its error is the one to report unless the download is
                # corrupt too (a flipped byte breaks the tar before the digest is known).
                self._broken = exc

    def finish(self) -> str:
        """Verify the compressed digest and, when storing, commit the tar under its checked
        diff id; returns the diff id."""
        if self.received != self.size or self._hash.hexdigest() != self.digest.split(":", 1)[1]:
            got = "sha256:" + self._hash.hexdigest()
            self.abort()
            raise InvalidParameter(
                f"filesystem layer verification failed for digest {self.digest}"
                + (f" (got {got}, {self.received} bytes)" if self.received == self.size else "")
            )
        if self._broken is not None:
            self.abort()
            raise InvalidParameter(f"layer {self.digest}: applying it failed") from self._broken
        if self._decoder is None:  # an empty blob: only plausible for an empty plain tar
            self._decoder = _Plain()
            self._write(self._head)
        self._decoder.finish()
        if self._writer is None:
            return self.diff_id  # checked by the apply the tee feeds
        try:
            return self._writer.commit()
        except InvalidParameter as exc:
            raise InvalidParameter(
                f"layer {self.digest}: the uncompressed content does not match the image "
                f"config's diff id {self.diff_id}: {exc.message}"
            ) from exc

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


_RETRYABLE = (
    aiohttp.ClientPayloadError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
    aiohttp.ClientConnectionError,
    asyncio.TimeoutError,
    ConnectionError,
)


async def fetch_layer(
    repo: Repository,
    sink: LayerSink,
    attempts: int,
    progress: Callable[[int], None],
    retrying: Callable[[int], None],
) -> str:
    """Download into ``sink`` with resume and retries; returns the diff id.

    ``progress(received)`` is called as bytes arrive; ``retrying(seconds)`` before a wait."""
    url = repo.url(f"blobs/{sink.digest}")
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                await _transfer(repo, url, sink, progress)
                return await asyncio.to_thread(sink.finish)
            except (RegistryError, *_RETRYABLE) as exc:
                # a registry's 5xx and a broken transfer are retried; a 4xx is final
                final = isinstance(exc, RegistryError) and exc.status < 500
                if final or attempt >= attempts:
                    raise Internal(_give_up(sink.digest, url, exc, attempt)) from exc
                reason: BaseException = exc
            except DockyardError:
                raise
            delay = _RETRY_BASE * 2 ** (attempt - 1)
            log.warning(
                "download of %s failed at byte %d (%s); retrying in %.0f s (%d/%d)",
                sink.digest,
                sink.received,
                reason,
                delay,
                attempt,
                attempts,
            )
            retrying(int(delay) or 1)
            await asyncio.sleep(delay)
    except BaseException:
        await asyncio.to_thread(sink.abort)
        raise


def _give_up(digest: str, url: str, exc: BaseException, attempt: int) -> str:
    """The pull's error for a layer that will not be fetched again."""
    if isinstance(exc, RegistryError):
        return f"error pulling layer {digest}: {exc.message}"
    return (
        f"error pulling layer {digest}: {describe_error('GET', url, exc)} "
        f"(gave up after {attempt} attempt{'s' if attempt > 1 else ''})"
    )


async def _transfer(
    repo: Repository, url: str, sink: LayerSink, progress: Callable[[int], None]
) -> None:
    offset = sink.received
    if offset >= sink.size:
        return
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    async with repo.request("GET", url, headers=headers, ok=(200, 206)) as resp:
        skip = offset if resp.status == 200 else 0  # Range ignored: drop what we have
        pending = bytearray()
        # The previous chunk, decompressed in a thread while the next one arrives.
        feeding: asyncio.Future[None] | None = None
        try:
            async for chunk in resp.content.iter_chunked(1 << 18):
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                    if not chunk:
                        continue
                pending += chunk
                if len(pending) >= _CHUNK:
                    if feeding is not None:
                        await feeding
                        progress(sink.received)
                    data, pending = bytes(pending), bytearray()
                    feeding = asyncio.ensure_future(asyncio.to_thread(sink.feed, data))
        finally:
            # What arrived before a break is kept: the retry resumes after it.  A chunk the
            # sink refused raises here, and what came after it is dropped.
            if feeding is not None:
                await feeding
            if pending:
                await asyncio.to_thread(sink.feed, bytes(pending))
            progress(sink.received)
    if sink.received < sink.size:
        raise aiohttp.ClientPayloadError(
            f"unexpected EOF: got {sink.received} of {sink.size} bytes"
        )
