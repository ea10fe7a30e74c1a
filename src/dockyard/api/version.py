"""API versions this daemon speaks, and the prefix check (pure logic).

Advertise 1.41 first (the reference dockerd here speaks it, so traffic diffs byte for byte);
accept /v1.24 .. /v1.41 and no prefix (= the default version).  ENGINE-API.md §2 has the
messages real dockerd sends for versions out of range.
"""

from __future__ import annotations

from dockyard.errors import InvalidParameter

__all__ = [
    "DEFAULT_VERSION",
    "ENDPOINT_FIELDS_SINCE",
    "MIN_VERSION",
    "NETWORK_FIELDS_SINCE",
    "VOLUME_PRUNE_KEEPS_NAMED",
    "Version",
    "drop_newer",
    "negotiate",
]

Version = tuple[int, int]
DEFAULT_VERSION: Version = (1, 41)
MIN_VERSION: Version = (1, 24)

# ---- what changes with the version (moby docs/api/version-history.md) ----------------------
# 1.42: ``POST /volumes/prune`` removes only anonymous volumes unless ``all=true``; older
# clients (docker CLI 20.10, docker-py at 1.41) expect every unused volume to go.
VOLUME_PRUNE_KEEPS_NAMED: Version = (1, 42)

# Fields a later version added: an older client gets the shape it knows (dockerd 20.10 at
# 1.41 has none of them).  Endpoint settings (container inspect and list, network connect):
ENDPOINT_FIELDS_SINCE: dict[str, Version] = {"DNSNames": (1, 44), "GwPriority": (1, 48)}
# Network inspect and list:
NETWORK_FIELDS_SINCE: dict[str, Version] = {"EnableIPv4": (1, 47)}


def drop_newer(obj: dict[str, object], since: dict[str, Version], v: Version) -> None:
    """Remove, in place, the fields of ``obj`` that version ``v`` does not have yet."""
    for key, added in since.items():
        if v < added:
            obj.pop(key, None)


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
