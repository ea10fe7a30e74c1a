"""X-Registry-Auth decoding and WWW-Authenticate parsing."""

import base64
import json

from dockyard.distribution.auth import AuthConfig, parse_challenges


def _b64(data: dict, urlsafe: bool = True) -> str:
    raw = json.dumps(data).encode()
    return (base64.urlsafe_b64encode if urlsafe else base64.standard_b64encode)(raw).decode()


def test_decode_registry_auth_header():
    auth = AuthConfig.decode(
        _b64({"username": "u", "password": "p?>", "serveraddress": "localhost:5000"})
    )
    assert (auth.username, auth.password, auth.serveraddress) == ("u", "p?>", "localhost:5000")
    assert not auth.empty


def test_decode_tolerates_missing_padding_and_garbage():
    header = _b64({"identitytoken": "tok"}).rstrip("=")
    assert AuthConfig.decode(header).identitytoken == "tok"
    assert AuthConfig.decode("e30=").empty  # the CLI's {} for anonymous
    assert AuthConfig.decode("!!!not base64").empty
    assert AuthConfig.decode(None).empty


def test_legacy_auth_field():
    auth = AuthConfig.from_json({"auth": base64.b64encode(b"me:secret").decode()})
    assert (auth.username, auth.password) == ("me", "secret")


def test_bearer_challenge_with_quoted_commas():
    [c] = parse_challenges(
        [
            'Bearer realm="https://auth.example/token",service="registry.example",'
            'scope="repository:a/b:pull,push"'
        ]
    )
    assert c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }


def test_basic_challenge():
    [c] = parse_challenges(['Basic realm="Registry Realm"'])
    assert (c.scheme, c.params["realm"]) == ("basic", "Registry Realm")
