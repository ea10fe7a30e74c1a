"""A blocking writer in a thread feeding an async byte stream (bridges both worlds).

``tarfile`` writes synchronously; the HTTP response is async.  The producer thread writes
into a sink that buffers 1 MiB chunks and hands them to the event loop, at most a few in
flight (so a slow client never makes the daemon buffer a whole image); when the consumer
goes away (client hung up) the next write in the thread raises BrokenPipeError and the
thread ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

__all__ = ["stream_from_thread"]

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
