"""A build whose FROM image is not here pulls it (and ``pull=1`` pulls it again), with the
pull's progress inside the build's stream: side by side with Debian's dockerd, from
Debian's docker-registry."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from engines import DOCKER_CLI, api_request
from regpeers import layer_tar, start_registry

# dockerd may skip intermediate progress (Downloading, Extracting...); these always come.
_STABLE = ("Pulling from", "Pulling fs layer", "Pull complete", "Digest:", "Status:")


@pytest.fixture(scope="module")
def registry():
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def base(registry, dockerd, daemon):
    """An image neither engine has, in the registry; removed from both at the end."""
    name = f"{registry.host}/tests/buildbase:v1"
    with open("/bin/busybox", "rb") as f:
        busybox = f.read()
    files = {
        "bin/busybox": busybox,
        "bin/sh": busybox,  # a copy: busybox runs the applet its name says
        "data/blob": os.urandom(300_000),
        "etc/base": b"b\n",
    }
    dockerd.cli("import", "-c", 'CMD ["/bin/busybox", "sh"]', "-", name, input=layer_tar(files))
    dockerd.cli("push", name, check=True)
    dockerd.cli("rmi", name, check=True)
    yield name
    for engine in (dockerd, daemon):
        engine.cli("rmi", "-f", name)


def _context(dockerfile: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tf.addfile(info, io.BytesIO(dockerfile.encode()))
    return buf.getvalue()


def _transcript(body: bytes) -> str:
    """The stream's text and the pull's stable status lines, ids and digests blanked."""
    out = []
    for line in body.splitlines():
        msg = json.loads(line)
        if "stream" in msg:
            out.append(msg["stream"])
        elif str(msg.get("status", "")).startswith(_STABLE):
            out.append(f"{msg.get('id', '')}: {msg['status']}\n")
        elif "error" in msg:
            out.append(f"error: {msg['error']}\n")
    text = "".join(out)
    text = re.sub(r"sha256:[0-9a-f]{64}", "<digest>", text)
    return re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)


def _build(engine, dockerfile: str, query: str = "") -> str:
    status, body = api_request(
        engine,
        "POST",
        f"/build?rm=1{query}",
        _context(dockerfile),
        {"Content-Type": "application/x-tar"},
        timeout=120,
    )
    assert status == 200, body
    return _transcript(body)


def test_from_a_missing_image_pulls_it_as_dockerd(dockerd, daemon, base):
    dockerfile = f"FROM {base}\nRUN read line < /etc/base && echo $line\n"
    theirs = _build(dockerd, dockerfile)
    mine = _build(daemon, dockerfile)
    assert mine == theirs
    assert ": Pull complete\n" in mine and "Status: Downloaded newer image for" in mine
    assert "\nb\n" in mine  # the RUN ran in the pulled image
    # pull=1 asks the registry again: up to date, and the step after it is cached.
    theirs = _build(dockerd, dockerfile, "&pull=1")
    mine = _build(daemon, dockerfile, "&pull=1")
    assert mine == theirs
    assert f"Status: Image is up to date for {base}" in mine and "Using cache" in mine


def test_docker_cli_build_pull_and_a_missing_repository(dockerd, daemon, base, registry):
    outputs = []
    for engine in (dockerd, daemon):
        env = dict(engine.env, DOCKER_BUILDKIT="0")
        good = subprocess.run(
            [DOCKER_CLI, "build", "--pull", "-"],
            input=f"FROM {base}\nENV X=1\n".encode(),
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert good.returncode == 0, good.stderr
        bad = subprocess.run(
            [DOCKER_CLI, "build", "-"],
            input=f"FROM {registry.host}/tests/nope:v1\n".encode(),
            env=env,
            capture_output=True,
            timeout=120,
        )
        outputs.append(
            (
                [line for line in good.stdout.decode().splitlines() if line.startswith("v1: ")],
                bad.returncode,
                bad.stderr.decode().strip().splitlines()[-1],
            )
        )
    assert outputs[1] == outputs[0]
    assert outputs[0][2] == (
        f"manifest for {registry.host}/tests/nope:v1 not found: manifest unknown: manifest unknown"
    )


def test_dockyard_cli_shows_the_pull(dockyard, daemon, base):
    daemon.cli("rmi", "-f", base)
    result = dockyard("build", "--progress=plain", "-", input=f"FROM {base}\n".encode())
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "v1: Pulling from tests/buildbase" in out
    assert re.search(r"\nDigest: sha256:[0-9a-f]{64}\nStatus: Downloaded newer image for ", out)
    assert "Downloading" not in out  # byte counts are for terminals


def test_credentials_travel_in_x_registry_config(dockerd, daemon, dockyard):
    """The dockyard CLI sends config.json's credentials (X-Registry-Config, as the docker
    CLI does); the daemon picks the pulled registry's entry."""
    reg = start_registry(htpasswd=("builder", "s3cret"))
    name = f"{reg.host}/tests/private:v1"
    try:
        login = ("login", "-u", "builder", "--password-stdin", reg.host)
        dockerd.cli(*login, input=b"s3cret", check=True)
        dockerd.cli("tag", "busybox", name, check=True)
        dockerd.cli("push", name, check=True)
        dockerd.cli("rmi", name, check=True)
        dockerfile = f"FROM {name}\nENV PRIVATE=1\n".encode()
        denied = dockyard("build", "-", input=dockerfile)
        assert denied.returncode == 1
        assert b"no basic auth credentials" in denied.stderr or b"unauthorized" in denied.stderr
        dockyard(*login, input=b"s3cret", check=True)
        allowed = dockyard("build", "-t", "dy-build-private", "-", input=dockerfile)
        assert allowed.returncode == 0, allowed.stderr
        assert f"Status: Downloaded newer image for {name}".encode() in allowed.stdout
    finally:
        dockyard("logout", reg.host)
        dockerd.cli("logout", reg.host)
        daemon.cli("rmi", "-f", "dy-build-private", name)
        reg.stop()
