import pytest

from dockyard.build.config import (
    check_signal,
    go_duration,
    go_quote_list,
    healthcheck_comment,
    parse_duration,
    parse_ports,
    set_env,
)
from dockyard.errors import InvalidParameter


def test_go_quoting_as_moby_history():
    assert go_quote_list(["/bin/sh", "-c", 'echo "hi"']) == '["/bin/sh" "-c" "echo \\"hi\\""]'


def test_durations():
    assert parse_duration("30s", "interval") == 30 * 10**9
    assert parse_duration("1m30s", "interval") == 90 * 10**9
    assert parse_duration("0", "interval") == 0
    assert go_duration(90 * 10**9) == "1m30s"
    assert go_duration(5 * 10**9) == "5s"
    assert go_duration(3600 * 10**9) == "1h0m0s"
    with pytest.raises(InvalidParameter, match="invalid duration"):
        parse_duration("soon", "interval")
    with pytest.raises(InvalidParameter, match="cannot be less than 1ms"):
        parse_duration("10us", "interval")


def test_healthcheck_comment_matches_moby_format():
    health = {"Test": ["CMD-SHELL", "true"], "Interval": 30 * 10**9, "Retries": 2}
    assert healthcheck_comment(health) == (
        'HEALTHCHECK &{["CMD-SHELL" "true"] "30s" "0s" "0s" \'\\x02\'}'
    )


def test_ports_and_signals():
    assert parse_ports(["80", "53/udp", "8000-8001"]) == [
        "80/tcp",
        "53/udp",
        "8000/tcp",
        "8001/tcp",
    ]
    for bad in ("x", "0", "70000", "9-8"):
        with pytest.raises(InvalidParameter):
            parse_ports([bad])
    assert check_signal("SIGINT") == "SIGINT"
    assert check_signal("term") == "term"
    assert check_signal("9") == "9"
    with pytest.raises(InvalidParameter, match="Invalid signal: SIGNOPE"):
        check_signal("SIGNOPE")


def test_set_env_replaces_in_place():
    assert set_env(["A=1", "B=2"], "A", "3") == ["A=3", "B=2"]
    assert set_env(["A=1"], "C", "x") == ["A=1", "C=x"]
