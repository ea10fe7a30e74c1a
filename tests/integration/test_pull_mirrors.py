"""Registry configuration: registry-mirrors stand in for Docker Hub, registry-mirrors-by-host
for any registry, insecure-registries and the limits in docker info; image search through a
registry's /v1/search."""

from __future__ import annotations

import json
import os
import sys

import pytest
from engines import api_request, cgroup_parent, network_config, start_dockyardd
from regpeers import FakeRegistry, free_port, start_registry


@pytest.fixture(scope="module")
def mirror(daemon):
    """A docker-registry holding library/busybox, as Docker Hub would."""
    reg = start_registry()
    name = f"{reg.host}/library/busybox:latest"
    try:
        daemon.cli("tag", "busybox", name, check=True)
        daemon.cli("push", name, check=True)
        daemon.cli("rmi", name, check=True)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def origin(daemon):
    """A docker-registry holding tests/alltags:t1 and :t2, which the mirror lacks."""
    reg = start_registry()
    repo = f"{reg.host}/tests/alltags"
    try:
        for tag in ("t1", "t2"):
            daemon.cli("tag", "busybox", f"{repo}:{tag}", check=True)
            daemon.cli("push", f"{repo}:{tag}", check=True)
        daemon.cli("rmi", f"{repo}:t1", f"{repo}:t2", check=True)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def configured(workdir, mirror, origin):
    """A dockyardd whose daemon.json names the mirror for Docker Hub, for a host that does
    not exist and for ``origin`` (which the mirror lacks), one insecure registry and one
    insecure CIDR, and non-default limits."""
    root = os.path.join(workdir, "mirrors")
    os.makedirs(root, exist_ok=True)
    dead = f"127.0.0.1:{free_port()}"
    config = {
        "cgroup-parent": cgroup_parent(root),
        **network_config(root),
        "registry-mirrors": [f"http://{dead}", f"http://{mirror.host}"],
        "registry-mirrors-by-host": {
            "registry.invalid:5000": [f"http://{mirror.host}"],
            origin.host: [f"http://{dead}", f"http://{mirror.host}"],
        },
        "insecure-registries": ["myregistry.example:5000", "10.77.0.0/16"],
        "max-concurrent-downloads": 2,
        "max-concurrent-uploads": 4,
        "max-download-attempts": 3,
    }
    path = os.path.join(root, "registry-daemon.json")
    with open(path, "w") as f:
        json.dump(config, f)
    engine = start_dockyardd(root, "--config-file", path)
    try:
        yield engine, dead
    finally:
        engine.stop()


def test_hub_pull_goes_to_the_mirrors_in_order(configured):
    engine, _ = configured
    out = engine.cli("pull", "busybox")
    assert out.returncode == 0, out.stderr
    assert b"Pulling from library/busybox" in out.stdout
    assert out.stdout.endswith(b"docker.io/library/busybox:latest\n")
    assert engine.cli("run", "--rm", "busybox", "echo", "via mirror").stdout == b"via mirror\n"
    digests = json.loads(engine.cli("inspect", "-f", "{{json .RepoDigests}}", "busybox").stdout)
    assert digests and digests[0].startswith("busybox@sha256:")


def test_mirror_for_any_registry_host(configured):
    engine, _ = configured
    name = "registry.invalid:5000/library/busybox:latest"
    try:
        out = engine.cli("pull", name)
        assert out.returncode == 0, out.stderr
        assert engine.cli("inspect", name).returncode == 0
    finally:
        engine.cli("rmi", name)


def test_pull_all_tags_goes_to_the_mirrors(configured):
    """``pull --all-tags`` lists and pulls tags through the mirrors as a single pull does:
    registry.invalid:5000 itself cannot be reached, its mirror has the repository."""
    engine, _ = configured
    repo = "registry.invalid:5000/library/busybox"
    try:
        out = engine.cli("pull", "--all-tags", repo)
        assert out.returncode == 0, out.stderr
        assert b"latest: Pulling from library/busybox" in out.stdout
        assert out.stdout.splitlines()[-2] in (
            f"Status: Image is up to date for {repo}".encode(),
            f"Status: Downloaded newer image for {repo}".encode(),
        )
        assert engine.cli("inspect", f"{repo}:latest").returncode == 0
    finally:
        engine.cli("rmi", f"{repo}:latest")


@pytest.mark.parametrize("all_tags", [False, True])
def test_mirror_lacking_the_image_falls_through_to_the_registry(configured, origin, all_tags):
    """The first mirror is dead, the second answers but lacks the repository: the pull
    (one tag, or every tag) comes from the registry itself."""
    engine, _ = configured
    repo = f"{origin.host}/tests/alltags"
    args = ("pull", "--all-tags", repo) if all_tags else ("pull", f"{repo}:t1")
    try:
        out = engine.cli(*args)
        assert out.returncode == 0, out.stderr
        assert b"t1: Pulling from tests/alltags" in out.stdout
        for tag in ("t1", "t2") if all_tags else ("t1",):
            digests = engine.cli("inspect", "-f", "{{json .RepoDigests}}", f"{repo}:{tag}")
            assert json.loads(digests.stdout)[0].startswith(f"{repo}@sha256:"), digests.stderr
    finally:
        engine.cli("rmi", f"{repo}:t1", f"{repo}:t2")


