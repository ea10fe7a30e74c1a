"""``dockyard registry`` against real clients: Debian's dockerd with the official docker CLI
(plain, TLS, htpasswd, token), skopeo, and online GC during pushes.

Each test starts its own registry process (``python -m dockyard.distribution.registry.main``,
as the CLI's ``dockyard registry`` does) on a free loopback port and a private root, and
stops it and removes its files even on failure; dockerd is the session's reference engine,
whose local images the tests remove again."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import pytest
from regpeers import (
    REPO,
    DockyardRegistry,
    Pki,
    free_port,
    start_dockyard_registry,
    start_registry,
    token_config,
    wait_ready,
    write_htpasswd,
)

# ---- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def registries():
    """A factory of registry processes, all stopped (and their roots removed) at the end."""
    started: list[DockyardRegistry] = []

    def start(*args: str, **kw) -> DockyardRegistry:
        reg = start_dockyard_registry(*args, **kw)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()


@pytest.fixture
def images(dockerd):
    """Local image references a test creates in dockerd; removed at the end."""
    made: list[str] = []
    yield made
    if made:
        dockerd.cli("rmi", "-f", *made)


@pytest.fixture
def logins(dockerd):
    """Registries a test logs dockerd's CLI into; logged out at the end."""
    done: list[str] = []
    yield done
    for addr in done:
        dockerd.cli("logout", addr)


def _image_id(engine, ref: str) -> str:
    out = engine.cli("image", "inspect", "--format", "{{.Id}}", ref, check=True)
    return out.stdout.decode().strip()


def _push_pull(engine, images: list[str], ref: str, source: str = "busybox:latest") -> str:
    """Push ``source`` as ``ref``, remove it, pull it back; returns the pushed digest."""
    want = _image_id(engine, source)
    engine.cli("tag", source, ref, check=True)
    images.append(ref)
    pushed = engine.cli("push", ref, check=True).stdout.decode()
    digest = pushed.split("digest: ")[1].split()[0]
    engine.cli("rmi", ref, check=True)
    engine.cli("pull", ref, check=True)
    assert _image_id(engine, ref) == want
    repo_digests = engine.cli(
        "image", "inspect", "--format", "{{json .RepoDigests}}", ref, check=True
    ).stdout.decode()
    assert f"{ref.rsplit(':', 1)[0]}@{digest}" in repo_digests
    return digest


