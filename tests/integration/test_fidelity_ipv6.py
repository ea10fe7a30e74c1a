"""IPv6 on the default bridge (``--ipv6 --fixed-cidr-v6``), dockyardd beside Debian's dockerd.

Each engine runs in a network namespace of its own (``nsenter --net``), so both may have a
default bridge, ip6tables chains and ``net.ipv6.conf.all.forwarding`` without touching the
host's or each other's; deleting the namespace takes all of it away.  In each namespace
``hv0`` holds the "host's" addresses and its veth peer sits in a second namespace, a client
that reaches published ports from outside through the host address.

The expectations are what dockerd 20.10 does (captured with the same flags): the default
bridge's IPv6 IPAM entry is the subnet alone on a fresh start, a container's address is the
prefix plus its MAC, the gateway is the first host, ``-p 8080:80`` publishes 0.0.0.0 and ::,
and with ``ip6tables`` (experimental) the IPv4 rules are mirrored, masquerade included.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from engines import Engine, cgroup_parent, make_busybox, start_dockerd, start_dockyardd

SUBNET = "fd00:dead:beef::/64"
GATEWAY = "fd00:dead:beef::1"
HOST_V6, CLIENT_V6 = "fd00:1::5", "fd00:1::6"
V6_FLAGS = ("--ipv6", "--fixed-cidr-v6", SUBNET, "--experimental", "--ip6tables")
HTTPD = "echo hello > /tmp/i; exec httpd -f -p 80 -h /tmp"


@dataclass
class Lab:
    """An engine in namespace ``ns``; ``client`` is the namespace on the far side of hv0."""

    kind: str
    ns: str
    client: str
    engine: Engine

    def run(self, *cmd: str, ns: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{ns or self.ns}", *cmd],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def docker(self, *args: str) -> str:
        return self.engine.cli(*args, check=True).stdout.decode()

    def inspect(self, kind: str, name: str) -> dict:
        # at dockerd 20.10's API version on both engines, so the shapes compare (1.44+ adds
        # DNSNames and GwPriority to endpoints)
        out = self.engine.cli(kind, "inspect", name, check=True, env={"DOCKER_API_VERSION": "1.41"})
        return json.loads(out.stdout)[0]

    @property
    def bridge(self) -> str:
        return self.inspect("network", "bridge")["Options"]["com.docker.network.bridge.name"]

    def fetch(self, url: str, ns: str | None = None) -> str:
        return self.run("curl", "-sS", "-m", "5", url, ns=ns).stdout


def _netns(name: str, client: str) -> None:
    """``name`` with lo up and hv0 (HOST_V6); hv0's peer in ``client`` (CLIENT_V6, routed
    to the containers' subnet through HOST_V6)."""
    for cmd in (
        ["ip", "netns", "add", name],
        ["ip", "netns", "add", client],
        ["ip", "-n", name, "link", "set", "lo", "up"],
        ["ip", "-n", client, "link", "set", "lo", "up"],
        ["ip", "-n", name, "link", "add", "hv0", "type", "veth", "peer", "name", "hv1"],
        ["ip", "-n", name, "link", "set", "hv1", "netns", client],
        ["ip", "-n", name, "addr", "add", f"{HOST_V6}/64", "dev", "hv0", "nodad"],
        ["ip", "-n", client, "addr", "add", f"{CLIENT_V6}/64", "dev", "hv1", "nodad"],
        ["ip", "-n", name, "link", "set", "hv0", "up"],
        ["ip", "-n", client, "link", "set", "hv1", "up"],
        ["ip", "-n", client, "-6", "route", "add", SUBNET, "via", HOST_V6],
    ):
        subprocess.run(cmd, check=True, capture_output=True)


