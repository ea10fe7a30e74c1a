"""network/{netns,bridge,iptables}.py against the real kernel (no daemon).

Every bridge, veth, namespace and iptables chain a test makes has a random name and is
removed by the fixtures' finalizers, even when the test fails.  Traffic stays between the
host and namespaces the tests create (and loopback).
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest

from dockyard.errors import Conflict, Internal, NotFound
from dockyard.network import bridge, iptables, netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, bridges)")


def _own_netns() -> tuple[str, str]:
    return os.readlink("/proc/self/ns/net"), os.readlink("/proc/thread-self/ns/net")


def _free_subnet() -> ipaddress.IPv4Network:
    used = [
        ipaddress.ip_interface(a).network
        for i in bridge.interfaces()
        for a in i.addresses
        if ipaddress.ip_interface(a).version == 4
    ]
    while True:
        net = ipaddress.ip_network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net


class Lab:
    """Bridges, namespaces and veths made by one test; ``close`` removes them all."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.bridges: list[str] = []
        self.namespaces: list[str] = []
        self.veths: list[str] = []
        self._subnets: set[ipaddress.IPv4Network] = set()

    def bridge(self, **kw) -> tuple[str, ipaddress.IPv4Network]:
        while (net := _free_subnet()) in self._subnets:
            pass
        self._subnets.add(net)
        name = "dyt" + secrets.token_hex(3)
        self.bridges.append(name)
        bridge.ensure_bridge(name, [f"{net[1]}/{net.prefixlen}"], **kw)
        return name, net

    def netns(self) -> str:
        path = os.path.join(self.root, secrets.token_hex(4))
        self.namespaces.append(path)
        netns.create(path)
        return path

    def attach(self, ns: str, br: str, net: ipaddress.IPv4Network, host: int, **kw) -> str:
        veth = bridge.veth_name()
        self.veths.append(veth)
        bridge.attach(
            ns, br, veth, addresses=[f"{net[host]}/{net.prefixlen}"], gateways=[str(net[1])], **kw
        )
        return veth

    def close(self) -> None:
        for veth in self.veths:
            bridge.detach(veth)
        for name in self.bridges:
            bridge.delete_bridge(name)
        for path in self.namespaces:
            netns.remove(path)
        names = {i.name for i in bridge.interfaces()}
        leaked = names & set(self.veths + self.bridges)
        assert not leaked, f"interfaces left behind: {leaked}"
        assert not any(netns.exists(p) for p in self.namespaces)


@pytest.fixture
def lab() -> Iterator[Lab]:
    before = _own_netns()
    root = tempfile.mkdtemp(prefix="dyt-netns-")
    lab = Lab(root)
    try:
        yield lab
    finally:
        try:
            lab.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)
        assert _own_netns() == before, "the test process's network namespace changed"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = "DYT" + secrets.token_hex(3).upper()
    try:
        yield name
    finally:
        iptables.teardown(name)
        assert name not in _iptables_save()


def _iptables_save() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def ping(ns: str, address: object, tries: int = 3) -> bool:
    for _ in range(tries):
        cmd = ["nsenter", f"--net={ns}", "busybox", "ping", "-c1", "-W1", str(address)]
        if subprocess.run(cmd, check=False, capture_output=True).returncode == 0:
            return True
    return False


def _forward_policy_accepts() -> bool:
    out = subprocess.run(
        ["iptables", "-w", "-S", "FORWARD"], check=False, capture_output=True, text=True
    )
    return "-P FORWARD ACCEPT" in out.stdout


class Server:
    """A TCP server listening inside a namespace, answering every connection with a line."""

    def __init__(self, ns: str, port: int, reply: bytes = b"hello from the container\n") -> None:
        self.sock = netns.run(ns, socket.socket)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", port))
        self.sock.listen()
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def fetch(address: str, port: int, ns: str | None = None, timeout: float = 2.0) -> bytes:
    def get() -> bytes:
        with socket.create_connection((address, port), timeout=timeout) as s:
            return s.recv(100)

    return get() if ns is None else netns.run(ns, get)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- netns -------------------------------------------------------------------------------


