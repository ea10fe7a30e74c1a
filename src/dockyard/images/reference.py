"""Image references: Docker's name grammar and normalisation (pure logic, both worlds).

A port of distribution/reference (``regexp.go``, ``reference.go``, ``normalize.go``, as used
by moby) so that every name the daemon stores or the CLI prints agrees with Docker's::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]            host: DNS-ish name, IPv4, or [IPv6]
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*     separator: . _ __ or -+
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex          sha256 (64 hex), sha384 (96), sha512 (128)

Normalisation (``ParseNormalizedNamed``, as dockerd 20.10 vendors it from distribution
v2.7): the first component is a domain only if it holds a ``.`` or ``:`` or is exactly
``localhost``; otherwise the domain is ``docker.io``, and a single-component path on Docker
Hub gains ``library/``.  So ``Foo/bar`` is the Hub repository ``Foo/bar`` and refused as not
lowercase (later distribution/reference versions take an uppercase first component for a
host; the daemon answers as the engine it is compared with, the CLI in ``cli/reference.py``
as docker CLI 28).  IPv6 domains (``[::1]:5000/x``) are the one later extension kept: 20.10
refuses them, but registries on IPv6 loopback need them.
``index.docker.io`` is folded into ``docker.io``.  A bare 64-hex string is an image id, never
a name: ``parse`` refuses it and callers check for ids first.

Invariants: a ``Reference`` is always normalised (domain set, path lowercase and valid, tag
and digest valid) -- only ``parse`` and ``parse_repo_tag`` build one from text.

Must not: import anything costly at module level.  The CLI imports this module; ``re`` is
imported on first parse (it costs as much as interpreter start-up on small machines), the
patterns below are plain strings compiled once by ``re``'s own cache, and ``Reference`` is a
hand-written slotted class because ``dataclasses`` alone costs ~15 ms to import.
"""

from __future__ import annotations

from dockyard.errors import InvalidParameter

__all__ = ["DEFAULT_TAG", "MAX_NAME_LENGTH", "Reference", "parse", "parse_repo_tag"]

DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255  # distribution/reference RepositoryNameTotalLengthMax, applied to the path

_DEFAULT_DOMAIN = "docker.io"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"

# Patterns, as in distribution/reference regexp.go.  \w is spelled out because Go's \w is
# ASCII-only while Python's str patterns are Unicode by default.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_AND_PORT = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6 + r")(?::[0-9]+)?"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?"
_ANCHORED_NAME = r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")"
_IDENTIFIER = r"[a-f0-9]{64}"

# go-digest's registered algorithms and their hex lengths (digest.Parse).
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}

_LOWERCASE = "invalid reference format: repository name must be lowercase"  # dockerd 20.10's

# No real reference comes near this; it bounds the regex backtracking that an absurd input
# from the API could otherwise cost (Python's engine is not RE2).
_MAX_INPUT_LENGTH = 4096


def _fullmatch(pattern: str, s: str) -> tuple[str | None, ...] | None:
    import re  # deferred for CLI start-up time; re caches the compiled pattern

    m = re.fullmatch(pattern, s)
    return m.groups() if m else None


