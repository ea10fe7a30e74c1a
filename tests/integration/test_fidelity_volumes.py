"""Volume and prune fidelity (issue 15), side by side on the reference dockerd and on
dockyardd: ``/volumes/prune`` from a client at API 1.41 removes unused named volumes too
(only 1.42+ keeps them unless ``all=true``), and each prune endpoint answers its empty list
as dockerd does (``[]`` or ``null``).  Prunes are narrowed by a label only this test uses;
what it made is removed even when it fails."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from engines import api_request


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def tag(engine):
    value = uuid.uuid4().hex[:8]
    yield value
    q = urllib.parse.quote(json.dumps({"label": [f"dyt-fv={value}"]}))
    status, out = api_request(engine, "GET", f"/v1.41/volumes?filters={q}")
    for v in json.loads(out)["Volumes"] or [] if status == 200 else []:
        api_request(engine, "DELETE", f"/v1.41/volumes/{v['Name']}?force=1")


def prune(engine, what: str, tag: str, prefix: str = "/v1.41") -> dict:
    q = urllib.parse.quote(json.dumps({"label": [f"dyt-fv={tag}"]}))
    status, out = api_request(engine, "POST", f"{prefix}/{what}/prune?filters={q}")
    assert status == 200, out
    return json.loads(out)


@pytest.mark.parametrize("prefix", ["/v1.41", "/v1.40", ""])
def test_volume_prune_at_1_41_removes_unused_named_volumes(engine, tag, prefix):
    name = f"dyt-fv-{tag}"
    body = {"Name": name, "Labels": {"dyt-fv": tag}}
    status, out = api_request(engine, "POST", "/v1.41/volumes/create", json.dumps(body).encode())
    assert status == 201, out
    # no prefix is the engine's own version: 1.41 on dockerd 20.10, 1.50 on dockyardd, where
    # prune keeps named volumes unless all=true (the 1.42 change)
    status, out = api_request(engine, "GET", "/version")
    newest = json.loads(out)["ApiVersion"]
    if prefix == "" and newest != "1.41":
        assert prune(engine, "volumes", tag, prefix) == {"VolumesDeleted": [], "SpaceReclaimed": 0}
        status, _ = api_request(engine, "GET", f"/v1.41/volumes/{name}")
        assert status == 200
        return  # the fixture removes it
    assert prune(engine, "volumes", tag, prefix) == {"VolumesDeleted": [name], "SpaceReclaimed": 0}
    status, _ = api_request(engine, "GET", f"/v1.41/volumes/{name}")
    assert status == 404


def test_empty_prunes_answer_as_dockerd(engine, tag):
    assert prune(engine, "volumes", tag) == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    assert prune(engine, "containers", tag) == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    assert prune(engine, "networks", tag) == {"NetworksDeleted": None}
    assert prune(engine, "images", tag) == {"ImagesDeleted": None, "SpaceReclaimed": 0}
