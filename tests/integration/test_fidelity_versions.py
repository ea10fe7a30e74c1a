"""API versions after 1.41 (issue 15).  The reference dockerd speaks only up to 1.41, so
what changes later is checked on dockyardd against moby's version history; what 1.41 clients
see is checked on both engines.  Everything made is removed even when a test fails."""

from __future__ import annotations

import json
import uuid

import docker as docker_py
import pytest
from engines import UnixHTTPConnection, api_request


@pytest.fixture
def box(daemon):
    name = f"dyt-fver-{uuid.uuid4().hex[:8]}"
    net = f"{name}-net"
    status, out = api_request(
        daemon, "POST", "/v1.41/networks/create", json.dumps({"Name": net}).encode()
    )
    assert status == 201, out
    body = {"Image": "busybox", "Cmd": ["echo", "hi"], "HostConfig": {"NetworkMode": net}}
    try:
        status, out = api_request(
            daemon, "POST", f"/v1.41/containers/create?name={name}", json.dumps(body).encode()
        )
        assert status == 201, out
        status, out = api_request(daemon, "POST", f"/v1.41/containers/{name}/start")
        assert status == 204, out
        api_request(daemon, "POST", f"/v1.41/containers/{name}/wait")
        yield name
    finally:
        api_request(daemon, "DELETE", f"/v1.41/containers/{name}?force=1")
        api_request(daemon, "DELETE", f"/v1.41/networks/{net}")


def content_type(engine, path: str) -> str:
    conn = UnixHTTPConnection(engine.sock)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.getheader("Content-Type")
    finally:
        conn.close()


@pytest.mark.parametrize("engine_name", ["dockerd", "dockyardd"])
def test_a_1_41_client_sees_1_41_shapes(request, engine_name):
    engine = request.getfixturevalue("dockerd" if engine_name == "dockerd" else "daemon")
    name = f"dyt-fver-{uuid.uuid4().hex[:8]}"
    body = {"Image": "busybox", "Cmd": ["echo", "hi"], "HostConfig": {"NetworkMode": "none"}}
    status, out = api_request(
        engine, "POST", f"/v1.41/containers/create?name={name}", json.dumps(body).encode()
    )
    assert status == 201, out
    try:
        api_request(engine, "POST", f"/v1.41/containers/{name}/start")
        api_request(engine, "POST", f"/v1.41/containers/{name}/wait")
        status, out = api_request(engine, "GET", f"/v1.41/containers/{name}/json")
        hc = json.loads(out)["HostConfig"]
        assert (hc["KernelMemory"], hc["KernelMemoryTCP"]) == (0, 0)
        for ep in json.loads(out)["NetworkSettings"]["Networks"].values():
            assert "DNSNames" not in ep and "GwPriority" not in ep
        # multiplexed streams say so only from 1.42 (dockerd 20.10 sends no Content-Type)
        path = f"/v1.41/containers/{name}/logs?stdout=1"
        assert content_type(engine, path) != "application/vnd.docker.multiplexed-stream"
    finally:
        api_request(engine, "DELETE", f"/v1.41/containers/{name}?force=1")


def test_later_versions_by_prefix(daemon, box):
    status, out = api_request(daemon, "GET", f"/v1.44/containers/{box}/json")
    assert status == 200, out
    view = json.loads(out)
    (ep,) = view["NetworkSettings"]["Networks"].values()
    assert "DNSNames" in ep and "GwPriority" not in ep
    status, out = api_request(daemon, "GET", f"/v1.48/containers/{box}/json")
    (ep,) = json.loads(out)["NetworkSettings"]["Networks"].values()
    assert ep["GwPriority"] == 0
    assert "KernelMemory" not in json.loads(out)["HostConfig"]
    status, out = api_request(daemon, "GET", f"/v1.47/networks/{box}-net")
    assert json.loads(out)["EnableIPv4"] is True
    status, out = api_request(daemon, "GET", f"/v1.46/networks/{box}-net")
    assert "EnableIPv4" not in json.loads(out)
    path = f"/v1.42/containers/{box}/logs?stdout=1"
    assert content_type(daemon, path) == "application/vnd.docker.multiplexed-stream"
    status, out = api_request(daemon, "GET", "/v1.51/version")
    assert (status, json.loads(out)) == (
        400,
        {"message": "client version 1.51 is too new. Maximum supported API version is 1.50"},
    )


def test_volume_prune_from_1_42_keeps_named_volumes_unless_all(daemon):
    tag = uuid.uuid4().hex[:8]
    name = f"dyt-fver-{tag}"
    body = {"Name": name, "Labels": {"dyt-fver": tag}}
    status, out = api_request(daemon, "POST", "/v1.42/volumes/create", json.dumps(body).encode())
    assert status == 201, out
    try:
        for query, deleted in (("", []), (',"all":["true"]', [name])):
            filters = f'{{"label":["dyt-fver={tag}"]{query}}}'
            status, out = api_request(daemon, "POST", f"/v1.42/volumes/prune?filters={filters}")
            assert (status, json.loads(out)["VolumesDeleted"]) == (200, deleted), out
    finally:
        api_request(daemon, "DELETE", f"/v1.42/volumes/{name}")


def test_docker_py_pinned_to_a_later_version(daemon):
    client = docker_py.DockerClient(base_url=daemon.host, version="1.45", timeout=60)
    try:
        out = client.containers.run("busybox", ["echo", "pinned"], network_mode="none", remove=True)
        assert out == b"pinned\n"
    finally:
        client.close()


def test_docker_py_negotiates_1_50(daemon):
    client = docker_py.DockerClient(base_url=daemon.host, version="auto", timeout=60)
    box = None
    try:
        assert client.api.api_version == "1.50"
        image = client.images.get("busybox")
        assert "busybox:latest" in image.tags and "ContainerConfig" not in image.attrs
        assert any("busybox:latest" in i.tags for i in client.images.list())
        assert client.images.get("busybox").history()[0]["Tags"] == ["busybox:latest"]
        box = client.containers.run("busybox", ["sleep", "30"], detach=True, network_mode="none")
        stats = box.stats(stream=False)
        assert stats["memory_stats"]["stats"] and stats["cpu_stats"]["cpu_usage"]["total_usage"]
        assert box.attrs["GraphDriver"]["Data"]["UpperDir"]
        df = client.df()
        assert "BuilderSize" not in df and all("VirtualSize" not in i for i in df["Images"])
        info = client.info()
        assert info["FirewallBackend"] == {"Driver": "iptables"}
    finally:
        if box is not None:
            box.remove(force=True)
        client.close()