class Reference:
    """A normalised image reference: ``domain/path[:tag][@digest]``.

    ``name`` is the full repository (``docker.io/library/busybox``), ``familiar_name`` the
    one Docker prints (``busybox``).  ``str()`` is the full form, ``familiar()`` the short one.
    Immutable and hashable; equal when all four fields are equal.
    """

    __slots__ = ("digest", "domain", "path", "tag")

    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __init__(self, domain: str, path: str, tag: str | None = None, digest: str | None = None):
        for field, value in (("domain", domain), ("path", path), ("tag", tag), ("digest", digest)):
            object.__setattr__(self, field, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Reference is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Reference is immutable; cannot delete {name!r}")

    def _key(self) -> tuple[str, str, str | None, str | None]:
        return (self.domain, self.path, self.tag, self.digest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reference):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Reference(domain={self.domain!r}, path={self.path!r}, "
            f"tag={self.tag!r}, digest={self.digest!r})"
        )

    def __str__(self) -> str:
        return self.name + self._suffix()

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest

    @property
    def name(self) -> str:
        """The full repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker shows it: ``busybox``, ``foo/bar``, ``localhost:5000/x``."""
        if self.domain != _DEFAULT_DOMAIN:
            return self.name
        # normalize.go familiarizeName: only a single component under library/ is shortened.
        if self.path.startswith(_OFFICIAL_PREFIX):
            rest = self.path[len(_OFFICIAL_PREFIX) :]
            if "/" not in rest:
                return rest
        return self.path

    def familiar(self) -> str:
        """The short form Docker prints: ``busybox:latest``, ``busybox@sha256:...``."""
        return self.familiar_name + self._suffix()

    def with_default_tag(self) -> Reference:
        """This reference with tag ``latest`` if it has neither tag nor digest (TagNameOnly)."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self


def parse(s: str) -> Reference:
    """Parse and normalise ``s`` as ``ParseNormalizedNamed`` does; no default tag is added.

    Raises ``InvalidParameter`` with Docker's message for anything that is not a reference,
    including a bare 64-hex id (check for ids before calling this).
    """
    if len(s) > _MAX_INPUT_LENGTH:
        raise InvalidParameter("invalid reference format")
    if _fullmatch(_IDENTIFIER, s) is not None:
        raise InvalidParameter(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidParameter(_LOWERCASE)
    return _parse_canonical(f"{domain}/{remainder}")


def parse_repo_tag(repo: str, tag: str) -> Reference:
    """The reference named by the ``repo``/``tag`` query pair of image tag and import.

    ``repo`` may carry its own tag, which a non-empty ``tag`` replaces; the result always has
    a tag (``latest`` by default) and never a digest.  An empty ``repo`` is an invalid
    reference: callers for which it means "no name" (import) must test for it first.
    """
    ref = parse(repo)
    if ref.digest is not None:
        # moby reference/store.go AddTag
        raise InvalidParameter("refusing to create a tag with a digest reference")
    if tag:
        if _fullmatch(_TAG, tag) is None:
            raise InvalidParameter("invalid tag format")
        ref = Reference(ref.domain, ref.path, tag, None)
    return ref.with_default_tag()


def _split_docker_domain(name: str) -> tuple[str, str]:
    """normalize.go splitDockerDomain: (domain, remainder) with Hub names canonicalised."""
    maybe_domain, slash, maybe_remote = name.partition("/")
    if not slash:
        # A single element is always a Hub official image, even "localhost" or "example.com".
        return _DEFAULT_DOMAIN, _OFFICIAL_PREFIX + name
    if maybe_domain == _LEGACY_DEFAULT_DOMAIN:
        domain, remote = _DEFAULT_DOMAIN, maybe_remote
    elif maybe_domain == "localhost" or "." in maybe_domain or ":" in maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = _DEFAULT_DOMAIN, name
    if domain == _DEFAULT_DOMAIN and "/" not in remote:
        remote = _OFFICIAL_PREFIX + remote
    return domain, remote


def _parse_canonical(s: str) -> Reference:
    """reference.go Parse for a string that already starts with its domain."""
    groups = _fullmatch(_REFERENCE, s)
    if groups is None:
        if s.lower() != s and _fullmatch(_REFERENCE, s.lower()) is not None:
            raise InvalidParameter(_LOWERCASE)
        raise InvalidParameter("invalid reference format")
    name, tag, digest = groups
    assert name is not None  # the group is not optional
    name_groups = _fullmatch(_ANCHORED_NAME, name)
    if name_groups is None or name_groups[0] is None or name_groups[1] is None:
        # Unreachable after _split_docker_domain, which always supplies a domain.
        raise InvalidParameter("invalid reference format")
    domain, path = name_groups[0], name_groups[1]
    if len(path) > MAX_NAME_LENGTH:
        raise InvalidParameter(
            f"repository name must not be more than {MAX_NAME_LENGTH} characters"
        )
    if digest is not None:
        _check_digest(digest)
    return Reference(domain, path, tag, digest)


def _check_digest(digest: str) -> None:
    """go-digest Digest.Validate for a string already matching the reference grammar.

    The messages are go-digest's, verbatim, as dockerd returns them.
    """
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        raise InvalidParameter("unsupported digest algorithm")
    if len(encoded) != length:
        raise InvalidParameter("invalid checksum digest length")
    if _fullmatch(r"[a-f0-9]+", encoded) is None:
        raise InvalidParameter("invalid checksum digest format")