def _unique_image(engine, images: list[str], ref: str) -> str:
    """A one-layer image with content of its own (``docker import``); returns its id."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = os.urandom(64 << 10)
        info = tarfile.TarInfo("data.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    engine.cli("import", "-", ref, input=buf.getvalue(), check=True)
    images.append(ref)
    return _image_id(engine, ref)


def _skopeo(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["skopeo", *args], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result


# ---- interop ---------------------------------------------------------------------------


def test_docker_push_pull_plain(dockerd, registries, images):
    reg = registries()
    _push_pull(dockerd, images, f"{reg.addr}/it/busybox:v1")
    # A second repository gets the layers by cross-repository mount: same image back.
    _push_pull(dockerd, images, f"{reg.addr}/it/other:v2")
    status, _, body = reg.request("GET", "/v2/_catalog")
    assert status == 200 and json.loads(body)["repositories"] == ["it/busybox", "it/other"]
    found = dockerd.cli("search", f"{reg.addr}/busy", check=True).stdout.decode()
    assert "it/busybox" in found and "it/other" not in found


def test_skopeo_copy_and_inspect(dockerd, registries, images):
    reg = registries()
    digest = _push_pull(dockerd, images, f"{reg.addr}/sk/busybox:1")
    out = _skopeo("inspect", "--tls-verify=false", f"docker://{reg.addr}/sk/busybox:1")
    assert json.loads(out.stdout)["Digest"] == digest
    # registry -> registry (skopeo mounts or uploads), then through an OCI layout as OCI.
    _skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{reg.addr}/sk/busybox:1",
        f"docker://{reg.addr}/sk/copy:1",
    )
    layout = os.path.join(reg.workdir, "layout")
    _skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{reg.addr}/sk/busybox:1",
        f"oci:{layout}:x",
    )
    _skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "oci",
        f"oci:{layout}:x",
        f"docker://{reg.addr}/sk/oci:1",
    )
    raw = json.loads(
        _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{reg.addr}/sk/oci:1").stdout
    )
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    tags = _skopeo("list-tags", "--tls-verify=false", f"docker://{reg.addr}/sk/copy").stdout
    assert json.loads(tags)["Tags"] == ["1"]
    # dockerd pulls the OCI manifest too (skopeo rewrote the config as an OCI one).
    ref = f"{reg.addr}/sk/oci:1"
    dockerd.cli("pull", ref, check=True)
    images.append(ref)
    assert _image_id(dockerd, ref) == raw["config"]["digest"]


def test_docker_over_tls(dockerd, registries, images, tmp_path):
    cert, key = Pki(str(tmp_path)).issue("registry", ["127.0.0.1"])
    reg = registries("--tls-cert", cert, "--tls-key", key, tls=True)
    status, headers, _ = reg.request("GET", "/v2/")
    assert status == 200 and headers["docker-distribution-api-version"] == "registry/2.0"
    # 127.0.0.0/8 is an insecure registry to dockerd: TLS without verification.
    _push_pull(dockerd, images, f"{reg.addr}/tls/busybox:1")
    _skopeo("inspect", "--tls-verify=false", f"docker://{reg.addr}/tls/busybox:1")


def test_docker_with_htpasswd(dockerd, registries, images, logins, tmp_path):
    path = write_htpasswd(str(tmp_path), {"alice": "s3cret"})
    reg = registries("--htpasswd", path)
    status, headers, body = reg.request("GET", "/v2/")
    assert status == 401
    assert headers["www-authenticate"].startswith("Basic realm=")
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    ref = f"{reg.addr}/auth/busybox:1"
    dockerd.cli("tag", "busybox:latest", ref, check=True)
    images.append(ref)
    refused = dockerd.cli("push", ref)
    assert refused.returncode != 0
    bad = dockerd.cli("login", reg.addr, "-u", "alice", "--password-stdin", input=b"wrong")
    assert bad.returncode != 0
    logins.append(reg.addr)
    dockerd.cli("login", reg.addr, "-u", "alice", "--password-stdin", input=b"s3cret", check=True)
    _push_pull(dockerd, images, ref)


def test_docker_with_token_auth(dockerd, registries, images, logins, tmp_path):
    addr = f"127.0.0.1:{free_port()}"
    reg = registries(config=token_config(str(tmp_path), addr), addr=addr)
    status, headers, _ = reg.request("GET", "/v2/tok/busybox/tags/list")
    assert status == 401
    assert headers["www-authenticate"] == (
        f'Bearer realm="http://{addr}/token",service="dockyard-test",'
        'scope="repository:tok/busybox:pull"'
    )
    ref = f"{addr}/tok/busybox:1"
    logins.append(addr)
    dockerd.cli("login", addr, "-u", "alice", "--password-stdin", input=b"a-pass", check=True)
    _push_pull(dockerd, images, ref)
    # bob may pull tok/* but not push to it.
    dockerd.cli("login", addr, "-u", "bob", "--password-stdin", input=b"b-pass", check=True)
    dockerd.cli("rmi", ref, check=True)
    dockerd.cli("pull", ref, check=True)
    other = f"{addr}/tok/bob:1"
    dockerd.cli("tag", "busybox:latest", other, check=True)
    images.append(other)
    denied = dockerd.cli("push", other)
    assert denied.returncode != 0
    assert b"denied: requested access to the resource is denied" in denied.stderr, denied.stderr


def test_gc_during_pushes_removes_only_garbage(dockerd, registries, images):
    grace = 3.0
    reg = registries()
    # Garbage: an image pushed and then deleted by digest.
    _unique_image(dockerd, images, f"{reg.addr}/gc/garbage:1")
    out = dockerd.cli("push", f"{reg.addr}/gc/garbage:1", check=True).stdout.decode()
    digest = out.split("digest: ")[1].split()[0]
    _, _, manifest = reg.request(
        "GET",
        f"/v2/gc/garbage/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    garbage_layer = json.loads(manifest)["layers"][0]["digest"]
    status, _, _ = reg.request("DELETE", f"/v2/gc/garbage/manifests/{digest}")
    assert status == 202
    time.sleep(grace + 0.5)

    stop = threading.Event()
    runs: list[subprocess.CompletedProcess] = []

    def collect_loop() -> None:
        while not stop.is_set():
            runs.append(
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "dockyard.distribution.registry.main",
                        "gc",
                        "--root",
                        reg.root,
                        "--gc-grace",
                        str(grace),
                        "--delete-untagged",
                    ],
                    capture_output=True,
                    cwd=REPO,
                    timeout=60,
                )
            )

    pushed = {}
    thread = threading.Thread(target=collect_loop)
    thread.start()
    try:
        for i in range(5):
            ref = f"{reg.addr}/gc/keep:{i}"
            pushed[ref] = _unique_image(dockerd, images, ref)
            dockerd.cli("push", ref, check=True)
    finally:
        stop.set()
        thread.join()
    assert runs and all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    blob = os.path.join(reg.root, "blobs", "sha256", garbage_layer[7:])
    assert not os.path.exists(blob), "the deleted image's layer was not collected"
    for ref, image_id in pushed.items():
        dockerd.cli("rmi", ref, check=True)
        dockerd.cli("pull", ref, check=True)
        assert _image_id(dockerd, ref) == image_id


@pytest.fixture
def upstream():
    """Debian's docker-registry (distribution 2.8), stopped and removed at the end."""
    reg = start_registry()
    yield reg
    reg.stop()


