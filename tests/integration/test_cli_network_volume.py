"""``volume``, ``network`` and ``port`` commands of the dockyard CLI against the official docker
CLI, both talking to the same engine.  Commands that change state are run once per CLI on
objects of their own (random names, unusual subnets 10.213.x.0/24) and the results compared
with the names normalised; every object a test makes is removed by a finalizer.

The reference dockerd runs with ``--bridge none --iptables=false``: user-defined bridge
networks still work (and so does publishing ports, through docker-proxy), only the default
bridge is missing."""

from __future__ import annotations

import functools
import itertools
import json
import random
import uuid

import pytest
from engines import assert_same

_SUBNETS = itertools.count(random.randrange(0, 200))


def subnet() -> str:
    return f"10.213.{next(_SUBNETS) % 250}.0/24"


@pytest.fixture
def made(engine):
    """Unique names for volumes, networks and containers; all removed afterwards."""
    kinds: dict[str, list[str]] = {"container": [], "network": [], "volume": []}

    def make(kind: str, prefix: str = "x", name: str = "") -> str:
        name = name or f"dyt-{prefix}-{uuid.uuid4().hex[:8]}"
        kinds[kind].append(name)
        return name

    yield make
    if kinds["container"]:
        engine.cli("rm", "-f", *kinds["container"])
    if kinds["network"]:
        engine.cli("network", "rm", "-f", *kinds["network"])
    if kinds["volume"]:
        engine.cli("volume", "rm", "-f", *kinds["volume"])


def each_cli(dy_cli, ref, args_for):
    """Run ``args_for(cli_index)`` with both CLIs; (dockyard result, docker result)."""
    return dy_cli(*args_for(0)), ref(*args_for(1))


# -- volumes --------------------------------------------------------------------------------


