"""Credentials: POST /auth, X-Registry-Auth on pull and push, against docker-registry with
htpasswd (Basic), with token auth (Bearer, a token server of the test's own, refresh tokens),
and TLS with a private CA and a client certificate from certs.d."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile

import pytest
from engines import api_request
from regpeers import Pki, TokenServer, layer_tar, start_registry

USER, PASSWORD = "alice", "s3cret-pw"


def _xauth(**fields) -> dict[str, str]:
    raw = json.dumps(fields).encode()
    return {"X-Registry-Auth": base64.urlsafe_b64encode(raw).decode()}


def _login(engine, **fields) -> tuple[int, dict]:
    status, body = api_request(engine, "POST", "/auth", json.dumps(fields).encode())
    return status, json.loads(body)


def _stream(engine, method: str, path: str, headers=None) -> tuple[int, list]:
    status, body = api_request(engine, method, path, headers=headers, timeout=120)
    if status != 200:
        return status, json.loads(body)
    return status, [json.loads(line) for line in body.splitlines()]


@pytest.fixture(scope="module")
def small_image(daemon):
    name = "authsrc:latest"
    daemon.cli("import", "-", name, input=layer_tar({"f": os.urandom(50_000)}), check=True)
    yield name
    daemon.cli("rmi", "-f", name)


# ---- htpasswd ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def basic_registry():
    reg = start_registry(htpasswd=(USER, PASSWORD))
    try:
        yield reg
    finally:
        reg.stop()


def test_login_basic_as_dockerd(daemon, dockerd, basic_registry):
    good = {"username": USER, "password": PASSWORD, "serveraddress": basic_registry.host}
    assert _login(daemon, **good) == (200, {"IdentityToken": "", "Status": "Login Succeeded"})
    assert _login(daemon, **good) == _login(dockerd, **good)
    bad = dict(good, password="wrong")
    mine, theirs = _login(daemon, **bad), _login(dockerd, **bad)
    # dockerd 20.10 answers 500; later moby (and the issue) 401, with the same message
    assert mine[0] == 401
    assert mine[1] == theirs[1]


def test_docker_py_login(api, basic_registry):
    out = api.login(USER, PASSWORD, registry=basic_registry.host, reauth=True)
    assert out["Status"] == "Login Succeeded"
    import docker as docker_py

    with pytest.raises(docker_py.errors.APIError) as info:
        api.login(USER, "bad", registry=basic_registry.host, reauth=True)
    assert info.value.status_code == 401


def test_cli_login_push_pull_basic(daemon, basic_registry, small_image):
    host = basic_registry.host
    config = os.path.join(daemon.root, "cli-config", "config.json")
    before = open(config).read() if os.path.exists(config) else None
    out = daemon.cli("login", "-u", USER, "--password-stdin", host, input=b"wrong\n")
    assert out.returncode == 1 and b"401" in out.stderr
    assert (open(config).read() if os.path.exists(config) else None) == before
    out = daemon.cli("login", "-u", USER, "--password-stdin", host, input=PASSWORD.encode())
    assert out.returncode == 0 and b"Login Succeeded" in out.stdout, out.stderr
    name = f"{host}/private/img:1"
    daemon.cli("tag", small_image, name, check=True)
    try:
        out = daemon.cli("push", name)
        assert out.returncode == 0, out.stderr
        daemon.cli("rmi", name, check=True)
        out = daemon.cli("pull", name)
        assert out.returncode == 0, out.stderr
        daemon.cli("logout", host, check=True)
        daemon.cli("rmi", name, check=True)
        # no credentials any more: dockerd's 500 (a 401 would make the CLI prompt)
        out = daemon.cli("pull", name)
        assert out.returncode == 1 and b"no basic auth credentials" in out.stderr, out.stderr
    finally:
        daemon.cli("logout", host)
        daemon.cli("rmi", name)


def test_wrong_credentials_on_pull_and_push(daemon, basic_registry, small_image):
    host = basic_registry.host
    bad = _xauth(username=USER, password="nope", serveraddress=host)
    status, body = _stream(daemon, "POST", f"/images/create?fromImage={host}/x/y&tag=1", bad)
    assert status == 500, body  # as dockerd 20.10 (see test_cli_login_push_pull_basic)
    assert body["message"] == "unauthorized: authentication required"
    daemon.cli("tag", small_image, f"{host}/x/y:1", check=True)
    try:
        status, lines = _stream(daemon, "POST", f"/images/{host}/x/y/push?tag=1", bad)
        assert status == 200 and "unauthorized" in lines[-1]["error"], lines
    finally:
        daemon.cli("rmi", f"{host}/x/y:1")


# ---- token auth --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def token_registry():
    root = tempfile.mkdtemp(prefix="dytok-", dir="/tmp")
    server = TokenServer(root, {USER: PASSWORD})
    try:
        reg = start_registry(token=server.registry_options())
        try:
            yield reg, server
        finally:
            reg.stop()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_token_flow(daemon, token_registry, small_image):
    reg, server = token_registry
    host = reg.host
    # /auth: the token server's refresh token comes back as IdentityToken
    status, body = _login(daemon, username=USER, password=PASSWORD, serveraddress=host)
    assert status == 200 and body["Status"] == "Login Succeeded"
    identity = body["IdentityToken"]
    assert identity and identity in server.refresh_tokens
    assert _login(daemon, username=USER, password="bad", serveraddress=host)[0] == 401
    # push with the identity token only (the refresh_token grant)
    name = f"{host}/public/img"
    daemon.cli("tag", small_image, name + ":1", check=True)
    try:
        headers = _xauth(identitytoken=identity, serveraddress=host)
        status, lines = _stream(daemon, "POST", f"/images/{name}/push?tag=1", headers)
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert any(r["method"] == "POST" for r in server.requests)
        scopes = [r.get("scope", "") for r in server.requests]
        assert any("repository:public/img:pull,push" in s for s in scopes)
        daemon.cli("rmi", name + ":1", check=True)
        # anonymous pull of a public repository: an anonymous token
        status, lines = _stream(
            daemon, "POST", f"/images/create?fromImage={name}&tag=1", {"X-Registry-Auth": "e30="}
        )
        assert status == 200 and "error" not in lines[-1], lines[-2:]
        assert any(not r.get("auth") and r["method"] == "GET" for r in server.requests)
        # a private repository refuses anonymous pulls (401 before the stream)
        status, body = _stream(daemon, "POST", f"/images/create?fromImage={host}/private/z&tag=1")
        assert status == 500 and "unauthorized" in body["message"], body
    finally:
        daemon.cli("rmi", name + ":1")


# ---- TLS with a private CA and a client certificate ------------------------------------------
@pytest.fixture(scope="module")
def tls_registry(daemon):
    root = tempfile.mkdtemp(prefix="dytls-", dir="/tmp")
    reg = None
    try:
        pki = Pki(root)
        cert, key = pki.issue("registry", ["::1", "localhost"])
        reg = start_registry(bind="::1", tls=(cert, key), client_ca=pki.ca_cert)
        certs = os.path.join(daemon.root, "certs.d", reg.host)
        os.makedirs(certs)
        client_cert, client_key = pki.issue("client", [], client=True)
        shutil.copy(pki.ca_cert, os.path.join(certs, "ca.crt"))
        shutil.copy(client_cert, os.path.join(certs, "client.cert"))
        shutil.copy(client_key, os.path.join(certs, "client.key"))
        yield reg
    finally:
        if reg is not None:
            reg.stop()
        shutil.rmtree(os.path.join(daemon.root, "certs.d"), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def test_tls_registry_with_private_ca_and_client_cert(daemon, tls_registry, small_image):
    name = f"{tls_registry.host}/tls/img:1"
    daemon.cli("tag", small_image, name, check=True)
    try:
        out = daemon.cli("push", name)
        assert out.returncode == 0, out.stderr
        daemon.cli("rmi", name, check=True)
        out = daemon.cli("pull", name)
        assert out.returncode == 0, out.stderr
        assert daemon.cli("inspect", name).returncode == 0
    finally:
        daemon.cli("rmi", name)


def test_tls_registry_unknown_ca_is_refused(daemon):
    root = tempfile.mkdtemp(prefix="dytls-", dir="/tmp")
    reg = None
    try:
        reg = start_registry(bind="::1", tls=Pki(root).issue("registry", ["::1"]))
        status, body = _stream(daemon, "POST", f"/images/create?fromImage={reg.host}/a/b&tag=1")
        assert status == 500
        assert reg.host in body["message"] and "certificate" in body["message"]
    finally:
        if reg is not None:
            reg.stop()
        shutil.rmtree(root, ignore_errors=True)
