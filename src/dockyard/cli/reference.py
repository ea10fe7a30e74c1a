"""Image references as the docker CLI parses them (pure logic, CLI world).

The CLI must judge a name before it talks to the daemon, exactly as docker/cli does with
distribution/reference: ``ParseNormalizedNamed`` (pull, push, the auth key of a registry),
``ParseAnyReference`` (run/create: an image id never triggers a pull), ``FamiliarString``
(what is printed back) and ``TagNameOnly`` (``latest`` when neither tag nor digest is given).

Why not ``dockyard.images.reference``: the CLI may not import daemon-side packages, and it
raises the daemon's error classes.  The grammar is the same one (distribution/reference
``regexp.go``); ``re`` is imported on first parse because CLI start-up time is benchmarked.
"""

from __future__ import annotations

__all__ = ["BadReference", "Named", "is_image_id", "parse_any", "parse_normalized"]

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAIN = "index.docker.io"
_OFFICIAL = "library/"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE = _COMPONENT + r"(?:/" + _COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (
    r"(?:" + _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = (
    r"(?:(" + _DOMAIN + r")/)?(" + _REMOTE + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?"
)
_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_NAME_MAX = 255


class BadReference(ValueError):
    """Not a reference; the message is distribution/reference's, which docker prints bare."""


def _fullmatch(pattern: str, text: str):  # type: ignore[no-untyped-def]
    import re

    return re.fullmatch(pattern, text)


def is_image_id(text: str) -> bool:
    """A bare 64-hex id (``anchoredIdentifierRegexp``)."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class Named:
    """A normalised name: ``domain/path[:tag][@digest]``."""

    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain: str, path: str, tag: str | None, digest: str | None) -> None:
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    @property
    def name(self) -> str:
        """``ref.Name()``: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """``FamiliarName``: ``busybox``, ``me/app``, ``localhost:5000/x``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(_OFFICIAL)
        return rest if rest != self.path and "/" not in rest else self.path

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def familiar(self) -> str:
        """``FamiliarString``."""
        return self.familiar_name + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()

    @property
    def name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def with_default_tag(self) -> Named:
        """``TagNameOnly``."""
        return Named(self.domain, self.path, "latest", None) if self.name_only else self

    def api_tag(self) -> str:
        """The ``tag`` query value of ``/images/create`` (a digest travels as the tag)."""
        return self.digest or self.tag or "latest"


def _split_domain(name: str) -> tuple[str, str]:
    """normalize.go ``splitDockerDomain``."""
    first, slash, rest = name.partition("/")
    if not slash or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        domain, remote = DEFAULT_DOMAIN, name
    else:
        domain, remote = first, rest
    if domain == _LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = _OFFICIAL + remote
    return domain, remote


def parse_normalized(text: str) -> Named:
    """``reference.ParseNormalizedNamed``; raises ``BadReference`` with Go's message."""
    if is_image_id(text):
        raise BadReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    if len(text) > 4096:
        raise BadReference("invalid reference format")
    domain, remainder = _split_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise BadReference(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    full = f"{domain}/{remainder}"
    match = _fullmatch(_REFERENCE, full)
    if match is None or match.group(1) is None:
        if full.lower() != full and _fullmatch(_REFERENCE, full.lower()) is not None:
            raise BadReference("invalid reference format: repository name must be lowercase")
        raise BadReference("invalid reference format")
    domain, path, tag, digest = match.groups()
    if len(path) > _NAME_MAX:
        raise BadReference(f"repository name must not be more than {_NAME_MAX} characters")
    if digest is not None:
        algorithm, _, encoded = digest.partition(":")
        length = _HEX_LENGTH.get(algorithm)
        if length is None:
            raise BadReference("unsupported digest algorithm")
        if len(encoded) != length:
            raise BadReference("invalid checksum digest length")
        if encoded.lower() != encoded:
            raise BadReference("invalid checksum digest format")
    return Named(domain, path, tag, digest)


def parse_any(text: str) -> Named | None:
    """``reference.ParseAnyReference``: None for an image id (``<hex64>`` or ``sha256:<hex>``),
    which ``run`` never pulls."""
    if is_image_id(text):
        return None
    algorithm, colon, encoded = text.partition(":")
    if (
        colon
        and len(encoded) == _HEX_LENGTH.get(algorithm, -1)
        and all(c in "0123456789abcdef" for c in encoded)
    ):
        return None
    return parse_normalized(text)
