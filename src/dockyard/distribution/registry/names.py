"""Repository names, tags, digests and upload ids of the distribution API (pure logic).

The grammar is the OCI distribution spec's (the same as ``dockyard.images.reference``'s
path and tag, without a domain: a registry sees only the path)::

    name   := component ("/" component)*      component: [a-z0-9]+ (sep [a-z0-9]+)*
    sep    := "." | "_" | "__" | "-"+
    tag    := [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
    digest := sha256 ":" 64 lowercase hex     (the only algorithm this registry stores)

Because every component starts with ``[a-z0-9]``, a valid name can never hold ``..``, an
empty component, a ``%`` (encoded slash) or a leading ``_`` (which would collide with the
storage layout's ``_manifests``); the validators here are what keeps paths inside the
storage root, so every string from a URL passes through one of them first.
"""

from __future__ import annotations

import re

from dockyard.distribution.registry.errors import RegistryError

__all__ = [
    "MAX_NAME_LENGTH",
    "check_digest",
    "check_name",
    "check_tag",
    "check_upload_id",
    "is_digest",
]

MAX_NAME_LENGTH = 255  # distribution's RepositoryNameTotalLengthMax

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(_COMPONENT + r"(?:/" + _COMPONENT + r")*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_ANY_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_UPLOAD_ID = re.compile(r"[a-f0-9]{32}")


def check_name(name: str) -> str:
    """``name`` if it is a valid repository name; ``NAME_INVALID`` otherwise."""
    if len(name) > MAX_NAME_LENGTH:
        raise RegistryError(
            "NAME_INVALID",
            f"repository name must not be more than {MAX_NAME_LENGTH} characters",
            {"name": name[:300]},
        )
    if _NAME.fullmatch(name) is None:
        raise RegistryError(
            "NAME_INVALID",
            "invalid repository name: lowercase letters, digits and separators (. _ __ -) "
            "between path components",
            {"name": name[:300]},
        )
    return name


def check_tag(tag: str) -> str:
    """``tag`` if valid; ``TAG_INVALID`` otherwise."""
    if _TAG.fullmatch(tag) is None:
        raise RegistryError(
            "TAG_INVALID",
            "invalid tag: up to 128 of [A-Za-z0-9_.-], not starting with . or -",
            {"tag": tag[:300]},
        )
    return tag


def check_digest(digest: str) -> str:
    """``digest`` if it is a sha256 digest; ``DIGEST_INVALID`` otherwise (also for other,
    well-formed algorithms: this registry verifies and stores sha256 only)."""
    if _DIGEST.fullmatch(digest) is None:
        if _ANY_DIGEST.fullmatch(digest) is not None and not digest.startswith("sha256:"):
            raise RegistryError(
                "DIGEST_INVALID",
                f"unsupported digest algorithm in {digest[:80]!r}: only sha256 is stored",
            )
        raise RegistryError("DIGEST_INVALID", f"invalid digest {digest[:80]!r}")
    return digest


def is_digest(reference: str) -> bool:
    """True when a manifest reference is a digest rather than a tag (it holds a ``:``)."""
    return ":" in reference


def check_upload_id(upload_id: str) -> str:
    """``upload_id`` if it has the shape this registry hands out; ``BLOB_UPLOAD_UNKNOWN``
    otherwise (an id we never issued is unknown, whatever it holds)."""
    if _UPLOAD_ID.fullmatch(upload_id) is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id[:80]!r} not found")
    return upload_id
