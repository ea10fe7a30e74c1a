"""The CLI's reference parsing (distribution/reference as docker CLI 28 runs it)."""

from __future__ import annotations

import pytest

from dockyard.cli.reference import BadReference, parse_any, parse_normalized

DIGEST = "sha256:" + "e9" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox", "busybox"),
        ("busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("me/app", "docker.io/me/app", "me/app"),
        ("index.docker.io/library/x", "docker.io/library/x", "x"),
        ("localhost/x", "localhost/x", "localhost/x"),
        ("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1"),
        ("UPPER/x", "UPPER/x", "UPPER/x"),  # an uppercase first part is a host
        (f"r:5/x:t@{DIGEST}", f"r:5/x:t@{DIGEST}", f"r:5/x:t@{DIGEST}"),
        ("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b"),
    ],
)
def test_normalised_and_familiar_forms(text, full, familiar):
    ref = parse_normalized(text)
    assert (str(ref), ref.familiar()) == (full, familiar)


def test_default_tag_and_api_tag():
    ref = parse_normalized("busybox")
    assert ref.name_only and str(ref.with_default_tag()) == "docker.io/library/busybox:latest"
    digested = parse_normalized(f"x@{DIGEST}")
    assert not digested.name_only and digested.api_tag() == DIGEST
    assert digested.with_default_tag() is digested


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:b:c", "invalid reference format"),
        ("UPPERx", "invalid reference format: repository name (library/UPPERx) must be lowercase"),
        (
            "a" * 64,
            f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings",
        ),
        ("x@sha256:abc", "invalid reference format"),
        ("x@sha256:" + "A" * 64, "invalid checksum digest format"),
        ("x@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
        ("x:" + "t" * 129, "invalid reference format"),
    ],
)
def test_errors_carry_gos_messages(text, message):
    with pytest.raises(BadReference) as info:
        parse_normalized(text)
    assert str(info.value) == message


def test_image_ids_are_never_names():
    assert parse_any("a" * 64) is None
    assert parse_any("sha256:" + "a" * 64) is None
    assert str(parse_any("abcdef")) == "docker.io/library/abcdef"
