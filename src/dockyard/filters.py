"""Filter values the Engine API shares between images, containers, volumes and networks
(pure logic): ``label=key[=value]`` matching, RFC 3339 times and ``until``."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping

from dockyard.errors import InvalidParameter

__all__ = ["labels_match", "labels_match_none", "parse_time", "parse_until"]


def labels_match(labels: Mapping[str, str], wanted: Iterable[str]) -> bool:
    """Every ``key`` or ``key=value`` in ``wanted`` is among ``labels`` (moby's ``label=``)."""
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def labels_match_none(labels: Mapping[str, str], unwanted: Iterable[str]) -> bool:
    """No ``key`` or ``key=value`` of ``unwanted`` is among ``labels`` (prune's ``label!=``)."""
    return not any(labels_match(labels, [item]) for item in unwanted)


def parse_time(value: str | None) -> int:
    """Unix seconds of an RFC 3339 timestamp (any precision); 0 when absent or unparsable."""
    if not value:
        return 0
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, dot, rest = text.partition(".")
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]  # the fraction only
        tz = rest[len(digits) :]
        text = f"{main}.{digits[:6]}{tz}"
    try:
        return int(datetime.datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def parse_until(value: str) -> int:
    """An ``until`` filter: unix seconds or an RFC 3339 time."""
    try:
        return int(float(value))
    except ValueError:
        ts = parse_time(value)
        if not ts:
            raise InvalidParameter(
                f"invalid until filter {value!r}: give unix seconds or RFC 3339"
            ) from None
        return ts
