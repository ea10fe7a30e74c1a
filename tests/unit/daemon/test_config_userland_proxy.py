"""``userland-proxy``: the daemon.json key and dockerd's ``--userland-proxy[=BOOL]`` flag."""

from __future__ import annotations

import json

import pytest

from dockyard.daemon.config import ConfigError, load, parse_args


def _load(tmp_path, file: dict | None, *flags: str):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(file or {}))
    return load(parse_args(["--config-file", str(path), *flags]))


def test_default_is_unset_and_the_network_service_reads_true(tmp_path):
    assert "userland-proxy" not in _load(tmp_path, None).extra


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--userland-proxy=false"], False),
        (["--userland-proxy"], True),
        (["--userland-proxy=0"], False),
    ],
)
def test_flag(tmp_path, flags, expected):
    assert _load(tmp_path, None, *flags).extra["userland-proxy"] is expected


def test_key(tmp_path):
    assert _load(tmp_path, {"userland-proxy": False}).extra["userland-proxy"] is False


def test_key_must_be_a_bool(tmp_path):
    with pytest.raises(ConfigError, match="userland-proxy: 'false' is not a bool"):
        _load(tmp_path, {"userland-proxy": "false"})


def test_flag_and_key_conflict(tmp_path):
    with pytest.raises(ConfigError, match="specified both as a flag and in the configuration"):
        _load(tmp_path, {"userland-proxy": True}, "--userland-proxy=false")


def test_bad_flag_value(tmp_path):
    with pytest.raises(SystemExit):
        _load(tmp_path, None, "--userland-proxy=maybe")
