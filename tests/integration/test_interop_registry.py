"""dockyardd against ``dockyard registry serve``: push and pull plain, over TLS with a private CA
in ``certs.d``, with htpasswd logins and with the registry's built-in token server; and images
crossing between dockyardd and Debian's dockerd through that registry, both ways, run on the
engine that pulled them.

Registries are started per test (``test_registry.start_registry``: a private root and port,
stopped and removed at the end); images a test makes in either engine are removed at the end,
and so are the CLI config dirs the logins wrote.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid

import pytest
from regpeers import (
    Pki,
    free_port,
    start_dockyard_registry,
    token_config,
    wait_port,
    write_htpasswd,
)

NET = ("--network", "none")


@pytest.fixture
def registries():
    """A factory of ``dockyard registry serve`` processes, all stopped at the end."""
    started = []

    def start(*args: str, **kw):
        reg = start_dockyard_registry(*args, **kw)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()


class Made:
    """References a test creates in one engine, removed (with -f) at the end."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.refs: list[str] = []

    def add(self, ref: str) -> str:
        self.refs.append(ref)
        return ref

    def clean(self) -> None:
        if self.refs:
            self.engine.cli("rmi", "-f", *self.refs)


@pytest.fixture
def made(daemon, dockerd):
    """``made.dy`` / ``made.ref``: what the test tagged or pulled in dockyardd / dockerd."""
    dy, ref = Made(daemon), Made(dockerd)
    try:
        yield type("M", (), {"dy": dy, "ref": ref})
    finally:
        dy.clean()
        ref.clean()


