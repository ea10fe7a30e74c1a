"""Registry flags: dockerd's ``--registry-mirror``, ``--insecure-registry`` (repeatable),
``--max-concurrent-downloads/uploads`` and ``--max-download-attempts``, merged into their
daemon.json keys and validated as the keys are."""

from __future__ import annotations

import ipaddress
import json

import pytest

from dockyard.daemon.config import ConfigError, load, parse_args


def _load(tmp_path, file: dict | None, *flags: str):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(file or {}))
    return load(parse_args(["--config-file", str(path), *flags]))


def test_defaults_as_dockerd(tmp_path):
    reg = _load(tmp_path, None).registry
    assert (reg.mirrors, reg.insecure_hosts) == ([], [])
    assert (reg.max_downloads, reg.max_uploads, reg.max_attempts) == (3, 5, 5)
    assert reg.certs_dir == str(tmp_path / "certs.d")


def test_flags_reach_the_registry_config(tmp_path):
    config = _load(
        tmp_path,
        None,
        "--registry-mirror",
        "https://mirror-a.internal",
        "--registry-mirror=http://127.0.0.1:5000",
        "--insecure-registry",
        "myregistry.example:5000",
        "--insecure-registry=10.77.0.0/16",
        "--max-concurrent-downloads",
        "1",
        "--max-concurrent-uploads=7",
        "--max-download-attempts",
        "2",
    )
    reg = config.registry
    assert reg.mirrors == ["https://mirror-a.internal/", "http://127.0.0.1:5000/"]  # as dockerd
    assert reg.insecure_hosts == ["myregistry.example:5000"]
    assert ipaddress.ip_network("10.77.0.0/16") in reg.insecure_cidrs
    assert reg.is_insecure("myregistry.example:5000") and reg.is_insecure("10.77.1.2:443")
    assert (reg.max_downloads, reg.max_uploads, reg.max_attempts) == (1, 7, 2)
    assert [e.url for e in reg.endpoints("docker.io")][:2] == [
        "https://mirror-a.internal",
        "http://127.0.0.1:5000",
    ]
    assert config.extra["max-concurrent-downloads"] == 1  # the key, as dockerd merges


@pytest.mark.parametrize(
    ("key", "value", "flag"),
    [
        ("registry-mirrors", ["https://m.internal"], "--registry-mirror=https://o.internal"),
        ("insecure-registries", ["a:5000"], "--insecure-registry=b:5000"),
        ("max-concurrent-downloads", 2, "--max-concurrent-downloads=4"),
        ("max-concurrent-uploads", 2, "--max-concurrent-uploads=4"),
    ],
)
def test_flag_and_key_conflict(tmp_path, key, value, flag):
    with pytest.raises(
        ConfigError, match=f"specified both as a flag and in the configuration.*{key}"
    ):
        _load(tmp_path, {key: value}, flag)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--registry-mirror=ftp://nope", "invalid mirror"),
        ("--insecure-registry=http://a:5000", "should not contain '://'"),
        ("--max-concurrent-downloads=0", "max-concurrent-downloads"),
        ("--max-concurrent-uploads=-1", "max-concurrent-uploads"),
    ],
)
def test_bad_flag_values_stop_the_daemon(tmp_path, flag, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, None, flag)


def test_non_integer_limit_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        _load(tmp_path, None, "--max-concurrent-downloads=many")
