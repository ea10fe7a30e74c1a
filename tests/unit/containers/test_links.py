"""Legacy links' pure logic against moby 20.10's strings (opts.ParseLink, links.ToEnv,
ReplaceOrAppendEnvValues, the hosts entry)."""

from __future__ import annotations

import pytest

from dockyard.containers import links
from dockyard.errors import Internal


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("db", ("db", "db")),
        ("db:alias", ("db", "alias")),
        ("/db:/web/alias", ("db", "alias")),  # the form inspect shows
        ("db:", ("db", "")),
        (":x", ("", "x")),
    ],
)
def test_parse(spec, parsed):
    assert links.parse(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [("", "empty string specified for links"), ("a:b:c", "bad format for links: a:b:c")],
)
def test_parse_refuses_with_mobys_plain_error(spec, message):
    with pytest.raises(Internal) as err:
        links.parse(spec)
    assert err.value.message == message


def test_full_name_and_spec():
    assert links.full_name("/web", "db") == "/web/db"
    assert links.full_name("/web", "") == "/web"  # Go's path.Join cleans: then skipped
    assert links.full_name("/web", "a/b") == "/web/a/b"
    assert links.spec("/web/db", "/db") == "/db:/web/db"


def test_hosts_names():
    assert links.hosts_names("/web/db", "/db", "0123456789ab") == "db 0123456789ab"
    assert links.hosts_names("/web/al", "/db", "host") == "al host db"


def test_env_without_ports_has_name_and_target_env_but_not_path_or_home():
    env = links.env("/web/my-db", "10.0.0.2", ["PATH=/bin", "HOME=/root", "A=1", "B"], {})
    assert env == ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_A=1"]


def test_env_default_port_is_the_lowest_number_tcp_first():
    env = links.env("/w/db", "1.2.3.4", [], {"80/tcp": {}, "53/udp": {}, "53/tcp": {}})
    assert env[0] == "DB_PORT=tcp://1.2.3.4:53"


def test_env_range_grouping_ignores_protocols_as_moby_does():
    env = links.env("/w/b", "ip", [], ["52/tcp", "53/tcp", "53/udp", "54/udp"])
    assert env[:7] == [
        "B_PORT=tcp://ip:52",
        "B_PORT_52_TCP_START=tcp://ip:52",
        "B_PORT_52_TCP_ADDR=ip",
        "B_PORT_52_TCP_PROTO=tcp",
        "B_PORT_52_TCP_PORT_START=52",
        "B_PORT_52_UDP_END=udp://ip:54",
        "B_PORT_52_UDP_PORT_END=54",
    ]
    assert len(env) == 7 + 4 * 4 + 1


def test_env_two_ports_make_no_range():
    env = links.env("/w/b", "ip", [], ["80/tcp", "81/tcp"])
    assert not any("_START" in e for e in env)


def test_replace_or_append():
    base = ["PATH=/usr/bin", "HOSTNAME=h", "A_NAME=/x/a"]
    assert links.replace_or_append(base, ["A_NAME=over", "Z=1", "HOSTNAME", "PATH=/bin"]) == [
        "PATH=/bin",
        "A_NAME=over",
        "Z=1",
    ]
