"""Network fidelity (issue 15), side by side on the reference dockerd and on dockyardd:
inspect shapes (``Options``, ``IPAM``, auxiliary addresses), endpoint ``Aliases`` with the
short ID, ``IPAMConfig.LinkLocalIPs``, a requested MAC address kept over a reconnect, a
forced disconnect of a container that is not connected, an IPv6 pool without EnableIPv6,
and per-interface ``networks`` counters in stats.  Each test's network and containers are
removed even when it fails."""

from __future__ import annotations

import json
import uuid

import pytest
from engines import api_request
from test_attach import Raw

V = "/v1.41"


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


class Scene:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.tag = uuid.uuid4().hex[:8]
        self.networks: list[str] = []
        self.containers: list[str] = []

    def call(self, method: str, path: str, body=None, want: int | None = None):
        data = json.dumps(body).encode() if body is not None else None
        status, out = api_request(self.engine, method, f"{V}{path}", data)
        if want is not None:
            assert status == want, out
        return status, (json.loads(out) if out.strip() else None)

    def network(self, suffix: str = "", **body) -> str:
        name = f"dyt-fn-{self.tag}{suffix}"
        self.call("POST", "/networks/create", {"Name": name, **body}, want=201)
        self.networks.append(name)
        return name

    def container(self, network: str, start: bool = True, endpoint=None, **config) -> str:
        name = f"dyt-fn-{self.tag}-{len(self.containers)}"
        body = {
            "Image": "busybox",
            "Cmd": ["sleep", "300"],
            "HostConfig": {"NetworkMode": network},
            **config,
        }
        if endpoint is not None:
            body["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
        self.call("POST", f"/containers/create?name={name}", body, want=201)
        self.containers.append(name)
        if start:
            self.call("POST", f"/containers/{name}/start", want=204)
        return name

    def inspect(self, name: str) -> dict:
        return self.call("GET", f"/containers/{name}/json", want=200)[1]

    def clean(self) -> None:
        for name in self.containers:
            self.call("DELETE", f"/containers/{name}?force=1")
        for name in self.networks:
            self.call("DELETE", f"/networks/{name}")


@pytest.fixture
def scene(engine):
    s = Scene(engine)
    try:
        yield s
    finally:
        s.clean()


def test_network_inspect_shapes_and_auxiliary_addresses(scene):
    config = {"Subnet": "10.231.7.0/24", "Gateway": "10.231.7.1"}
    aux = {**config, "AuxiliaryAddresses": {"router": "10.231.7.2"}}
    net = scene.network(IPAM={"Config": [aux]})
    view = scene.call("GET", f"/networks/{net}", want=200)[1]
    assert view["Options"] == {}
    assert view["Labels"] == {}
    assert view["IPAM"] == {"Driver": "default", "Options": None, "Config": [aux]}
    # the auxiliary address is reserved: the first container gets the next one
    c = scene.container(net)
    assert scene.inspect(c)["NetworkSettings"]["Networks"][net]["IPAddress"] == "10.231.7.3"
    with_opts = scene.network(
        "-o", Options={"com.docker.network.driver.mtu": "1400"}, IPAM={"Options": {"a": "b"}}
    )
    view = scene.call("GET", f"/networks/{with_opts}", want=200)[1]
    assert view["Options"] == {"com.docker.network.driver.mtu": "1400"}
    assert view["IPAM"]["Options"] == {"a": "b"}


def test_endpoint_aliases_and_link_local_ips(scene):
    net = scene.network()
    endpoint = {"Aliases": ["web"], "IPAMConfig": {"LinkLocalIPs": ["169.254.7.7"]}}
    name = scene.container(net, start=False, endpoint=endpoint)
    ep = scene.inspect(name)["NetworkSettings"]["Networks"][net]
    assert ep["Aliases"] == ["web"]
    assert ep["IPAMConfig"] == {"LinkLocalIPs": ["169.254.7.7"]}
    assert (ep["NetworkID"], ep["EndpointID"], ep["DriverOpts"]) == ("", "", None)
    scene.call("POST", f"/containers/{name}/start", want=204)
    view = scene.inspect(name)
    ep = view["NetworkSettings"]["Networks"][net]
    assert ep["Aliases"] == ["web", view["Id"][:12]]
    assert ep["IPAMConfig"] == {"LinkLocalIPs": ["169.254.7.7"]}
    assert ep["NetworkID"] == scene.call("GET", f"/networks/{net}", want=200)[1]["Id"]
    assert ep["DriverOpts"] is None
    # connected later, without aliases: the short ID alone
    other = scene.network("-b")
    scene.call("POST", f"/networks/{other}/connect", {"Container": name}, want=200)
    ep = scene.inspect(name)["NetworkSettings"]["Networks"][other]
    assert ep["Aliases"] == [view["Id"][:12]]


def test_requested_mac_address_survives_a_reconnect(scene):
    net = scene.network()
    mac = "02:42:0a:e7:00:42"
    name = scene.container(net, MacAddress=mac)
    assert scene.inspect(name)["NetworkSettings"]["Networks"][net]["MacAddress"] == mac
    scene.call("POST", f"/networks/{net}/disconnect", {"Container": name}, want=200)
    scene.call("POST", f"/networks/{net}/connect", {"Container": name}, want=200)
    view = scene.inspect(name)
    assert view["NetworkSettings"]["Networks"][net]["MacAddress"] == mac
    assert view["Config"]["MacAddress"] == mac


@pytest.mark.parametrize("force", [False, True])
def test_disconnect_of_a_container_not_connected(scene, force):
    net = scene.network()
    name = scene.container("none")
    cid = scene.inspect(name)["Id"]
    status, body = scene.call(
        "POST", f"/networks/{net}/disconnect", {"Container": name, "Force": force}
    )
    assert (status, body) == (
        500,
        {"message": f"container {cid} is not connected to network {net}"},
    )


def test_an_ipv6_pool_without_enable_ipv6_is_kept_but_unused(scene):
    pools = [{"Subnet": "10.231.9.0/24"}, {"Subnet": "fd00:dead:9::/64"}]
    net = scene.network(IPAM={"Config": pools})
    view = scene.call("GET", f"/networks/{net}", want=200)[1]
    assert view["EnableIPv6"] is False
    assert [c["Subnet"] for c in view["IPAM"]["Config"]] == [p["Subnet"] for p in pools]
    name = scene.container(net)
    ep = scene.inspect(name)["NetworkSettings"]["Networks"][net]
    assert ep["IPAddress"].startswith("10.231.9.")
    assert (ep["GlobalIPv6Address"], ep["IPv6Gateway"]) == ("", "")


def test_stats_have_per_interface_network_counters(scene):
    net = scene.network()
    name = scene.container(net)
    _, stats = scene.call("GET", f"/containers/{name}/stats?stream=0", want=200)
    assert set(stats["networks"]) == {"eth0"}
    counters = stats["networks"]["eth0"]
    assert set(counters) == {
        "rx_bytes",
        "rx_packets",
        "rx_errors",
        "rx_dropped",
        "tx_bytes",
        "tx_packets",
        "tx_errors",
        "tx_dropped",
    }
    assert all(isinstance(v, int) for v in counters.values())
    alone = scene.container("none")
    _status, stats = scene.call("GET", f"/containers/{alone}/stats?stream=0", want=200)
    assert "networks" not in stats


@pytest.mark.parametrize(
    "subnet, gateway",
    [("fd00:dead:10::/64", "fd00:dead:10::1"), ("fe80::/64", "fe80::1")],
    ids=["ula", "link-local"],
)
def test_ipv6_network_addresses_and_default_route(scene, subnet, gateway):
    pools = [{"Subnet": "10.231.10.0/24"}, {"Subnet": subnet, "Gateway": gateway}]
    net = scene.network(EnableIPv6=True, IPAM={"Config": pools})
    name = scene.container(net, Cmd=["sleep", "300"])
    ep = scene.inspect(name)["NetworkSettings"]["Networks"][net]
    assert ep["IPv6Gateway"] == gateway
    assert ep["GlobalIPv6Address"].startswith(subnet.split("::")[0] + ":")
    assert ep["GlobalIPv6PrefixLen"] == 64
    _, body = scene.call(
        "POST",
        f"/containers/{name}/exec",
        {"Cmd": ["ip", "-6", "route", "show", "default"], "AttachStdout": True},
        want=201,
    )
    conn = Raw(scene.engine, f"{V}/exec/{body['Id']}/start", {"Detach": False, "Tty": True})
    try:
        out, _ = conn.read()
    finally:
        conn.close()
    assert out.decode().split()[:5] == ["default", "via", gateway, "dev", "eth0"]
