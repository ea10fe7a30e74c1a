"""The runtime server's request decoding and routing (no processes started)."""

from __future__ import annotations

import pytest

from dockyard.runtime.cli.server import _needs_caller_as_parent, parse_request


def _payload(*fields: str) -> bytes:
    return b"".join(f.encode() + b"\0" for f in fields)


def test_request_round_trip():
    req = parse_request(
        _payload(
            "1",
            "/work",
            "22",
            "3",
            "--root",
            "/r",
            "run",
            "2",
            "A=1",
            "B=x=y",
            "2",
            "1024:4096",
            "-1:-1",
        )
    )
    assert req.cwd == "/work" and req.umask == 0o22
    assert req.argv == ["--root", "/r", "run"]
    assert req.env == {"A": "1", "B": "x=y"}
    assert req.rlimits == [(1024, 4096), (-1, -1)]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"1\0/\0",  # truncated
        _payload("2", "/", "22", "0", "0", "0"),  # another protocol
        _payload("1", "/", "99", "0", "0", "0"),  # not octal
        _payload("1", "/", "22", "5", "a", "0", "0"),  # argc larger than what follows
        _payload("1", "/", "22", "-1", "0", "0"),
        b"1\0/\x0022\x000\x000\x000",  # no final NUL
        _payload("1", "/", "22", "0", "0", "1", "nonsense"),
    ],
)
def test_malformed_requests_are_refused(payload):
    with pytest.raises(ValueError):
        parse_request(payload)


@pytest.mark.parametrize(
    ("argv", "caller"),
    [
        (["create", "-b", "/b", "x"], True),
        (["--root", "/r", "run", "-d", "x"], True),
        (["run", "--detach=true", "x"], True),
        (["run", "-b", "/b", "x"], False),
        (["exec", "-d", "x", "sleep", "1"], True),
        (["exec", "x", "ls", "-d", "/"], False),  # -d after the id is the command's
        (["state", "x"], False),
        (["run", "--bogus"], False),  # the worker prints the command's own error
        (["--no-such-global", "run"], False),
    ],
)
def test_detached_processes_stay_the_callers(argv, caller):
    assert _needs_caller_as_parent(argv) is caller
