"""fromImage + tag as dockerd combines them, and the manifest push writes."""

import json

import pytest

from dockyard.distribution import manifests
from dockyard.distribution.push import _manifest
from dockyard.distribution.service import _pull_reference
from dockyard.errors import InvalidParameter

D = "sha256:" + "c" * 64


def test_pull_reference_defaults_and_digests():
    assert str(_pull_reference("busybox", "")) == "docker.io/library/busybox"  # all tags
    assert str(_pull_reference("busybox", "1.36")) == "docker.io/library/busybox:1.36"
    assert str(_pull_reference("localhost:5000/a/b", D)) == f"localhost:5000/a/b@{D}"
    assert str(_pull_reference(f"busybox@{D}", "")) == f"docker.io/library/busybox@{D}"


@pytest.mark.parametrize(
    ("image", "tag", "message"),
    [
        ("UPPER/x", "", "repository name must be lowercase"),
        ("a:b:c", "", "invalid reference format"),
        ("busybox", "bad tag!", "invalid tag format"),
        ("a" * 300, "", "repository name must not be more than 255 characters"),
    ],
)
def test_pull_reference_refusals(image, tag, message):
    with pytest.raises(InvalidParameter, match=message):
        _pull_reference(image, tag)


def test_pushed_manifest_is_docker_schema2_indented_by_three():
    config = manifests.Descriptor(manifests.DOCKER_CONFIG, D, 10)
    layer = manifests.Descriptor(manifests.DOCKER_LAYER, "sha256:" + "d" * 64, 20)
    raw = _manifest(config, [layer])
    assert raw.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker')
    doc = json.loads(raw)
    assert list(doc) == ["schemaVersion", "mediaType", "config", "layers"]
    assert doc["layers"] == [
        {"mediaType": manifests.DOCKER_LAYER, "size": 20, "digest": layer.digest}
    ]
    assert manifests.parse(raw, "", "x").layers[0].digest == layer.digest
