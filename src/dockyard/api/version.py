"""API versions this daemon speaks, the prefix check, and the one table of what changes with
the version (pure logic).

Accepted: /v1.12 .. /v1.50 (docker CLI 28.2 speaks 1.50; docker-py 7.x negotiates; 1.12 is
dockerd 20.10's minimum, and clients that pin an old version must work: skopeo's
``docker-daemon:`` transport asks for 1.22) and no prefix, which means the newest version, as
moby's router does.  Advertised (``/_ping`` API-Version, ``/version`` ApiVersion): 1.50, so the
docker CLI 28 talks 1.50 and docker-py negotiates it.  Every change of moby's version history
(api/docs/CHANGELOG.md) from 1.42 to 1.50 that touches a shape dockyard writes is in the table
below, and the routes apply it (``api/shapes.py`` holds the encoders), so a client pinned
to 1.41 (docker CLI 20.10, docker-compose 1.29, the reference dockerd's traffic) still gets
byte-identical responses.  ENGINE-API.md §2 has the messages real dockerd sends for
versions out of range.

Changes that need no table entry: those that only add request parameters (1.42 stop/restart
``signal``, 1.44 ``StartInterval``, 1.45 ``Subpath``, 1.46 tmpfs ``Options``), unversioned
behaviour changes (moby applies them to every version), swarm-only fields (``ClusterVolume``
1.42) and fields moby fills only with the containerd multi-platform image store
(``Descriptor``/``Manifests``/``ImageManifestDescriptor`` 1.47-1.48: dockerd with the overlay2
graph driver omits them, and so does dockyard's single-platform store).
"""

from __future__ import annotations

from dockyard.errors import InvalidParameter

__all__ = [
    "ALIASES_WITHOUT_SHORT_ID",
    "DEFAULT_VERSION",
    "DF_SINCE_1_42",
    "DF_TYPES",
    "ENDPOINT_FIELDS_SINCE",
    "HOST_CONFIG_OMITTED_UNSET",
    "IMAGE_CONFIG_REMOVED",
    "IMAGE_CREATED_OMITTED_UNSET",
    "IMAGE_INSPECT_REMOVED",
    "IMAGE_NONE_PLACEHOLDERS_UNTIL",
    "IMAGE_PLATFORM_SINCE",
    "IMAGE_SHARED_SIZE",
    "IMAGE_SUMMARY_REMOVED",
    "INFO_COMMIT_EXPECTED_REMOVED",
    "INFO_FIELDS_SINCE",
    "INFO_OMITTED_UNSET",
    "INFO_REMOVED",
    "LIST_ANNOTATIONS_SINCE",
    "MAX_VERSION",
    "MIN_VERSION",
    "MULTIPLEXED_CONTENT_TYPE",
    "NETWORK_FIELDS_SINCE",
    "REGISTRY_CONFIG_REMOVED",
    "VOLUME_PRUNE_KEEPS_NAMED",
    "Version",
    "drop_newer",
    "drop_removed",
    "drop_unset",
    "format_version",
    "negotiate",
    "stream_type",
]

Version = tuple[int, int]
MIN_VERSION: Version = (1, 12)
MAX_VERSION: Version = (1, 50)
DEFAULT_VERSION: Version = MAX_VERSION

# ---- what changes with the version (moby docs/api/version-history.md) ----------------------
# 1.42: ``POST /volumes/prune`` removes only anonymous volumes unless ``all=true``; older
# clients (docker CLI 20.10, docker-py at 1.41) expect every unused volume to go.
VOLUME_PRUNE_KEEPS_NAMED: Version = (1, 42)

# Fields a later version added: an older client gets the shape it knows (dockerd 20.10 at
# 1.41 has none of them).  Endpoint settings (container inspect and list, network connect):
ENDPOINT_FIELDS_SINCE: dict[str, Version] = {"DNSNames": (1, 44), "GwPriority": (1, 48)}
# Network inspect and list:
NETWORK_FIELDS_SINCE: dict[str, Version] = {"EnableIPv4": (1, 47)}

# Fields a later version removed (the key is the first version without it).
# Image list (GET /images/json, and system df's Images):
IMAGE_SUMMARY_REMOVED: dict[str, Version] = {"VirtualSize": (1, 44)}
# 1.43: an untagged image lists ``[]``, no more ``<none>:<none>`` / ``<none>@<none>``.
IMAGE_NONE_PLACEHOLDERS_UNTIL: Version = (1, 43)
# 1.42: ``shared-size=1`` fills SharedSize (-1 otherwise, and always before 1.42).
IMAGE_SHARED_SIZE: Version = (1, 42)
# Image inspect (GET /images/{name}/json):
IMAGE_INSPECT_REMOVED: dict[str, Version] = {
    "VirtualSize": (1, 44),
    "Container": (1, 45),
    "ContainerConfig": (1, 45),
}
# 1.44: ``Created`` is omitted when the image config has none (it was Go's zero time).
IMAGE_CREATED_OMITTED_UNSET: Version = (1, 44)
# 1.50: image inspect's Config keeps only the image-config fields (deprecated in 1.46).
IMAGE_CONFIG_REMOVED: dict[str, Version] = dict.fromkeys(
    (
        "Hostname",
        "Domainname",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "Image",
        "NetworkDisabled",
        "MacAddress",
        "StopTimeout",
    ),
    (1, 50),
)
# 1.48 (history, save, load) and 1.49 (inspect): a ``platform`` query parameter (JSON OCI
# platform) picks one platform of the image; older versions ignore it.
IMAGE_PLATFORM_SINCE: dict[str, Version] = {
    "history": (1, 48),
    "save": (1, 48),
    "load": (1, 48),
    "inspect": (1, 49),
}

# GET /info: fields added later (an older client gets the shape it knows) ...
INFO_FIELDS_SINCE: dict[str, Version] = {
    "CDISpecDirs": (1, 44),
    "FirewallBackend": (1, 49),
}
# ... fields removed later ...
INFO_REMOVED: dict[str, Version] = {"BridgeNfIptables": (1, 50), "BridgeNfIp6tables": (1, 50)}
# ... 1.42: KernelMemory/KernelMemoryTCP omitted when the host does not support them ...
INFO_OMITTED_UNSET: dict[str, Version] = {"KernelMemory": (1, 42), "KernelMemoryTCP": (1, 42)}
# ... 1.49: the ``Expected`` commit of ContainerdCommit/RuncCommit/InitCommit and the
# non-distributable-artifacts lists of RegistryConfig are gone.
INFO_COMMIT_EXPECTED_REMOVED: Version = (1, 49)
REGISTRY_CONFIG_REMOVED: dict[str, Version] = {
    "AllowNondistributableArtifactsCIDRs": (1, 49),
    "AllowNondistributableArtifactsHostnames": (1, 49),
}

# GET /system/df: 1.42 drops BuilderSize, adds the ``type`` parameter, and build-cache records
# swap ``Parent`` for ``Parents`` (omitted when empty).
DF_SINCE_1_42: Version = (1, 42)
DF_TYPES = ("container", "image", "volume", "build-cache")

# Container inspect: 1.45 stops adding the short container ID to Aliases (DNSNames has it).
ALIASES_WITHOUT_SHORT_ID: Version = (1, 45)
# Container list: 1.46 shows HostConfig.Annotations (omitted when empty).
LIST_ANNOTATIONS_SINCE: Version = (1, 46)


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


def drop_removed(obj: dict[str, object], removed: dict[str, Version], v: Version) -> None:
    """Remove, in place, the fields of ``obj`` that version ``v`` no longer has."""
    for key, gone in removed.items():
        if v >= gone:
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
