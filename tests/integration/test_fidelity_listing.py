"""``GET /containers/json`` filters (issue 15), side by side on the reference dockerd and on
dockyardd: stopped containers are listed only with ``all=1``, ``limit>0`` or a ``status``
filter; the ``network``, ``publish`` and ``expose`` filters match.  Everything made (a user
network and its containers) is removed even when a test fails."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from engines import api_request

V = "/v1.41"


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture(scope="module")
def scene(engine):
    """On one user network: ``stopped`` (exited 3), ``up`` (running, port 80 published on an
    ephemeral host port, 81/udp exposed), both labelled; ``alone`` runs on no network."""
    tag = uuid.uuid4().hex[:8]
    net = f"dyt-ls-{tag}"
    made: list[str] = []
    status, out = api_request(
        engine, "POST", f"{V}/networks/create", json.dumps({"Name": net}).encode()
    )
    assert status == 201, out
    net_id = json.loads(out)["Id"]
    try:

        def make(role: str, cmd: list[str], network: str, **extra) -> str:
            body = {
                "Image": "busybox",
                "Cmd": cmd,
                "Labels": {"dyt-ls": tag},
                "HostConfig": {"NetworkMode": network, **extra.pop("HostConfig", {})},
                **extra,
            }
            name = f"{net}-{role}"
            status, out = api_request(
                engine, "POST", f"{V}/containers/create?name={name}", json.dumps(body).encode()
            )
            assert status == 201, out
            made.append(name)
            status, out = api_request(engine, "POST", f"{V}/containers/{name}/start")
            assert status == 204, out
            return json.loads(out or b"{}").get("Id", name)

        make("stopped", ["sh", "-c", "exit 3"], net)
        status, out = api_request(engine, "POST", f"{V}/containers/{net}-stopped/wait")
        assert status == 200, out
        make(
            "up",
            ["sleep", "300"],
            net,
            ExposedPorts={"80/tcp": {}, "81/udp": {}},
            HostConfig={"PortBindings": {"80/tcp": [{"HostPort": ""}]}},
        )
        make("alone", ["sleep", "300"], "none")
        status, out = api_request(engine, "GET", f"{V}/containers/{net}-up/json")
        host_port = json.loads(out)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        yield {"tag": tag, "net": net, "net_id": net_id, "port": host_port}
    finally:
        for name in made:
            api_request(engine, "DELETE", f"{V}/containers/{name}?force=1")
        api_request(engine, "DELETE", f"{V}/networks/{net}")


def names(engine, scene, query: str = "", **filters) -> list[str]:
    filters.setdefault("label", [f"dyt-ls={scene['tag']}"])
    q = urllib.parse.quote(json.dumps(filters))
    status, out = api_request(engine, "GET", f"{V}/containers/json?filters={q}{query}")
    assert status == 200, out
    return sorted(c["Names"][0].removeprefix(f"/{scene['net']}-") for c in json.loads(out))


def test_a_filter_alone_lists_running_containers_only(engine, scene):
    assert names(engine, scene) == ["alone", "up"]
    assert names(engine, scene, exited=["3"]) == []
    assert names(engine, scene, "&all=1") == ["alone", "stopped", "up"]
    assert names(engine, scene, "&all=1", exited=["3"]) == ["stopped"]
    assert names(engine, scene, "&limit=10") == ["alone", "stopped", "up"]
    assert names(engine, scene, status=["exited"]) == ["stopped"]
    assert names(engine, scene, status=["running"]) == ["alone", "up"]
    assert names(engine, scene, before=[f"{scene['net']}-alone"]) == ["up"]
    assert names(engine, scene, "&all=1", before=[f"{scene['net']}-alone"]) == ["stopped", "up"]


def test_network_filter(engine, scene):
    assert names(engine, scene, network=[scene["net"]]) == ["up"]
    assert names(engine, scene, "&all=1", network=[scene["net"]]) == ["stopped", "up"]
    assert names(engine, scene, network=[scene["net_id"][:12]]) == ["up"]
    assert names(engine, scene, network=["none"]) == ["alone"]
    assert names(engine, scene, network=["dyt-no-such-network"]) == []


def test_publish_and_expose_filters(engine, scene):
    port = scene["port"]
    assert names(engine, scene, publish=[port]) == ["up"]
    assert names(engine, scene, publish=[f"{port}/tcp"]) == ["up"]
    assert names(engine, scene, publish=[f"{port}/udp"]) == []
    assert names(engine, scene, publish=["80"]) == []
    assert names(engine, scene, expose=["80"]) == ["up"]
    assert names(engine, scene, expose=["81/udp"]) == ["up"]
    assert names(engine, scene, expose=["79-80/tcp"]) == ["up"]
    assert names(engine, scene, expose=["82"]) == []