def test_volume_create_ls_inspect_rm(dy_cli, ref, made):
    tag = uuid.uuid4().hex[:8]
    names = [made("volume", "v"), made("volume", "v")]
    mine, theirs = each_cli(
        dy_cli,
        ref,
        lambda i: (
            "volume",
            "create",
            "-d",
            "local",
            "--label",
            f"dyt={tag}",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "--opt",
            "o=size=1m",
            names[i],
        ),
    )
    assert (mine.returncode, mine.stdout) == (0, names[0].encode() + b"\n"), mine.stderr
    assert (theirs.returncode, theirs.stdout) == (0, names[1].encode() + b"\n"), theirs.stderr
    shown = [
        json.loads(cli("volume", "inspect", n).stdout)[0]
        for cli, n in ((dy_cli, names[0]), (ref, names[1]))
    ]
    for v in shown:
        v.pop("CreatedAt")
        v["Mountpoint"] = v["Mountpoint"].replace(v["Name"], "NAME")
        v["Name"] = "NAME"
    assert shown[0] == shown[1]
    assert shown[0]["Labels"] == {"dyt": tag} and shown[0]["Options"]["o"] == "size=1m"
    # anonymous volume: a 64-hex name
    anon = dy_cli("volume", "create", "--label", f"dyt={tag}")
    assert anon.returncode == 0 and len(anon.stdout.strip()) == 64
    anon_name = made("volume", name=anon.stdout.decode().strip())
    # read-only commands: byte for byte
    for args in (
        ("volume", "ls", "-f", f"label=dyt={tag}"),
        ("volume", "ls", "-q", "--filter", f"label=dyt={tag}"),
        ("volume", "list", "-f", f"label=dyt={tag}", "--format", "{{json .}}"),
        (
            "volume",
            "ls",
            "-f",
            f"label=dyt={tag}",
            "--format",
            "table {{.Name}}\t{{.Driver}}\t{{.Scope}}\t{{.Labels}}\t{{.Links}}\t{{.Size}}",
        ),
        ("volume", "ls", "-f", f"label=dyt={tag}", "--format", "{{.Name}}: {{.Mountpoint}}"),
        ("volume", "inspect", *names),
        ("volume", "inspect", "--format", "json", *names),
        ("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{json .Labels}}", names[0]),
        ("volume", "inspect", names[0], "dyt-nosuch-vol", names[1]),
        ("volume", "inspect", "-f", "{{.Nope}}", names[0]),
        ("volume", "inspect", "-f", "{{.Name}}", "dyt-nosuch-vol"),
        ("volume", "rm", "dyt-nosuch-vol"),
    ):
        assert_same(dy_cli, ref, *args)
    listing = dy_cli("volume", "ls", "-f", f"label=dyt={tag}").stdout.decode().splitlines()
    assert listing[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert sorted(line.split()[1] for line in listing[1:]) == sorted(names + [anon_name])
    # rm: names removed on stdout, one error per missing name on stderr, exit 1
    mine, theirs = each_cli(
        dy_cli,
        ref,
        lambda i: ("volume", "rm", names[i], "dyt-nosuch-vol", *([anon_name] if i == 0 else [])),
    )
    assert (mine.returncode, mine.stdout, mine.stderr) == (
        1,
        f"{names[0]}\n{anon_name}\n".encode(),
        theirs.stderr,
    )
    assert (theirs.returncode, theirs.stdout) == (1, f"{names[1]}\n".encode())


def test_volume_create_errors(dy_cli, ref, made):
    name = made("volume")
    for args in (
        ("volume", "create", "-d", "dyt-nosuch-driver", name),
        ("volume", "create", "-o", "bogus=1", name),
        ("volume", "create", "--name", name, "other"),
    ):
        assert_same(dy_cli, ref, *args)
    # (one label per object elsewhere: docker joins .Labels in Go's random map order)
    res = dy_cli("volume", "create", "--label", "bare", "--label", "k=v=w", name)
    assert res.stdout == name.encode() + b"\n"
    assert json.loads(dy_cli("volume", "inspect", name).stdout)[0]["Labels"] == {
        "bare": "",
        "k": "v=w",
    }
    bad = dy_cli("volume", "create", "--label", "=x")
    assert bad.returncode == 125 and bad.stderr.startswith(
        b'invalid argument "=x" for "--label" flag: invalid label \'=x\': empty name\n'
    )


def test_volume_prune(dy_cli, ref, made):
    # At API 1.41 both engines prune unused named volumes too (1.42+ keeps them).  The
    # dockyard CLI speaks 1.41, so the docker CLI it is compared with is pinned to 1.41
    # (dockyardd advertises 1.50, where the prompt says "anonymous local volumes").
    newest = ref("volume", "prune", input=b"n\n")
    assert newest.returncode == 0
    if ref("version", "--format", "{{.Server.APIVersion}}").stdout.strip() == b"1.50":
        assert b"remove anonymous local volumes" in newest.stdout  # dockyardd
    ref = functools.partial(ref, env={"DOCKER_API_VERSION": "1.41"})
    # The prompt, declined; --all needs API 1.42.
    assert_same(dy_cli, ref, "volume", "prune", input=b"n\n")
    assert_same(dy_cli, ref, "volume", "prune", "-a")
    assert_same(dy_cli, ref, "volume", "prune", "-f", "--filter", "label=dyt-nothing-has-this")
    names = [made("volume", "pr"), made("volume", "pr")]
    tags = [uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]]
    for cli, name, tag in ((dy_cli, names[0], tags[0]), (ref, names[1], tags[1])):
        cli("volume", "create", "--label", f"dyt={tag}", name, check=True)
    mine, theirs = each_cli(
        dy_cli, ref, lambda i: ("volume", "prune", "--filter", f"label=dyt={tags[i]}")
    )
    assert mine.returncode == theirs.returncode == 0
    assert mine.stdout.replace(names[0].encode(), b"NAME") == theirs.stdout.replace(
        names[1].encode(), b"NAME"
    )
    assert mine.stdout == (
        b"WARNING! This will remove all local volumes not used by at least one container.\n"
        b"Are you sure you want to continue? [y/N] "
    )  # stdin is empty: declined
    mine, theirs = [
        cli("volume", "prune", "--filter", f"label=dyt={tag}", input=b"y\n")
        for cli, tag in ((dy_cli, tags[0]), (ref, tags[1]))
    ]
    assert (mine.returncode, mine.stdout.replace(names[0].encode(), b"NAME")) == (
        theirs.returncode,
        theirs.stdout.replace(names[1].encode(), b"NAME"),
    )
    assert mine.stdout.endswith(
        f"[y/N] Deleted Volumes:\n{names[0]}\n\nTotal reclaimed space: 0B\n".encode()
    )


