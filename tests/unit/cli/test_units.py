"""go-units semantics (docker/cli 28 vendored copy); outputs as docker prints them."""

import pytest

from dockyard.cli.units import (
    bytes_size,
    from_human_size,
    human_duration,
    human_size,
    ram_in_bytes,
    time_ago,
)


@pytest.mark.parametrize(
    ("n", "want"),
    [
        (0, "0B"),
        (1000, "1kB"),
        (1240, "1.24kB"),
        (4261888, "4.26MB"),
        (1234567, "1.23MB"),
        (123456789, "123MB"),
        (7800000, "7.8MB"),
        (999, "999B"),
        (999600000, "1e+03MB"),  # docker 28.2.2 `docker images` really prints this
    ],
)
def test_human_size(n: int, want: str) -> None:
    assert human_size(n) == want


@pytest.mark.parametrize(
    ("n", "want"),
    [
        (1024, "1KiB"),
        (1024 * 1024, "1MiB"),
        (3.42 * 1024**3, "3.42GiB"),
        (5.372 * 1024**4, "5.372TiB"),
        (25157627904, "23.43GiB"),
        (512, "512B"),
    ],
)
def test_bytes_size(n: float, want: str) -> None:
    assert bytes_size(n) == want


@pytest.mark.parametrize(
    ("secs", "want"),
    [
        (0, "Less than a second"),
        (0.9, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (60 * 86400, "2 months"),
        (729 * 86400, "24 months"),
        (730 * 86400, "2 years"),
    ],
)
def test_human_duration(secs: float, want: str) -> None:
    assert human_duration(secs) == want


def test_time_ago() -> None:
    # Captured: image created 1700000000 shown as "3 years ago" in 2026.
    assert time_ago(1700000000, now=1700000000 + 3 * 365 * 86400 + 86400) == "3 years ago"
    assert time_ago(100, now=105) == "5 seconds ago"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("32", 32),
        ("32b", 32),
        ("32B", 32),
        ("32k", 32 * 1024),
        ("32K", 32 * 1024),
        ("32kb", 32 * 1024),
        ("32Kib", 32 * 1024),
        ("32KIB", 32 * 1024),
        ("10m", 10485760),
        ("32Gb", 32 * 1024**3),
        ("32PB", 32 * 1024**5),
        ("32.3", 32),
        ("32.3 mb", int(32.3 * 1024**2)),
        ("0.3MB", int(0.3 * 1024**2)),
        ("1e3", 1000),
    ],
)
def test_ram_in_bytes(text: str, want: int) -> None:
    assert ram_in_bytes(text) == want


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        # Messages captured from `docker create -m <text>` (docker 28.2.2).
        ("10x", "invalid suffix: 'x'"),
        ("1.5.5m", 'strconv.ParseFloat: parsing "1.5.5": invalid syntax'),
        ("-5", "invalid size: '-5'"),
        ("abc", "invalid size: 'abc'"),
        ("10KIBB", "invalid suffix: 'KIBB'"),
        (" 10", 'strconv.ParseFloat: parsing " 10": invalid syntax'),
        ("", "invalid size: ''"),
        ("32bm", "invalid suffix: 'bm'"),
    ],
)
def test_ram_in_bytes_errors(text: str, msg: str) -> None:
    with pytest.raises(ValueError) as info:
        ram_in_bytes(text)
    assert str(info.value) == msg


def test_from_human_size() -> None:
    assert from_human_size("32kB") == 32000
    assert from_human_size("32.5 kB") == 32500
    assert from_human_size("0.3 K") == 300
    assert from_human_size("32Mb") == 32 * 1000**2
    with pytest.raises(ValueError):
        from_human_size("32m b")
