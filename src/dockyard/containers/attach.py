"""Fan-out of one container's supervisor stream to attached API clients (asyncio world).

A hub exists while somebody is attached to a running container: it reads the supervisor's
framed stream (raw bytes with a TTY) and hands ``(stream, data)`` to each subscriber's
bounded queue, and forwards stdin the other way.  Stdin sent before the hub is connected
(``docker run -i`` writes it before ``start``) is buffered until it is.

``ClientStdin`` is the one path from an attached client's input to a hub, shared by the
hijacked attach, the websocket attach and exec start, so all three detach and end alike.
"""

from __future__ import annotations

import asyncio

from dockyard.detachkeys import EscapeScanner
from dockyard.runtime.supervisor.protocol import FRAME, STDIN, frame

__all__ = ["ClientStdin", "Hub", "Subscriber"]

_QUEUE = 256


class Subscriber:
    def __init__(self, stdout: bool, stderr: bool) -> None:
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(_QUEUE)
        self.stdout = stdout
        self.stderr = stderr

    async def get(self, *stops: asyncio.Event) -> tuple[int, bytes] | None:
        """The next ``(stream, data)``; None at the end of output or once any of ``stops``
        is set (the client went away, detached or ended its input), whichever comes first."""
        if any(e.is_set() for e in stops):
            return None
        if not self.queue.empty():
            return self.queue.get_nowait()
        getter = asyncio.ensure_future(self.queue.get())
        waiters = [asyncio.ensure_future(e.wait()) for e in stops]
        try:
            await asyncio.wait([getter, *waiters], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            if not getter.done():
                getter.cancel()
        if any(e.is_set() for e in stops) or getter.cancelled():
            return None
        return getter.result()


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

    async def run(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool
    ) -> None:
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


class ClientStdin:
    """An attached client's stdin on its way into a hub, copied the way moby copies it.

    With a TTY the detach keys are looked for (moby looks only then): the bytes before them
    go in, ``detached`` and ``ended`` are set, and the process keeps running with its stdin
    open for the next attach.  At the end of the client's input moby closes the process's
    stdin only when it is StdinOnce without a TTY (exec counts as StdinOnce), and output
    keeps flowing; otherwise the session ends (``ended``) and stdin stays open.  The caller
    stops its output pump when ``ended`` is set and closes the client's connection.
    """

    def __init__(self, hub: Hub, tty: bool, keys: bytes, stdin_once: bool) -> None:
        self.hub = hub
        self.scanner = EscapeScanner(keys) if tty else None
        self.close_at_eof = stdin_once and not tty
        self.detached = False
        self.ended = asyncio.Event()

    def data(self, data: bytes) -> None:
        if self.ended.is_set():
            return  # after a detach nothing more may reach the process
        if self.scanner is not None:
            data = self.scanner.feed(data)
            self.detached = self.scanner.detached
        if data:  # an empty frame would close the process's stdin
            self.hub.stdin(data)
        if self.detached:
            self.ended.set()

    def eof(self) -> None:
        if self.ended.is_set():
            return
        if self.close_at_eof:
            self.hub.close_stdin()
        else:
            self.ended.set()
