import pytest

from dockyard.api import query
from dockyard.api.version import negotiate
from dockyard.errors import InvalidParameter


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("1", True),
        ("true", True),
        ("True", True),
        ("yes", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("none", False),
        ("", False),
    ],
)
def test_boolean_follows_moby_boolvalue(raw, expected):
    assert query.boolean({"x": raw}, "x") is expected
    assert query.boolean({}, "x") is False


def test_filters_both_shapes():
    allowed = ["label", "dangling"]
    assert query.parse_filters('{"label":{"a=1":true,"b":false}}', allowed) == {"label": ["a=1"]}
    assert query.parse_filters('{"label":["a=1","c"]}', allowed) == {"label": ["a=1", "c"]}
    assert query.parse_filters("", allowed) == {}


@pytest.mark.parametrize(
    "raw,message",
    [
        ('{"bogus":["x"]}', "Invalid filter 'bogus'"),
        ("notjson", "invalid filters"),
        ("[1]", "expected a JSON object"),
        ('{"label":5}', "must be a list or map"),
    ],
)
def test_bad_filters(raw, message):
    with pytest.raises(InvalidParameter, match=message):
        query.parse_filters(raw, ["label"])


def test_integer():
    assert query.integer({"t": "10"}, "t") == 10
    with pytest.raises(InvalidParameter, match="not an integer"):
        query.integer({"t": "ten"}, "t")


def test_version_negotiation():
    assert negotiate(None) == (1, 50)  # no prefix: the newest, as moby
    assert negotiate("1.24") == (1, 24)
    assert negotiate("1.22") == (1, 22)  # skopeo's docker-daemon transport
    assert negotiate("1.12") == (1, 12)  # dockerd 20.10's minimum
    assert negotiate("1.50") == (1, 50)  # advertised
    assert negotiate("1.41") == (1, 41)  # docker CLI 20.10, compose 1.29
    with pytest.raises(
        InvalidParameter,
        match="client version 1.51 is too new. Maximum supported API version is 1.50",
    ):
        negotiate("1.51")
    with pytest.raises(InvalidParameter, match="is too old. Minimum supported API version is 1.12"):
        negotiate("1.11")
