"""``dockyard registry`` against real clients: Debian's dockerd with the official docker CLI
(plain, TLS, htpasswd, token), skopeo, and online GC during pushes.

Each test starts its own registry process (``python -m dockyard.distribution.registry.main``,
as the CLI's ``dockyard registry`` does) on a free loopback port and a private root, and
stops it and removes its files even on failure; dockerd is the session's reference engine,
whose local images the tests remove again."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field

import bcrypt
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    """A running registry: ``addr`` (``127.0.0.1:PORT``), ``root`` (its storage)."""

    proc: subprocess.Popen
    addr: str
    root: str
    workdir: str
    tls: bool = False
    log: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        host, port = self.addr.rsplit(":", 1)
        if self.tls:
            ctx = ssl._create_unverified_context()
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, int(port), timeout=30, context=ctx
            )
        else:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def read_log(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait(reg: Registry, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            raise RuntimeError(f"registry exited with {reg.proc.returncode}:\n{reg.read_log()}")
        try:
            reg.request("GET", "/v2/")
            return
        except ConnectionRefusedError:
            time.sleep(0.05)
        except OSError:
            return  # listening; it refused the handshake (it wants a client certificate)
    raise RuntimeError(f"registry did not answer on {reg.addr}:\n{reg.read_log()}")


def start_registry(
    *args: str, config: dict | None = None, tls: bool = False, addr: str = ""
) -> Registry:
    """``python -m dockyard.distribution.registry.main serve`` with ``args``."""
    workdir = tempfile.mkdtemp(prefix="dyreg-", dir="/tmp")
    root = os.path.join(workdir, "root")
    addr = addr or f"127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", "dockyard.distribution.registry.main", "serve"]
    cmd += ["--addr", addr, "--root", root, *args]
    if config is not None:
        path = os.path.join(workdir, "config.json")
        with open(path, "w") as f:
            json.dump(config, f)
        cmd += ["--config", path]
    log = os.path.join(workdir, "registry.log")
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    reg = Registry(proc, addr, root, workdir, tls=tls, log=log)
    try:
        _wait(reg)
    except BaseException:
        reg.stop()
        raise
    return reg


def start_docker_registry() -> Registry:
    """Debian's docker-registry (distribution 2.8) on a private root, deletes enabled."""
    workdir = tempfile.mkdtemp(prefix="dyref-", dir="/tmp")
    root = os.path.join(workdir, "root")
    addr = f"127.0.0.1:{free_port()}"
    config = os.path.join(workdir, "config.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {addr}\n"
        )
    log = os.path.join(workdir, "registry.log")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", config], stdout=out, stderr=subprocess.STDOUT
        )
    reg = Registry(proc, addr, root, workdir, log=log)
    try:
        _wait(reg)
    except BaseException:
        reg.stop()
        raise
    return reg


# ---- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def registries():
    """A factory of registry processes, all stopped (and their roots removed) at the end."""
    started: list[Registry] = []

    def start(*args: str, **kw) -> Registry:
        reg = start_registry(*args, **kw)
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


def _self_signed(directory: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def _htpasswd(directory: str, users: dict[str, str]) -> str:
    path = os.path.join(directory, "htpasswd")
    with open(path, "w") as f:
        for user, password in users.items():
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
            f.write(f"{user}:{hashed}\n")
    return path


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
    cert, key = _self_signed(str(tmp_path))
    reg = registries("--tls-cert", cert, "--tls-key", key, tls=True)
    status, headers, _ = reg.request("GET", "/v2/")
    assert status == 200 and headers["docker-distribution-api-version"] == "registry/2.0"
    # 127.0.0.0/8 is an insecure registry to dockerd: TLS without verification.
    _push_pull(dockerd, images, f"{reg.addr}/tls/busybox:1")
    _skopeo("inspect", "--tls-verify=false", f"docker://{reg.addr}/tls/busybox:1")


def test_docker_with_htpasswd(dockerd, registries, images, logins, tmp_path):
    path = _htpasswd(str(tmp_path), {"alice": "s3cret"})
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


def _token_config(directory: str, addr: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    key_path = os.path.join(directory, "token-key.pem")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return {
        "htpasswd": _htpasswd(directory, {"alice": "a-pass", "bob": "b-pass"}),
        "token": {
            "realm": f"http://{addr}/token",
            "service": "dockyard-test",
            "issuer": "dockyard-test-issuer",
            "signing-key": key_path,
            "rules": [
                {"user": "alice", "repository": "*", "actions": ["pull", "push", "delete"]},
                {"user": "bob", "repository": "tok/*", "actions": ["pull"]},
            ],
        },
    }


def test_docker_with_token_auth(dockerd, registries, images, logins, tmp_path):
    addr = f"127.0.0.1:{free_port()}"
    reg = registries(config=_token_config(str(tmp_path), addr), addr=addr)
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
    assert b"denied" in denied.stderr.lower() or b"unauthorized" in denied.stderr.lower()


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
    reg = start_docker_registry()
    yield reg
    reg.stop()


def test_pull_through_cache_in_front_of_docker_registry(dockerd, registries, images, upstream):
    ref = f"{upstream.addr}/lib/busybox:1"
    digest = _push_pull(dockerd, images, ref)
    cache = registries(
        config={"proxy": [{"prefix": "up", "url": f"http://{upstream.addr}", "ttl": 3600}]}
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
    reg = Registry(proc, addr, root, workdir, log=log.name)
    try:
        _wait(reg)
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


def _ca_signed_client(directory: str) -> tuple[str, str, str]:
    """A CA and a client certificate it signed: (ca.pem, client.pem, client-key.pem)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, issuer, key, signer, ca):  # type: ignore[no-untyped-def]
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    ca_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    paths = [os.path.join(directory, n) for n in ("ca.pem", "client.pem", "client-key.pem")]
    with open(paths[0], "wb") as f:
        f.write(
            cert("test ca", "test ca", ca_key, ca_key, True).public_bytes(
                serialization.Encoding.PEM
            )
        )
    with open(paths[1], "wb") as f:
        f.write(
            cert("client", "test ca", client_key, ca_key, False).public_bytes(
                serialization.Encoding.PEM
            )
        )
    with open(paths[2], "wb") as f:
        f.write(
            client_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths[0], paths[1], paths[2]


def test_tls_client_certificates(registries, tmp_path):
    cert, key = _self_signed(str(tmp_path))
    ca, client_cert, client_key = _ca_signed_client(str(tmp_path))
    reg = registries("--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca, tls=True)
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