@pytest.fixture
def cli_config(daemon):
    """A fresh DOCKER_CONFIG for logins made through dockyardd, removed at the end; the
    docker CLI and the dockyard CLI both get it through ``env``."""
    path = tempfile.mkdtemp(prefix="dyic-", dir="/tmp")
    try:
        yield dict(daemon.env, DOCKER_CONFIG=path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(env: dict, *args: str, input: bytes | None = None, dockyard: bool = False):
    import subprocess

    from engines import DOCKER_CLI

    program = [sys.executable, "-m", "dockyard.cli.main"] if dockyard else [DOCKER_CLI]
    return subprocess.run(
        program + list(args), env=env, input=input, capture_output=True, timeout=180
    )


def _id(engine, ref: str) -> str:
    out = engine.cli("image", "inspect", "--format", "{{.Id}}", ref, check=True)
    return out.stdout.decode().strip()


def _unique(engine, made: Made, ref: str) -> str:
    """A busybox-based image with a file of its own (so no layer is already in the registry)
    committed from a container; returns its id."""
    token = uuid.uuid4().hex
    name = f"dyic-{token[:12]}"
    engine.cli(
        "run", "--name", name, *NET, "busybox", "sh", "-c", f"echo {token} > /marker", check=True
    )
    try:
        engine.cli("commit", name, made.add(ref), check=True)
    finally:
        engine.cli("rm", "-f", name)
    return token


def _push_pull_run(env: dict, engine, made: Made, ref: str) -> None:
    """Push ``busybox`` as ``ref`` through ``env``'s CLI config, remove it, pull it back and run
    it: the same image id and a working container."""
    want = _id(engine, "busybox")
    engine.cli("tag", "busybox", made.add(ref), check=True)
    pushed = _run(env, "push", ref)
    assert pushed.returncode == 0, pushed.stderr.decode()
    assert f"{ref.rsplit(':', 1)[1]}: digest: sha256:".encode() in pushed.stdout
    digest = pushed.stdout.decode().split("digest: ")[1].split()[0]
    engine.cli("rmi", ref, check=True)
    pulled = _run(env, "pull", ref, dockyard=True)
    assert pulled.returncode == 0, pulled.stderr.decode()
    assert f"Digest: {digest}".encode() in pulled.stdout
    assert _id(engine, ref) == want
    ran = _run(env, "run", "--rm", *NET, ref, "echo", "ran")
    assert (ran.returncode, ran.stdout) == (0, b"ran\n"), ran.stderr.decode()


def test_plain_and_across_to_dockerd_and_back(daemon, dockerd, registries, made):
    reg = registries()
    _push_pull_run(daemon.env, daemon, made.dy, f"{reg.addr}/plain/busybox:1")
    # dockyardd pushes an image of its own; dockerd pulls it and runs it.
    ref = f"{reg.addr}/cross/from-dockyardd:1"
    token = _unique(daemon, made.dy, ref)
    daemon.cli("push", ref, check=True)
    dockerd.cli("pull", made.ref.add(ref), check=True)
    assert _id(dockerd, ref) == _id(daemon, ref)
    out = dockerd.cli("run", "--rm", *NET, ref, "cat", "/marker", check=True)
    assert out.stdout == f"{token}\n".encode()
    # and the reverse: dockerd pushes, dockyardd pulls and runs.
    back = f"{reg.addr}/cross/from-dockerd:1"
    token = _unique(dockerd, made.ref, back)
    dockerd.cli("push", back, check=True)
    daemon.cli("pull", made.dy.add(back), check=True)
    assert _id(daemon, back) == _id(dockerd, back)
    out = daemon.cli("run", "--rm", *NET, back, "cat", "/marker", check=True)
    assert out.stdout == f"{token}\n".encode()


@pytest.fixture
def tls_registry(daemon, registries):
    """The registry on [::1] (not an insecure registry by default) with a certificate from a
    private CA that only dockyardd's ``certs.d/[::1]:PORT/ca.crt`` knows."""
    root = tempfile.mkdtemp(prefix="dyictls-", dir="/tmp")
    certs = ""
    try:
        pki = Pki(root)
        cert, key = pki.issue("registry", ["::1"])
        addr = f"[::1]:{free_port()}"
        certs = os.path.join(daemon.root, "certs.d", addr)
        reg = registries("--tls-cert", cert, "--tls-key", key, tls=True, addr=addr)
        # start_registry's readiness probe cannot dial a bracketed host: wait here.
        wait_port("::1", int(addr.rsplit(":", 1)[1]))
        yield reg, pki, certs
    finally:
        if certs:
            shutil.rmtree(certs, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def test_tls_with_a_private_ca_in_certs_d(daemon, tls_registry, made):
    reg, pki, certs = tls_registry
    ref = f"{reg.addr}/tls/busybox:1"
    daemon.cli("tag", "busybox", made.dy.add(ref), check=True)
    refused = daemon.cli("push", ref)
    assert refused.returncode == 1
    assert b"certificate" in refused.stderr and reg.addr.encode() in refused.stderr
    os.makedirs(certs)
    shutil.copy(pki.ca_cert, os.path.join(certs, "ca.crt"))
    _push_pull_run(daemon.env, daemon, made.dy, ref)


def test_htpasswd_login_push_pull(daemon, registries, made, cli_config, tmp_path):
    reg = registries("--htpasswd", write_htpasswd(str(tmp_path), {"alice": "s3cret"}))
    ref = f"{reg.addr}/auth/busybox:1"
    daemon.cli("tag", "busybox", made.dy.add(ref), check=True)
    refused = _run(cli_config, "push", ref, dockyard=True)
    assert refused.returncode == 1 and b"no basic auth credentials" in refused.stderr
    bad = _run(cli_config, "login", "-u", "alice", "--password-stdin", reg.addr, input=b"nope")
    assert bad.returncode == 1 and b"401 Unauthorized" in bad.stderr, bad.stderr
    good = _run(
        cli_config,
        "login",
        "-u",
        "alice",
        "--password-stdin",
        reg.addr,
        input=b"s3cret",
        dockyard=True,
    )
    assert good.stdout == b"Login Succeeded\n", good.stderr
    _push_pull_run(cli_config, daemon, made.dy, ref)
    assert _run(cli_config, "logout", reg.addr, dockyard=True).returncode == 0
    assert _run(cli_config, "pull", ref).returncode == 1


def test_built_in_token_server(daemon, registries, made, cli_config, tmp_path):
    addr = f"127.0.0.1:{free_port()}"
    registries(config=token_config(str(tmp_path), addr), addr=addr)
    ref = f"{addr}/tok/busybox:1"
    daemon.cli("tag", "busybox", made.dy.add(ref), check=True)
    assert _run(cli_config, "push", ref).returncode == 1
    login = _run(cli_config, "login", "-u", "alice", "--password-stdin", addr, input=b"a-pass")
    assert login.returncode == 0, login.stderr
    _push_pull_run(cli_config, daemon, made.dy, ref)
    # bob may pull tok/* but not push there.
    bob = _run(
        cli_config, "login", "-u", "bob", "--password-stdin", addr, input=b"b-pass", dockyard=True
    )
    assert bob.returncode == 0, bob.stderr
    daemon.cli("rmi", ref, check=True)
    pulled = _run(cli_config, "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    other = f"{addr}/tok/bob:1"
    daemon.cli("tag", "busybox", made.dy.add(other), check=True)
    denied = _run(cli_config, "push", other, dockyard=True)
    assert denied.returncode == 1
    assert b"denied: requested access to the resource is denied" in denied.stderr, denied.stderr
