"""thread_pipe: a pipe's semantics between two threads, without the copies."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from dockyard.streampipe import feed_thread, thread_pipe


def test_bytes_arrive_in_order_then_eof() -> None:
    reader, writer = thread_pipe(ahead=100_000)
    data = os.urandom(1_000_000)
    got: list[bytes] = []

    def read() -> None:
        while chunk := reader.read(7_000):
            got.append(chunk)

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(0, len(data), 30_000):
        assert writer.write(memoryview(data)[i : i + 30_000]) == len(data[i : i + 30_000])
    writer.close()
    thread.join(10)
    assert b"".join(got) == data
    assert reader.read(10) == b""


def test_a_whole_chunk_is_handed_over_as_is() -> None:
    reader, writer = thread_pipe()
    chunk = os.urandom(1000)
    writer.write(chunk)
    assert reader.read(1 << 20) is chunk


def test_read_all_and_zero() -> None:
    reader, writer = thread_pipe()
    writer.write(b"abc")
    writer.write(b"def")
    writer.close()
    assert reader.read(0) == b""
    assert reader.read() == b"abcdef"


def test_the_writer_waits_for_the_reader() -> None:
    reader, writer = thread_pipe(ahead=10)
    writer.write(b"x" * 10)
    done = threading.Event()

    def write() -> None:
        writer.write(b"y")
        done.set()

    threading.Thread(target=write, daemon=True).start()
    time.sleep(0.1)
    assert not done.is_set()  # 10 bytes ahead already
    assert reader.read(100) == b"x" * 10
    assert done.wait(5)


def test_closing_the_reader_breaks_the_writer_even_while_it_waits() -> None:
    reader, writer = thread_pipe(ahead=10)
    writer.write(b"x" * 10)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            writer.write(b"y")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.05)
    reader.close()
    thread.join(5)
    assert len(errors) == 1 and isinstance(errors[0], BrokenPipeError)
    with pytest.raises(BrokenPipeError):
        writer.write(b"z")
    assert reader.read(10) == b""


def _chunks(parts: list[bytes], fail: BaseException | None = None):
    async def gen():
        for part in parts:
            yield part
            await asyncio.sleep(0)
        if fail is not None:
            raise fail

    return gen()


def test_feed_thread_hands_the_body_to_a_blocking_reader():
    parts = [bytes([i]) * 300_000 for i in range(40)]  # 12 MB: more than the pipe holds
    got = asyncio.run(feed_thread(_chunks(parts), lambda f: f.read(), ahead=1 << 20))
    assert got == b"".join(parts)


def test_feed_thread_cut_short_is_an_error_in_the_reader_not_eof():
    seen: list[BaseException] = []

    def consume(f) -> bytes:
        try:
            return f.read()
        except BaseException as exc:
            seen.append(exc)
            raise

    with pytest.raises(ConnectionResetError):
        asyncio.run(feed_thread(_chunks([b"abc"], ConnectionResetError("gone")), consume))
    assert len(seen) == 1 and isinstance(seen[0], ConnectionResetError)


def test_feed_thread_consumer_that_stops_early_stops_the_feeding():
    fed: list[int] = []

    async def endless():
        while True:
            fed.append(1)
            yield b"x" * 65536
            await asyncio.sleep(0)

    def refuse(f) -> None:
        f.read(10)
        raise ValueError("not a tar")

    with pytest.raises(ValueError, match="not a tar"):
        asyncio.run(feed_thread(endless(), refuse, ahead=1 << 20))
    assert len(fed) < 200  # stopped, not read to the end of an endless body
