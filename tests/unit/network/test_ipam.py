"""network/ipam.py: pure address management (no I/O)."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_network

import pytest

from dockyard.errors import Forbidden, InvalidParameter, Unavailable
from dockyard.network import ipam

# --- parsing and validation -------------------------------------------------------------


@pytest.mark.parametrize("text", ["10.0.0.0/33", "10.0.0/8x", "bogus", "10.0.0.0", "fd00::/129"])
def test_parse_subnet_rejects_malformed(text):
    with pytest.raises(InvalidParameter, match=f"invalid subnet {text}"):
        ipam.parse_subnet(text)


def test_parse_subnet_rejects_host_bits():
    with pytest.raises(InvalidParameter, match="it should be 10.1.2.0/24"):
        ipam.parse_subnet("10.1.2.3/24")


def test_parse_subnet_v4_and_v6():
    assert ipam.parse_subnet("10.1.0.0/16") == ip_network("10.1.0.0/16")
    assert ipam.parse_subnet("fd00:1::/64") == ip_network("fd00:1::/64")


def test_validate_gateway_outside_subnet():
    with pytest.raises(InvalidParameter, match="invalid gateway 10.2.0.1: parent subnet"):
        ipam.validate("10.1.0.0/16", gateway="10.2.0.1")
    with pytest.raises(InvalidParameter, match="IPv4 block"):
        ipam.validate("10.1.0.0/16", gateway="fd00::1")
    ipam.validate("10.1.0.0/16", gateway="10.1.255.254")


def test_validate_ip_range():
    ipam.validate("10.1.0.0/16", ip_range="10.1.4.0/24")
    with pytest.raises(InvalidParameter, match="bigger than its parent"):
        ipam.validate("10.1.0.0/16", ip_range="10.0.0.0/8")
    with pytest.raises(InvalidParameter, match="doesn't contain ip-range"):
        ipam.validate("10.1.0.0/16", ip_range="10.2.0.0/24")
    with pytest.raises(InvalidParameter, match="invalid ip-range"):
        ipam.validate("10.1.0.0/16", ip_range="10.1.0.0/40")


# --- pools ------------------------------------------------------------------------------


def test_default_pools_are_dockerds():
    pools = ipam.parse_pools(None)
    assert pools[0] == ipam.Pool(ip_network("172.17.0.0/16"), 16)
    assert pools[-1] == ipam.Pool(ip_network("192.168.0.0/16"), 20)
    assert len(pools) == 16


def test_parse_pools_daemon_json():
    spec = json.loads('[{"base":"10.10.0.0/16","size":24}]')
    assert ipam.parse_pools(spec) == [ipam.Pool(ip_network("10.10.0.0/16"), 24)]
    with pytest.raises(InvalidParameter, match="invalid pools size: 8"):
        ipam.parse_pools([{"base": "10.10.0.0/16", "size": 8}])
    with pytest.raises(InvalidParameter, match="invalid base pool"):
        ipam.parse_pools([{"base": "10.10.0.0/99", "size": 24}])


def test_next_subnet_defaults_sequence():
    pools = ipam.parse_pools(None)
    used: list = []
    got = []
    for _ in range(3):
        net = ipam.next_subnet(pools, used)
        used.append(net)
        got.append(str(net))
    # the first is the default bridge's
    assert got == ["172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16"]


def test_next_subnet_skips_overlaps_and_moves_to_next_pool():
    pools = ipam.parse_pools(None)
    used = [ip_network(f"172.{n}.0.0/16") for n in range(17, 32)] + [
        ip_network("192.168.0.0/24"),  # e.g. a host route: blocks the first /20
    ]
    assert ipam.next_subnet(pools, used) == ip_network("192.168.16.0/20")


def test_next_subnet_bigger_used_subnet_blocks_many():
    pools = [ipam.Pool(ip_network("10.10.0.0/16"), 24)]
    used = [ip_network("10.10.0.0/20")]
    assert ipam.next_subnet(pools, used) == ip_network("10.10.16.0/24")


def test_next_subnet_exhausted():
    pools = [ipam.Pool(ip_network("10.10.0.0/23"), 24)]
    used = [ip_network("10.10.0.0/24"), ip_network("10.10.1.0/24")]
    with pytest.raises(InvalidParameter, match="fully subnetted"):
        ipam.next_subnet(pools, used)


def test_next_subnet_ipv6_huge_pool_is_fast():
    pools = [ipam.Pool(ip_network("fd00::/8"), 64)]
    used = [ip_network("fd00::/16"), ip_network("10.0.0.0/8")]
    assert ipam.next_subnet(pools, used, version=6) == ip_network("fd01::/64")
    # IPv4 pools are ignored for IPv6 and vice versa
    with pytest.raises(InvalidParameter):
        ipam.next_subnet(pools, used, version=4)


def test_check_free():
    used = [ip_network("10.1.0.0/16")]
    ipam.check_free(ip_network("10.2.0.0/16"), used)
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        ipam.check_free(ip_network("10.1.2.0/24"), used)


# --- allocator --------------------------------------------------------------------------


def test_allocate_sequential_and_reuse():
    a = ipam.Allocator("10.5.0.0/24")
    assert a.gateway == ip_address("10.5.0.1")
    assert [str(a.allocate()) for _ in range(3)] == ["10.5.0.2", "10.5.0.3", "10.5.0.4"]
    a.release("10.5.0.3")
    a.release("10.5.0.3")  # idempotent
    assert str(a.allocate()) == "10.5.0.3"


def test_allocate_exhaustion_message():
    a = ipam.Allocator("10.5.0.0/29", name="net1", id="abc123")
    got = [str(a.allocate()) for _ in range(5)]  # .2-.6 (.0 network, .1 gateway, .7 bcast)
    assert got == [f"10.5.0.{n}" for n in range(2, 7)]
    with pytest.raises(
        Unavailable,
        match=r"no available IPv4 addresses on this network's address pools: net1 \(abc123\)",
    ):
        a.allocate()


def test_gateway_elsewhere_is_skipped():
    a = ipam.Allocator("10.5.0.0/24", gateway="10.5.0.3")
    assert [str(a.allocate()) for _ in range(3)] == ["10.5.0.1", "10.5.0.2", "10.5.0.4"]
    with pytest.raises(InvalidParameter, match="invalid gateway 10.6.0.1"):
        ipam.Allocator("10.5.0.0/24", gateway="10.6.0.1")


def test_ip_range_bounds_dynamic_not_static():
    a = ipam.Allocator("10.5.0.0/16", ip_range="10.5.1.0/30")
    assert [str(a.allocate()) for _ in range(4)] == [f"10.5.1.{n}" for n in range(4)]
    with pytest.raises(Unavailable):
        a.allocate()
    # Docker allows a static address anywhere in the subnet
    assert str(a.allocate_static("10.5.9.9")) == "10.5.9.9"


def test_allocate_static_errors():
    a = ipam.Allocator("10.5.0.0/24")
    assert str(a.allocate_static("10.5.0.7")) == "10.5.0.7"
    for taken in ("10.5.0.7", "10.5.0.1", "10.5.0.0", "10.5.0.255"):
        with pytest.raises(Forbidden, match="Address already in use"):
            a.allocate_static(taken)
    with pytest.raises(InvalidParameter, match="does not belong"):
        a.allocate_static("10.6.0.7")
    with pytest.raises(InvalidParameter, match="does not belong"):
        a.allocate_static("fd00::7")
    with pytest.raises(InvalidParameter, match="invalid address"):
        a.allocate_static("10.5.0.300")
    # dynamic allocation skips the static one
    a2 = ipam.Allocator("10.5.0.0/24")
    a2.allocate_static("10.5.0.2")
    assert str(a2.allocate()) == "10.5.0.3"


def test_ipv6_allocation_without_enumerating():
    a = ipam.Allocator("fd00:dead:beef::/48")
    assert a.gateway == ip_address("fd00:dead:beef::1")
    assert [str(a.allocate()) for _ in range(2)] == ["fd00:dead:beef::2", "fd00:dead:beef::3"]
    a.allocate_static("fd00:dead:beef::4")
    assert str(a.allocate()) == "fd00:dead:beef::5"
    a.release("fd00:dead:beef::2")
    assert str(a.allocate()) == "fd00:dead:beef::2"


def test_round_trip_through_json():
    a = ipam.Allocator("10.5.0.0/16", ip_range="10.5.3.0/24", name="n", id="i")
    a.allocate()
    a.allocate_static("10.5.0.9")
    data = json.loads(json.dumps(a.to_dict()))
    assert data["Subnet"] == "10.5.0.0/16" and data["Gateway"] == "10.5.0.1"
    b = ipam.Allocator.from_dict(data)
    assert b.to_dict() == a.to_dict()
    assert b.allocated == {ip_address("10.5.3.0"), ip_address("10.5.0.9")}
    assert str(b.allocate()) == "10.5.3.1"


# --- the default bridge's MAC-derived IPv6 addresses ----------------------------------------


@pytest.mark.parametrize(
    ("subnet", "mac", "expected"),
    [
        # what dockerd 20.10 gives with --fixed-cidr-v6 fd00:dead:beef::/64 (captured)
        ("fd00:dead:beef::/64", "02:42:ac:11:00:02", "fd00:dead:beef::242:ac11:2"),
        ("fd00:dead:beef::/80", "02:42:ac:11:00:03", "fd00:dead:beef::242:ac11:3"),
        ("2001:db8:1::/48", "02:11:22:33:44:55", "2001:db8:1::211:2233:4455"),
    ],
)
def test_mac_address_ipv6(subnet, mac, expected):
    assert ipam.mac_address_ipv6(ip_network(subnet), mac) == ip_address(expected)


def test_mac_address_ipv6_needs_48_host_bits_and_a_mac():
    with pytest.raises(InvalidParameter, match="At least 48 host bits"):
        ipam.mac_address_ipv6(ip_network("fd00::/96"), "02:42:ac:11:00:02")
    with pytest.raises(InvalidParameter, match="At least 48 host bits"):
        ipam.mac_address_ipv6(ip_network("10.0.0.0/8"), "02:42:ac:11:00:02")
    with pytest.raises(InvalidParameter, match="invalid MAC"):
        ipam.mac_address_ipv6(ip_network("fd00::/64"), "02:42:zz:11:00:02")
    with pytest.raises(InvalidParameter, match="invalid MAC"):
        ipam.mac_address_ipv6(ip_network("fd00::/64"), "02:42")
