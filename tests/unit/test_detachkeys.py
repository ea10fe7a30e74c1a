"""Detach keys: moby/term ``ToBytes`` and the escape scanner, checked against a line-by-line
port of moby/term's ``escapeProxy.Read`` driven the way ``io.Copy`` drives it."""

from __future__ import annotations

import random

import pytest

from dockyard.detachkeys import DEFAULT, EscapeScanner, parse


@pytest.mark.parametrize(
    "keys,expected",
    [
        ("ctrl-p,ctrl-q", b"\x10\x11"),
        ("ctrl-a,x", b"\x01x"),
        ("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x00\x1b\x1c\x1d\x1e\x1f"),
        ("ctrl-z,DEL,x", b"\x1a\x7fx"),
        (" ", b" "),
        ("a,b,c", b"abc"),
    ],
)
def test_parse_accepts_what_moby_accepts(keys, expected):
    assert parse(keys) == expected


# Each of these made the reference dockerd 20.10 answer 400 "Invalid detach keys".
@pytest.mark.parametrize(
    "keys",
    [
        "bogus",
        "ctrl-",
        "ctrl-1",
        "ctrl-A",
        "del",
        "é",
        "a,,b",
        ",",
        "ctrl-p,,",
        "ab",
        "ctrl-p ,ctrl-q",
        "",
    ],
)
def test_parse_refuses_what_moby_refuses(keys):
    with pytest.raises(ValueError, match="Unknown character"):
        parse(keys)


def feed_all(scanner: EscapeScanner, pieces: list[bytes]) -> bytes:
    out = b""
    for piece in pieces:
        out += scanner.feed(piece)
    return out


def test_sequence_in_one_piece_keeps_what_came_before_and_drops_the_rest():
    s = EscapeScanner()
    assert s.feed(b"abc\x10\x11def") == b"abc"
    assert s.detached
    assert s.feed(b"more") == b""


def test_sequence_split_over_pieces_is_held_back():
    s = EscapeScanner()
    assert s.feed(b"x\x10") == b"x"
    assert not s.detached
    assert s.feed(b"\x11yy") == b""
    assert s.detached


def test_broken_sequence_is_delivered_intact():
    s = EscapeScanner()
    assert feed_all(s, [b"a\x10", b"b\n"]) == b"a\x10b\n"
    assert (
        feed_all(s, [b"\x10", b"\x10", b"\x11z"]) == b"\x10\x10\x11z"
    )  # moby: no restart on the breaker
    assert not s.detached


def test_custom_three_key_sequence_byte_by_byte():
    s = EscapeScanner(parse("ctrl-a,x,y"))
    assert feed_all(s, [b"\x01", b"x", b"z"]) == b"\x01xz"
    assert feed_all(s, [b"\x01", b"x", b"y", b"after"]) == b""
    assert s.detached


def test_plain_data_passes_untouched():
    s = EscapeScanner(DEFAULT)
    data = bytes(range(256)).replace(b"\x10", b"")
    assert s.feed(data) == data


def test_empty_keys_are_refused():
    with pytest.raises(ValueError):
        EscapeScanner(b"")


class MobyEscapeProxy:
    """moby/term proxy.go ``escapeProxy`` (v0.5), statement by statement.

    ``duplicating``: moby prepends all ``pos`` matched keys when a match that began in an
    earlier read breaks, though ``i`` of them are still in the current read, so with three
    or more keys it repeats input (dockerd 20.10, keys ``ctrl-a,x,y``, reads ``^A`` then
    ``xz``: the container gets ``^Axxz``).  dockyard does not copy that; the model without
    it prepends only the keys held from earlier reads."""

    def __init__(self, chunks: list[bytes], keys: bytes, duplicating: bool = False) -> None:
        self.chunks = list(chunks)
        self.keys = keys
        self.duplicating = duplicating
        self.pos = 0
        self.buf = b""

    def read(self, size: int) -> tuple[bytes, bool, bool]:
        """Returns (data, escaped, eof) like Go's (n, err)."""
        if self.pos == len(self.keys):
            return b"", True, False
        buf = bytearray(size)
        n = 0
        if self.buf:
            n = min(len(self.buf), size)
            buf[:n] = self.buf[:n]
            self.buf = self.buf[n:]
        chunk = self.chunks.pop(0)[: size - n] if self.chunks else b""
        eof = not chunk and not self.chunks
        buf[n : n + len(chunk)] = chunk
        n += len(chunk)
        i = 0
        while i < n:
            if buf[i] == self.keys[self.pos]:
                self.pos += 1
                if self.pos == len(self.keys):
                    n = max(i + 1 - self.pos, 0)
                    return bytes(buf[:n]), True, False
                i += 1
                continue
            if i < self.pos:
                earlier = self.pos if self.duplicating else self.pos - i
                preserve = self.keys[:earlier] + bytes(buf[:n])
                n = min(len(preserve), size)
                buf[:n] = preserve[:n]
                i += earlier
                self.buf += preserve[n:]
            self.pos = 0
            i += 1
        n = max(n - self.pos, 0)
        return bytes(buf[:n]), False, eof


def moby_copy(chunks: list[bytes], keys: bytes, duplicating: bool = False) -> tuple[bytes, bool]:
    proxy, out = MobyEscapeProxy(chunks, keys, duplicating), b""
    while True:
        data, escaped, eof = proxy.read(32 * 1024)
        out += data
        if escaped:
            return out, True
        if eof:
            return out, False


@pytest.mark.parametrize("keys", [DEFAULT, b"\x01x", b"aab", b"\x10\x10\x11", b"q"])
def test_same_answers_as_moby_on_random_streams(keys):
    rng = random.Random(1234)
    alphabet = list(set(keys)) + [ord("a"), ord("z")]
    for _ in range(3000):
        chunks = [
            bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
            for _ in range(rng.randint(1, 6))
        ]
        s = EscapeScanner(keys)
        mine = b""
        for chunk in chunks:
            mine += s.feed(chunk)
            if s.detached:
                break
        assert (mine, s.detached) == moby_copy(chunks, keys), chunks


def test_moby_duplication_is_not_copied():
    chunks, keys = [b"\x01", b"xz\n"], parse("ctrl-a,x,y")
    assert moby_copy(chunks, keys, duplicating=True) == (b"\x01xxz\n", False)
    assert feed_all(EscapeScanner(keys), chunks) == b"\x01xz\n" == moby_copy(chunks, keys)[0]
