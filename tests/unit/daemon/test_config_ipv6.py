"""daemon/config.py: dockerd's ipv6, fixed-cidr-v6, ip6tables and experimental settings."""

from __future__ import annotations

import json

import pytest

from dockyard.daemon import config


def _load(tmp_path, argv, data=None):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(data or {}))
    return config.load(config.parse_args([*argv, "--config-file", str(path)]))


def test_flags_and_file_give_the_same_keys(tmp_path):
    flags = _load(
        tmp_path,
        ["--ipv6", "--fixed-cidr-v6", "fd00:1::/64", "--experimental", "--ip6tables"],
    )
    file = _load(
        tmp_path,
        [],
        {"ipv6": True, "fixed-cidr-v6": "fd00:1::/64", "experimental": True, "ip6tables": True},
    )
    for c in (flags, file):
        assert c.extra["ipv6"] is True and c.extra["ip6tables"] is True
        assert c.extra["fixed-cidr-v6"] == "fd00:1::/64"


def test_boolean_flags_take_go_values(tmp_path):
    assert _load(tmp_path, ["--ipv6=false"]).extra["ipv6"] is False
    assert _load(tmp_path, ["--ipv6=1", "--fixed-cidr-v6", "fd00::/64"]).extra["ipv6"] is True
    with pytest.raises(SystemExit):
        config.parse_args(["--ipv6=maybe"])


@pytest.mark.parametrize(
    ("argv", "data", "message"),
    [
        (["--ipv6"], None, "no subnet is configured. Specify an IPv6 subnet using --fixed-cidr-v6"),
        ([], {"ipv6": True}, "Specify an IPv6 subnet using --fixed-cidr-v6"),
        (["--ip6tables"], None, "ip6tables rules are only available if experimental"),
        (["--fixed-cidr-v6", "10.0.0.0/8"], None, "an IPv6 CIDR is expected"),
        (["--fixed-cidr-v6", "fd00::1"], None, "an IPv6 CIDR is expected"),
        (["--fixed-cidr-v6", "bogus"], None, "an IPv6 CIDR is expected"),
        ([], {"ipv6": "yes"}, "invalid value for ipv6"),
        (["--ipv6"], {"ipv6": True}, "specified both as a flag and in the configuration file"),
    ],
)
def test_refused_as_dockerd_refuses(tmp_path, argv, data, message):
    with pytest.raises(config.ConfigError, match=message.replace(".", r"\.")):
        _load(tmp_path, argv, data)
