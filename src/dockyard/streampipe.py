"""Byte streams between threads and the event loop.

``stream_from_thread``: a blocking writer in a thread feeding an async byte stream.
``tarfile`` writes synchronously; the HTTP response is async.  The producer thread writes
into a sink that buffers 1 MiB chunks and hands them to the event loop, at most a few in
flight (so a slow client never makes the daemon buffer a whole image); when the consumer
goes away (client hung up) the next write in the thread raises BrokenPipeError and the
thread ends.

``feed_thread``: the other way round, an async byte stream (a request body) read by a
blocking consumer in a thread (``tarfile``), through a ``thread_pipe``: the body is
consumed as it arrives, never spooled to disk first.

``thread_pipe``: a pipe between two threads of the daemon (a download decompressing into
an apply).  An OS pipe would copy every byte into the kernel and out again, in 64 KiB
steps that each wake the other side; this one hands the writer's chunks over as they are,
up to 1 MiB (and one write) ahead, and keeps a pipe's semantics: EOF once the writer closed
and the reader drained it, ``BrokenPipeError`` in the writer once the reader closed.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO, TypeVar

T = TypeVar("T")

__all__ = ["PipeReader", "PipeWriter", "feed_thread", "stream_from_thread", "thread_pipe"]

_CHUNK = 1 << 20
_IN_FLIGHT = 4


class _Sink:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | BaseException | None]
    ) -> None:
        self.loop = loop
        self.queue = queue
        self.slots = threading.Semaphore(_IN_FLIGHT)
        self.closed = threading.Event()
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= _CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self._put(bytes(self.buffer))
            self.buffer.clear()

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self.slots.acquire(timeout=0.5):
            if self.closed.is_set():
                raise BrokenPipeError("the client went away")
        if self.closed.is_set():
            raise BrokenPipeError("the client went away")
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


async def stream_from_thread(produce: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    sink = _Sink(loop, queue)

    def run() -> None:
        try:
            produce(sink)  # type: ignore[arg-type]
            sink.flush()
            sink._put(None)
        except BrokenPipeError:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            try:
                sink._put(exc)
            except BrokenPipeError:
                return

    thread = threading.Thread(target=run, name="stream-producer", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            sink.slots.release()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        sink.closed.set()


class _Pipe:
    """What both ends of a ``thread_pipe`` share."""

    def __init__(self, ahead: int) -> None:
        self.ahead = ahead
        self.chunks: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.writer_closed = False
        self.reader_closed = False
        self.error: BaseException | None = None  # the writer's failure, raised to the reader
        self.changed = threading.Condition()


class PipeWriter:
    """The writing end: ``write`` blocks while the reader is ``ahead`` bytes behind."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe

    def write(self, data: bytes | bytearray | memoryview) -> int:
        pipe = self._pipe
        chunk = bytes(data)  # a no-op for bytes: the reader gets the very object
        with pipe.changed:
            while pipe.queued >= pipe.ahead and not pipe.reader_closed:
                pipe.changed.wait()
            if pipe.reader_closed:
                raise BrokenPipeError("the reading end of the pipe is closed")
            if pipe.writer_closed:
                raise ValueError("write to a closed pipe")
            if chunk:
                pipe.chunks.append(chunk)
                pipe.queued += len(chunk)
                pipe.changed.notify_all()
        return len(chunk)

    def close(self) -> None:
        """End of data: the reader gets EOF once it has read what is queued."""
        with self._pipe.changed:
            self._pipe.writer_closed = True
            self._pipe.changed.notify_all()

    def fail(self, exc: BaseException) -> None:
        """No end of data: the reader's next read raises ``exc`` (not EOF, which a reader
        may take for a complete stream)."""
        with self._pipe.changed:
            if self._pipe.error is None and not self._pipe.writer_closed:  # the first says why
                self._pipe.error = exc
            self._pipe.writer_closed = True
            self._pipe.changed.notify_all()

    def has_room(self) -> bool:
        """True when a ``write`` now would not block."""
        with self._pipe.changed:
            return self._pipe.queued < self._pipe.ahead or self._pipe.reader_closed


class PipeReader:
    """The reading end, a minimal binary file object (``read`` only, as ``tarfile`` uses)."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._chunk = b""
        self._at = 0

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left for None or < 0); b"" only at EOF."""
        if size is None or size < 0:
            parts = []
            while part := self.read(1 << 20):
                parts.append(part)
            return b"".join(parts)
        if size == 0:
            return b""
        if self._at >= len(self._chunk) and not self._next():
            return b""
        if self._at == 0 and size >= len(self._chunk):
            chunk, self._chunk = self._chunk, b""
            return chunk  # a whole chunk: no copy
        out = self._chunk[self._at : self._at + size]
        self._at += len(out)
        return out

    def _next(self) -> bool:
        pipe = self._pipe
        with pipe.changed:
            while not pipe.chunks and not pipe.writer_closed and not pipe.reader_closed:
                pipe.changed.wait()
            if pipe.error is not None and not pipe.reader_closed:
                raise pipe.error
            if not pipe.chunks or pipe.reader_closed:
                return False
            self._chunk, self._at = pipe.chunks.popleft(), 0
            pipe.queued -= len(self._chunk)
            pipe.changed.notify_all()
        return True

    def close(self) -> None:
        """Stop reading: what is queued is dropped and the writer gets ``BrokenPipeError``."""
        with self._pipe.changed:
            self._pipe.reader_closed = True
            self._pipe.chunks.clear()
            self._pipe.queued = 0
            self._pipe.changed.notify_all()
        self._chunk = b""


def thread_pipe(ahead: int = 1 << 20) -> tuple[PipeReader, PipeWriter]:
    """A (reader, writer) pair for two threads; the writer runs at most ``ahead`` bytes (plus
    one write) ahead of the reader."""
    pipe = _Pipe(ahead)
    return PipeReader(pipe), PipeWriter(pipe)


async def feed_thread(
    chunks: AsyncIterator[bytes], consume: Callable[[BinaryIO], T], ahead: int = 4 << 20
) -> T:
    """Run ``consume(reader)`` in a thread while ``chunks`` are fed to ``reader``; return
    its result.  A failure of ``chunks`` (the client hung up) reaches ``consume`` as the
    error of its next read; a ``consume`` that stops early (bad input) stops the feeding,
    and its error is raised.  The loop hands a chunk over without a thread hop while the
    pipe has room, and waits in a thread only when the consumer is ``ahead`` bytes behind."""
    reader, writer = thread_pipe(ahead)

    def run() -> T:
        try:
            return consume(reader)  # type: ignore[arg-type]
        finally:
            reader.close()  # the feeding below then stops with BrokenPipeError

    task = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        try:
            async for chunk in chunks:
                if task.done():
                    break
                if writer.has_room():
                    writer.write(chunk)
                else:
                    await asyncio.to_thread(writer.write, chunk)
        except BrokenPipeError:
            pass  # the consumer stopped: its result or error says why
        except BaseException as exc:
            writer.fail(exc)
            raise
        writer.close()
        return await task
    finally:
        if not task.done():
            writer.fail(ConnectionError("the upload was cut short"))
            try:
                await asyncio.shield(task)
            except Exception:  # the consumer's error, caused by the one raised here
                pass
