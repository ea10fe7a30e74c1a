"""Legacy container links (issue 15), side by side on the reference dockerd and on dockyardd:
the environment and /etc/hosts a link gives on the default bridge, inspect's
``HostConfig.Links`` and the list's extra ``Names``, dockerd's errors for bad specs and for
targets that are missing, stopped or elsewhere, ``DELETE ?link=1``, a target restarted with
a new address, and links on user-defined networks (endpoint ``Links``, no variables).

The reference dockerd of the other fidelity modules has no default bridge, so this module
starts its own on a bridge it makes (no iptables, its own address pools).  dockyard-only
checks at the end: the embedded DNS resolves an endpoint link's alias for the linker only,
and links survive a daemon restart.  Everything is removed even when a test fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid

import pytest
from engines import (
    api_request,
    assert_same,
    make_busybox,
    network_config,
    start_dockerd,
    start_dockyardd,
)

V = "/v1.41"


@pytest.fixture(scope="module")
def bridged_dockerd(workdir):
    """dockerd with a default bridge of its own (made here: dockerd makes only docker0)."""
    from dockyard.network import bridge

    root = os.path.join(workdir, "ref-links")
    cfg = network_config(root)
    # a pool apart from every dockyardd's (10.150-199) and bridge's (10.200-249)
    second = int(cfg["default-address-pools"][0]["base"].split(".")[1]) - 50
    bridge.ensure_bridge(cfg["bridge"], [cfg["bip"]], forwarding=False)
    engine = None
    try:
        engine = start_dockerd(
            root,
            "--default-address-pool",
            f"base=10.{second}.0.0/16,size=24",
            bridge=cfg["bridge"],
        )
        make_busybox(engine)
        yield engine
    finally:
        if engine is not None:
            engine.stop()
        bridge.delete_bridge(cfg["bridge"])


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("bridged_dockerd" if request.param == "dockerd" else "daemon")


class Scene:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.tag = uuid.uuid4().hex[:6]
        self.names: list[str] = []
        self.networks: list[str] = []

    def name(self, suffix: str) -> str:
        name = f"dyl{self.tag}{suffix}"
        self.names.append(name)
        return name

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        status, out = api_request(self.engine, method, f"{V}{path}", data)
        return status, (json.loads(out) if out.strip() else None)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return self.engine.cli(*args)

    def run(self, suffix: str, *args: str) -> str:
        """A named ``sleep`` container started in the background."""
        name = self.name(suffix)
        out = self.cli("run", "-d", "--name", name, *args, "busybox", "sleep", "300")
        assert out.returncode == 0, out.stderr
        return name

    def create(self, suffix: str, host_config: dict, endpoints: dict | None = None):
        name = self.name(suffix)
        body = {"Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": host_config}
        if endpoints is not None:
            body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
        status, out = self.call("POST", f"/containers/create?name={name}", body)
        return name, status, out

    def network(self) -> str:
        name = f"dyl{self.tag}net{len(self.networks)}"
        status, out = self.call("POST", "/networks/create", {"Name": name})
        assert status == 201, out
        self.networks.append(name)
        return name

    def inspect(self, name: str) -> dict:
        status, out = self.call("GET", f"/containers/{name}/json")
        assert status == 200, out
        return out

    def ip(self, name: str, network: str = "bridge") -> str:
        return self.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]

    def exec(self, name: str, *cmd: str) -> str:
        out = self.cli("exec", name, *cmd)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode()

    def clean(self) -> None:
        for name in reversed(self.names):
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


def test_link_environment_is_dockerds(scene):
    t = scene.run(
        "t",
        *("-e", "FOO=bar", "-e", "PATH=/x:/bin"),
        *("--expose", "80", "--expose", "53/udp", "--expose", "7000-7002"),
    )
    ip = scene.ip(t)
    me = scene.name("me")
    out = scene.cli(
        *("run", "--rm", "--name", me, "-h", "lh", "--link", f"{t}:al-x"),
        *("-e", "ZZ=1", "-e", "AL_X_NAME=over", "busybox", "env"),
    )
    assert out.returncode == 0, out.stderr
    # moby 20.10's order: its range block first, every port, the name, the target's Env
    # without PATH; the container's own Env overrides in place (AL_X_NAME) or appends
    assert out.stdout.decode().splitlines() == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOSTNAME=lh",
        f"AL_X_PORT=udp://{ip}:53",
        f"AL_X_PORT_7000_TCP_START=tcp://{ip}:7000",
        f"AL_X_PORT_7000_TCP_ADDR={ip}",
        "AL_X_PORT_7000_TCP_PROTO=tcp",
        "AL_X_PORT_7000_TCP_PORT_START=7000",
        f"AL_X_PORT_7000_TCP_END=tcp://{ip}:7002",
        "AL_X_PORT_7000_TCP_PORT_END=7002",
        f"AL_X_PORT_53_UDP=udp://{ip}:53",
        f"AL_X_PORT_53_UDP_ADDR={ip}",
        "AL_X_PORT_53_UDP_PORT=53",
        "AL_X_PORT_53_UDP_PROTO=udp",
        f"AL_X_PORT_80_TCP=tcp://{ip}:80",
        f"AL_X_PORT_80_TCP_ADDR={ip}",
        "AL_X_PORT_80_TCP_PORT=80",
        "AL_X_PORT_80_TCP_PROTO=tcp",
        f"AL_X_PORT_7000_TCP=tcp://{ip}:7000",
        "AL_X_PORT_7000_TCP_PORT=7000",
        f"AL_X_PORT_7001_TCP=tcp://{ip}:7001",
        f"AL_X_PORT_7001_TCP_ADDR={ip}",
        "AL_X_PORT_7001_TCP_PORT=7001",
        "AL_X_PORT_7001_TCP_PROTO=tcp",
        f"AL_X_PORT_7002_TCP=tcp://{ip}:7002",
        f"AL_X_PORT_7002_TCP_ADDR={ip}",
        "AL_X_PORT_7002_TCP_PORT=7002",
        "AL_X_PORT_7002_TCP_PROTO=tcp",
        "AL_X_NAME=over",
        "AL_X_ENV_FOO=bar",
        "ZZ=1",
        "HOME=/root",
    ]
    # moby's range grouping looks at numbers only: 52/tcp..54/udp is one "range"
    t2 = scene.run("t3", "--expose", "52-53", "--expose", "53-54/udp")
    ip2 = scene.ip(t2)
    out = scene.cli("run", "--rm", "--link", f"{t2}:b", "busybox", "env")
    got = [line for line in out.stdout.decode().splitlines() if line.startswith("B_")]
    assert got[:7] == [
        f"B_PORT=tcp://{ip2}:52",
        f"B_PORT_52_TCP_START=tcp://{ip2}:52",
        f"B_PORT_52_TCP_ADDR={ip2}",
        "B_PORT_52_TCP_PROTO=tcp",
        "B_PORT_52_TCP_PORT_START=52",
        f"B_PORT_52_UDP_END=udp://{ip2}:54",
        "B_PORT_52_UDP_PORT_END=54",
    ]
    assert got[-5:-1] == [
        f"B_PORT_54_UDP=udp://{ip2}:54",
        f"B_PORT_54_UDP_ADDR={ip2}",
        "B_PORT_54_UDP_PORT=54",
        "B_PORT_54_UDP_PROTO=udp",
    ]
    assert got[-1].startswith("B_NAME=/") and got[-1].endswith("/b")


def test_link_hosts_entries_are_dockerds(scene):
    t = scene.run("t")
    th = scene.run("th", "-h", "thost")
    ip, iph = scene.ip(t), scene.ip(th)
    short = scene.inspect(t)["Id"][:12]
    same = scene.cli("run", "--rm", "-h", "lh", "--link", t, "busybox", "cat", "/etc/hosts")
    lines = same.stdout.decode().splitlines()
    assert lines[-2] == f"{ip}\t{t} {short}"  # the alias is the name: not twice
    assert lines[-1].endswith("\tlh")
    other = scene.cli(
        *("run", "--rm", "-h", "lh", "--link", f"{t}:al", "--link", f"{th}:hl"),
        *("--add-host", "extra:10.9.9.9", "busybox", "cat", "/etc/hosts"),
    )
    lines = other.stdout.decode().splitlines()
    assert lines[-4] == "10.9.9.9\textra"  # --add-host first, then the links (any order)
    assert sorted(lines[-3:-1]) == sorted([f"{ip}\tal {short} {t}", f"{iph}\thl thost {th}"])
    assert lines[-1].endswith("\tlh")


def test_inspect_list_and_lookup_by_link_name(scene, dy_cli, ref):
    t = scene.run("t")
    p = scene.run("p", "--link", f"{t}:al")
    assert scene.inspect(p)["HostConfig"]["Links"] == [f"/{t}:/{p}/al"]
    target = scene.inspect(t)
    assert target["HostConfig"]["Links"] is None
    assert scene.inspect(p)["NetworkSettings"]["Networks"]["bridge"]["Links"] is None
    assert scene.inspect(f"{p}/al")["Id"] == target["Id"]  # the link's name finds the target
    assert scene.call("GET", "/containers/json")[0] == 200
    listed = scene.call("GET", "/containers/json")[1]
    names = {c["Id"]: c["Names"] for c in listed}
    assert names[target["Id"]] == [f"/{p}/al", f"/{t}"]
    ps = ("ps", "--no-trunc", "--filter", f"id={target['Id']}", "--format", "{{.Names}}")
    assert assert_same(dy_cli, ref, *ps).stdout.decode() == f"{p}/al,{t}\n"
    assert assert_same(
        dy_cli, ref, "ps", "--filter", f"id={target['Id']}", "--format", "{{.Names}}"
    )
    # a rename of the parent renames its links
    renamed = scene.name("renamed")
    assert scene.call("POST", f"/containers/{p}/rename?name={renamed}")[0] == 204
    assert scene.inspect(renamed)["HostConfig"]["Links"] == [f"/{t}:/{renamed}/al"]


def test_bad_links_get_dockerds_errors(scene):
    t = scene.run("t")
    for links, status, message in (
        (["nosuch:x"], 400, "could not get container for nosuch: No such container: nosuch"),
        ([":x"], 400, 'could not get container for : invalid name or ID supplied: ""'),
        (["a:b:c"], 500, "bad format for links: a:b:c"),
        ([""], 500, "empty string specified for links"),
    ):
        _, got, out = scene.create("bad", {"Links": links})
        assert (got, out["message"]) == (status, message), links
    for mode, kind in (
        ("host", "host type networking"),
        (f"container:{t}", "container type network"),
    ):
        _, got, out = scene.create("mode", {"NetworkMode": mode, "Links": [t]})
        assert (got, out["message"]) == (
            400,
            f"conflicting options: {kind} can't be used with links. "
            "This would result in undefined behavior",
        )
    _, got, _ = scene.create("none", {"NetworkMode": "none", "Links": [f"{t}:x"]})
    assert got == 201
    stopped, got, _ = scene.create("stopped", {})
    assert got == 201
    linker, got, _ = scene.create("linker", {"Links": [f"{stopped}:x"]})
    assert got == 201  # the target is checked at start
    status, out = scene.call("POST", f"/containers/{linker}/start")
    assert (status, out["message"]) == (
        500,
        f"Cannot link to a non running container: /{stopped} AS /{linker}/x",
    )
    net = scene.network()
    ut = scene.run("ut", "--network", net)
    bl, got, _ = scene.create("bl", {"Links": [f"{ut}:ua"]})
    status, out = scene.call("POST", f"/containers/{bl}/start")
    assert (status, out["message"]) == (
        500,
        f"Cannot link to /{ut}, as it does not belong to the default network",
    )


def test_delete_link_removes_the_link_not_the_container(scene, dy_cli, ref):
    t = scene.run("t", "--expose", "80")
    p = scene.run("p", "--link", f"{t}:al", "--link", f"{t}:second")
    short = scene.inspect(t)["Id"][:12]
    assert f"\tal {short} {t}\n" in scene.exec(p, "cat", "/etc/hosts")
    for path, status, message in (
        (t, 500, "Conflict, cannot remove the default link name of the container"),
        ("nosuch", 404, "No such container: nosuch"),
        (f"{p}/nosuch", 404, f"No such container: {p}/nosuch"),
    ):
        got, out = scene.call("DELETE", f"/containers/{path}?link=1")
        assert (got, out["message"]) == (status, message), path
    assert scene.call("DELETE", f"/containers/{p}/al?link=1") == (204, None)
    got, out = scene.call("DELETE", f"/containers/{p}/al?link=1")
    assert (got, out["message"]) == (404, f"No such container: {p}/al")
    assert scene.inspect(p)["HostConfig"]["Links"] == [f"/{t}:/{p}/second"]
    assert scene.inspect(t)["State"]["Running"]
    hosts = scene.exec(p, "cat", "/etc/hosts")
    assert f"\tal {short}" not in hosts and f"\tsecond {short} {t}\n" in hosts
    env = scene.exec(p, "env")  # an exec's environment has the links as they are now
    assert "SECOND_PORT=" in env and "AL_PORT=" not in env
    assert_same(dy_cli, ref, "rm", "--link", t)
    assert dy_cli("rm", "--link", f"{p}/second").stdout.decode() == f"{p}/second\n"
    assert scene.inspect(p)["HostConfig"]["Links"] is None


def test_target_restart_updates_the_linkers_hosts(scene):
    t = scene.run("t", "--expose", "80")
    p = scene.run("p", "--link", t)
    before = scene.ip(t)
    assert scene.cli("stop", "-t", "0", t).returncode == 0
    scene.run("filler")  # takes the address the target had
    assert scene.cli("start", t).returncode == 0
    after = scene.ip(t)
    assert after != before
    short = scene.inspect(t)["Id"][:12]
    assert f"{after}\t{t} {short}\n" in scene.exec(p, "cat", "/etc/hosts")
    assert f"{t.upper()}_PORT=tcp://{after}:80\n" in scene.exec(p, "env")
    # a linker cannot exec or start while its target is stopped; it can once the target runs
    assert scene.cli("stop", "-t", "0", t).returncode == 0
    status, out = scene.call("POST", f"/containers/{p}/exec", {"Cmd": ["true"]})
    assert (status, out["message"]) == (
        500,
        f"Cannot link to a non running container: /{t} AS /{p}/{t}",
    )
    assert scene.cli("stop", "-t", "0", p).returncode == 0
    status, out = scene.call("POST", f"/containers/{p}/start")
    assert (status, out["message"]) == (
        500,
        f"Cannot link to a non running container: /{t} AS /{p}/{t}",
    )
    assert scene.call("POST", f"/containers/{t}/start")[0] == 204
    assert scene.call("POST", f"/containers/{p}/start")[0] == 204
    assert f"{scene.ip(t)}\t{t} {short}\n" in scene.exec(p, "cat", "/etc/hosts")


def test_links_on_user_defined_networks(scene):
    net = scene.network()
    ut = scene.run("ut", "--network", net)
    # HostConfig.Links is ignored there (the CLI copies --link to the endpoint)
    ul, got, _ = scene.create("ul", {"NetworkMode": net, "Links": [f"{ut}:ua"]})
    assert got == 201
    view = scene.inspect(ul)
    assert view["HostConfig"]["Links"] is None
    assert view["NetworkSettings"]["Networks"][net]["Links"] is None
    cli_made = scene.run("cli", "--network", net, "--link", f"{ut}:ua")
    view = scene.inspect(cli_made)
    assert view["HostConfig"]["Links"] is None
    assert view["NetworkSettings"]["Networks"][net]["Links"] == [f"{ut}:ua"]
    assert "UA_" not in scene.exec(cli_made, "env")  # no variables off the default bridge
    ep, got, _ = scene.create(
        "ep", {"NetworkMode": net}, {net: {"Links": [f"{ut}:ub", ut, "nosuch:x"]}}
    )
    assert got == 201
    assert scene.inspect(ep)["NetworkSettings"]["Networks"][net]["Links"] == [
        f"{ut}:ub",
        ut,
        "nosuch:x",
    ]
    assert scene.call("POST", f"/containers/{ep}/start")[0] == 204  # kept verbatim
    assert scene.inspect(ep)["NetworkSettings"]["Networks"][net]["Links"] == [
        f"{ut}:ub",
        ut,
        "nosuch:x",
    ]
    bad, got, _ = scene.create("bad", {"NetworkMode": net}, {net: {"Links": ["a:b:c"]}})
    assert got == 201
    status, out = scene.call("POST", f"/containers/{bad}/start")
    assert (status, out["message"]) == (500, "bad format for links: a:b:c")
    joined = scene.run("joined")
    status, _ = scene.call(
        "POST",
        f"/networks/{net}/connect",
        {"Container": joined, "EndpointConfig": {"Links": [f"{ut}:uz"]}},
    )
    assert status == 200
    view = scene.inspect(joined)
    assert view["NetworkSettings"]["Networks"][net]["Links"] == [f"{ut}:uz"]
    assert view["HostConfig"]["Links"] is None


def test_run_link_flag_errors_match_docker(dy_cli, ref):
    for spec, reason in (
        ("a:b:c", "bad format for links: a:b:c"),
        ("", "empty string specified for links"),
    ):
        out = dy_cli("run", "--rm", "--link", spec, "busybox", "true")
        assert out.returncode == ref("run", "--rm", "--link", spec, "busybox", "true").returncode
        assert f'invalid argument "{spec}" for "--link" flag: {reason}' in out.stderr.decode()


# ---- dockyard only ---------------------------------------------------------------------------
def test_endpoint_link_alias_resolves_for_the_linker_only(daemon):
    scene = Scene(daemon)
    try:
        net = scene.network()
        ut = scene.run("ut", "--network", net)
        ul = scene.run("ul", "--network", net, "--link", f"{ut}:ua")
        ip = scene.ip(ut, net)
        answer = scene.cli("exec", ul, "nslookup", "ua")
        assert answer.returncode == 0, answer.stdout
        assert f"Address: {ip}" in answer.stdout.decode()
        other = scene.cli("exec", ut, "nslookup", "ua")
        assert other.returncode != 0 and b"NXDOMAIN" in other.stdout + other.stderr
    finally:
        scene.clean()


def test_links_survive_a_daemon_restart(workdir):
    root = os.path.join(workdir, "links-restart")
    engine = start_dockyardd(root)
    try:
        make_busybox(engine)
        scene = Scene(engine)
        t = scene.run("t", "--expose", "80")
        p = scene.run("p", "--link", f"{t}:al")
        engine.proc.send_signal(signal.SIGTERM)
        engine.proc.wait(20)
        engine = start_dockyardd(root)
        scene.engine = engine
        assert scene.inspect(p)["HostConfig"]["Links"] == [f"/{t}:/{p}/al"]
        assert scene.inspect(f"{p}/al")["Name"] == f"/{t}"
        assert scene.cli("restart", "-t", "0", p).returncode == 0
        assert f"AL_PORT=tcp://{scene.ip(t)}:80\n" in scene.exec(p, "env")
        assert scene.call("DELETE", f"/containers/{p}/al?link=1")[0] == 204
    finally:
        engine.stop()


def test_dockyard_cli_run_link_end_to_end(scene, dy_cli):
    t = scene.run("t")
    short = scene.inspect(t)["Id"][:12]
    out = dy_cli("run", "--rm", "--link", f"{t}:al", "busybox", "cat", "/etc/hosts")
    assert out.returncode == 0, out.stderr
    assert f"{scene.ip(t)}\tal {short} {t}\n" in out.stdout.decode()
    net = scene.network()
    ut = scene.run("ut", "--network", net)
    ul = scene.name("ul")
    made = dy_cli("run", "-d", "--name", ul, "--network", net, "--link", f"{ut}:ua", "busybox")
    assert made.returncode == 0, made.stderr
    view = scene.inspect(ul)
    assert view["NetworkSettings"]["Networks"][net]["Links"] == [f"{ut}:ua"]
    assert view["HostConfig"]["Links"] is None
