"""Registries for the pull/push tests, each started by the test and removed after it:
Debian's ``docker-registry`` (plain, htpasswd, TLS with a private CA, token auth) and
``FakeRegistry``, a small aiohttp server that misbehaves on purpose (wrong digests, cut or
stalled blobs, hostile layers) or plays the search index.  A token server for Docker's
Bearer flow signs JWTs the way docker/distribution's token auth accepts (x5c chain)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def stop_process(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; a no-op once it has exited."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def log_tail(path: str, size: int) -> str:
    """The last ``size`` characters of a log file, "" when there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-size:]
    except OSError:
        return ""


# ---- TLS material ------------------------------------------------------------------------------
def write_key(path: str, key: object) -> None:
    """A private key as unencrypted PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization

    with open(path, "wb") as f:
        f.write(
            key.private_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@dataclass
class Pki:
    """A private CA and certificates it signed, written under ``root``."""

    root: str
    ca_cert: str = ""
    ca_key: object = None

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test CA")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.ca_key, self._ca = key, cert
        self.ca_cert = os.path.join(self.root, "ca.crt")
        with open(self.ca_cert, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, hosts: list[str], client: bool = False) -> tuple[str, str]:
        """(cert path, key path) for ``hosts`` (IPs or DNS names)."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        sans = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_path = os.path.join(self.root, f"{name}.crt")
        key_path = os.path.join(self.root, f"{name}.key")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, key)
        return cert_path, key_path


# ---- Debian's docker-registry ------------------------------------------------------------------
@dataclass
class Registry:
    host: str  # "127.0.0.1:port" or "[::1]:port"
    root: str
    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, 10)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return log_tail(os.path.join(self.root, "registry.log"), 3000)


def start_registry(
    bind: str = "127.0.0.1",
    htpasswd: tuple[str, str] | None = None,
    tls: tuple[str, str] | None = None,
    client_ca: str | None = None,
    token: dict | None = None,
) -> Registry:
    """docker-registry on a free port of ``bind``; storage in a temp dir it owns."""
    root = tempfile.mkdtemp(prefix="dyreg-", dir="/tmp")
    port = free_port(bind)
    host = f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root}/data",
        "  delete:",
        "    enabled: true",
        "http:",
        f'  addr: "{host}"',
        "  secret: dockyard-tests",
    ]
    if tls:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if client_ca:
            lines += ["    clientcas:", f"      - {client_ca}"]
    if htpasswd:
        path = write_htpasswd(root, {htpasswd[0]: htpasswd[1]})
        lines += ["auth:", "  htpasswd:", "    realm: dockyard-realm", f"    path: {path}"]
    if token:
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token['realm']}",
            f"    service: {token['service']}",
            f"    issuer: {token['issuer']}",
            f"    rootcertbundle: {token['rootcertbundle']}",
        ]
    config = os.path.join(root, "config.yml")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    reg = Registry(host, root)
    with open(os.path.join(root, "registry.log"), "ab") as log:
        reg.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", config], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_port(bind, port)
    except BaseException:
        print(reg.log())
        reg.stop()
        raise
    return reg


# ---- dockyard's own registry (``python -m dockyard.distribution.registry.main serve``) -------
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class DockyardRegistry:
    """A running ``dockyard registry``: ``addr`` (``127.0.0.1:PORT``), ``root`` (its storage)."""

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
        return log_tail(self.log, 4000)

    def stop(self) -> None:
        stop_process(self.proc, 20)
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_ready(reg: DockyardRegistry, timeout: float = 20) -> None:
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


def start_dockyard_registry(
    *args: str, config: dict | None = None, tls: bool = False, addr: str = ""
) -> DockyardRegistry:
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
    reg = DockyardRegistry(proc, addr, root, workdir, tls=tls, log=log)
    try:
        wait_ready(reg)
    except BaseException:
        reg.stop()
        raise
    return reg


