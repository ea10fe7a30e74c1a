"""Container names under concurrency (issue 15), side by side on the reference dockerd and
on dockyardd: a hundred unnamed creates at once all succeed with distinct names; two creates
racing for one explicit name give one 201 and one 409 and leave nothing of the loser (in
``ps -a``, on disk, or as a 500 at its removal).  Everything made is force-removed even when
a test fails."""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from engines import api_request

V = "/v1.41"


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def label(engine):
    """A label value that marks what one test made; everything carrying it is removed."""
    value = uuid.uuid4().hex[:8]
    yield value
    for cid in listed(engine, {"label": [f"dyt-fx={value}"]}):
        api_request(engine, "DELETE", f"{V}/containers/{cid}?force=1")


def listed(engine, filters: dict) -> list[str]:
    q = urllib.parse.quote(json.dumps(filters))
    status, out = api_request(engine, "GET", f"{V}/containers/json?all=1&filters={q}")
    assert status == 200, out
    return [c["Id"] for c in json.loads(out)]


def create(engine, label: str, name: str | None = None) -> tuple[int, bytes]:
    body = {
        "Image": "busybox",
        "Cmd": ["sleep", "300"],
        "Labels": {"dyt-fx": label},
        "HostConfig": {"NetworkMode": "none"},
    }
    path = f"{V}/containers/create" + (f"?name={name}" if name else "")
    return api_request(engine, "POST", path, json.dumps(body).encode(), timeout=120)


def run(engine, label: str) -> tuple[int, bytes]:
    status, out = create(engine, label)
    if status != 201:
        return status, out
    cid = json.loads(out)["Id"]
    return api_request(engine, "POST", f"{V}/containers/{cid}/start", timeout=120)


def on_disk(engine) -> set[str]:
    return set(os.listdir(os.path.join(engine.root, "data", "containers")))


def test_a_hundred_unnamed_runs_at_once_all_succeed(engine, label):
    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(lambda _: run(engine, label), range(100)))
    failures = [r for r in results if r[0] != 204]
    assert failures == []
    q = urllib.parse.quote(json.dumps({"label": [f"dyt-fx={label}"]}))
    _status, out = api_request(engine, "GET", f"{V}/containers/json?filters={q}")
    running = json.loads(out)
    assert len(running) == 100
    assert len({c["Names"][0] for c in running}) == 100


def test_two_creates_racing_for_a_name_leave_one_container(engine, label):
    names = [f"dyt-race-{label}-{i}" for i in range(5)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda n: create(engine, label, n), names * 2))
    for i, name in enumerate(names):
        statuses = sorted([results[i][0], results[i + len(names)][0]])
        assert statuses == [201, 409], (name, results[i], results[i + len(names)])
        loser = results[i] if results[i][0] == 409 else results[i + len(names)]
        assert "is already in use" in json.loads(loser[1])["message"]
    ids = listed(engine, {"label": [f"dyt-fx={label}"]})
    assert len(ids) == len(names)
    assert set(ids) <= on_disk(engine)
    for cid in ids:  # each removal works, and frees the name
        status, out = api_request(engine, "DELETE", f"{V}/containers/{cid}")
        assert status == 204, out
    assert not set(ids) & on_disk(engine)
    for name in names:
        status, out = create(engine, label, name)
        assert status == 201, out
    assert len(listed(engine, {"label": [f"dyt-fx={label}"]})) == len(names)
