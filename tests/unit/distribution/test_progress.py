"""The progress records and bars, against lines captured from dockerd 20.10."""

from dockyard.distribution.progress import Message, bar, encode, human_size


def test_human_size_is_go_units():
    assert human_size(32768) == "32.77kB"
    assert human_size(1069119) == "1.069MB"
    assert human_size(2140160) == "2.14MB"
    assert human_size(527) == "527B"
    assert human_size(0) == "0B"


def test_bar_as_dockerd_draws_it():
    assert bar(32768, 1069119) == "[=>" + " " * 49 + "]  32.77kB/1.069MB"
    assert bar(1069119, 1069119) == "[" + "=" * 50 + ">]  1.069MB/1.069MB"
    # current beyond total: no total (push of a compressed layer)
    assert bar(2140160, 1984779) == "[" + "=" * 50 + ">]   2.14MB"
    assert bar(0, 0) == ""


def test_lines_are_byte_identical_to_dockerd():
    assert (
        encode(Message.layer("d47d517f31b8", "Pulling fs layer"))
        == b'{"status":"Pulling fs layer","progressDetail":{},"id":"d47d517f31b8"}\r\n'
    )
    assert (
        encode(Message.moving("d47d517f31b8", "Downloading", 32768, 1069119))
        == b'{"status":"Downloading","progressDetail":{"current":32768,"total":1069119},'
        b'"progress":"[=\\u003e                                                 ]  32.77kB/1.069MB",'
        b'"id":"d47d517f31b8"}\r\n'
    )
    assert (
        encode(Message.text("Pulling from library/busybox", "latest"))
        == b'{"status":"Pulling from library/busybox","id":"latest"}\r\n'
    )
    assert (
        encode(Message.failure("boom")) == b'{"errorDetail":{"message":"boom"},"error":"boom"}\r\n'
    )


def test_stream_error_after_the_first_line_names_a_full_disk():
    """A pull that runs out of space after its 200 ends its stream with the same message a
    full disk gives before one: the data root, and what to do; other errors keep theirs."""
    import asyncio
    import errno

    from dockyard.distribution.progress import Message
    from dockyard.distribution.service import _stream

    def failing(exc: BaseException):
        async def run(emit) -> None:
            emit(Message(status="Pulling from library/app", id="latest"))
            await asyncio.sleep(0)
            raise exc

        return run

    async def lines(exc: BaseException) -> list[Message]:
        return [m async for m in await _stream(failing(exc), "/var/lib/dy")]

    full = OSError(errno.ENOSPC, "No space left on device", "/var/lib/dy/tmp/ingest/x")
    last = asyncio.run(lines(full))[-1]
    assert last.error.startswith(
        "no space left on device: the file system of the data root /var/lib/dy is full "
        "(/var/lib/dy/tmp/ingest/x: no space left on device)"
    )
    other = asyncio.run(lines(ValueError("bad layer")))[-1]
    assert other.error == "bad layer"
