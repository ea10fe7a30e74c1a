"""Manifests and indexes: media types, parsing, platform choice (pure logic).

Docker schema 2 (``application/vnd.docker.distribution.manifest.v2+json``) and OCI image
manifests are pulled; Docker manifest lists and OCI indexes are resolved to the daemon's
platform (``linux/amd64`` here, moby's platforms.Default matching: os and architecture must
match, a variant only if both give one).  Schema 1 is refused with moby's deprecation
message.  Every field read from the registry is checked before use: digests name files.
"""

from __future__ import annotations

import json
import platform as _platform
import re
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidParameter, NotFound

__all__ = [
    "ACCEPT",
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "Descriptor",
    "Manifest",
    "Platform",
    "default_platform",
    "parse",
    "parse_platform",
    "select",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
ACCEPT = ", ".join((DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX))

_LAYER_TYPES = {
    DOCKER_LAYER,
    DOCKER_FOREIGN_LAYER,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
}
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_MAX_LAYERS = 1000


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: Platform | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed manifest or index; ``raw`` is the exact bytes whose digest names it."""

    media_type: str
    raw: bytes
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]

    @property
    def is_index(self) -> bool:
        return self.media_type in (DOCKER_LIST, OCI_INDEX)


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}


def default_platform() -> Platform:
    machine = _platform.machine()
    arch = _ARCH_ALIASES.get(machine, machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else "")


def parse_platform(text: str) -> Platform:
    """``os[/arch[/variant]]`` as given to ``--platform``; moby's errors for bad ones."""
    if not text:
        return default_platform()
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(
            f'"{text}": unknown operating system or architecture: invalid argument'
        )
    os_ = parts[0]
    if os_ != "linux":
        raise InvalidParameter(f'"{text}": operating system is not supported')
    arch = (
        _ARCH_ALIASES.get(parts[1], parts[1]) if len(parts) > 1 else default_platform().architecture
    )
    variant = parts[2] if len(parts) > 2 else ""
    return Platform(os_, arch, variant)


def _descriptor(data: object, what: str) -> Descriptor:
    if not isinstance(data, dict):
        raise InvalidParameter(f"invalid manifest: {what} is not an object")
    digest, size = data.get("digest"), data.get("size")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidParameter(f"invalid manifest: {what} has an unsupported digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidParameter(f"invalid manifest: {what} has an invalid size {size!r}")
    plat = data.get("platform")
    platform = None
    if isinstance(plat, dict):
        platform = Platform(
            str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant", ""))
        )
    urls = data.get("urls") if isinstance(data.get("urls"), list) else []
    return Descriptor(str(data.get("mediaType", "")), digest, size, tuple(map(str, urls)), platform)


def parse(raw: bytes, content_type: str, name: str) -> Manifest:
    """Parse a manifest body; ``name`` (the reference) words the errors."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"invalid manifest for {name}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidParameter(f"invalid manifest for {name}: not a JSON object")
    media_type = data.get("mediaType") or content_type.split(";")[0].strip()
    if data.get("schemaVersion") == 1 or media_type in SCHEMA1:
        raise InvalidParameter(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, "
            "schema 1 support has been removed. Suggest the author of "
            f"{name} to upgrade the image to the OCI Format or Docker Image manifest v2, "
            "schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/"
        )
    if "manifests" in data and media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
        media_type = media_type if media_type in (DOCKER_LIST, OCI_INDEX) else OCI_INDEX
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise InvalidParameter(f"invalid manifest list for {name}: manifests is not a list")
        manifests = tuple(_descriptor(m, "a manifest list entry") for m in entries)
        return Manifest(media_type, raw, None, (), manifests)
    if media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
        if "config" in data and "layers" in data:
            media_type = OCI_MANIFEST
        else:
            raise InvalidParameter(f"unsupported manifest media type {media_type!r} for {name}")
    config = _descriptor(data.get("config"), "the config")
    layers_data = data.get("layers")
    if not isinstance(layers_data, list):
        raise InvalidParameter(f"invalid manifest for {name}: layers is not a list")
    if len(layers_data) > _MAX_LAYERS:
        raise InvalidParameter(f"invalid manifest for {name}: more than {_MAX_LAYERS} layers")
    layers = tuple(_descriptor(layer, f"layer {i}") for i, layer in enumerate(layers_data))
    for layer in layers:
        if layer.media_type and layer.media_type not in _LAYER_TYPES:
            raise InvalidParameter(
                f"unsupported layer media type {layer.media_type!r} in the manifest of {name}"
            )
    return Manifest(media_type, raw, config, layers, ())


def select(index: Manifest, want: Platform, name: str) -> Descriptor:
    """The index entry for ``want`` (moby: the first match in index order)."""
    for entry in index.manifests:
        p = entry.platform
        if p is None or p.os != want.os or p.architecture != want.architecture:
            continue
        if want.variant and p.variant and p.variant != want.variant:
            continue
        return entry
    raise NotFound(f"no matching manifest for {want} in the manifest list entries")


def config_platform(config: dict[str, Any]) -> Platform:
    return Platform(
        str(config.get("os", "")),
        str(config.get("architecture", "")),
        str(config.get("variant", "")),
    )
