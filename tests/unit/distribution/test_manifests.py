"""Manifest parsing, platform choice and schema 1 refusal."""

import json

import pytest

from dockyard.distribution import manifests
from dockyard.errors import InvalidParameter, NotFound

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64


def _manifest(**over):
    doc = {
        "schemaVersion": 2,
        "mediaType": manifests.DOCKER_MANIFEST,
        "config": {"mediaType": manifests.DOCKER_CONFIG, "size": 10, "digest": D},
        "layers": [{"mediaType": manifests.DOCKER_LAYER, "size": 5, "digest": E}],
    }
    doc.update(over)
    return json.dumps(doc).encode()


def test_schema2():
    m = manifests.parse(_manifest(), "", "x")
    assert not m.is_index
    assert m.config.digest == D
    assert [layer.digest for layer in m.layers] == [E]


def test_schema1_refused_with_dockers_notice():
    raw = json.dumps({"schemaVersion": 1, "fsLayers": []}).encode()
    with pytest.raises(InvalidParameter, match="schema 1 support has been removed"):
        manifests.parse(raw, "application/vnd.docker.distribution.manifest.v1+prettyjws", "x:1")


@pytest.mark.parametrize("digest", ["sha256:../../etc", "md5:abc", 7, None])
def test_bad_digests_refused(digest):
    raw = _manifest(layers=[{"mediaType": manifests.DOCKER_LAYER, "size": 1, "digest": digest}])
    with pytest.raises(InvalidParameter):
        manifests.parse(raw, "", "x")


def test_unknown_layer_media_type_refused():
    raw = _manifest(layers=[{"mediaType": "text/html", "size": 1, "digest": E}])
    with pytest.raises(InvalidParameter, match="unsupported layer media type"):
        manifests.parse(raw, "", "x")


def test_index_resolves_to_the_platform():
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": manifests.OCI_MANIFEST,
                    "size": 1,
                    "digest": D,
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
                {
                    "mediaType": manifests.OCI_MANIFEST,
                    "size": 1,
                    "digest": E,
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
            ],
        }
    ).encode()
    m = manifests.parse(index, "", "x")
    assert m.is_index
    assert manifests.select(m, manifests.Platform("linux", "amd64"), "x").digest == E
    assert manifests.select(m, manifests.parse_platform("linux/arm64"), "x").digest == D
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        manifests.select(m, manifests.Platform("linux", "s390x"), "x")


def test_platform_parsing():
    assert str(manifests.parse_platform("linux/amd64")) == "linux/amd64"
    assert str(manifests.parse_platform("linux/arm/v7")) == "linux/arm/v7"
    with pytest.raises(InvalidParameter):
        manifests.parse_platform("windows/amd64")
    with pytest.raises(InvalidParameter):
        manifests.parse_platform("linux//")
