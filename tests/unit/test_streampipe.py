"""thread_pipe: a pipe's semantics between two threads, without the copies."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dockyard.streampipe import thread_pipe


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
