"""Third-party tools against dockyardd: skopeo's ``docker-daemon:`` transport (the Engine API's
``/images/{name}/get`` and ``/images/load``) copying to and from a registry, and docker-py's
``login``, ``images.push``, ``images.pull`` and ``images.search`` through dockyardd against
``dockyard registry serve`` with htpasswd (docker-py's pull/push against docker-registry are in
test_pull.py and test_push.py, its ``login`` against docker-registry in test_pull_auth.py).

Registries run per test on private roots and ports and are stopped at the end; the images a
test makes in dockyardd are removed at the end."""

from __future__ import annotations

import json
import subprocess

import pytest
from regpeers import write_htpasswd
from test_interop_registry import Made, _unique
from test_interop_registry import registries as registries  # the fixture


@pytest.fixture
def made(daemon):
    dy = Made(daemon)
    try:
        yield dy
    finally:
        dy.clean()


def _skopeo(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["skopeo", *args], capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr.decode()
    return result


def _id(engine, ref: str) -> str:
    out = engine.cli("image", "inspect", "--format", "{{.Id}}", ref, check=True)
    return out.stdout.decode().strip()


def test_skopeo_copy_between_a_registry_and_docker_daemon(daemon, registries, made):
    reg = registries()
    # dockyardd -> registry: skopeo reads the image with GET /images/{name}/get.
    src = f"{reg.addr}/sk/src:1"
    token = _unique(daemon, made, src)
    _skopeo(
        "copy",
        "--src-daemon-host",
        daemon.host,
        "--dest-tls-verify=false",
        f"docker-daemon:{src}",
        f"docker://{reg.addr}/sk/copied:1",
    )
    inspect = json.loads(
        _skopeo("inspect", "--tls-verify=false", f"docker://{reg.addr}/sk/copied:1").stdout
    )
    assert len(inspect["Layers"]) == 2
    # registry -> dockyardd: skopeo writes a docker save tarball to POST /images/load.
    back = made.add(f"dyic/back:{token[:8]}")
    _skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-daemon-host",
        daemon.host,
        f"docker://{reg.addr}/sk/copied:1",
        f"docker-daemon:{back}",
    )
    assert _id(daemon, back) == _id(daemon, src)
    out = daemon.cli("run", "--rm", "--network", "none", back, "cat", "/marker", check=True)
    assert out.stdout == f"{token}\n".encode()
    # and the image skopeo loaded pushes and pulls with the daemon's own client.
    again = made.add(f"{reg.addr}/sk/again:1")
    daemon.cli("tag", back, again, check=True)
    daemon.cli("push", again, check=True)
    daemon.cli("rmi", again, check=True)
    daemon.cli("pull", again, check=True)
    assert _id(daemon, again) == _id(daemon, src)


def test_docker_py_login_push_pull_search(api, daemon, registries, made, tmp_path):
    import docker.errors

    reg = registries("--htpasswd", write_htpasswd(str(tmp_path), {"alice": "s3cret"}))
    repo = f"{reg.addr}/py/busybox"
    api.images.get("busybox").tag(repo, "1")
    made.add(f"{repo}:1")
    with pytest.raises(docker.errors.APIError) as refused:
        api.login("alice", "wrong", registry=reg.addr, reauth=True)
    assert refused.value.status_code == 401
    assert api.login("alice", "s3cret", registry=reg.addr, reauth=True)["Status"] == (
        "Login Succeeded"
    )
    lines = list(api.images.push(repo, tag="1", stream=True, decode=True))
    assert "error" not in lines[-1], lines[-3:]
    assert lines[-1]["aux"]["Tag"] == "1" and lines[-1]["aux"]["Digest"].startswith("sha256:")
    api.images.remove(f"{repo}:1")
    image = api.images.pull(repo, tag="1")
    assert image.id == api.images.get("busybox").id
    assert f"{repo}@{lines[-1]['aux']['Digest']}" in image.attrs["RepoDigests"]
    # docker-py's search sends no X-Registry-Auth, so the daemon asks anonymously:
    # search an open registry that holds the image.
    open_reg = registries()
    open_repo = f"{open_reg.addr}/py/busybox"
    image.tag(open_repo, "2")
    made.add(f"{open_repo}:2")
    lines = list(api.images.push(open_repo, tag="2", stream=True, decode=True))
    assert "error" not in lines[-1], lines[-3:]
    found = api.images.search(f"{open_reg.addr}/busy")
    assert [r["name"] for r in found] == ["py/busybox"], found
    assert set(found[0]) >= {"name", "description", "star_count", "is_official"}
    assert api.images.search(f"{open_reg.addr}/nothing-like-it") == []
    with pytest.raises(docker.errors.APIError) as unauthorized:
        api.images.search(f"{reg.addr}/busy")
    assert unauthorized.value.status_code == 500
    assert "Unexpected status code 401" in unauthorized.value.explanation