# -- networks -------------------------------------------------------------------------------


def _net_view(info: dict) -> dict:
    info = dict(info)
    for key in ("Id", "Created", "Name"):
        info.pop(key)
    # API 1.47 added EnableIPv4: the docker CLI shows it at 1.50 (dockyardd), the dockyard
    # CLI speaks 1.41 and does not
    assert info.pop("EnableIPv4", True) is True
    return info


def test_network_create_ls_inspect_rm(dy_cli, ref, made):
    tag = uuid.uuid4().hex[:8]
    names = [made("network", "n"), made("network", "n")]
    nets = [subnet(), subnet()]

    def create(i):
        base = nets[i].rsplit(".", 1)[0]
        return (
            "network",
            "create",
            "-d",
            "bridge",
            "--subnet",
            nets[i],
            "--gateway",
            f"{base}.1",
            "--ip-range",
            f"{base}.128/25",
            "--internal",
            "--attachable",
            "--label",
            f"dyt={tag}",
            "-o",
            "com.docker.network.driver.mtu=1400",
            names[i],
        )

    mine, theirs = each_cli(dy_cli, ref, create)
    assert mine.returncode == 0 and len(mine.stdout.strip()) == 64, mine.stderr
    assert theirs.returncode == 0, theirs.stderr
    shown = [
        json.loads(cli("network", "inspect", n).stdout)[0]
        for cli, n in ((dy_cli, names[0]), (ref, names[1]))
    ]
    assert shown[0]["Id"] == mine.stdout.decode().strip()
    for i, info in enumerate(shown):
        assert info["IPAM"]["Config"] == [
            {
                "Subnet": nets[i],
                "IPRange": nets[i].replace(".0/24", ".128/25"),
                "Gateway": nets[i].replace(".0/24", ".1"),
            }
        ]
        info["IPAM"]["Config"] = "X"
    assert _net_view(shown[0]) == _net_view(shown[1])
    assert shown[0]["Internal"] and shown[0]["Attachable"] and shown[0]["Driver"] == "bridge"
    # The dockyard CLI speaks 1.41; at 1.47+ the docker CLI adds network EnableIPv4 ("IPv4"
    # in `ls --format '{{json .}}'`, inspect), so the one it is compared with is pinned.
    ref = functools.partial(ref, env={"DOCKER_API_VERSION": "1.41"})
    for args in (
        ("network", "ls", "-f", f"label=dyt={tag}"),
        ("network", "ls", "-q", "-f", f"label=dyt={tag}"),
        ("network", "ls", "--no-trunc", "--filter", f"label=dyt={tag}"),
        ("network", "list", "-f", f"label=dyt={tag}", "--format", "{{json .}}"),
        (
            "network",
            "ls",
            "-f",
            f"label=dyt={tag}",
            "--format",
            "table {{.Name}}\t{{.Driver}}\t{{.Scope}}\t{{.Internal}}\t{{.IPv6}}\t{{.Labels}}\t{{.CreatedAt}}",
        ),
        ("network", "ls", "-f", "name=none"),
        ("network", "ls", "-f", "driver=null", "--format", "{{.Name}} {{.ID}}"),
        ("network", "inspect", *names),
        ("network", "inspect", "--format", "json", *names),
        (
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Internal}} {{json .Options}}",
            *names,
        ),
        ("network", "inspect", names[0], "dyt-nosuch-net", names[1]),
        ("network", "inspect", "-f", "{{.Nope}}", names[0]),
        ("network", "create", "--subnet", nets[0], names[0]),  # duplicate name
        ("network", "rm", "dyt-nosuch-net"),
        ("network", "rm", "-f", "dyt-nosuch-net"),
    ):
        assert_same(dy_cli, ref, *args)
    listing = dy_cli("network", "ls", "-f", f"label=dyt={tag}").stdout.decode().splitlines()
    assert listing[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert sorted(line.split()[1] for line in listing[1:]) == sorted(names)
    mine, theirs = each_cli(dy_cli, ref, lambda i: ("network", "rm", names[i], "dyt-nosuch-net"))
    assert (mine.returncode, mine.stdout, mine.stderr) == (
        theirs.returncode,
        names[0].encode() + b"\n",
        theirs.stderr,
    )
    assert theirs.stdout == names[1].encode() + b"\n"
    assert (
        theirs.stderr
        == b"Error response from daemon: network dyt-nosuch-net not found\nexit status 1\n"
    )


def test_network_create_cli_checks(dy_cli, ref, made):
    """Checks the docker CLI makes before it sends anything (and one the daemon makes)."""
    name = made("network")
    s = subnet()
    base = s.rsplit(".", 1)[0]
    other = subnet()
    for extra in (
        (("--gateway", f"{base}.1")),
        ("--subnet", s, "--gateway", other.replace(".0/24", ".1")),
        ("--subnet", s, "--subnet", s.replace("/24", "/25")),
        ("--subnet", s, "--ip-range", f"{base}.0/26", "--ip-range", f"{base}.64/26"),
        ("--subnet", s, "--ip-range", other.replace("/24", "/26")),
        ("--subnet", s, "--ip-range", "bad"),
        ("--subnet", s, "--ip-range", f"{base}.5"),
        ("--subnet", s, "--gateway", "bad"),
        ("--subnet", s, "--gateway", f"{base}.1", "--gateway", f"{base}.2"),
        ("--subnet", f"{s},{other}", "--gateway", f"{base}.1,10.214.0.1"),
        ("--subnet", s, "--aux-address", "a=10.214.0.1"),
        ("--subnet", "bad", "--subnet", s),
        ("-d", "dyt-nosuch-driver"),
    ):
        assert_same(dy_cli, ref, "network", "create", *extra, name)
    bad = dy_cli("network", "create", "--label", "=x", name)
    assert bad.returncode == 125 and bad.stderr.startswith(
        b'invalid argument "=x" for "--label" flag: invalid label \'=x\': empty name\n'
    )


def test_network_prune(dy_cli, ref, made):
    assert_same(dy_cli, ref, "network", "prune", input=b"n\n")
    assert_same(dy_cli, ref, "network", "prune", "-f", "--filter", "label=dyt-nothing-has-this")
    names = [made("network", "pr"), made("network", "pr")]
    tags = [uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]]
    for cli, name, tag in ((dy_cli, names[0], tags[0]), (ref, names[1], tags[1])):
        cli(
            "network",
            "create",
            "--internal",
            "--subnet",
            subnet(),
            "--label",
            f"dyt={tag}",
            name,
            check=True,
        )
    mine, theirs = [
        cli("network", "prune", "--filter", f"label=dyt={tag}", input=b"y\n")
        for cli, tag in ((dy_cli, tags[0]), (ref, tags[1]))
    ]
    assert (mine.returncode, mine.stdout.replace(names[0].encode(), b"NAME")) == (
        theirs.returncode,
        theirs.stdout.replace(names[1].encode(), b"NAME"),
    )
    assert (
        mine.stdout
        == (
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            f"Are you sure you want to continue? [y/N] Deleted Networks:\n{names[0]}\n\n"
        ).encode()
    )


