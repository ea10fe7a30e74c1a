"""Sizes and durations as docker prints and parses them: ``docker/go-units`` (CLI world).

Exactly go-units as vendored by docker/cli 28: ``HumanSizeWithPrecision`` is ``%.*g``, so
999.6 MB prints ``1e+03MB`` (docker 28.2.2 really does; a later go-units avoids it);
``parseSize`` is the hand-written v0.5 parser (no regexp), whose errors are
``invalid size: '...'`` or ``invalid suffix: '...'``.
"""

from __future__ import annotations

import time

from dockyard.humanize import human_duration

__all__ = [
    "bytes_size",
    "from_human_size",
    "human_duration",
    "human_size",
    "ram_in_bytes",
    "time_ago",
]

_DECIMAL_ABBRS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_ABBRS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_DECIMAL_MAP = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_BINARY_MAP = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def _size_and_unit(size: float, base: float, abbrs: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(abbrs) - 1:
        size /= base
        i += 1
    return size, abbrs[i]


def human_size(size: float, precision: int = 3) -> str:
    """go-units ``HumanSizeWithPrecision(size, 3)``: 4261888 -> ``4.26MB``."""
    value, unit = _size_and_unit(float(size), 1000.0, _DECIMAL_ABBRS)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: binary units, ``%.4g`` (``23.43GiB``)."""
    value, unit = _size_and_unit(float(size), 1024.0, _BINARY_ABBRS)
    return f"{value:.4g}{unit}"


def time_ago(unix_seconds: float, now: float | None = None) -> str:
    """Docker's CREATED column: ``HumanDuration(now - created) + " ago"``."""
    current = time.time() if now is None else now
    return human_duration(current - unix_seconds) + " ago"


def _parse_float(num: str) -> float | None:
    """``strconv.ParseFloat`` for the plain decimals go-units can hand it."""
    if not num or num.strip() != num or "_" in num:
        return None
    try:
        return float(num)
    except ValueError:
        return None


def _parse_size(text: str, units: dict[str, int]) -> int:
    digits = "01234567890. "
    sep = max(text.rfind(c) for c in digits)
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    num, sfx = (
        (text[: sep + 1], text[sep + 1 :]) if text[sep] != " " else (text[:sep], text[sep + 1 :])
    )
    size = _parse_float(num)
    if size is None:
        # Go returns strconv's error: strconv.ParseFloat: parsing "x": invalid syntax.
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    low = sfx.lower()
    if len(sfx) > 3:
        raise ValueError(f"invalid suffix: '{sfx}'")
    if low[0] == "b":
        if len(low) > 1:
            raise ValueError(f"invalid suffix: '{low}'")
        return int(size)
    if low[0] not in units:
        raise ValueError(f"invalid suffix: '{low}'")
    size *= units[low[0]]
    if (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{low}'")
    return int(size)


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``10m`` -> 10485760; ``ValueError`` with go-units' message."""
    return _parse_size(text, _BINARY_MAP)


def from_human_size(text: str) -> int:
    """go-units ``FromHumanSize`` (decimal): ``32kB`` -> 32000."""
    return _parse_size(text, _DECIMAL_MAP)