def test_info_shows_the_registry_config(configured, mirror):
    engine, dead = configured
    info = json.loads(api_request(engine, "GET", "/info")[1])["RegistryConfig"]
    assert info["Mirrors"] == [f"http://{dead}/", f"http://{mirror.host}/"]
    assert info["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.77.0.0/16"]
    assert info["IndexConfigs"]["docker.io"]["Mirrors"] == info["Mirrors"]
    assert info["IndexConfigs"]["myregistry.example:5000"] == {
        "Name": "myregistry.example:5000",
        "Mirrors": [],
        "Secure": False,
        "Official": False,
    }
    assert info["IndexConfigs"]["registry.invalid:5000"]["Mirrors"] == [f"http://{mirror.host}/"]
    out = engine.cli("info")
    assert b"Registry Mirrors:" in out.stdout and mirror.host.encode() in out.stdout
    assert b"myregistry.example:5000" in out.stdout  # Insecure Registries


def test_bad_registry_options_stop_the_daemon(workdir):
    import subprocess

    root = os.path.join(workdir, "badreg")
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "daemon.json")
    with open(path, "w") as f:
        json.dump({"registry-mirrors": ["ftp://nope"]}, f)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockyard.daemon.launch",
            "--config-file",
            path,
            "--data-root",
            os.path.join(root, "d"),
            "-H",
            f"unix://{root}/s.sock",
        ],
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 1 and b"ftp" in out.stderr


# ---- search ------------------------------------------------------------------------------------
@pytest.fixture
def index():
    fake = FakeRegistry()
    fake.search_results = [
        {
            "name": "library/busybox",
            "description": "tiny",
            "star_count": 900,
            "is_official": True,
            "is_automated": False,
        },
        {
            "name": "someone/busybox-tools",
            "description": "tools",
            "star_count": 3,
            "is_official": False,
            "is_automated": True,
        },
        {
            "name": "other/bb",
            "description": "",
            "star_count": 0,
            "is_official": False,
            "is_automated": False,
        },
    ]
    try:
        yield fake
    finally:
        fake.stop()


def test_search_api_and_filters(daemon, dockerd, index):
    term = f"{index.host}/busybox"
    path = f"/images/search?term={term}"
    mine, theirs = api_request(daemon, "GET", path), api_request(dockerd, "GET", path)
    assert mine[0] == theirs[0] == 200
    assert json.loads(mine[1]) == json.loads(theirs[1])
    assert index.search_queries[-1] == {"q": "busybox", "n": "25"}
    for filters in ('{"is-official":["true"]}', '{"stars":["3"]}', '{"is-automated":["true"]}'):
        p = f"{path}&filters={filters}"
        assert json.loads(api_request(daemon, "GET", p)[1]) == json.loads(
            api_request(dockerd, "GET", p)[1]
        )
    assert len(json.loads(api_request(daemon, "GET", f"{path}&limit=2")[1])) <= 2
    bad = api_request(daemon, "GET", f"{path}&limit=500")
    assert bad[0] == 400 and b"Limit 500 is outside the range of [1, 100]" in bad[1]


def test_search_cli_table_as_dockerd(daemon, dockerd, index):
    term = f"{index.host}/busybox"
    for args in (("search", term), ("search", "--filter", "stars=1", "--limit", "5", term)):
        mine, theirs = daemon.cli(*args), dockerd.cli(*args)
        assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), args


def test_docker_py_search(api, index):
    results = api.images.search(f"{index.host}/busybox")
    assert results[0]["name"] == "library/busybox"


def test_run_pull_always_and_never(docker, mirror):
    name = f"{mirror.host}/library/busybox:latest"
    try:
        out = docker("run", "--rm", "--pull", "never", name, "true")
        assert out.returncode == 125 and b"No such image" in out.stderr
        out = docker("run", "--rm", "--pull", "always", name, "echo", "ok")
        assert out.stdout == b"ok\n", out.stderr
        assert b"Status: " in out.stderr
    finally:
        docker("rmi", name)


def test_default_registry_config_as_dockerd(daemon, dockerd):
    # at 1.41, both engines' version (1.49 drops AllowNondistributableArtifacts*)
    mine = json.loads(api_request(daemon, "GET", "/v1.41/info")[1])["RegistryConfig"]
    theirs = json.loads(api_request(dockerd, "GET", "/v1.41/info")[1])["RegistryConfig"]
    assert mine == theirs
