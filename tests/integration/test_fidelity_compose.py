"""A docker-compose 1.29 project (issue 15), side by side on the reference dockerd and on
dockyardd: a user network with IPv4 and IPv6 pools, a service with static addresses and an
alias, a scaled service, ``up`` twice (the second changes nothing), name resolution between
services, and ``down`` leaving nothing behind.  docker-compose is Debian's package
(``apt-get install docker-compose``).  ``down`` runs even when the test fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

COMPOSE = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["sleep", "300"]
    networks:
      front:
        ipv4_address: {v4}.10
        ipv6_address: {v6}::10
        aliases: [www]
  worker:
    image: busybox
    command: ["sleep", "300"]
    networks: [front]
networks:
  front:
    enable_ipv6: true
    ipam:
      config:
        - subnet: {v4}.0/24
        - subnet: {v6}::/64
"""


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def project(engine, tmp_path):
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose 1.29 is not installed: apt-get install docker-compose")
    # each engine its own subnets: the two bridges live on one host
    n = 5 if engine.sock.endswith("docker.sock") else 6
    (tmp_path / "docker-compose.yml").write_text(
        COMPOSE.format(v4=f"10.232.{n}", v6=f"fd00:232:{n}")
    )
    name = f"dytfc{uuid.uuid4().hex[:6]}"
    env = {**engine.env, "COMPOSE_PROJECT_NAME": name}

    def compose(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker-compose", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    compose.name = name  # type: ignore[attr-defined]
    compose.n = n  # type: ignore[attr-defined]
    try:
        yield compose
    finally:
        compose("down", "-v", "--remove-orphans")


def test_compose_project_up_twice_and_down(engine, project):
    up = project("up", "-d", "--scale", "worker=3")
    assert up.returncode == 0, up.stderr
    ids = project("ps", "-q").stdout.split()
    assert len(ids) == 4
    again = project("up", "-d", "--scale", "worker=3")
    assert again.returncode == 0, again.stderr
    assert "Recreating" not in again.stderr and "Creating" not in again.stderr, again.stderr
    assert again.stderr.count("is up-to-date") == 4, again.stderr
    assert sorted(project("ps", "-q").stdout.split()) == sorted(ids)

    web = f"{project.name}_web_1"
    view = json.loads(engine.cli("inspect", web, check=True).stdout)[0]
    ep = view["NetworkSettings"]["Networks"][f"{project.name}_front"]
    assert ep["IPAddress"] == f"10.232.{project.n}.10"
    assert ep["GlobalIPv6Address"] == f"fd00:232:{project.n}::10"
    assert "www" in ep["Aliases"]
    if "DNSNames" in ep:  # API 1.45+ (dockyardd, 1.50): the short ID is only in DNSNames
        assert view["Id"][:12] in ep["DNSNames"] and view["Id"][:12] not in ep["Aliases"]
    else:  # 1.41 (dockerd 20.10): Aliases carries it
        assert view["Id"][:12] in ep["Aliases"]
    ping = engine.cli("exec", f"{project.name}_worker_2", "ping", "-4", "-c1", "-W2", "www")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert f"10.232.{project.n}.10" in ping.stdout.decode()

    down = project("down")
    assert down.returncode == 0, down.stderr
    label = f"label=com.docker.compose.project={project.name}"
    assert engine.cli("ps", "-aq", "--filter", label).stdout == b""
    nets = engine.cli("network", "ls", "-q", "--filter", f"name={project.name}")
    assert nets.stdout == b""
    assert os.path.isdir(str(engine.root))
