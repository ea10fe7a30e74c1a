"""``POST /build/prune``'s ``until``: a Go duration (what dockerd's builder prune takes),
an RFC 3339 timestamp (with a ``Z`` or an offset, any precision) or unix seconds."""

import pytest

from dockyard.api.routes.build import prune_until
from dockyard.errors import InvalidParameter
from dockyard.filters import parse_time

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - 86400),
        ("1h30m", NOW - 5400),
        ("1.5h", NOW - 5400),
        ("90s", NOW - 90),
        ("500ms", NOW - 0.5),
        ("0", NOW),
        ("0s", NOW),
        ("1700000000", 1_700_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000),
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000),
        ("2023-11-14T23:13:20.5+01:00", 1_700_000_000),
    ],
)
def test_until_forms(text, expected):
    assert prune_until(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "24x", "1d", "h", "2023-13-45T00:00:00Z"])
def test_until_refused_with_the_forms_it_takes(text):
    with pytest.raises(InvalidParameter, match=r"give a duration \(e\.g\. 24h\), an RFC 3339"):
        prune_until(text, NOW)


def test_parse_time_keeps_the_offset_after_a_fraction():
    assert parse_time("2023-11-14T23:13:20.5+01:00") == 1_700_000_000
    assert parse_time("2023-11-14T21:13:20.25-01:00") == 1_700_000_000