def test_network_connect_disconnect(dy_cli, ref, made):
    first, second = made("network", "c1"), made("network", "c2")
    s1, s2 = subnet(), subnet()
    ref("network", "create", "--internal", "--subnet", s1, first, check=True)
    ref("network", "create", "--internal", "--subnet", s2, second, check=True)
    ip = s2.replace(".0/24", ".77")
    views = []
    for i, cli in enumerate((dy_cli, ref)):
        name = made("container", f"c{i}")
        cli("create", "--network", first, "--name", name, "busybox", "sleep", "300", check=True)
        res = cli(
            "network",
            "connect",
            "--ip",
            ip if i == 0 else ip.replace(".77", ".78"),
            "--alias",
            "a1,a2",
            "--alias",
            "a3",
            second,
            name,
        )
        assert (res.returncode, res.stdout, res.stderr) == (0, b"", b""), res.stderr
        info = json.loads(cli("inspect", name).stdout)[0]
        ep = info["NetworkSettings"]["Networks"][second]
        # dockerd adds the short container id to the aliases
        views.append((ep["IPAMConfig"], [a for a in ep["Aliases"] if a != info["Id"][:12]]))
        res = cli("network", "disconnect", second, name)
        assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
        nets = json.loads(cli("inspect", name).stdout)[0]["NetworkSettings"]["Networks"]
        assert sorted(nets) == [first]
        for args in (
            ("network", "disconnect", second, name),
            ("network", "disconnect", "-f", second, name),
            ("network", "connect", "--ip", "bad", second, name),
            ("network", "connect", "--driver-opt", "novalue", second, name),
        ):
            assert_same(dy_cli, ref, *args)
    assert views[0][1] == views[1][1] == ["a1", "a2", "a3"]
    assert views[0][0] == {"IPv4Address": ip} and views[1][0] == {
        "IPv4Address": ip.replace(".77", ".78")
    }
    for args in (
        ("network", "connect", "dyt-nosuch-net", "dyt-nosuch-ctr"),
        ("network", "connect", second, "dyt-nosuch-ctr"),
        ("network", "disconnect", "dyt-nosuch-net", "dyt-nosuch-ctr"),
        ("network", "disconnect", second, "dyt-nosuch-ctr"),
    ):
        assert_same(dy_cli, ref, *args)


