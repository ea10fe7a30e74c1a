"""Manifest validation, names and configuration: pure logic."""

from __future__ import annotations

import json

import pytest

from dockyard.distribution.registry import manifest as manifests
from dockyard.distribution.registry.config import is_loopback, load, split_addr
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.names import check_digest, check_name, check_tag
from dockyard.errors import InvalidParameter

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def _manifest(**over: object) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": manifests.DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": D1,
            "size": 10,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": D2,
                "size": 20,
            }
        ],
    }
    body.update(over)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def _code(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(RegistryError) as info:
        fn(*args)
    return info.value.code


def test_schema2_and_generic_content_type():
    parsed = manifests.parse(_manifest(), manifests.DOCKER_MANIFEST)
    assert parsed.media_type == manifests.DOCKER_MANIFEST
    assert [b.digest for b in parsed.blobs] == [D1, D2] and not parsed.is_index
    # application/json (or none): the body's mediaType decides.
    assert manifests.parse(_manifest(), "application/json").media_type == manifests.DOCKER_MANIFEST


def test_oci_without_media_type_and_artifact_type():
    parsed = manifests.parse(_manifest(mediaType=None), "")
    assert parsed.media_type == manifests.OCI_MANIFEST
    assert parsed.artifact_type == "application/vnd.docker.container.image.v1+json"
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": manifests.OCI_MANIFEST, "digest": D1, "size": 1}],
        }
    ).encode()
    parsed = manifests.parse(index, manifests.OCI_INDEX)
    assert parsed.is_index and [c.digest for c in parsed.children] == [D1]


def test_foreign_layers_are_not_required():
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": D2,
        "size": 5,
        "urls": ["https://example.com/l"],
    }
    parsed = manifests.parse(_manifest(layers=[foreign]), manifests.DOCKER_MANIFEST)
    assert [b.digest for b in parsed.blobs] == [D1]


@pytest.mark.parametrize(
    "data,content_type",
    [
        (b"[1, 2]", manifests.DOCKER_MANIFEST),
        (b"\xff\xfe", manifests.DOCKER_MANIFEST),
        (_manifest(), manifests.OCI_MANIFEST),  # body says docker, header says OCI
        (_manifest(schemaVersion=1), manifests.DOCKER_MANIFEST),
        (_manifest(), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (_manifest(), "text/plain"),
        (_manifest(layers="nope"), manifests.DOCKER_MANIFEST),
        (
            _manifest(config={"mediaType": "x", "digest": "sha256:short", "size": 1}),
            manifests.DOCKER_MANIFEST,
        ),
        (_manifest(config={"mediaType": "x", "digest": D1, "size": -1}), manifests.DOCKER_MANIFEST),
        (
            _manifest(subject={"mediaType": "x", "digest": D1, "size": 1}),
            manifests.DOCKER_MANIFEST,
        ),  # subject only on OCI types
    ],
)
def test_invalid_manifests(data, content_type):
    assert _code(manifests.parse, data, content_type) == "MANIFEST_INVALID"


def test_names_tags_digests():
    for good in ["a", "a/b", "a-b/c.d", "a__b", "x" * 255, "0/1/2/3"]:
        assert check_name(good) == good
    for bad in ["", "A", "a/", "/a", "a//b", "a/../b", "..", ".a", "a-", "a%2fb", "x" * 256]:
        assert _code(check_name, bad) == "NAME_INVALID"
    for good in ["latest", "v1.0", "_x", "A" * 128]:
        assert check_tag(good) == good
    for bad in ["", ".x", "-x", "A" * 129, "a/b", "a:b"]:
        assert _code(check_tag, bad) == "TAG_INVALID"
    assert check_digest(D1) == D1
    for bad in ["sha256:" + "A" * 64, "sha256:abc", "sha512:" + "a" * 128, "md5", "../x"]:
        assert _code(check_digest, bad) == "DIGEST_INVALID"


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "addr": "127.0.0.1:6000",
                "max-blob-size": 10,
                "delete-untagged": True,
                "proxy": [{"prefix": "/hub/", "url": "https://registry-1.docker.io", "ttl": 60}],
                "token": {
                    "realm": "https://r/token",
                    "rules": [{"user": "a", "repository": "x/*", "actions": ["pull"]}],
                },
            }
        )
    )
    config = load(str(path), {"addr": "127.0.0.1:7000", "root": None})
    assert config.addr == "127.0.0.1:7000" and config.max_blob_size == 10
    assert config.delete_untagged and config.proxy[0].prefix == "hub"
    assert config.token is not None and config.token.rules[0].actions == ("pull",)
    path.write_text(json.dumps({"no-such-key": 1}))
    with pytest.raises(InvalidParameter, match="unknown key"):
        load(str(path), {})
    assert split_addr("[::1]:5000") == ("::1", 5000)
    with pytest.raises(InvalidParameter):
        split_addr("localhost")
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
