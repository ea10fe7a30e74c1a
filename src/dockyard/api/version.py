"""API versions this daemon speaks, the prefix check, and the one table of what changes with
the version (pure logic).

Accepted: /v1.12 .. /v1.50 (docker CLI 28.2 speaks 1.50; docker-py 7.x negotiates; 1.12 is
dockerd 20.10's minimum, and clients that pin an old version must work: skopeo's
``docker-daemon:`` transport asks for 1.22) and no prefix, which means the advertised version.  Advertised (``/_ping`` API-Version, ``/version``
ApiVersion): 1.41, the reference dockerd's, so the docker CLI negotiates 1.41 and its traffic
diffs byte for byte against dockerd's (DESIGN.md).  A client that asks for a later version
by prefix gets that version's shapes for the changes listed below; raising the advertised
version waits until every area's changes are in this table.  ENGINE-API.md §2 has the
messages real dockerd sends for versions out of range.
"""

from __future__ import annotations

from dockyard.errors import InvalidParameter

__all__ = [
    "DEFAULT_VERSION",
    "ENDPOINT_FIELDS_SINCE",
    "HOST_CONFIG_OMITTED_UNSET",
    "MAX_VERSION",
    "MIN_VERSION",
    "MULTIPLEXED_CONTENT_TYPE",
    "NETWORK_FIELDS_SINCE",
    "VOLUME_PRUNE_KEEPS_NAMED",
    "Version",
    "drop_newer",
    "drop_unset",
    "negotiate",
    "stream_type",
]

Version = tuple[int, int]
DEFAULT_VERSION: Version = (1, 41)
MIN_VERSION: Version = (1, 12)
MAX_VERSION: Version = (1, 50)

# ---- what changes with the version (moby docs/api/version-history.md) ----------------------
# 1.42: ``POST /volumes/prune`` removes only anonymous volumes unless ``all=true``; older
# clients (docker CLI 20.10, docker-py at 1.41) expect every unused volume to go.
VOLUME_PRUNE_KEEPS_NAMED: Version = (1, 42)

# Fields a later version added: an older client gets the shape it knows (dockerd 20.10 at
# 1.41 has none of them).  Endpoint settings (container inspect and list, network connect):
ENDPOINT_FIELDS_SINCE: dict[str, Version] = {"DNSNames": (1, 44), "GwPriority": (1, 48)}
# Network inspect and list:
NETWORK_FIELDS_SINCE: dict[str, Version] = {"EnableIPv4": (1, 47)}


# 1.42: multiplexed stdout/stderr streams (attach, exec start, logs) say so in their
# Content-Type; older clients get raw-stream for both.
MULTIPLEXED_CONTENT_TYPE: Version = (1, 42)
# 1.42: container inspect omits KernelMemory and KernelMemoryTCP when they are not set.
HOST_CONFIG_OMITTED_UNSET: dict[str, Version] = {
    "KernelMemory": (1, 42),
    "KernelMemoryTCP": (1, 42),
}


def stream_type(v: Version, raw: bool) -> str:
    """The Content-Type of an attach, exec or logs stream (``raw``: a TTY's bytes)."""
    if raw or v < MULTIPLEXED_CONTENT_TYPE:
        return "application/vnd.docker.raw-stream"
    return "application/vnd.docker.multiplexed-stream"


def drop_unset(obj: dict[str, object], since: dict[str, Version], v: Version) -> None:
    """Remove, in place, the fields that version ``v`` omits when they are zero or unset."""
    for key, from_version in since.items():
        if v >= from_version and not obj.get(key):
            obj.pop(key, None)


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
    if v > MAX_VERSION:
        raise InvalidParameter(
            f"client version {prefix} is too new. "
            f"Maximum supported API version is {_fmt(MAX_VERSION)}"
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
