import base64
import json

from dockyard.daemon.builder import _auth_header


def _config(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def test_registry_config_entry_for_the_pulled_domain():
    config = _config(
        {
            "https://index.docker.io/v1/": {"username": "hub", "password": "h"},
            "127.0.0.1:5000": {"username": "local", "password": "l"},
            "http://reg.example:8443": {"auth": base64.b64encode(b"u:p").decode()},
        }
    )
    for domain, user in (("docker.io", "hub"), ("127.0.0.1:5000", "local")):
        header = _auth_header(config, domain)
        assert header is not None
        assert json.loads(base64.urlsafe_b64decode(header))["username"] == user
    assert (
        json.loads(base64.urlsafe_b64decode(_auth_header(config, "reg.example:8443")))["auth"]
        == base64.b64encode(b"u:p").decode()
    )
    assert _auth_header(config, "other.example") is None


def test_absent_or_garbled_registry_config():
    assert _auth_header("", "docker.io") is None
    assert _auth_header("e30=", "docker.io") is None  # {} as the docker CLI sends it
    assert _auth_header("%%%", "docker.io") is None
    assert _auth_header(_config(["not", "a", "map"]), "docker.io") is None
