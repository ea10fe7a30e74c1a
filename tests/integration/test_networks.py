"""Bridge networks, DNS, published ports and network modes through the official docker CLI
and docker-py.  Traffic goes only to loopback and to this session's own bridges; every
network is removed by the test that made it, bridges and rules by the engine fixture."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request

import pytest
from engines import api_request, make_busybox, network_config, start_dockyardd

HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"
# An HTTP GET retried while the server starts.  nc, not wget: Debian's static busybox wget
# resolves names through glibc's NSS, which a static binary cannot load in a bare image.
GET = (
    "for i in $(seq 50); do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80 2>/dev/null)"
    ' && [ -n "$r" ] && echo "$r" | tail -1 && break; sleep 0.1; done'
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(port: int, timeout: float = 10) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3).read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _subnet(daemon, n: int) -> str:
    base = network_config(daemon.root)["default-address-pools"][0]["base"].split(".")
    return f"{base[0]}.{base[1]}.{200 + n}.0/24"


@pytest.fixture
def net(docker):
    made: list[str] = []

    def make(name: str, *args: str) -> str:
        docker("network", "create", *args, name, check=True)
        made.append(name)
        return name

    yield make
    for name in reversed(made):
        docker("network", "rm", name)


@pytest.fixture
def box(docker):
    made: list[str] = []

    def run(name: str, *args: str) -> str:
        made.append(name)
        docker("run", "-d", "--name", name, *args, check=True)
        return name

    yield run
    if made:
        docker("rm", "-f", *made)


def _inspect(docker, name: str) -> dict:
    return json.loads(docker("inspect", name, check=True).stdout)[0]


def test_user_network_names_aliases_and_round_robin(docker, daemon, net, box):
    name = net("dyt-app", "--subnet", _subnet(daemon, 1))
    box(
        "web1",
        "--network",
        name,
        "--network-alias",
        "web",
        "busybox",
        "sh",
        "-c",
        HTTPD.format(text="one"),
    )
    box(
        "web2",
        "--network",
        name,
        "--network-alias",
        "web",
        "busybox",
        "sh",
        "-c",
        HTTPD.format(text="two"),
    )
    out = docker(
        "run",
        "--rm",
        "--network",
        name,
        "busybox",
        "sh",
        "-c",
        GET.format(host="web1")
        + ";"
        + GET.format(host="web2")
        + "; ping -c1 -W2 web >/dev/null && echo ping-ok;"
        "nslookup web 127.0.0.11 | grep -c '^Address: '; cat /etc/resolv.conf",
        check=True,
    )
    lines = out.stdout.decode().splitlines()
    assert lines[:3] == ["one", "two", "ping-ok"] and lines[3] == "2"
    assert "nameserver 127.0.0.11" in lines
    view = _inspect(docker, "web1")
    info = view["NetworkSettings"]["Networks"][name]
    assert info["IPAddress"].startswith(_subnet(daemon, 1).rsplit(".", 1)[0])
    # API 1.45+: Aliases are what was asked for; the short ID is in DNSNames
    assert info["Aliases"] == ["web"] and view["Id"][:12] in info["DNSNames"]
    listed = json.loads(docker("network", "inspect", name, check=True).stdout)[0]
    assert {c["Name"] for c in listed["Containers"].values()} == {"web1", "web2"}
    # a name no container has goes upstream and finds nothing: no address comes back
    out = docker(
        "run",
        "--rm",
        "--network",
        name,
        "busybox",
        "nslookup",
        "dyt-no-such-host.invalid",
        "127.0.0.11",
    )
    text = (out.stdout + out.stderr).decode()
    answers = [l for l in text.splitlines() if l.startswith("Address") and "127.0.0.11" not in l]
    assert out.returncode != 0 and "can't find" in text and answers == [], text


def test_default_bridge_and_isolation(docker, daemon, net, box):
    a = net("dyt-a", "--subnet", _subnet(daemon, 2))
    b = net("dyt-b", "--subnet", _subnet(daemon, 3))
    box("on-a", "--network", a, "busybox", "sh", "-c", HTTPD.format(text="a"))
    ip_a = _inspect(docker, "on-a")["NetworkSettings"]["Networks"][a]["IPAddress"]
    same = docker("run", "--rm", "--network", a, "busybox", "sh", "-c", GET.format(host=ip_a))
    assert same.stdout == b"a\n"
    other = docker(
        "run", "--rm", "--network", b, "busybox", "sh", "-c", f"ping -c1 -W1 {ip_a} || echo blocked"
    )
    assert b"blocked" in other.stdout
    bridge_ip = docker(
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0", check=True
    ).stdout
    assert network_config(daemon.root)["bip"].rsplit(".", 1)[0] in bridge_ip.decode()
    assert docker(
        "run", "--rm", "busybox", "sh", "-c", f"ping -c1 -W1 {ip_a} || echo blocked"
    ).stdout.endswith(b"blocked\n")
    none = docker("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net", check=True)
    assert none.stdout.split() == [b"lo"]


def test_published_port_answers_on_loopback(docker, box):
    port = _free_port()
    box("pub", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c", HTTPD.format(text="published"))
    assert _fetch(port) == b"published\n"
    assert docker("port", "pub", check=True).stdout == f"80/tcp -> 127.0.0.1:{port}\n".encode()
    # the port is taken: a clear error and nothing left half-made
    clash = docker(
        "run", "-d", "--name", "clash", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "30"
    )
    docker("rm", "-f", "clash")
    assert clash.returncode == 125 and b"port is already allocated" in clash.stderr
    # -P: an ephemeral port for the exposed one
    box("pubp", "-P", "--expose", "80", "busybox", "sh", "-c", HTTPD.format(text="any"))
    ports = _inspect(docker, "pubp")["NetworkSettings"]["Ports"]["80/tcp"]
    assert int(ports[0]["HostPort"]) > 1024


def test_network_bad_input(docker, daemon, net, box):
    name = net(
        "dyt-bad",
        "--subnet",
        _subnet(daemon, 4),
        "--ip-range",
        _subnet(daemon, 4).replace("0/24", "128/25"),
    )
    for args, message in (
        (["--subnet", _subnet(daemon, 4)], b"overlaps"),
        (["--subnet", "10.0.0.0/33"], b"invalid"),
        (["--subnet", "10.9.9.0/24", "--gateway", "10.9.8.1"], b"10.9.8.1"),
    ):
        out = docker("network", "create", *args, "dyt-bad2")
        assert out.returncode == 1 and message in out.stderr, out.stderr
    assert docker("network", "create", name).returncode == 1
    inside = _subnet(daemon, 4).replace("0/24", "200")
    box("static", "--network", name, "--ip", inside, "busybox", "sleep", "300")
    assert _inspect(docker, "static")["NetworkSettings"]["Networks"][name]["IPAddress"] == inside
    taken = docker("run", "--rm", "--network", name, "--ip", inside, "busybox", "true")
    assert taken.returncode == 125 and b"Address already in use" in taken.stderr
    outside = docker("run", "--rm", "--network", name, "--ip", "10.9.9.9", "busybox", "true")
    assert outside.returncode == 125 and b"does not belong" in outside.stderr
    busy = docker("network", "rm", name)
    assert (
        busy.returncode == 1 and b"has active endpoints" in busy.stderr and b"static" in busy.stderr
    )
    twice = docker("network", "connect", name, "static")
    assert twice.returncode == 1 and b"already exists in network" in twice.stderr
    assert docker("network", "rm", "bridge").returncode == 1
    status, _ = api_request(daemon, "POST", "/networks/create", b'{"Name": "x", "IPAM": "nope"}')
    assert status == 400
    status, _ = api_request(daemon, "POST", "/networks/create", b'{"Name": 5}')
    assert status == 400


def test_connect_disconnect_live_and_modes(docker, daemon, net, box):
    a = net("dyt-c1", "--subnet", _subnet(daemon, 5))
    box("multi", "busybox", "sleep", "300")
    docker("network", "connect", "--alias", "m", a, "multi", check=True)
    links = docker("exec", "multi", "ls", "/sys/class/net", check=True).stdout.split()
    assert links == [b"eth0", b"eth1", b"lo"]
    out = docker("run", "--rm", "--network", a, "busybox", "ping", "-c3", "-W5", "m")
    assert out.returncode == 0
    docker("network", "disconnect", a, "multi", check=True)
    assert docker("exec", "multi", "ls", "/sys/class/net").stdout.split() == [b"eth0", b"lo"]
    shared = docker(
        "run", "--rm", "--network", "container:multi", "busybox", "ls", "/sys/class/net", check=True
    )
    assert shared.stdout.split() == [b"eth0", b"lo"]
    host = docker("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net", check=True)
    assert set(host.stdout.split()) == set(n.encode() for n in os.listdir("/sys/class/net"))


def test_docker_py_network_api(api, daemon):
    import docker as docker_py

    ipam = docker_py.types.IPAMConfig(
        pool_configs=[docker_py.types.IPAMPool(subnet=_subnet(daemon, 6))]
    )
    network = api.networks.create("dyt-py", driver="bridge", ipam=ipam, labels={"t": "py"})
    c = api.containers.run("busybox", "sleep 300", detach=True)
    try:
        network.connect(c, aliases=["pyalias"])
        network.reload()
        assert [x.id for x in network.containers] == [c.id]
        c.reload()
        ep = c.attrs["NetworkSettings"]["Networks"]["dyt-py"]
        assert ep["Aliases"] == ["pyalias"]  # docker-py 7.1 speaks 1.45: no short ID
        assert c.id[:12] in ep["DNSNames"]
        assert api.networks.get("dyt-py").attrs["IPAM"]["Config"][0]["Subnet"] == _subnet(daemon, 6)
        assert [n.name for n in api.networks.list(filters={"label": "t=py"})] == ["dyt-py"]
        network.disconnect(c)
    finally:
        c.remove(force=True)
        network.remove()


def test_network_survives_daemon_kill_9(workdir):
    root = os.path.join(workdir, "net-live")
    engine = start_dockyardd(root)
    try:
        make_busybox(engine)
        pools = network_config(root)["default-address-pools"][0]["base"].split(".")
        subnet = f"{pools[0]}.{pools[1]}.9.0/24"
        engine.cli("network", "create", "--subnet", subnet, "keepnet", check=True)
        port = _free_port()
        engine.cli(
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "keepnet",
            "-p",
            f"127.0.0.1:{port}:80",
            "busybox",
            "sh",
            "-c",
            HTTPD.format(text="kept"),
            check=True,
        )
        engine.cli(
            "run",
            "-d",
            "--name",
            "cli",
            "--network",
            "keepnet",
            "busybox",
            "sleep",
            "600",
            check=True,
        )
        before = json.loads(engine.cli("inspect", "srv").stdout)[0]["NetworkSettings"]["Networks"][
            "keepnet"
        ]
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        engine = start_dockyardd(root)
        after = json.loads(engine.cli("inspect", "srv").stdout)[0]["NetworkSettings"]["Networks"][
            "keepnet"
        ]
        assert after["IPAddress"] == before["IPAddress"]
        assert _fetch(port) == b"kept\n"  # the proxy is made again as the daemon restores
        out = engine.cli("exec", "cli", "sh", "-c", GET.format(host="srv"))
        assert out.stdout == b"kept\n"
        # a new container does not get an address already held
        engine.cli(
            "run",
            "-d",
            "--name",
            "third",
            "--network",
            "keepnet",
            "busybox",
            "sleep",
            "600",
            check=True,
        )
        third = json.loads(engine.cli("inspect", "third").stdout)[0]["NetworkSettings"]["Networks"][
            "keepnet"
        ]
        ips = {
            before["IPAddress"],
            json.loads(engine.cli("inspect", "cli").stdout)[0]["NetworkSettings"]["Networks"][
                "keepnet"
            ]["IPAddress"],
        }
        assert third["IPAddress"] not in ips
        engine.cli("rm", "-f", "srv", "cli", "third", check=True)
        engine.cli("network", "rm", "keepnet", check=True)
    finally:
        engine.stop()


def test_network_prune_filters(docker, daemon):
    docker(
        "network",
        "create",
        "--label",
        "dyt-prune=1",
        "--subnet",
        _subnet(daemon, 7),
        "dyt-prune",
        check=True,
    )
    try:
        kept = docker(
            "network", "prune", "-f", "--filter", "until=2000-01-01T00:00:00Z", check=True
        )
        assert b"dyt-prune" not in kept.stdout
        kept = docker("network", "prune", "-f", "--filter", "label!=dyt-prune", check=True)
        assert b"dyt-prune" not in kept.stdout
        gone = docker("network", "prune", "-f", "--filter", "label=dyt-prune=1", check=True)
        assert b"dyt-prune" in gone.stdout
        assert docker("network", "inspect", "dyt-prune").returncode == 1
    finally:
        docker("network", "rm", "dyt-prune")


def test_connect_to_a_user_network_starts_embedded_dns(docker, daemon, net, box):
    """A container started on the default bridge (host resolvers) and then connected to a
    user network resolves the names on it, as on dockerd (libnetwork starts the sandbox's
    resolver on the join and rewrites resolv.conf, keeping the host's servers upstream)."""
    a = net("dyt-dnsc", "--subnet", _subnet(daemon, 7))
    box("dns-late", "busybox", "sleep", "300")
    box("dns-peer", "--network", a, "busybox", "sleep", "300")
    before = docker("exec", "dns-late", "cat", "/etc/resolv.conf", check=True).stdout
    assert b"127.0.0.11" not in before
    docker("network", "connect", a, "dns-late", check=True)
    after = docker("exec", "dns-late", "cat", "/etc/resolv.conf", check=True).stdout
    assert b"nameserver 127.0.0.11" in after
    out = docker("exec", "dns-late", "ping", "-c1", "-W5", "dns-peer")
    assert out.returncode == 0, out.stdout + out.stderr
    # and the other way round
    out = docker("exec", "dns-peer", "ping", "-c1", "-W5", "dns-late")
    assert out.returncode == 0, out.stdout + out.stderr