def test_netns_lifecycle_leaves_own_namespace_alone(lab):
    before = _own_netns()
    ns = lab.netns()
    assert netns.exists(ns)
    assert _own_netns() == before
    inside = netns.run(ns, lambda: os.readlink("/proc/thread-self/ns/net"))
    assert inside != before[0]
    assert netns.run(ns, lambda: os.readlink("/proc/thread-self/ns/net")) == inside
    (lo,) = bridge.interfaces(ns)
    assert lo.name == "lo" and lo.up and "127.0.0.1/8" in lo.addresses
    with pytest.raises(ZeroDivisionError):  # exceptions cross back, the thread is gone
        netns.run(ns, lambda: 1 // 0)
    assert _own_netns() == before
    netns.remove(ns)
    netns.remove(ns)
    assert not netns.exists(ns) and not os.path.exists(ns)


# --- bridge ------------------------------------------------------------------------------


def test_two_namespaces_on_a_bridge(lab):
    br, net = lab.bridge()
    bridge.ensure_bridge(br, [f"{net[1]}/24"])  # idempotent
    (info,) = [i for i in bridge.interfaces() if i.name == br]
    assert info.up and f"{net[1]}/24" in info.addresses
    a, b = lab.netns(), lab.netns()
    veth_a = lab.attach(a, br, net, 2)
    lab.attach(b, br, net, 3)
    assert veth_a.startswith("veth") and len(veth_a) == 11
    eth0 = next(i for i in bridge.interfaces(a) if i.name == "eth0")
    assert eth0.up and f"{net[2]}/24" in eth0.addresses
    assert (
        eth0.mac
        == bridge.mac_for(str(net[2]))
        == "02:42:" + ":".join(f"{x:02x}" for x in net[2].packed)
    )
    assert ping(a, net[3]) and ping(b, net[2]) and ping(a, net[1])
    bridge.detach(veth_a)
    bridge.detach(veth_a)  # idempotent
    assert [i.name for i in bridge.interfaces(a)] == ["lo"]
    assert not ping(b, net[2], tries=1)


def test_ipv6_gateway_and_explicit_mac(lab):
    net6 = ipaddress.ip_network(f"fd{secrets.token_hex(1)}:{secrets.token_hex(2)}::/64")
    br, net = lab.bridge(forwarding=False)
    bridge.ensure_bridge(br, [f"{net[1]}/24", f"{net6[1]}/64"], forwarding=False)
    ns = lab.netns()
    veth = bridge.veth_name()
    lab.veths.append(veth)
    mac = bridge.attach(
        ns,
        br,
        veth,
        addresses=[f"{net[2]}/24", f"{net6[2]}/64"],
        gateways=[str(net[1]), str(net6[1])],
        mac="02:42:ac:11:00:99",
    )
    assert mac == "02:42:ac:11:00:99"
    eth0 = next(i for i in bridge.interfaces(ns) if i.name == "eth0")
    assert eth0.mac == mac and f"{net6[2]}/64" in eth0.addresses
    cmd = ["nsenter", f"--net={ns}", "busybox", "ping6", "-c1", "-W2", str(net6[1])]
    assert subprocess.run(cmd, check=False, capture_output=True).returncode == 0


def test_attach_failure_leaves_nothing(lab):
    br, net = lab.bridge()
    ns, other = lab.netns(), lab.netns()
    lab.attach(ns, br, net, 2)
    veth = bridge.veth_name()
    with pytest.raises(Conflict):  # eth0 is taken in the namespace
        bridge.attach(ns, br, veth, addresses=[f"{net[3]}/24"])
    with pytest.raises(Internal):  # fails inside, after the veth exists: rolled back
        bridge.attach(other, br, veth, addresses=[f"{net[3]}/24"], gateways=["192.0.2.1"])
    assert veth not in {i.name for i in bridge.interfaces()}
    assert [i.name for i in bridge.interfaces(other)] == ["lo"]
    with pytest.raises(NotFound):
        bridge.attach(ns, "dytmissing", bridge.veth_name())


# --- iptables ----------------------------------------------------------------------------


def test_chains_appear_and_vanish(lab, prefix):
    br, net = lab.bridge()
    for _ in range(2):  # every call is idempotent
        iptables.setup(prefix)
        iptables.add_network(prefix, br, str(net))
        iptables.publish(prefix, "tcp", "", 18080, str(net[2]), 80, br)
    rules = [line for line in _iptables_save().splitlines() if prefix in line]
    appended = [r for r in rules if r.startswith("-A")]
    assert len(appended) == len(set(appended)) == 5 + 9 + 3  # jumps, network, port
    for chain in ("", "-FORWARD", "-ISOLATION-STAGE-1", "-ISOLATION-STAGE-2", "-POSTROUTING"):
        assert f":{prefix}{chain} " in "\n".join(rules)
    assert any("DNAT" in r and f"{net[2]}:80" in r for r in rules)
    iptables.unpublish(prefix, "tcp", "", 18080, str(net[2]), 80, br)
    iptables.remove_network(prefix, br, str(net))
    left = [r for r in _iptables_save().splitlines() if prefix in r and br in r]
    assert left == []
    iptables.setup(prefix, userland_proxy=False)  # flips the OUTPUT jump
    outputs = [
        r for r in _iptables_save().splitlines() if r.startswith("-A OUTPUT") and prefix in r
    ]
    assert len(outputs) == 1 and "127.0.0.0/8" not in outputs[0]
    iptables.teardown(prefix)
    assert prefix not in _iptables_save()
    iptables.teardown(prefix)  # idempotent


def test_isolation_between_bridges(lab, prefix):
    br_a, net_a = lab.bridge()
    br_b, net_b = lab.bridge()
    a, b = lab.netns(), lab.netns()
    lab.attach(a, br_a, net_a, 2)
    lab.attach(b, br_b, net_b, 2)
    policy_accepts = _forward_policy_accepts()
    if policy_accepts:  # positive control: routed between bridges without our rules
        assert ping(a, net_b[2])
    iptables.setup(prefix)
    iptables.add_network(prefix, br_a, str(net_a))
    iptables.add_network(prefix, br_b, str(net_b))
    assert not ping(a, net_b[2], tries=1)
    assert not ping(b, net_a[2], tries=1)
    assert ping(a, net_a[1])  # the gateway (the host) is still reachable
    iptables.remove_network(prefix, br_b, str(net_b))
    iptables.remove_network(prefix, br_a, str(net_a))
    if policy_accepts:
        assert ping(a, net_b[2])


def test_internal_network_reaches_only_its_subnet(lab, prefix):
    br_i, net_i = lab.bridge()
    br_o, net_o = lab.bridge()
    i1, i2, o = lab.netns(), lab.netns(), lab.netns()
    lab.attach(i1, br_i, net_i, 2)
    lab.attach(i2, br_i, net_i, 3)
    lab.attach(o, br_o, net_o, 2)
    iptables.setup(prefix)
    iptables.add_network(prefix, br_i, str(net_i), internal=True)
    iptables.add_network(prefix, br_o, str(net_o))
    assert ping(i1, net_i[3])  # icc
    assert not ping(i1, net_o[2], tries=1)
    assert not ping(o, net_i[2], tries=1)


def test_published_port_from_another_namespace(lab, prefix):
    br, net = lab.bridge()
    outside_br, outside_net = lab.bridge()  # a plain bridge, not a dockyard network
    ctr, client = lab.netns(), lab.netns()
    lab.attach(ctr, br, net, 2)
    lab.attach(client, outside_br, outside_net, 2)
    iptables.setup(prefix)
    iptables.add_network(prefix, br, str(net))
    host_port = free_port()
    iptables.publish(prefix, "tcp", "", host_port, str(net[2]), 80, br)
    server, other = Server(ctr, 80), Server(ctr, 81, b"unpublished\n")
    try:
        assert fetch(str(outside_net[1]), host_port, ns=client) == server.reply
        # routed straight to the container: its published port is open (as in Docker),
        # any other port is dropped (moby v28's default-drop), not refused
        assert fetch(str(net[2]), 80, ns=client) == server.reply
        with pytest.raises(TimeoutError):
            fetch(str(net[2]), 81, ns=client, timeout=1)
        iptables.unpublish(prefix, "tcp", "", host_port, str(net[2]), 80, br)
        with pytest.raises(ConnectionRefusedError):  # no DNAT: the host itself answers
            fetch(str(outside_net[1]), host_port, ns=client, timeout=1)
    finally:
        server.close()
        other.close()


def test_userland_proxy_off_localhost_and_hairpin(lab, prefix):
    br, net = lab.bridge()
    ctr = lab.netns()
    lab.attach(ctr, br, net, 2, hairpin=True)
    iptables.setup(prefix, userland_proxy=False)
    iptables.add_network(prefix, br, str(net), userland_proxy=False)
    with open(f"/proc/sys/net/ipv4/conf/{br}/route_localnet") as f:
        assert f.read().strip() == "1"
    # what route_localnet would open to the bridge (the host's loopback) is dropped in raw
    guard = iptables.loopback_guard(prefix, br)
    check = ["iptables", "-w", "-t", "raw", "-C", guard.chain, *guard.args]
    assert subprocess.run(check, capture_output=True).returncode == 0
    host_port = free_port()
    iptables.publish(
        prefix, "tcp", "127.0.0.1", host_port, str(net[2]), 80, br, userland_proxy=False
    )
    server = Server(ctr, 80)
    try:
        assert fetch("127.0.0.1", host_port) == server.reply
        iptables.publish(
            prefix, "tcp", "", host_port + 1, str(net[2]), 80, br, userland_proxy=False
        )
        # the container reaches itself through the host's published port (hairpin NAT)
        assert fetch(str(net[1]), host_port + 1, ns=ctr) == server.reply
    finally:
        server.close()
    iptables.remove_network(prefix, br, str(net), userland_proxy=False)
    assert subprocess.run(check, capture_output=True).returncode != 0


def test_never_deletes_foreign_links():
    with pytest.raises(Conflict):
        bridge.delete_bridge("lo")
    with pytest.raises(Conflict):
        bridge.detach("lo")
    with pytest.raises(Conflict):
        bridge.ensure_bridge("lo", [])
    bridge.delete_bridge("dytabsent")  # missing: fine
    bridge.detach("vethabsent")