# -- port -----------------------------------------------------------------------------------


def test_port(dy_cli, ref, made):
    net = made("network", "p")
    ref("network", "create", "--subnet", subnet(), net, check=True)
    name = made("container", "p")
    # ephemeral host ports only: docker-proxy binds them on this host
    ref(
        "run",
        "-d",
        "--network",
        net,
        "--name",
        name,
        "-p",
        "80",
        "-p",
        "127.0.0.1::82",
        "-p",
        "83/udp",
        "--expose",
        "84",
        "busybox",
        "sleep",
        "300",
        check=True,
    )
    listing = assert_same(dy_cli, ref, "port", name)
    assert b"80/tcp -> 0.0.0.0:" in listing.stdout and b"82/tcp -> 127.0.0.1:" in listing.stdout
    for args in (
        ("port", name, "80"),
        ("port", name, "80/tcp"),
        ("port", name, "82"),
        ("port", name, "83/udp"),
        ("port", name, "83"),
        ("port", name, "84"),
        ("port", name, "8x"),
        ("port", name, "99999"),
        ("port", name, "/tcp"),
        ("container", "port", name),
        ("port", "dyt-nosuch-ctr"),
        ("port", "dyt-nosuch-ctr", "80"),
    ):
        assert_same(dy_cli, ref, *args)
    single = dy_cli("port", name, "82").stdout.decode()
    assert single.startswith("127.0.0.1:") and single.count("\n") == 1
    missing = dy_cli("port", name, "83")
    assert missing.stderr == f"Error: No public port '83' published for {name}\n".encode()
