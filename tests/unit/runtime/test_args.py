import pytest

from dockyard.errors import InvalidParameter
from dockyard.runtime.cli._args import parse
from dockyard.runtime.native import parse_signal


def test_parse_forms():
    p = parse(
        ["-b", "x", "--pid-file=p", "--no-pivot", "id"],
        {"-b": "bundle", "--pid-file": "pid"},
        {"--no-pivot": "np"},
    )
    assert p.get("bundle") == "x" and p.get("pid") == "p"
    assert p.flags == {"np"} and p.positionals == ["id"]


def test_parse_stops_after_positionals():
    p = parse(
        ["--root", "r", "exec", "-e", "A=1", "c"], {"--root": "root"}, {}, stop_at_positional=1
    )
    assert p.get("root") == "r" and p.positionals == ["exec", "-e", "A=1", "c"]


def test_parse_rejects_unknown_flag():
    with pytest.raises(InvalidParameter, match="--nope"):
        parse(["--nope"], {}, {})


def test_parse_signal():
    assert parse_signal("KILL") == parse_signal("SIGKILL") == parse_signal("9") == 9
    with pytest.raises(InvalidParameter):
        parse_signal("NOPE")
