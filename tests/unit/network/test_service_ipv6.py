"""network/service.py: the IPv6 decisions that need no kernel (ports, rules, addresses)."""

from __future__ import annotations

import sqlite3

import pytest

from dockyard.events import EventBus
from dockyard.network import ipam
from dockyard.network.service import NetworkService
from dockyard.network.store import Network, Store


def _service(tmp_path, **extra) -> NetworkService:
    svc = NetworkService(Store(sqlite3.connect(":memory:")), EventBus(), extra, str(tmp_path))
    svc.v6_listenable = True
    return svc


@pytest.mark.parametrize(
    ("extra", "host_ip", "v6", "expected"),
    [
        # -p 8080:80: 0.0.0.0 and :: (to the IPv6 address, else via the proxy to IPv4)
        ({}, "", "fd00::2", [("0.0.0.0", "10.0.0.2"), ("::", "fd00::2")]),
        ({}, "", "", [("0.0.0.0", "10.0.0.2"), ("::", "10.0.0.2")]),
        ({"userland-proxy": False}, "", "", [("0.0.0.0", "10.0.0.2")]),
        ({"userland-proxy": False}, "", "fd00::2", [("0.0.0.0", "10.0.0.2"), ("::", "fd00::2")]),
        # an explicit address: its family only
        ({}, "127.0.0.1", "fd00::2", [("127.0.0.1", "10.0.0.2")]),
        ({}, "::1", "fd00::2", [("::1", "fd00::2")]),
        ({}, "::1", "", [("::1", "10.0.0.2")]),
        ({"userland-proxy": False}, "::1", "", []),
    ],
)
def test_port_targets(tmp_path, extra, host_ip, v6, expected):
    assert _service(tmp_path, **extra).port_targets(host_ip, "10.0.0.2", v6) == expected


def test_no_implicit_ipv6_binding_without_ipv6_on_the_host(tmp_path):
    svc = _service(tmp_path)
    svc.v6_listenable = False
    assert svc.port_targets("", "10.0.0.2", "fd00::2") == [("0.0.0.0", "10.0.0.2")]
    assert svc.port_targets("::", "10.0.0.2", "fd00::2") == [("::", "fd00::2")]


def test_firewalled_needs_the_family_and_its_tables(tmp_path):
    plain = _service(tmp_path)
    assert plain.firewalled("0.0.0.0", "10.0.0.2")
    assert not plain.firewalled("::", "fd00::2")  # ip6tables off (dockerd's default)
    assert not plain.firewalled("::", "10.0.0.2")  # the proxy alone carries it
    both = _service(tmp_path, ip6tables=True, experimental=True)
    assert both.firewalled("::", "fd00::2") and both.firewalled("", "fd00::2")
    assert not both.firewalled("::", "10.0.0.2")
    off = _service(tmp_path, iptables=False, ip6tables=True, experimental=True)
    assert not off.firewalled("0.0.0.0", "10.0.0.2") and not off.firewalled("::", "fd00::2")


def test_default_bridge_ipv6_config(tmp_path):
    svc = _service(tmp_path, ipv6=True, **{"fixed-cidr-v6": "fd00:1::5/64"})
    # the host bits are dropped; the gateway is listed only when the bridge held it
    assert svc._default_ipv6_config("") == [{"Subnet": "fd00:1::/64", "Gateway": "", "IPRange": ""}]
    assert svc._default_ipv6_config("fd00:1::1") == [
        {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1", "IPRange": ""}
    ]
    assert svc._default_ipv6_config("fd00:2::1")[0]["Gateway"] == ""
    assert _service(tmp_path)._default_ipv6_config("fd00:1::1") == []


def _bridge(name: str, predefined: bool, subnet6: str) -> Network:
    return Network(
        id=name * 4,
        name=name,
        driver="bridge",
        created="",
        predefined=predefined,
        enable_ipv6=True,
        ipam=[{"Subnet": "172.17.0.0/16"}, {"Subnet": subnet6}],
    )


@pytest.mark.parametrize(
    ("name", "predefined", "subnet6", "mac", "expected"),
    [
        ("bridge", True, "fd00:1::/64", None, "fd00:1::242:ac11:2"),  # 02:42 + 172.17.0.2
        ("bridge", True, "fd00:1::/80", "02:11:22:33:44:55", "fd00:1::211:2233:4455"),
        ("bridge", True, "fd00:1::/96", None, "fd00:1::2"),  # too narrow: in order
        ("mynet", False, "fd00:1::/64", None, "fd00:1::2"),  # user-defined: in order
    ],
)
def test_allocate_ipv6(tmp_path, name, predefined, subnet6, mac, expected):
    svc = _service(tmp_path)
    n = _bridge(name, predefined, subnet6)
    svc._allocators[n.id] = [ipam.Allocator.from_dict(c) for c in n.ipam]
    addresses, gateways = svc.allocate(n, None, mac)
    assert addresses == ["172.17.0.2/16", f"{expected}/{subnet6.split('/')[1]}"]
    assert gateways == ["172.17.0.1", "fd00:1::1"]
    svc.release(n, addresses)
    assert svc.allocate(n, None, mac)[0] == addresses  # given back, given again
