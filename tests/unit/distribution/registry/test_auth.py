"""htpasswd basic auth, token verification and the built-in token server, in process."""

from __future__ import annotations

import base64
import time

import bcrypt
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dockyard.distribution.registry.config import Rule, TokenConfig

from .regclient import digest_of, error_code, with_client


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _write_key(path, key) -> str:  # type: ignore[no-untyped-def]
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


@pytest.fixture
def htpasswd(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    lines = []
    for user, password in {"alice": "a-pass", "bob": "b-pass"}.items():
        lines.append(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def signing_key(tmp_path_factory) -> str:
    return _write_key(
        tmp_path_factory.mktemp("keys") / "key.pem", ec.generate_private_key(ec.SECP256R1())
    )


def test_htpasswd(tmp_path, htpasswd):
    @with_client(htpasswd=htpasswd)
    async def run(client, tmp_path):  # type: ignore[no-untyped-def]
        resp = await client.get("/v2/")
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="dockyard-registry"'
        assert await error_code(resp) == "UNAUTHORIZED"
        resp = await client.get("/v2/", headers=_basic("alice", "wrong"))
        assert resp.status == 401
        resp = await client.get("/v2/", headers=_basic("nobody", "a-pass"))
        assert resp.status == 401
        resp = await client.get("/v2/", headers={"Authorization": "Basic !!!"})
        assert resp.status == 401
        resp = await client.get("/v2/", headers=_basic("alice", "a-pass"))
        assert resp.status == 200
        resp = await client.head("/v2/x/manifests/latest")
        assert resp.status == 401 and "WWW-Authenticate" in resp.headers

    run(tmp_path)


def _token_config(signing_key: str, keys: tuple[str, ...] = ()) -> TokenConfig:
    return TokenConfig(
        realm="https://auth.example/token",
        service="reg.example",
        issuer="test-issuer",
        keys=keys,
        signing_key=signing_key,
        rules=(
            Rule("alice", "*", ("pull", "push", "delete")),
            Rule("bob", "team/*", ("pull",)),
            Rule("*", "public/*", ("pull",)),
        ),
    )


def test_token_server_and_scopes(tmp_path, htpasswd, signing_key):
    @with_client(htpasswd=htpasswd, token=_token_config(signing_key))
    async def run(client, tmp_path):  # type: ignore[no-untyped-def]
        resp = await client.post("/v2/team/app/blobs/uploads/")
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == (
            'Bearer realm="https://auth.example/token",service="reg.example",'
            'scope="repository:team/app:pull,push"'
        )

        async def token(scope: str, creds: dict[str, str] | None = None) -> str:
            resp = await client.get(
                "/token", params={"service": "reg.example", "scope": scope}, headers=creds or {}
            )
            assert resp.status == 200, await resp.text()
            body = await resp.json()
            assert body["token"] == body["access_token"] and body["expires_in"] == 300
            return body["token"]

        bob = await token("repository:team/app:pull,push", _basic("bob", "b-pass"))
        claims = jwt.decode(bob, options={"verify_signature": False})
        assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
        assert claims["aud"] == "reg.example" and claims["iss"] == "test-issuer"
        bearer = {"Authorization": f"Bearer {bob}"}
        resp = await client.get("/v2/team/app/tags/list", headers=bearer)
        assert resp.status == 404  # allowed; the repository does not exist
        resp = await client.post("/v2/team/app/blobs/uploads/", headers=bearer)
        assert resp.status == 403  # the token server refused bob push: DENIED, no challenge
        body = await resp.json()
        assert body["errors"][0]["code"] == "DENIED" and "bob" in body["errors"][0]["message"]
        assert "WWW-Authenticate" not in resp.headers
        # A token for one repository does not open another: a challenge for its scope.
        resp = await client.get("/v2/team/other/tags/list", headers=bearer)
        assert resp.status == 401
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
        # Anonymous: only public/*.
        anon = await token("repository:public/x:pull repository:team/app:pull")
        claims = jwt.decode(anon, options={"verify_signature": False})
        assert [a["name"] for a in claims["access"]] == ["public/x"]
        resp = await client.get("/token", headers=_basic("bob", "wrong"))
        assert resp.status == 401
        alice = await token("repository:team/app:pull,push", _basic("alice", "a-pass"))
        resp = await client.post(
            "/v2/team/app/blobs/uploads/", headers={"Authorization": f"Bearer {alice}"}
        )
        assert resp.status == 202
        # A mount from a repository bob's token cannot read: an upload instead, no leak.
        layer = await client.post(
            "/v2/secret/blobs/uploads/?digest=" + digest_of(b"private"),
            data=b"private",
            headers={
                "Authorization": f"Bearer {await token('repository:secret:push,pull', _basic('alice', 'a-pass'))}"
            },
        )
        assert layer.status == 201
        bob_push = await token(
            "repository:team/app:pull,push repository:secret:pull", _basic("bob", "b-pass")
        )
        resp = await client.post(
            f"/v2/team/app/blobs/uploads/?mount={digest_of(b'private')}&from=secret",
            headers={"Authorization": f"Bearer {bob_push}"},
        )
        assert resp.status == 403  # bob may not push to team/app at all
        alice_push = await token("repository:team/app:pull,push", _basic("alice", "a-pass"))
        resp = await client.post(
            f"/v2/team/app/blobs/uploads/?mount={digest_of(b'private')}&from=secret",
            headers={"Authorization": f"Bearer {alice_push}"},
        )
        assert resp.status == 202  # the token lacks secret:pull: no mount, an upload session
        # OAuth2 password grant (POST), as dockerd's login tries first.
        resp = await client.post(
            "/token",
            data={
                "grant_type": "password",
                "username": "alice",
                "password": "a-pass",
                "service": "reg.example",
                "scope": "repository:team/app:pull",
                "client_id": "docker",
            },
        )
        assert resp.status == 200 and (await resp.json())["access_token"]

    run(tmp_path)


def test_foreign_and_bad_tokens(tmp_path, signing_key):
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = tmp_path / "issuer.pub"
    public.write_bytes(
        issuer_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = TokenConfig(
        realm="https://auth.example/token",
        service="reg.example",
        issuer="external",
        keys=(str(public),),
    )

    def make(key, **over) -> str:  # type: ignore[no-untyped-def]
        now = int(time.time())
        claims = {
            "iss": "external",
            "aud": "reg.example",
            "sub": "carol",
            "iat": now,
            "nbf": now,
            "exp": now + 60,
            "access": [{"type": "repository", "name": "x", "actions": ["pull"]}],
            **over,
        }
        return jwt.encode(claims, key, algorithm="RS256")

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @with_client(token=config)
    async def run(client, tmp_path):  # type: ignore[no-untyped-def]
        good = make(issuer_key)
        resp = await client.get("/v2/x/tags/list", headers={"Authorization": f"Bearer {good}"})
        assert resp.status == 404
        for bad in [
            make(other),
            make(issuer_key, aud="elsewhere"),
            make(issuer_key, iss="someone"),
            make(issuer_key, exp=int(time.time()) - 3600),
            "not.a.jwt",
        ]:
            resp = await client.get("/v2/x/tags/list", headers={"Authorization": f"Bearer {bad}"})
            assert resp.status == 401
            assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        resp = await client.get("/token")
        assert resp.status == 405 and await error_code(resp) == "UNSUPPORTED"

    run(tmp_path)
