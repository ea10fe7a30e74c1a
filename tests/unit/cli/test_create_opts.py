"""``--ulimit`` parsing shared by run, create and build: docker's shape and its message."""

from __future__ import annotations

import pytest

from dockyard.cli.commands.create_opts import UsageError, parse_ulimits


def test_ulimits_soft_and_hard():
    assert parse_ulimits(["nofile=1024:2048", "nproc=64"]) == [
        {"Name": "nofile", "Hard": 2048, "Soft": 1024},
        {"Name": "nproc", "Hard": 64, "Soft": 64},
    ]


@pytest.mark.parametrize("spec", ["nofile", "nofile=abc", "=1:2", "nofile=1:x"])
def test_bad_ulimit_is_a_usage_error(spec):
    with pytest.raises(UsageError, match=f'invalid argument "{spec}" for "--ulimit" flag'):
        parse_ulimits([spec])
