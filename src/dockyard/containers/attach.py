"""Fan-out of one container's supervisor stream to attached API clients (asyncio world).

A hub exists while somebody is attached to a running container: it reads the supervisor's
framed stream (raw bytes with a TTY) and hands ``(stream, data)`` to each subscriber's
bounded queue, and forwards stdin the other way.  Stdin sent before the hub is connected
(``docker run -i`` writes it before ``start``) is buffered until it is.
"""

from __future__ import annotations

import asyncio

from dockyard.runtime.supervisor.protocol import FRAME, STDIN, frame

__all__ = ["Hub", "Subscriber"]

_QUEUE = 256


class Subscriber:
    def __init__(self, stdout: bool, stderr: bool) -> None:
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(_QUEUE)
        self.stdout = stdout
        self.stderr = stderr


class Hub:
    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.tty = False
        self._writer: asyncio.StreamWriter | None = None
        self._pending_stdin: list[bytes] = []
        self._stdin_closed = False
        self.done = asyncio.Event()

    def subscribe(self, stdout: bool = True, stderr: bool = True) -> Subscriber:
        sub = Subscriber(stdout, stderr)
        if self.done.is_set():
            sub.queue.put_nowait(None)
        else:
            self.subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)

    def stdin(self, data: bytes) -> None:
        if self._stdin_closed:
            return
        if self._writer is None:
            self._pending_stdin.append(data)
        else:
            self._writer.write(frame(STDIN, data))

    def close_stdin(self) -> None:
        if self._stdin_closed:
            return
        self.stdin(b"")
        self._stdin_closed = True

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool) -> None:
        """Pump the supervisor stream until it ends; then every subscriber gets ``None``."""
        self.tty = tty
        self._writer = writer
        for data in self._pending_stdin:
            writer.write(frame(STDIN, data))
        self._pending_stdin.clear()
        try:
            while True:
                if tty:
                    data = await reader.read(65536)
                    if not data:
                        break
                    await self._publish(1, data)
                else:
                    head = await reader.readexactly(FRAME.size)
                    stream, length = FRAME.unpack(head)
                    await self._publish(stream, await reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.done.set()
            for sub in self.subscribers:
                try:
                    sub.queue.put_nowait(None)
                except asyncio.QueueFull:
                    sub.queue._queue.append(None)  # type: ignore[attr-defined]  # end marker must land
            self.subscribers.clear()

    async def _publish(self, stream: int, data: bytes) -> None:
        for sub in list(self.subscribers):
            if (stream == 1 and not sub.stdout) or (stream == 2 and not sub.stderr):
                continue
            await sub.queue.put((stream, data))