def write_htpasswd(directory: str, users: dict[str, str]) -> str:
    """An htpasswd file of bcrypt hashes (as ``htpasswd -B``) in ``directory``."""
    import bcrypt

    path = os.path.join(directory, "htpasswd")
    with open(path, "w") as f:
        for user, password in users.items():
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
            f.write(f"{user}:{hashed}\n")
    return path


def token_config(directory: str, addr: str) -> dict:
    """``dockyard registry``'s built-in token server: alice may do anything, bob pull
    ``tok/*``; the signing key is written under ``directory``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    key_path = os.path.join(directory, "token-key.pem")
    write_key(key_path, key)
    return {
        "htpasswd": write_htpasswd(directory, {"alice": "a-pass", "bob": "b-pass"}),
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


# ---- what a pull leaves in a daemon's data root -------------------------------------------
def data_state(engine) -> dict[str, set[str]]:
    """What a pull may leave: images, layer records, layer directories, content blobs,
    ingests (read from the data root; the metadata database read-only)."""
    data = os.path.join(engine.root, "data")
    db = sqlite3.connect(f"file:{os.path.join(data, 'metadata.db')}?mode=ro", uri=True)
    try:
        images = {r[0] for r in db.execute("SELECT id FROM images")}
        layers = {r[0] for r in db.execute("SELECT chain_id FROM layers")}
    finally:
        db.close()
    dirs: set[str] = set()
    for home in ("overlay2", os.path.join("vfs", "dir")):
        path = os.path.join(data, home)
        if os.path.isdir(path):
            dirs |= {f"{home}/{n}" for n in os.listdir(path)}
    blobs = os.path.join(data, "content", "blobs", "sha256")
    return {
        "images": images,
        "layers": layers,
        "dirs": dirs,
        "blobs": set(os.listdir(blobs)) if os.path.isdir(blobs) else set(),
        "ingest": set(os.listdir(os.path.join(data, "content", "ingest"))),
    }


# ---- a TCP proxy that resets connections -------------------------------------------------
class ResettingProxy:
    """A loopback TCP proxy to ``upstream`` ("host:port"): while ``cut_after`` is set, a
    connection that has sent more than that many bytes upstream (an upload under way) is
    reset on both sides (RST, SO_LINGER 0), as a registry or load balancer dying mid-body.
    While ``hold_after`` is set, such a connection is held instead (nothing more forwarded,
    ``held`` counts them), so a test can act in the middle of an upload."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.cut_after: int | None = None
        self.hold_after: int | None = None
        self.resets = 0
        self.held = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def stop(self) -> None:
        self._closed = True
        self._sock.close()
        with self._lock:
            for s in self._open:
                s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upload: bool) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                sent += len(data)
                limit = self.cut_after
                if upload and limit is not None and sent > limit:
                    self.resets += 1
                    for s in (src, dst):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                        s.close()
                    return
                hold = self.hold_after
                if upload and hold is not None and sent > hold:
                    self.held += 1
                    while self.hold_after is not None and not self._closed:
                        time.sleep(0.05)
                dst.sendall(data)
        except OSError:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


# ---- an aiohttp server in a thread -------------------------------------------------------------
class ThreadServer:
    """Run an aiohttp app on 127.0.0.1:<free port> in a thread with its own loop."""

    def __init__(self, app, ssl_context=None) -> None:  # type: ignore[no-untyped-def]
        from aiohttp import web

        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._ssl = ssl_context
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        from aiohttp import web

        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self._ssl)
        await site.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        finally:
            for task in asyncio.all_tasks(self.loop):  # handlers still sleeping (stalls)
                self.loop.call_soon_threadsafe(task.cancel)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