def test_pull_through_cache_in_front_of_docker_registry(dockerd, registries, images, upstream):
    ref = f"{upstream.host}/lib/busybox:1"
    digest = _push_pull(dockerd, images, ref)
    cache = registries(
        config={"proxy": [{"prefix": "up", "url": f"http://{upstream.host}", "ttl": 3600}]}
    )
    cached = f"{cache.addr}/up/lib/busybox:1"
    dockerd.cli("pull", cached, check=True)
    images.append(cached)
    assert _image_id(dockerd, cached) == _image_id(dockerd, "busybox:latest")
    # The second pull is served without the upstream: stop it first.
    upstream.stop()
    dockerd.cli("rmi", cached, ref, check=True)
    dockerd.cli("pull", cached, check=True)
    assert _image_id(dockerd, cached) == _image_id(dockerd, "busybox:latest")
    out = dockerd.cli("image", "inspect", "--format", "{{json .RepoDigests}}", cached)
    assert digest in out.stdout.decode()


def test_cli_serve_workers_and_gc_dry_run(dockerd, images):
    """``dockyard registry serve --workers 2`` through the dockyard CLI, then ``gc --dry-run``."""
    workdir = tempfile.mkdtemp(prefix="dyreg-", dir="/tmp")
    root = os.path.join(workdir, "root")
    addr = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(workdir, "log"), "wb")
    cli = [sys.executable, "-m", "dockyard.cli.main", "registry"]
    proc = subprocess.Popen(
        [*cli, "serve", "--addr", addr, "--root", root, "--workers", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    reg = DockyardRegistry(proc, addr, root, workdir, log=log.name)
    try:
        wait_ready(reg)
        workers = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) == 1  # the parent is the other worker
        workers.append(str(proc.pid))
        pids = set()
        for _ in range(40):  # SO_REUSEPORT spreads new connections over both workers
            _, _, text = reg.request("GET", "/metrics")
            pids.add(text.decode().split('pid="')[1].split('"')[0])
        assert pids == set(workers)
        _push_pull(dockerd, images, f"{addr}/cli/busybox:1")
        status, _, _ = reg.request("DELETE", "/v2/cli/busybox/manifests/1")
        assert status == 202
        dry = subprocess.run(
            [*cli, "gc", "--root", root, "--dry-run", "--delete-untagged", "--gc-grace", "0"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert dry.returncode == 0, dry.stderr
        assert "would remove manifest cli/busybox@sha256:" in dry.stdout
        assert "would remove blob sha256:" in dry.stdout
        assert len(os.listdir(os.path.join(root, "blobs", "sha256"))) == 3  # nothing went
        real = subprocess.run(
            [*cli, "gc", "--root", root, "--delete-untagged", "--gc-grace", "0"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert real.returncode == 0 and "removed 1 manifest(s) and 3 blob(s)" in real.stdout
        assert os.listdir(os.path.join(root, "blobs", "sha256")) == []
    finally:
        reg.stop()
        log.close()
    assert proc.returncode == 0
    assert not os.path.exists(f"/proc/{workers[0]}")


def test_plain_http_only_on_loopback(tmp_path):
    cmd = [sys.executable, "-m", "dockyard.distribution.registry.main", "serve"]
    result = subprocess.run(
        [*cmd, "--addr", f"0.0.0.0:{free_port()}", "--root", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert result.returncode == 2 and "refusing plain HTTP" in result.stderr


def test_abandoned_upload_expires(registries):
    reg = registries("--upload-ttl", "1")
    status, headers, _ = reg.request("POST", "/v2/exp/blobs/uploads/")
    location = headers["location"]
    # A client that sends part of a chunk and hangs up.
    host, port = reg.addr.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode()
            + b"x" * 5000
        )
    uploads = os.path.join(reg.root, "uploads")
    assert len(os.listdir(uploads)) == 1
    deadline = time.monotonic() + 15
    while os.listdir(uploads) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert os.listdir(uploads) == []
    status, _, body = reg.request("GET", location)
    assert status == 404 and json.loads(body)["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


def test_tls_client_certificates(registries, tmp_path):
    pki = Pki(str(tmp_path))
    cert, key = pki.issue("registry", ["127.0.0.1"])
    client_cert, client_key = pki.issue("client", [], client=True)
    reg = registries("--tls-cert", cert, "--tls-key", key, "--tls-client-ca", pki.ca_cert, tls=True)
    url = f"https://{reg.addr}/v2/"
    anonymous = subprocess.run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert anonymous.stdout in ("000", "")  # the handshake fails without a certificate
    signed = subprocess.run(
        [
            "curl",
            "-sk",
            "--cert",
            client_cert,
            "--key",
            client_key,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert signed.stdout == "200"


def test_kill_9_leaves_no_partial_blob(registries):
    """A registry killed mid-upload: after a restart the blob is unknown (never half there),
    the session is still resumable, and a completed upload is whole."""
    reg = registries()
    data = os.urandom(12 << 20)
    digest = "sha256:" + __import__("hashlib").sha256(data).hexdigest()
    _, headers, _ = reg.request("POST", "/v2/crash/blobs/uploads/")
    location = headers["location"]
    host, port = reg.addr.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"PUT {location}?digest={digest} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[: 9 << 20]
        )
        # Kill it once part of the body is on disk (the server writes in 4 MiB batches).
        data_file = os.path.join(reg.root, "uploads", location.rsplit("/", 1)[1], "data")
        deadline = time.monotonic() + 20
        while os.path.getsize(data_file) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        reg.proc.kill()
        reg.proc.wait(10)
    blobs = os.path.join(reg.root, "blobs", "sha256")
    assert os.listdir(blobs) == []
    again = registries("--root", reg.root)  # the last --root wins: the same storage
    status, _, _ = again.request("HEAD", f"/v2/crash/blobs/{digest}")
    assert status == 404
    status, headers, _ = again.request("GET", location)
    assert status == 204
    size = int(headers["range"].split("-")[1]) + 1
    assert 0 < size < len(data)  # what reached the disk before the kill
    status, _, _ = again.request(
        "PUT",
        f"{location}?digest={digest}",
        body=data[size:],
        headers={"Content-Range": f"{size}-{len(data) - 1}"},
    )
    assert status == 201
    status, _, body = again.request("GET", f"/v2/crash/blobs/{digest}")
    assert status == 200 and body == data
