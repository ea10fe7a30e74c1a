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


def test_mount_stubs_leave_the_rw_layer(tmp_path):
    from dockyard.daemon.builder import drop_stubs

    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (lower / "run").mkdir(parents=True)
    (lower / "etc").mkdir()
    (upper / "run" / "secrets").mkdir(parents=True)
    (upper / "run" / "secrets" / "token").write_bytes(b"")  # the stub of a secret's file
    (upper / "cache" / "deep").mkdir(parents=True)  # a cache mount's stub dirs
    (upper / "keep").mkdir()
    (upper / "keep" / "written").write_bytes(b"the step wrote this")
    (upper / "etc").mkdir()  # the image has /etc: not a stub, even if empty
    drop_stubs(
        str(upper),
        [str(lower)],
        ["/run/secrets/token", "/cache/deep", "/keep/written", "/keep/x", "/etc"],
    )
    assert not (upper / "run" / "secrets").exists()
    assert (upper / "run").is_dir()  # /run is in the image: the walk stops below it
    assert not (upper / "cache").exists()
    assert (upper / "keep" / "written").read_bytes() == b"the step wrote this"
    assert (upper / "etc").is_dir()


def test_mount_stubs_never_followed_through_a_symlink(tmp_path):
    """A step that swaps a stub's parent for a symlink to a host path (absolute, so it
    would resolve on the host) must not make the clean-up delete anything there."""
    from dockyard.daemon.builder import drop_stubs

    upper, lower, outside = tmp_path / "upper", tmp_path / "lower", tmp_path / "host"
    lower.mkdir()
    (outside / "y").mkdir(parents=True)  # an empty host dir the walk must not remove
    (outside / "f").write_bytes(b"")  # an empty host file it must not unlink
    upper.mkdir()
    (upper / "x").symlink_to(outside)
    drop_stubs(str(upper), [str(lower)], ["/x/y", "/x/f"])
    assert (outside / "y").is_dir() and (outside / "f").exists()
    assert (upper / "x").is_symlink()