# ---- images made by the tests ------------------------------------------------------------------
def layer_tar(
    files: dict[str, bytes], extra: Callable[[tarfile.TarFile], None] | None = None
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tf.addfile(info, io.BytesIO(data))
        if extra:
            extra(tf)
    return buf.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    """A schema 2 image as blobs: manifest, config and gzip layers (with their tars)."""

    manifest: bytes
    config: bytes
    layers: list[bytes]  # compressed
    tars: list[bytes]
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def manifest_digest(self) -> str:
        return digest(self.manifest)


def make_image(
    tars: list[bytes],
    compress: Callable[[bytes], bytes] | None = None,
    layer_type: str = "application/vnd.docker.image.rootfs.diff.tar.gzip",
    arch: str = "amd64",
) -> Image:
    compress = compress or (lambda b: gzip.compress(b, mtime=0))
    layers = [compress(t) for t in tars]
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "created": "2024-01-01T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": [digest(t) for t in tars]},
            "history": [{"created": "2024-01-01T00:00:00Z"} for _ in tars],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": digest(config),
            },
            "layers": [
                {
                    "mediaType": layer_type,
                    "size": len(layer),
                    "digest": digest(layer),
                }
                for layer in layers
            ],
        },
        indent=3,
    ).encode()
    image = Image(manifest, config, layers, tars)
    image.blobs = {digest(config): config, **{digest(layer): layer for layer in layers}}
    return image