def _del_netns(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _start(kind: str, root: str, ns: str, flags: tuple[str, ...] = V6_FLAGS) -> Engine:
    wrapper = ("nsenter", f"--net=/run/netns/{ns}")
    if kind == "dockerd":
        return start_dockerd(
            root, flags=(*flags, "--cgroup-parent", cgroup_parent(root)), wrapper=wrapper
        )
    return start_dockyardd(root, *flags, wrapper=wrapper)


@contextmanager
def _lab(kind: str, root: str) -> Iterator[Lab]:
    """An engine with V6_FLAGS in fresh namespaces; all of it removed at the end, whichever
    engine ``lab.engine`` is by then (a test may restart it)."""
    tag = secrets.token_hex(3)
    ns, client = f"dyv6-{tag}", f"dyv6c-{tag}"
    lab = None
    try:
        _netns(ns, client)
        lab = Lab(kind, ns, client, _start(kind, root, ns))
        make_busybox(lab.engine)
        yield lab
    finally:
        if lab is not None:
            lab.engine.stop()
        _del_netns(ns, client)


@pytest.fixture(scope="module")
def ref_lab(workdir):
    with _lab("dockerd", os.path.join(workdir, "v6ref")) as lab:
        yield lab


@pytest.fixture(scope="module")
def dy_lab(workdir):
    with _lab("dockyardd", os.path.join(workdir, "v6dy")) as lab:
        yield lab


@pytest.fixture
def labs(ref_lab, dy_lab):
    yield (ref_lab, dy_lab)
    for lab in (ref_lab, dy_lab):
        ids = lab.engine.cli("ps", "-aq").stdout.decode().split()
        if ids:
            lab.engine.cli("rm", "-f", *ids)
        lab.engine.cli("network", "prune", "-f")


def _mac_ipv6(mac: str) -> str:
    net = ipaddress.ip_network(SUBNET)
    return str(ipaddress.ip_address(int(net.network_address) | int(mac.replace(":", ""), 16)))


def _v6_config(network: dict) -> list[dict]:
    return [c for c in network["IPAM"]["Config"] if ":" in c["Subnet"]]


def test_default_bridge_has_the_ipv6_subnet(labs):
    for lab in labs:
        network = lab.inspect("network", "bridge")
        assert network["EnableIPv6"] is True, lab.kind
        assert _v6_config(network) == [{"Subnet": SUBNET}], lab.kind  # no Gateway: fresh start
        addrs = lab.run("ip", "-6", "-o", "addr", "show", "dev", lab.bridge).stdout
        assert f"{GATEWAY}/64" in addrs and "fe80::1/64" in addrs, (lab.kind, addrs)
        forwarding = lab.run("cat", "/proc/sys/net/ipv6/conf/all/forwarding").stdout
        assert forwarding.strip() == "1", lab.kind


def test_container_address_gateway_and_hosts_file(labs):
    shapes = []
    for lab in labs:
        lab.docker("run", "-d", "--name", "v6a", "busybox", "sleep", "300")
        settings = lab.inspect("container", "v6a")["NetworkSettings"]
        endpoint = settings["Networks"]["bridge"]
        v6 = _mac_ipv6(endpoint["MacAddress"])  # dockerd: prefix + MAC on a /64
        for view in (settings, endpoint):
            assert view["GlobalIPv6Address"] == v6, lab.kind
            assert view["GlobalIPv6PrefixLen"] == 64, lab.kind
            assert view["IPv6Gateway"] == GATEWAY, lab.kind
        shapes.append(
            ({k: type(v).__name__ for k, v in settings.items()}, sorted(endpoint), v6 != "")
        )
        inside = lab.docker("exec", "v6a", "sh", "-c", "ip -6 addr show eth0; ip -6 route")
        assert f"inet6 {v6}/64 scope global" in inside, (lab.kind, inside)
        assert f"default via {GATEWAY} dev eth0" in inside, (lab.kind, inside)
        hosts = lab.docker("exec", "v6a", "cat", "/etc/hosts").splitlines()
        hostname = lab.docker("exec", "v6a", "hostname").strip()
        assert hosts[-2:] == [f"{endpoint['IPAddress']}\t{hostname}", f"{v6}\t{hostname}"]
        assert hosts[:6] == [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "ff00::0\tip6-mcastprefix",
            "ff02::1\tip6-allnodes",
            "ff02::2\tip6-allrouters",
        ], lab.kind
        network = lab.inspect("network", "bridge")
        (member,) = network["Containers"].values()
        assert member["IPv6Address"] == f"{v6}/64", lab.kind
    assert shapes[0] == shapes[1]


def test_address_follows_a_chosen_mac(labs):
    """``--mac-address`` at API 1.41 (Config.MacAddress) makes the IPv6 address too."""
    import docker as docker_py

    for lab in labs:
        client = docker_py.DockerClient(base_url=lab.engine.host, version="1.41")
        try:
            client.containers.run(
                "busybox", "sleep 300", detach=True, name="mac", mac_address="02:11:22:33:44:55"
            )
        finally:
            client.close()
        settings = lab.inspect("container", "mac")["NetworkSettings"]
        assert settings["MacAddress"] == "02:11:22:33:44:55", lab.kind
        assert settings["GlobalIPv6Address"] == "fd00:dead:beef::211:2233:4455", lab.kind


def test_user_defined_ipv6_network_gets_ip6tables_rules(labs):
    for lab in labs:
        nid = lab.docker("network", "create", "--ipv6", "--subnet", "fd00:77::/64", "v6net")
        br = f"br-{nid.strip()[:12]}"
        lab.docker("run", "-d", "--name", "u1", "--network", "v6net", "busybox", "sleep", "300")
        endpoint = lab.inspect("container", "u1")["NetworkSettings"]["Networks"]["v6net"]
        assert endpoint["GlobalIPv6Address"] == "fd00:77::2", lab.kind  # in order, no MAC
        assert endpoint["IPv6Gateway"] == "fd00:77::1", lab.kind
        nat = lab.run("ip6tables", "-t", "nat", "-S").stdout
        assert f"-s fd00:77::/64 ! -o {br} -j MASQUERADE" in nat, (lab.kind, nat)
        addrs = lab.run("ip", "-6", "-o", "addr", "show", "dev", br).stdout
        assert "fd00:77::1/64" in addrs and "fe80::1/64" in addrs, (lab.kind, addrs)
        # isolation: the default bridge's containers cannot reach this network's
        lab.docker("run", "-d", "--name", "u2", "busybox", "sleep", "300")
        out = lab.engine.cli("exec", "u2", "ping", "-6", "-c", "1", "-W", "2", "fd00:77::2")
        assert out.returncode != 0, lab.kind
        lab.docker("rm", "-f", "u1", "u2")
        lab.docker("network", "rm", "v6net")
        assert "fd00:77::/64" not in lab.run("ip6tables", "-t", "nat", "-S").stdout, lab.kind


def test_no_chosen_ipv6_address_on_the_default_bridge(labs):
    """--ip6 on the default bridge is refused as --ip is (moby hasUserDefinedIPAddress)."""
    results = [
        lab.engine.cli("run", "--rm", "--ip6", "fd00:dead:beef::99", "busybox", "true")
        for lab in labs
    ]
    assert results[0].returncode == results[1].returncode == 125
    assert results[0].stderr == results[1].stderr
    assert b"user specified IP address is supported on user defined networks only" in (
        results[1].stderr
    )


SYSCTLS = "cd /proc/sys/net/ipv6/conf && grep . */disable_ipv6; ip -6 addr | grep -c inet6; true"


def test_ipv6_off_in_containers_without_it(labs):
    """moby 20.10 turns IPv6 off in a container's namespace and back on per interface with
    an IPv6 address, and on lo while there is one: no ::1 or fe80:: without IPv6."""
    seen = []
    for lab in labs:
        lab.docker("network", "create", "v4only")
        lab.docker("network", "create", "--ipv6", "--subnet", "fd00:88::/64", "v6b")
        out = [
            lab.docker("run", "--rm", "--network", "none", "busybox", "sh", "-c", SYSCTLS),
            lab.docker("run", "--rm", "--network", "v4only", "busybox", "sh", "-c", SYSCTLS),
            lab.docker("run", "--rm", "busybox", "sh", "-c", SYSCTLS),
        ]
        lab.docker("run", "-d", "--name", "cc", "--network", "v4only", "busybox", "sleep", "300")
        lab.docker("network", "connect", "v6b", "cc")
        out.append(lab.docker("exec", "cc", "sh", "-c", SYSCTLS))
        lab.docker("network", "disconnect", "v6b", "cc")
        out.append(lab.docker("exec", "cc", "sh", "-c", SYSCTLS))
        lab.docker("rm", "-f", "cc")
        lab.docker("network", "rm", "v4only", "v6b")
        seen.append(out)
    assert seen[0] == seen[1]
    # none: all off (lo has no ::1); default bridge with IPv6: lo, eth0 on (::1, global, fe80)
    assert seen[1][0].split() == [
        "all/disable_ipv6:1",
        "default/disable_ipv6:1",
        "lo/disable_ipv6:1",
        "0",
    ]
    assert seen[1][2].split()[-1] == "3"


def test_ping6_between_containers_the_gateway_and_the_host(labs):
    for lab in labs:
        lab.docker("run", "-d", "--name", "p1", "busybox", "sleep", "300")
        lab.docker("run", "-d", "--name", "p2", "busybox", "sleep", "300")
        target = lab.inspect("container", "p1")["NetworkSettings"]["GlobalIPv6Address"]
        for address in (target, GATEWAY, HOST_V6):
            out = lab.engine.cli("exec", "p2", "ping", "-6", "-c", "1", "-W", "3", address)
            assert out.returncode == 0, (lab.kind, address, out.stdout, out.stderr)


def test_published_port_over_ipv6(labs):
    for lab in labs:
        lab.docker(
            "run", "-d", "--name", "web", "-p", "8080:80", "-p", "[::1]:8081:80",
            "busybox", "sh", "-c", HTTPD,
        )  # fmt: skip
        ports = lab.inspect("container", "web")["NetworkSettings"]["Ports"]["80/tcp"]
        assert sorted(ports, key=lambda p: (p["HostPort"], p["HostIp"])) == [
            {"HostIp": "0.0.0.0", "HostPort": "8080"},
            {"HostIp": "::", "HostPort": "8080"},
            {"HostIp": "::1", "HostPort": "8081"},
        ], lab.kind
        listing = lab.docker("port", "web", "80")
        assert sorted(listing.split()) == ["0.0.0.0:8080", "[::1]:8081", "[::]:8080"], lab.kind
        for url in (
            "http://[::1]:8080/i",
            f"http://[{HOST_V6}]:8080/i",
            "http://127.0.0.1:8080/i",
            "http://[::1]:8081/i",
        ):
            assert lab.fetch(url) == "hello\n", (lab.kind, url)
        # from another host, through the host's IPv6 address (ip6tables DNAT)
        assert lab.fetch(f"http://[{HOST_V6}]:8080/i", ns=lab.client) == "hello\n", lab.kind
        # and from the container itself (hairpin through the host address)
        hairpin = f"echo GET /i HTTP/1.0 | nc -w 3 {HOST_V6} 8080 | tail -1"
        assert lab.docker("exec", "web", "sh", "-c", hairpin) == "hello\n", lab.kind


def test_ip6tables_rules_mirror_the_ipv4_ones(labs):
    for lab in labs:
        lab.docker("run", "-d", "--name", "fw", "-p", "8082:80", "busybox", "sh", "-c", HTTPD)
        v6 = lab.inspect("container", "fw")["NetworkSettings"]["GlobalIPv6Address"]
        br = lab.bridge
        nat = lab.run("ip6tables", "-t", "nat", "-S").stdout
        filt = lab.run("ip6tables", "-t", "filter", "-S").stdout
        for rule in (
            f"-s {SUBNET} ! -o {br} -j MASQUERADE",
            f"-i {br} -j RETURN",
            f"! -i {br} -p tcp -m tcp --dport 8082 -j DNAT --to-destination [{v6}]:80",
            f"-s {v6}/128 -d {v6}/128 -p tcp -m tcp --dport 80 -j MASQUERADE",
            "! -d ::1/128 -m addrtype --dst-type LOCAL -j",
        ):
            assert rule in nat, (lab.kind, rule, nat)
        for rule in (
            f"-d {v6}/128 ! -i {br} -o {br} -p tcp -m tcp --dport 80 -j ACCEPT",
            f"-i {br} ! -o {br} -j ACCEPT",
            f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-i {br} ! -o {br} -j",  # isolation stage 1 -> 2
        ):
            assert rule in filt, (lab.kind, rule, filt)
        # an unpublished port of a container is not reachable from the other host
        lab.docker("run", "-d", "--name", "hidden", "busybox", "sh", "-c", HTTPD)
        hidden = lab.inspect("container", "hidden")["NetworkSettings"]["GlobalIPv6Address"]
        assert lab.fetch(f"http://[{hidden}]:80/i", ns=lab.client) == "", lab.kind


def _restart(lab: Lab, root: str, flags: tuple[str, ...]) -> None:
    """SIGTERM the daemon (containers keep running) and start it again with ``flags``."""
    proc = lab.engine.proc
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    lab.engine = _start(lab.kind, root, lab.ns, flags)


def test_restart_follows_ipv6_settings(workdir):
    """dockyardd only: dockerd makes its default bridge again at each start, which is what
    these expectations (captured from it) describe; dockyardd keeps its record and must
    follow the settings the same way."""
    root = os.path.join(workdir, "v6rs")
    with _lab("dockyardd", root) as lab:
        lab.docker("run", "-d", "--name", "keep", "-p", "8084:80", "busybox", "sh", "-c", HTTPD)
        keep = lab.inspect("container", "keep")["NetworkSettings"]["GlobalIPv6Address"]
        # same settings: the bridge already held the gateway, so dockerd now lists it
        _restart(lab, root, V6_FLAGS)
        assert _v6_config(lab.inspect("network", "bridge")) == [
            {"Subnet": SUBNET, "Gateway": GATEWAY}
        ]
        assert lab.inspect("container", "keep")["NetworkSettings"]["GlobalIPv6Address"] == keep
        assert lab.engine.cli("exec", "keep", "ping", "-6", "-c1", "-W3", GATEWAY).returncode == 0
        # its published port is served again, ip6tables DNAT included
        assert lab.fetch(f"http://[{HOST_V6}]:8084/i", ns=lab.client) == "hello\n"
        assert f"--to-destination [{keep}]:80" in lab.run("ip6tables", "-t", "nat", "-S").stdout
        # another fixed-cidr-v6 (narrower than /80: addresses in order, not from the MAC),
        # and ip6tables off: the old gateway address and every IPv6 rule go
        lab.docker("rm", "-f", "keep")
        _restart(lab, root, ("--ipv6", "--fixed-cidr-v6", "fd00:cafe::/96"))
        network = lab.inspect("network", "bridge")
        assert network["EnableIPv6"] is True
        assert _v6_config(network) == [{"Subnet": "fd00:cafe::/96"}]
        addrs = lab.run("ip", "-6", "-o", "addr", "show", "dev", lab.bridge).stdout
        assert "fd00:cafe::1/96" in addrs and GATEWAY not in addrs, addrs
        lab.docker("run", "-d", "--name", "seq", "busybox", "sleep", "300")
        settings = lab.inspect("container", "seq")["NetworkSettings"]
        assert (settings["GlobalIPv6Address"], settings["IPv6Gateway"]) == (
            "fd00:cafe::2",
            "fd00:cafe::1",
        )
        assert "-A " not in lab.run("ip6tables", "-t", "nat", "-S").stdout
        assert "-A " not in lab.run("ip6tables", "-t", "filter", "-S").stdout
        # ipv6 off: no IPv6 on the bridge network; :: still published, to the IPv4 address
        lab.docker("rm", "-f", "seq")
        _restart(lab, root, ())
        network = lab.inspect("network", "bridge")
        assert network["EnableIPv6"] is False and _v6_config(network) == []
        addrs = lab.run("ip", "-6", "-o", "addr", "show", "dev", lab.bridge).stdout
        assert "fd00:cafe" not in addrs and "fe80::1/64" not in addrs, addrs
        lab.docker("run", "-d", "--name", "v4", "-p", "8083:80", "busybox", "sh", "-c", HTTPD)
        settings = lab.inspect("container", "v4")["NetworkSettings"]
        assert settings["GlobalIPv6Address"] == "" and settings["IPv6Gateway"] == ""
        assert {p["HostIp"] for p in settings["Ports"]["80/tcp"]} == {"0.0.0.0", "::"}
        assert lab.fetch("http://[::1]:8083/i") == "hello\n"
        lab.docker("rm", "-f", "v4")
