"""API versions this daemon speaks, and the prefix check (pure logic).

Advertise 1.41 first (the reference dockerd here speaks it, so traffic diffs byte for byte);
accept /v1.12 .. /v1.41 and no prefix (= the default version), as the reference dockerd 20.10
does: clients that pin an old version still work (skopeo's ``docker-daemon:`` transport asks for
1.22).  ENGINE-API.md §2 has the messages real dockerd sends for versions out of range.
"""

from __future__ import annotations

from dockyard.errors import InvalidParameter

__all__ = ["DEFAULT_VERSION", "MIN_VERSION", "Version", "negotiate"]

Version = tuple[int, int]
DEFAULT_VERSION: Version = (1, 41)
MIN_VERSION: Version = (1, 12)


def _fmt(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


def negotiate(prefix: str | None) -> Version:
    """Turn the ``X.Y`` of a ``/vX.Y/`` prefix into a version, or refuse it as dockerd does."""
    if not prefix:
        return DEFAULT_VERSION
    try:
        major, minor = (int(p) for p in prefix.split("."))
    except ValueError:
        raise InvalidParameter(f"invalid API version: {prefix}") from None
    v = (major, minor)
    if v > DEFAULT_VERSION:
        raise InvalidParameter(
            f"client version {prefix} is too new. "
            f"Maximum supported API version is {_fmt(DEFAULT_VERSION)}"
        )
    if v < MIN_VERSION:
        raise InvalidParameter(
            f"client version {prefix} is too old. "
            f"Minimum supported API version is {_fmt(MIN_VERSION)}, "
            "please upgrade your client to a newer version"
        )
    return v


def format_version(v: Version) -> str:
    return _fmt(v)