class FakeRegistry:
    """A registry serving fixed images, with hooks to break a blob's delivery.

    ``images`` maps "repo:tag" to an Image; ``blob_hook(digest, request_count, range_start)``
    may return a replacement behaviour: ("cut", n) sends n bytes then closes the connection
    (an orderly FIN), ("reset", n) sends n bytes then resets it (RST, as a crashed proxy),
    ("hang", n) sends n bytes then nothing more while keeping the connection open,
    ("stall", seconds) sleeps before sending, ("corrupt",) flips a byte, None serves it.
    ``blob_gets`` counts GETs per blob, ``blob_max_active`` the most blob GETs in flight at
    once (what ``max-concurrent-downloads`` bounds)."""

    def __init__(self) -> None:
        from aiohttp import web

        self.images: dict[str, Image] = {}
        self.raw_manifests: dict[str, tuple[bytes, str]] = {}
        self.blob_gets: dict[str, int] = {}
        self.blob_active = 0
        self.blob_max_active = 0
        self.ranges: list[tuple[str, int]] = []
        self.blob_hook: Callable[[str, int, int], tuple | None] = lambda d, n, r: None
        self.search_results: list[dict] = []
        self.search_queries: list[dict] = []
        app = web.Application()
        app.router.add_get("/v2/", self._ping)
        app.router.add_get("/v1/search", self._search)
        app.router.add_route("*", "/v2/{name:.+}/manifests/{ref}", self._manifest)
        app.router.add_route("*", "/v2/{name:.+}/blobs/{digest}", self._blob)
        self.server = ThreadServer(app)

    @property
    def host(self) -> str:
        return self.server.host

    def stop(self) -> None:
        self.server.stop()

    def add(self, repo_tag: str, image: Image) -> None:
        self.images[repo_tag] = image

    async def _ping(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        return web.json_response({})

    async def _search(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        self.search_queries.append(dict(request.query))
        return web.json_response(
            {
                "num_results": len(self.search_results),
                "query": request.query.get("q", ""),
                "results": self.search_results,
            }
        )

    async def _manifest(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        key = f"{request.match_info['name']}:{request.match_info['ref']}"
        if key in self.raw_manifests:
            body, ctype = self.raw_manifests[key]
            return web.Response(body=body, content_type=ctype.split(";")[0])
        image = self.images.get(key)
        if image is None:
            for img in self.images.values():
                if img.manifest_digest == request.match_info["ref"]:
                    image = img
        if image is None:
            return web.json_response(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
                status=404,
            )
        return web.Response(
            body=image.manifest,
            headers={
                "Content-Type": "application/vnd.docker.distribution.manifest.v2+json",
                "Docker-Content-Digest": image.manifest_digest,
            },
        )

    async def _blob(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        d = request.match_info["digest"]
        data = None
        for image in self.images.values():
            data = image.blobs.get(d, data)
        if data is None:
            return web.json_response(
                {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]},
                status=404,
            )
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(len(data))})
        count = self.blob_gets[d] = self.blob_gets.get(d, 0) + 1
        self.blob_active += 1
        self.blob_max_active = max(self.blob_max_active, self.blob_active)
        try:
            return await self._send_blob(request, d, data, count)
        finally:
            self.blob_active -= 1

    async def _send_blob(self, request, d: str, data: bytes, count: int):  # type: ignore[no-untyped-def]
        from aiohttp import web

        start = 0
        rng = request.headers.get("Range", "")
        if rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        self.ranges.append((d, start))
        action = self.blob_hook(d, count, start)
        body = data[start:]
        status = 206 if start else 200
        resp = web.StreamResponse(status=status)
        resp.content_length = len(body)
        if start:
            resp.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if action and action[0] == "corrupt":
            body = bytes([body[0] ^ 1]) + body[1:]
        if action and action[0] == "stall":
            await asyncio.sleep(action[1])
        await resp.prepare(request)
        if action and action[0] in ("cut", "reset", "hang"):
            await resp.write(body[: action[1]])
            await asyncio.sleep(0.05)
            if action[0] == "hang":
                await asyncio.sleep(3600)  # cancelled by stop() or when the client goes
            elif action[0] == "reset":
                sock = request.transport.get_extra_info("socket")
                # SO_LINGER on, 0 s: close() sends RST and drops unsent data
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                request.transport.abort()
            else:
                request.transport.close()
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp


# ---- token server --------------------------------------------------------------------------
class TokenServer:
    """Docker's token auth: GET with Basic credentials (or anonymous), POST refresh_token.

    Users in ``users`` get pull and push on every repository; anonymous callers get pull
    on repositories under ``public/``.  Tokens are RS256 JWTs with an x5c chain of one
    certificate, which the registry trusts through ``rootcertbundle``."""

    def __init__(self, root: str, users: dict[str, str], service: str = "dockyard-registry"):
        from aiohttp import web
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = users
        self.service = service
        self.issuer = "dockyard-token-issuer"
        self.requests: list[dict] = []
        self.refresh_tokens: dict[str, str] = {}
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = os.path.join(root, "token-root.crt")
        with open(self.bundle, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        app = web.Application()
        app.router.add_get("/token", self._get)
        app.router.add_post("/token", self._post)
        self.server = ThreadServer(app)

    @property
    def realm(self) -> str:
        return f"http://{self.server.host}/token"

    def registry_options(self) -> dict:
        return {
            "realm": self.realm,
            "service": self.service,
            "issuer": self.issuer,
            "rootcertbundle": self.bundle,
        }

    def stop(self) -> None:
        self.server.stop()

    def _jwt(self, subject: str, scopes: list[str], anonymous: bool) -> str:
        import jwt

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = actions.split(",") if actions else []
            if anonymous:
                granted = [a for a in wanted if a == "pull" and name.startswith("public/")]
            else:
                granted = wanted
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": base64.b16encode(os.urandom(8)).decode(),
            "access": access,
        }
        headers = {"x5c": [base64.b64encode(self.cert_der).decode()]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)

    async def _get(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        q = request.query
        self.requests.append({"method": "GET", **q, "auth": "Authorization" in request.headers})
        subject = ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(user) != pw:
                return web.json_response({"details": "incorrect username or password"}, status=401)
            subject = user
        body = {
            "token": self._jwt(subject, q.getall("scope", []), not subject),
            "expires_in": 300,
        }
        if subject and q.get("offline_token") == "true":
            refresh = base64.b16encode(os.urandom(12)).decode()
            self.refresh_tokens[refresh] = subject
            body["refresh_token"] = refresh
        return web.json_response(body)

    async def _post(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        form = await request.post()
        self.requests.append({"method": "POST", **form})
        subject = self.refresh_tokens.get(str(form.get("refresh_token", "")))
        if form.get("grant_type") != "refresh_token" or not subject:
            return web.json_response({"details": "invalid refresh token"}, status=401)
        scopes = str(form.get("scope", "")).split()
        return web.json_response(
            {"access_token": self._jwt(subject, scopes, False), "expires_in": 300}
        )
