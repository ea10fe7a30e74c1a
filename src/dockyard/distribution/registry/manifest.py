"""Manifest parsing and validation for the registry (pure logic, both worlds).

A manifest is stored byte for byte as pushed (its digest is over those bytes), so this
module only *reads* it: which media type it is, which blobs and child manifests it names
(what a push must already hold, what GC must keep), its ``subject`` (referrers API) and
its artifact type.  Docker schema 2 manifests and manifest lists, OCI image manifests and
indexes are accepted; schema 1 is refused as distribution 2.8 does by default.

The media type comes from the request's ``Content-Type``; a ``mediaType`` in the body must
agree with it (OCI image-spec: the field, when present, is authoritative, so a mismatch is a
``MANIFEST_INVALID``, never a silent choice of one of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.names import check_digest

__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Descriptor",
    "Manifest",
    "parse",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
_GENERIC = ("", "application/json", "application/octet-stream")


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI descriptor as found in a manifest (only what the registry uses)."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        """The descriptor as the referrers index lists it."""
        out: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a stored manifest names."""

    media_type: str
    blobs: tuple[Descriptor, ...]  # config and layers: must be in the repository
    children: tuple[Descriptor, ...]  # manifests of an index: must be in the repository
    subject: Descriptor | None
    artifact_type: str | None  # artifactType, or an OCI manifest's config media type
    annotations: dict[str, str] | None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _invalid(message: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message)


def _descriptor(raw: object, where: str, allow_foreign: bool = False) -> Descriptor | None:
    """A validated descriptor; ``None`` for a foreign layer (``urls``, not stored here)."""
    if not isinstance(raw, dict):
        raise _invalid(f"{where}: a descriptor must be a JSON object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}: mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise _invalid(f"{where}: digest must be a string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}: size must be a non-negative integer")
    try:
        check_digest(digest)
    except RegistryError as exc:
        raise _invalid(f"{where}: {exc.message}") from exc
    if allow_foreign and raw.get("urls") and "foreign" in media_type:
        return None  # nondistributable layer: its bytes live at its urls, as distribution
    artifact_type = raw.get("artifactType")
    annotations = raw.get("annotations")
    platform = raw.get("platform")
    return Descriptor(
        media_type,
        digest,
        size,
        artifact_type if isinstance(artifact_type, str) else None,
        annotations if isinstance(annotations, dict) else None,
        platform if isinstance(platform, dict) else None,
    )


def _media_type(content_type: str, body: dict[str, object]) -> str:
    declared = body.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type in _SCHEMA1 or declared in _SCHEMA1:
        raise RegistryError(
            "MANIFEST_INVALID", "schema 1 manifests are not supported: push schema 2 or OCI"
        )
    if content_type in _GENERIC:
        if declared:
            content_type = declared
        elif "manifests" in body:
            content_type = OCI_INDEX
        else:
            content_type = OCI_MANIFEST
    if content_type not in MANIFEST_TYPES + INDEX_TYPES:
        raise _invalid(f"unsupported manifest media type {content_type!r}")
    if declared and declared != content_type:
        raise _invalid(
            f"manifest mediaType {declared!r} does not match Content-Type {content_type!r}"
        )
    return content_type


def parse(data: bytes, content_type: str) -> Manifest:
    """Validate ``data`` as a manifest of ``content_type``; ``MANIFEST_INVALID`` if not."""
    try:
        body = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise _invalid(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _invalid("a manifest must be a JSON object")
    media_type = _media_type(content_type, body)
    if body.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    blobs: list[Descriptor] = []
    children: list[Descriptor] = []
    if media_type in INDEX_TYPES:
        raw_children = body.get("manifests")
        if not isinstance(raw_children, list):
            raise _invalid("an index must have a manifests list")
        for i, raw in enumerate(raw_children):
            child = _descriptor(raw, f"manifests[{i}]")
            assert child is not None
            children.append(child)
    else:
        config = _descriptor(body.get("config"), "config")
        assert config is not None
        blobs.append(config)
        raw_layers = body.get("layers")
        if not isinstance(raw_layers, list):
            raise _invalid("a manifest must have a layers list")
        for i, raw in enumerate(raw_layers):
            layer = _descriptor(raw, f"layers[{i}]", allow_foreign=True)
            if layer is not None:
                blobs.append(layer)
    subject = None
    if body.get("subject") is not None:
        if media_type not in (OCI_MANIFEST, OCI_INDEX):
            raise _invalid("only OCI manifests and indexes may have a subject")
        subject = _descriptor(body["subject"], "subject")
    artifact_type = body.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    if artifact_type is None and media_type == OCI_MANIFEST:
        artifact_type = blobs[0].media_type  # referrers: the config's media type stands in
    annotations = body.get("annotations")
    return Manifest(
        media_type,
        tuple(blobs),
        tuple(children),
        subject,
        artifact_type,
        annotations if isinstance(annotations, dict) else None,
    )
