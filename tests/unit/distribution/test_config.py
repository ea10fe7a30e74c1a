"""Registry options: mirrors, insecure registries, limits, and what docker info shows."""

import pytest

from dockyard.distribution.config import RegistryConfig
from dockyard.errors import InvalidParameter


def test_defaults_as_dockerd():
    c = RegistryConfig.from_daemon_json({}, "/etc/x/certs.d")
    assert (c.max_downloads, c.max_uploads, c.max_attempts) == (3, 5, 5)
    info = c.info()
    assert info["InsecureRegistryCIDRs"] == ["127.0.0.0/8"]
    assert info["IndexConfigs"]["docker.io"] == {
        "Name": "docker.io",
        "Mirrors": [],
        "Secure": True,
        "Official": True,
    }


def test_loopback_is_insecure_and_falls_back_to_http():
    c = RegistryConfig()
    eps = c.endpoints("127.0.0.1:5000")
    assert [(e.scheme, e.insecure) for e in eps] == [("https", True), ("http", True)]
    assert c.is_insecure("localhost:5000")
    assert not c.is_insecure("192.0.2.1:5000")


def test_insecure_hosts_and_cidrs():
    c = RegistryConfig.from_daemon_json(
        {"insecure-registries": ["reg.example:5000", "10.1.0.0/16"]}, "/x"
    )
    assert c.is_insecure("reg.example:5000")
    assert c.is_insecure("10.1.2.3:443")
    assert not c.is_insecure("10.2.0.1")
    assert c.info()["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.1.0.0/16"]
    assert c.info()["IndexConfigs"]["reg.example:5000"]["Secure"] is False


def test_hub_mirrors_come_first_then_hub():
    c = RegistryConfig.from_daemon_json({"registry-mirrors": ["http://127.0.0.1:6000"]}, "/x")
    eps = c.endpoints("docker.io")
    assert [(e.url, e.mirror) for e in eps] == [
        ("http://127.0.0.1:6000", True),
        ("https://registry-1.docker.io", False),
    ]
    assert c.info()["Mirrors"] == ["http://127.0.0.1:6000/"]


def test_mirrors_by_host():
    c = RegistryConfig.from_daemon_json(
        {"registry-mirrors-by-host": {"reg.example:5000": ["https://m.example"]}}, "/x"
    )
    eps = c.endpoints("reg.example:5000")
    assert eps[0].url == "https://m.example" and eps[0].mirror
    assert eps[-1].host == "reg.example:5000" and not eps[-1].mirror
    assert c.info()["IndexConfigs"]["reg.example:5000"]["Mirrors"] == ["https://m.example/"]


@pytest.mark.parametrize(
    "data",
    [
        {"registry-mirrors": ["ftp://x"]},
        {"registry-mirrors": ["https://x/path"]},
        {"insecure-registries": ["http://x:5000"]},
        {"max-concurrent-downloads": 0},
        {"max-download-attempts": "3"},
        {"registry-mirrors-by-host": ["x"]},
    ],
)
def test_bad_values_refused(data):
    with pytest.raises(InvalidParameter):
        RegistryConfig.from_daemon_json(data, "/x")
