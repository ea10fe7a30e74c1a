"""Push to Debian's docker-registry: the stream as dockerd writes it, layers uploaded once
and then found, mounted across repositories, identical digests on a second registry, and
images pushed by dockyardd pulled and run by dockerd."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from engines import api_request, start_dockyardd
from regpeers import ResettingProxy, data_state, digest, layer_tar, start_registry

ANON = {"X-Registry-Auth": "e30="}


@pytest.fixture(scope="module")
def registry():
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def registry2():
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def local_image(daemon):
    """A runnable image only dockyardd has: busybox plus a fresh random file."""
    with open("/bin/busybox", "rb") as f:
        files = {"bin/busybox": f.read(), "data/r": os.urandom(3_000_000), "etc/msg": b"pushed\n"}
    name = "pushsrc:latest"
    daemon.cli("import", "-", name, input=layer_tar(files), check=True)
    yield name
    daemon.cli("rmi", "-f", name)


def _push(engine, name: str, tag: str, headers=ANON) -> tuple[int, list[dict]]:
    status, body = api_request(
        engine, "POST", f"/images/{name}/push?tag={tag}", headers=headers, timeout=120
    )
    lines = [json.loads(line) for line in body.splitlines()] if status == 200 else body
    return status, lines


def test_push_stream_and_dockerd_pulls_it(daemon, dockerd, registry, local_image):
    target = f"{registry.host}/push/app"
    daemon.cli("tag", local_image, f"{target}:1", check=True)
    try:
        status, lines = _push(daemon, target, "1")
        assert status == 200
        statuses = [m.get("status") for m in lines]
        assert statuses[0] == f"The push refers to repository [{target}]"
        assert statuses[1] == "Preparing"
        assert "Pushing" in statuses and statuses[-2].startswith("1: digest: sha256:")
        assert statuses.index("Pushed") > statuses.index("Pushing")
        aux = lines[-1]
        assert aux["progressDetail"] == {} and set(aux["aux"]) == {"Tag", "Digest", "Size"}
        digest = aux["aux"]["Digest"]
        assert statuses[-2] == f"1: digest: {digest} size: {aux['aux']['Size']}"
        # the pushed manifest is now one of the image's RepoDigests
        digests = json.loads(
            daemon.cli("inspect", "-f", "{{json .RepoDigests}}", target + ":1").stdout
        )
        assert f"{target}@{digest}" in digests
        # dockerd verifies every digest on pull, and runs it
        out = dockerd.cli("run", "--rm", f"{target}:1", "/bin/busybox", "cat", "/etc/msg")
        assert out.stdout == b"pushed\n", out.stderr
        # a second push finds everything
        status, again = _push(daemon, target, "1")
        assert [m.get("status") for m in again][1:3] == ["Preparing", "Layer already exists"]
        assert again[-1]["aux"]["Digest"] == digest
        # same image in another repository of the registry: mounted, not uploaded
        daemon.cli("tag", local_image, f"{registry.host}/other/app:2", check=True)
        status, mounted = _push(daemon, f"{registry.host}/other/app", "2")
        assert {
            "status": "Mounted from push/app",
            "progressDetail": {},
            "id": lines[1]["id"],
        } in mounted
        assert mounted[-1]["aux"]["Digest"] == digest
    finally:
        daemon.cli("rmi", f"{target}:1", f"{registry.host}/other/app:2")
        dockerd.cli("rmi", f"{target}:1")


def test_second_registry_gets_identical_digests(daemon, registry, registry2, local_image):
    a, b = f"{registry.host}/same/x", f"{registry2.host}/same/x"
    daemon.cli("tag", local_image, a + ":t", check=True)
    daemon.cli("tag", local_image, b + ":t", check=True)
    try:
        da = _push(daemon, a, "t")[1][-1]["aux"]["Digest"]
        pushed_b = _push(daemon, b, "t")[1]
        assert "Pushed" in [m.get("status") for m in pushed_b]  # uploaded again...
        assert pushed_b[-1]["aux"]["Digest"] == da  # ...as the very same bytes
    finally:
        daemon.cli("rmi", a + ":t", b + ":t")


def test_docker_cli_push_and_all_tags(docker, daemon, registry, local_image):
    repo = f"{registry.host}/cli/app"
    for tag in ("a", "b"):
        docker("tag", local_image, f"{repo}:{tag}", check=True)
    try:
        out = docker("push", "--all-tags", repo)
        assert out.returncode == 0, out.stderr
        assert b"a: digest: sha256:" in out.stdout and b"b: digest: sha256:" in out.stdout
        out = docker("push", f"{repo}:a")
        assert b"Layer already exists" in out.stdout
    finally:
        docker("rmi", f"{repo}:a", f"{repo}:b")


def test_push_errors_as_dockerd(daemon, dockerd, registry):
    # no X-Registry-Auth at all: moby's 400
    mine = api_request(daemon, "POST", f"/images/{registry.host}/x/push?tag=latest")
    theirs = api_request(dockerd, "POST", f"/images/{registry.host}/x/push?tag=latest")
    assert mine == theirs and mine[0] == 400
    # nothing local: an error inside the stream after the first line
    mine = api_request(
        daemon, "POST", f"/images/{registry.host}/nothere/push?tag=latest", headers=ANON
    )
    theirs = api_request(
        dockerd, "POST", f"/images/{registry.host}/nothere/push?tag=latest", headers=ANON
    )
    assert mine[0] == theirs[0] == 200
    assert mine[1].splitlines() == theirs[1].splitlines()


def test_docker_py_push(api, daemon, registry, local_image):
    repo = f"{registry.host}/py/app"
    api.images.get(local_image).tag(repo, "v")
    try:
        lines = list(api.images.push(repo, "v", stream=True, decode=True))
        assert lines[-1]["aux"]["Tag"] == "v"
        assert not any("error" in line for line in lines)
    finally:
        api.images.remove(f"{repo}:v")


def _get(host: str, path: str, accept: str = "") -> tuple[int, bytes]:
    h, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_push_reset_midway_leaves_nothing_broken_and_succeeds_again(daemon, registry, local_image):
    """The registry's connection is reset in the middle of the layer upload: the push ends
    with an error, the local image and the daemon's data are as before, the registry has no
    manifest; pushed again, it succeeds and the registry serves what the manifest names."""
    proxy = ResettingProxy(registry.host)
    target = f"{proxy.host}/cut/app"
    media = "application/vnd.docker.distribution.manifest.v2+json"
    image_id = daemon.cli("inspect", "-f", "{{.Id}}", local_image).stdout
    daemon.cli("tag", local_image, f"{target}:1", check=True)
    try:
        before = data_state(daemon)
        proxy.cut_after = 1_000_000  # the layer is ~3 MB of random bytes
        status, lines = _push(daemon, target, "1")
        assert status == 200 and "error" in lines[-1], lines[-3:]
        assert proxy.resets >= 1
        assert not any("digest: sha256:" in m.get("status", "") for m in lines)
        assert data_state(daemon) == before
        assert daemon.cli("inspect", "-f", "{{.Id}}", f"{target}:1").stdout == image_id
        digests = daemon.cli("inspect", "-f", "{{json .RepoDigests}}", f"{target}:1").stdout
        assert proxy.host.encode() not in digests
        assert _get(registry.host, "/v2/cut/app/manifests/1", media)[0] == 404
        # pushed again, through a healthy connection
        proxy.cut_after = None
        status, lines = _push(daemon, target, "1")
        assert status == 200 and "error" not in lines[-1], lines[-3:]
        pushed = lines[-1]["aux"]["Digest"]
        code, raw = _get(registry.host, "/v2/cut/app/manifests/1", media)
        assert code == 200 and digest(raw) == pushed
        manifest = json.loads(raw)
        for desc in [manifest["config"], *manifest["layers"]]:
            code, blob = _get(registry.host, f"/v2/cut/app/blobs/{desc['digest']}")
            assert code == 200 and digest(blob) == desc["digest"] and len(blob) == desc["size"]
        assert (
            f"{target}@{pushed}".encode()
            in daemon.cli("inspect", "-f", "{{json .RepoDigests}}", f"{target}:1").stdout
        )
    finally:
        daemon.cli("rmi", f"{target}:1")
        proxy.stop()


def test_push_killed_midway_leaves_nothing_broken_and_succeeds_again(workdir, registry):
    """dockyardd is killed (-9) while a layer uploads: after a restart the image and the data
    root are as before, the registry has no manifest, and the same push succeeds."""
    dy = start_dockyardd(os.path.join(workdir, "pushkill"))
    proxy = ResettingProxy(registry.host)
    target = f"{proxy.host}/killed/app"
    media = "application/vnd.docker.distribution.manifest.v2+json"
    try:
        files = {"data/r": os.urandom(3_000_000), "etc/msg": b"pushed\n"}
        dy.cli("import", "-", f"{target}:1", input=layer_tar(files), check=True)
        image_id = dy.cli("inspect", "-f", "{{.Id}}", f"{target}:1").stdout
        before = data_state(dy)
        proxy.hold_after = 1_000_000
        pushing = threading.Thread(target=lambda: _quietly(_push, dy, target, "1"), daemon=True)
        pushing.start()
        deadline = time.monotonic() + 30
        while not proxy.held:
            assert time.monotonic() < deadline, "the upload never got under way"
            time.sleep(0.05)
        dy.proc.send_signal(signal.SIGKILL)
        dy.proc.wait(10)
        pushing.join(10)
        proxy.hold_after = None
        dy = start_dockyardd(dy.root)
        assert dy.cli("inspect", "-f", "{{.Id}}", f"{target}:1").stdout == image_id
        assert data_state(dy) == before
        assert _get(registry.host, "/v2/killed/app/manifests/1", media)[0] == 404
        status, lines = _push(dy, target, "1")
        assert status == 200 and "error" not in lines[-1], lines[-3:]
        code, raw = _get(registry.host, "/v2/killed/app/manifests/1", media)
        assert code == 200 and digest(raw) == lines[-1]["aux"]["Digest"]
        for desc in json.loads(raw)["layers"]:
            code, blob = _get(registry.host, f"/v2/killed/app/blobs/{desc['digest']}")
            assert code == 200 and digest(blob) == desc["digest"]
    finally:
        proxy.hold_after = None
        dy.stop()
        proxy.stop()


def _quietly(fn, *args) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except Exception:
        pass  # the daemon was killed under the request
