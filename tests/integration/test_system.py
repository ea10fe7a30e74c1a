"""System endpoints through the official docker CLI, docker-py and raw HTTP."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

from engines import DOCKER_CLI


def raw(daemon, request: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(daemon.sock)
    s.sendall(request)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data


def test_ping_headers(daemon):
    for method in (b"HEAD", b"GET"):
        reply = raw(daemon, method + b" /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        headers = head.decode().lower()
        assert head.startswith(b"HTTP/1.1 200")
        assert "api-version: 1.50" in headers
        assert "ostype: linux" in headers
        assert "builder-version: 1" in headers
        assert body == (b"OK" if method == b"GET" else b"")


def test_docker_version_speaks_1_50(docker):
    out = docker("version", check=True).stdout.decode()
    # dockyardd advertises 1.50, docker CLI 28's own: no "(downgraded from ...)"
    assert re.search(r"API version:\s+1\.50 \(minimum version 1\.12\)", out), out
    assert "downgraded" not in out
    assert "dockyard" in out


def test_dockyard_version_format(dockyard):
    out = dockyard("version", "--format", "{{.Client.Version}} {{.Server.APIVersion}}", check=True)
    assert out.stdout.decode().strip() == "0.1.0 1.50"


def test_info_with_docker_and_docker_py(docker, api):
    out = docker("info", "--format", "{{.Driver}} {{.OSType}} {{.Images}}", check=True)
    driver, ostype, images = out.stdout.decode().split()
    assert driver in ("overlay2", "vfs") and ostype == "linux" and int(images) >= 1
    info = api.info()
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert api.version()["ApiVersion"] == "1.50"


def test_version_prefix_bounds(daemon):
    too_new = raw(daemon, b"GET /v1.99/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert too_new.startswith(b"HTTP/1.1 400")
    assert b"client version 1.99 is too new. Maximum supported API version is 1.50" in too_new
    too_old = raw(daemon, b"GET /v1.11/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert too_old.startswith(b"HTTP/1.1 400")
    assert b"client version 1.11 is too old. Minimum supported API version is 1.12" in too_old
    ok = raw(daemon, b"GET /v1.12/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")


def test_unknown_route_and_swarm_stubs(daemon, docker, api):
    reply = raw(daemon, b"GET /v1.41/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404") and b'{"message":"page not found"}' in reply
    out = docker("service", "ls")
    assert out.returncode == 1 and b"This node is not a swarm manager" in out.stderr
    assert api.api.plugins() == []
    reply = raw(
        daemon,
        b"POST /v1.41/swarm/leave?force=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 503")


def test_bad_filters(daemon):
    reply = raw(
        daemon,
        b"GET /v1.41/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 400") and b"Invalid filter 'bogus'" in reply
    reply = raw(
        daemon,
        b"GET /v1.41/images/json?filters=notjson HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 400")


def test_events_since_until_and_live(daemon, docker):
    start = time.time()
    docker("tag", "busybox", "evt/one:1", check=True)
    docker("rmi", "evt/one:1", check=True)
    out = (
        docker(
            "events",
            "--since",
            f"{start - 1:.3f}",
            "--until",
            f"{time.time() + 0.5:.3f}",
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
            check=True,
        )
        .stdout.decode()
        .splitlines()
    )
    assert "tag evt/one:1" in out and "untag evt/one:1" in out
    # live: a follower sees an event published after it subscribed
    follower = subprocess.Popen(
        [DOCKER_CLI, "events", "--filter", "event=tag", "--format", "{{json .}}"],
        env=daemon.env,
        stdout=subprocess.PIPE,
    )
    try:
        time.sleep(0.5)
        docker("tag", "busybox", "evt/two:2", check=True)
        line = follower.stdout.readline()
        event = json.loads(line)
        assert event["Type"] == "image" and event["Actor"]["Attributes"]["name"] == "evt/two:2"
    finally:
        follower.kill()
        follower.wait()
        docker("rmi", "evt/two:2")


def test_system_df(docker, dockyard):
    out = docker("system", "df", check=True).stdout.decode().splitlines()
    assert out[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert out[1].startswith("Images")
    mine = dockyard("system", "df", check=True).stdout.decode().splitlines()
    assert [line.split()[0] for line in mine] == [line.split()[0] for line in out]


def test_cli_errors(dockyard, daemon):
    bad = dockyard("images", "--bogus")
    assert bad.returncode == 125 and b"unknown flag: --bogus" in bad.stderr
    down = subprocess.run(
        [sys.executable, "-m", "dockyard.cli.main", "-H", "unix:///nonexistent.sock", "images"],
        capture_output=True,
    )
    assert (
        down.returncode == 1
        and b"Cannot connect to the Docker daemon at unix:///nonexistent.sock" in down.stderr
    )
