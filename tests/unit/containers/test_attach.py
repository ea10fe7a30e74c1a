"""``ClientStdin``: what reaches the hub, when the session ends and when the process's stdin
is closed, as moby's attach and exec copy a client's input (pure logic, a fake hub)."""

from __future__ import annotations

import asyncio

from dockyard.containers.attach import ClientStdin, Subscriber
from dockyard.detachkeys import DEFAULT, parse


class FakeHub:
    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.closed = False

    def stdin(self, data: bytes) -> None:
        assert data, "an empty write would close the process's stdin"
        self.got.append(data)

    def close_stdin(self) -> None:
        self.closed = True


def test_tty_detach_passes_what_came_before_and_nothing_after():
    hub = FakeHub()
    stdin = ClientStdin(hub, tty=True, keys=DEFAULT, stdin_once=False)  # type: ignore[arg-type]
    stdin.data(b"ls\n")
    stdin.data(b"x\x10")
    assert not stdin.ended.is_set()
    stdin.data(b"\x11after")
    stdin.data(b"more")
    stdin.eof()
    assert hub.got == [b"ls\n", b"x"]
    assert stdin.detached and stdin.ended.is_set() and not hub.closed


def test_without_tty_the_keys_are_data():
    hub = FakeHub()
    stdin = ClientStdin(hub, tty=False, keys=parse("ctrl-a,x"), stdin_once=False)  # type: ignore[arg-type]
    stdin.data(b"\x01x\x10\x11")
    assert hub.got == [b"\x01x\x10\x11"] and not stdin.detached


def test_held_back_prefix_alone_sends_nothing():
    hub = FakeHub()
    stdin = ClientStdin(hub, tty=True, keys=DEFAULT, stdin_once=False)  # type: ignore[arg-type]
    stdin.data(b"\x10")
    assert hub.got == []
    stdin.data(b"z")
    assert hub.got == [b"\x10z"]


def test_end_of_input():
    # StdinOnce without a TTY (and exec without a TTY): the process's stdin closes, output goes on
    hub = FakeHub()
    stdin = ClientStdin(hub, tty=False, keys=DEFAULT, stdin_once=True)  # type: ignore[arg-type]
    stdin.eof()
    assert hub.closed and not stdin.ended.is_set()
    # anything else: the session ends and the process keeps its stdin
    for tty, once in ((False, False), (True, False), (True, True)):
        hub = FakeHub()
        stdin = ClientStdin(hub, tty=tty, keys=DEFAULT, stdin_once=once)  # type: ignore[arg-type]
        stdin.eof()
        assert not hub.closed and stdin.ended.is_set() and not stdin.detached


def test_subscriber_get_stops_on_any_event():
    async def run() -> None:
        sub = Subscriber(True, True)
        stop = asyncio.Event()
        sub.queue.put_nowait((1, b"a"))
        assert await sub.get(stop) == (1, b"a")
        asyncio.get_running_loop().call_later(0.05, stop.set)
        assert await sub.get(asyncio.Event(), stop) is None
        assert sub.queue.empty()
        sub.queue.put_nowait(None)
        assert await sub.get(asyncio.Event()) is None

    asyncio.run(run())
