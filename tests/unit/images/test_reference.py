"""dockyard.images.reference against distribution/reference's normalisation rules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dockyard.errors import InvalidParameter
from dockyard.images.reference import Reference, parse, parse_repo_tag

HEX = "a" * 64
DIGEST = f"sha256:{HEX}"

# input -> (domain, path, tag, digest, str(), familiar())
GOOD = [
    (
        "busybox",
        ("docker.io", "library/busybox", None, None),
        "docker.io/library/busybox",
        "busybox",
    ),
    (
        "busybox:latest",
        ("docker.io", "library/busybox", "latest", None),
        "docker.io/library/busybox:latest",
        "busybox:latest",
    ),
    (
        "library/busybox:1.36",
        ("docker.io", "library/busybox", "1.36", None),
        "docker.io/library/busybox:1.36",
        "busybox:1.36",
    ),
    (
        "docker.io/busybox",
        ("docker.io", "library/busybox", None, None),
        "docker.io/library/busybox",
        "busybox",
    ),
    (
        "index.docker.io/busybox",
        ("docker.io", "library/busybox", None, None),
        "docker.io/library/busybox",
        "busybox",
    ),
    (
        "index.docker.io/foo/bar:v1",
        ("docker.io", "foo/bar", "v1", None),
        "docker.io/foo/bar:v1",
        "foo/bar:v1",
    ),
    ("docker.io/foo/bar", ("docker.io", "foo/bar", None, None), "docker.io/foo/bar", "foo/bar"),
    (
        "foo/bar/baz",
        ("docker.io", "foo/bar/baz", None, None),
        "docker.io/foo/bar/baz",
        "foo/bar/baz",
    ),
    (
        "library/a/b",
        ("docker.io", "library/a/b", None, None),
        "docker.io/library/a/b",
        "library/a/b",
    ),
    ("localhost/bb", ("localhost", "bb", None, None), "localhost/bb", "localhost/bb"),
    (
        "localhost:5000/bb:v1",
        ("localhost:5000", "bb", "v1", None),
        "localhost:5000/bb:v1",
        "localhost:5000/bb:v1",
    ),
    (
        "localhost",
        ("docker.io", "library/localhost", None, None),
        "docker.io/library/localhost",
        "localhost",
    ),
    (
        "example.com",
        ("docker.io", "library/example.com", None, None),
        "docker.io/library/example.com",
        "example.com",
    ),
    ("example.com/foo", ("example.com", "foo", None, None), "example.com/foo", "example.com/foo"),
    ("reg:5000/a/b:t", ("reg:5000", "a/b", "t", None), "reg:5000/a/b:t", "reg:5000/a/b:t"),
    (
        "127.0.0.1:5000/x",
        ("127.0.0.1:5000", "x", None, None),
        "127.0.0.1:5000/x",
        "127.0.0.1:5000/x",
    ),
    ("[::1]:5000/x", ("[::1]:5000", "x", None, None), "[::1]:5000/x", "[::1]:5000/x"),
    # a "." or ":" makes the first component a host, whatever its case (dockerd 20.10)
    ("Foo.com/bar", ("Foo.com", "bar", None, None), "Foo.com/bar", "Foo.com/bar"),
    ("Foo:5000/bar", ("Foo:5000", "bar", None, None), "Foo:5000/bar", "Foo:5000/bar"),
    (
        "localhost:5000/x:V1",
        ("localhost:5000", "x", "V1", None),
        "localhost:5000/x:V1",
        "localhost:5000/x:V1",
    ),
    (
        "a-b.example.com/a__b/c--d.e_f:T.a-g_",
        ("a-b.example.com", "a__b/c--d.e_f", "T.a-g_", None),
        "a-b.example.com/a__b/c--d.e_f:T.a-g_",
        "a-b.example.com/a__b/c--d.e_f:T.a-g_",
    ),
    (
        f"busybox@{DIGEST}",
        ("docker.io", "library/busybox", None, DIGEST),
        f"docker.io/library/busybox@{DIGEST}",
        f"busybox@{DIGEST}",
    ),
    (
        f"busybox:1@{DIGEST}",
        ("docker.io", "library/busybox", "1", DIGEST),
        f"docker.io/library/busybox:1@{DIGEST}",
        f"busybox:1@{DIGEST}",
    ),
    (
        f"bb@sha512:{'b' * 128}",
        ("docker.io", "library/bb", None, f"sha512:{'b' * 128}"),
        f"docker.io/library/bb@sha512:{'b' * 128}",
        f"bb@sha512:{'b' * 128}",
    ),
    (
        f"{'a' * 63}",
        ("docker.io", f"library/{'a' * 63}", None, None),
        f"docker.io/library/{'a' * 63}",
        "a" * 63,
    ),
    (
        "x/" + "a" * 253,
        ("docker.io", "x/" + "a" * 253, None, None),
        "docker.io/x/" + "a" * 253,
        "x/" + "a" * 253,
    ),
    (
        "b:" + "t" * 128,
        ("docker.io", "library/b", "t" * 128, None),
        "docker.io/library/b:" + "t" * 128,
        "b:" + "t" * 128,
    ),
]

INVALID = "invalid reference format"

# input -> exact message
LOWER = "invalid reference format: repository name must be lowercase"
BAD = [
    ("", INVALID),
    (":latest", INVALID),
    ("busybox:", INVALID),
    ("busybox@", INVALID),
    ("/busybox", INVALID),
    ("busybox/", INVALID),
    ("foo//bar", INVALID),
    ("-foo", INVALID),
    ("foo_", INVALID),
    ("foo..bar", INVALID),
    ("foo___bar", INVALID),
    ("foo bar", INVALID),
    ("busybox:-tag", INVALID),
    ("busybox:.tag", INVALID),
    ("busybox:" + "t" * 129, INVALID),
    ("busybox:ta/g", INVALID),
    ("busybox:tåg", INVALID),
    ("example.com:port/foo", INVALID),
    ("-example.com/foo", INVALID),
    ("busybox@sha256:abc", INVALID),
    ("busybox@sha256:" + "g" * 64, INVALID),
    # dockerd 20.10's messages (distribution/reference v2.7 ParseNormalizedNamed)
    ("Busybox", LOWER),
    ("foo/Bar:v1", LOWER),
    ("example.com/Foo", LOWER),
    # an uppercase first component is not a host: it is a Hub namespace, and must be lowercase
    ("Foo/bar", LOWER),
    ("Foo/bar:Tag", LOWER),
    ("Registry/foo", LOWER),
    ("LOCALHOST/x", LOWER),  # only "localhost" itself is a host without "." or ":"
    ("Localhost/x", LOWER),
    ("Foo_bar/baz", LOWER),
    ("Foo-/x", LOWER),
    ("localhost:5000/X", LOWER),
    ("Foo.com/Bar", LOWER),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("x/" + "a" * 254, "repository name must not be more than 255 characters"),
    ("busybox@sha256:" + "a" * 32, "invalid checksum digest length"),
    ("busybox@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("a" * 5000, INVALID),
]


@pytest.mark.parametrize(
    ("text", "fields", "full", "familiar"), GOOD, ids=[g[0][:40] for g in GOOD]
)
def test_parse_good(
    text: str, fields: tuple[str, str, str | None, str | None], full: str, familiar: str
) -> None:
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == fields
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert ref.name == f"{ref.domain}/{ref.path}"
    # The full form is a fixed point.
    assert parse(str(ref)) == ref


@pytest.mark.parametrize(("text", "message"), BAD, ids=[b[0][:40] or "empty" for b in BAD])
def test_parse_bad(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse(text)
    assert str(info.value) == message


def test_familiar_name() -> None:
    assert parse("busybox").familiar_name == "busybox"
    assert parse("docker.io/foo/bar").familiar_name == "foo/bar"
    assert parse("localhost:5000/x").familiar_name == "localhost:5000/x"
    assert parse("library/a/b").familiar_name == "library/a/b"


def test_with_default_tag() -> None:
    assert str(parse("busybox").with_default_tag()) == "docker.io/library/busybox:latest"
    assert parse("busybox:v1").with_default_tag().tag == "v1"
    digested = parse(f"busybox@{DIGEST}")
    assert digested.with_default_tag() is digested


def test_reference_is_an_immutable_value() -> None:
    ref = parse("busybox:latest")
    with pytest.raises(AttributeError):
        ref.tag = "v2"  # type: ignore[misc]
    assert ref == Reference("docker.io", "library/busybox", "latest")
    assert len({ref, parse("docker.io/library/busybox:latest")}) == 1
    assert ref != parse("busybox")
    assert "library/busybox" in repr(ref)


@pytest.mark.parametrize(
    ("repo", "tag", "expected"),
    [
        ("busybox", "", "docker.io/library/busybox:latest"),
        ("busybox", "v1", "docker.io/library/busybox:v1"),
        ("busybox:v1", "", "docker.io/library/busybox:v1"),
        ("busybox:v1", "v2", "docker.io/library/busybox:v2"),
        ("localhost:5000/app", "1.0", "localhost:5000/app:1.0"),
    ],
)
def test_parse_repo_tag(repo: str, tag: str, expected: str) -> None:
    assert str(parse_repo_tag(repo, tag)) == expected


@pytest.mark.parametrize(
    ("repo", "tag", "message"),
    [
        ("busybox", "-bad", "invalid tag format"),
        ("busybox", "a/b", "invalid tag format"),
        (f"busybox@{DIGEST}", "", "refusing to create a tag with a digest reference"),
        ("", "v1", INVALID),
        ("Busybox", "", LOWER),
    ],
)
def test_parse_repo_tag_bad(repo: str, tag: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_repo_tag(repo, tag)
    assert str(info.value) == message


def test_import_is_cheap() -> None:
    code = (
        "import sys, dockyard.images.reference as r; "
        "heavy = {'re', 'dataclasses', 'typing', 'asyncio', 'aiohttp'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
