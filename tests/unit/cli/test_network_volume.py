"""Pure parsing and formatting of the ``volume``/``network`` commands (docker/cli 28 rules)."""

from __future__ import annotations

import pytest

from dockyard.cli.command import CommandError
from dockyard.cli.commands.network import NetworkRow, go_time_string, ipam_config, subnet_matches
from dockyard.cli.commands.volume import (
    VolumeRow,
    _typed_field_error,
    check_labels,
    kv_map,
    natural_key,
    split_slice,
    version_at_least,
)
from dockyard.cli.render import format_rows


def test_kv_map_splits_at_first_equals_bare_key_is_empty_later_wins_sorted():
    assert kv_map(["b=1", "a", "c=x=y", "b=2"]) == {"a": "", "b": "2", "c": "x=y"}
    assert list(kv_map(["z=1", "a=2"])) == ["a", "z"]  # Go's encoder sorts map keys
    assert kv_map([]) == {}


def test_check_labels_rejects_only_empty_names():
    assert check_labels(["a=b", "bare", "x="]) is None
    assert (
        check_labels(["ok=1", "=x"])
        == 'invalid argument "=x" for "--label" flag: invalid label \'=x\': empty name'
    )
    assert check_labels([" =x"]) is not None


def test_split_slice_is_csv_per_occurrence():
    assert split_slice(["a,b", "c"]) == ["a", "b", "c"]
    assert split_slice(['"x,y",z']) == ["x,y", "z"]
    assert split_slice([]) == []


def test_natural_key_orders_as_sortorder_natural_less():
    names = ["net10", "net9", "Net1", "net09", "net", "1a", "a", "net9b", "net9a"]
    assert sorted(names, key=natural_key) == [
        "1a",
        "Net1",
        "a",
        "net",
        "net9",
        "net9a",
        "net9b",
        "net09",
        "net10",
    ]


def test_version_compare():
    assert version_at_least("1.42", "1.42") and version_at_least("1.100", "1.42")
    assert not version_at_least("1.41", "1.42")


def test_go_time_string():
    assert (
        go_time_string("2026-11-23T15:26:57.682465523Z")
        == "2026-11-23 15:26:57.682465523 +0000 UTC"
    )
    assert go_time_string("2026-11-23T15:26:57.680000000Z") == "2026-11-23 15:26:57.68 +0000 UTC"
    assert go_time_string("2026-11-23T15:26:57Z") == "2026-11-23 15:26:57 +0000 UTC"
    assert go_time_string("2026-11-23T15:26:57.5+01:00") == "2026-11-23 15:26:57.5 +0100 +0100"
    assert go_time_string("") == "0001-01-01 00:00:00 +0000 UTC"


def test_subnet_matches():
    assert subnet_matches("10.213.5.0/24", "10.213.5.7")
    assert subnet_matches("10.213.5.0/24", "10.213.5.1/26")  # the address part of a CIDR
    assert not subnet_matches("10.213.5.0/24", "10.213.6.1")
    assert not subnet_matches("10.213.5.0/24", "bad")  # net.ParseIP gives nil
    assert subnet_matches("10.213.5.0/24", "::ffff:10.213.5.9")
    assert not subnet_matches("fd00::/64", "10.0.0.1")
    with pytest.raises(CommandError, match="^invalid CIDR address: bad/8$"):
        subnet_matches("10.213.5.0/24", "bad/8")
    with pytest.raises(CommandError, match="^invalid subnet: invalid CIDR address: nope$"):
        subnet_matches("nope", "10.0.0.1")


def test_ipam_config_pools_and_errors():
    assert ipam_config([], [], [], {}) == []
    assert ipam_config(
        ["10.1.0.0/24", "10.2.0.0/24"], ["10.2.0.128/25"], ["10.1.0.1"], {"r": "10.2.0.5"}
    ) == [
        {"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"},
        {
            "Subnet": "10.2.0.0/24",
            "IPRange": "10.2.0.128/25",
            "AuxiliaryAddresses": {"r": "10.2.0.5"},
        },
    ]
    assert ipam_config(["foo"], [], [], {}) == [{"Subnet": "foo"}]  # one subnet: the daemon judges
    cases = [
        (([], [], ["10.0.0.1"], {}), "every ip-range or gateway must have a corresponding subnet"),
        (
            (["10.1.0.0/24", "10.1.0.0/25"], [], [], {}),
            "multiple overlapping subnet configuration is not supported",
        ),
        ((["10.1.0.0/24"], ["10.1.0.0/26", "10.1.0.64/26"], [], {}), "every ip-range or gateway"),
        (
            (["10.1.0.0/24", "10.2.0.0/24"], ["10.1.0.0/26", "10.1.0.64/26"], [], {}),
            "cannot configure multiple ranges (10.1.0.64/26, 10.1.0.0/26) on the same subnet (10.1.0.0/24)",
        ),
        ((["10.1.0.0/24"], ["10.3.0.0/26"], [], {}), "no matching subnet for range 10.3.0.0/26"),
        ((["10.1.0.0/24"], ["10.1.0.5"], [], {}), "invalid CIDR address: 10.1.0.5"),
        ((["10.1.0.0/24"], [], ["bad"], {}), "no matching subnet for gateway bad"),
        (
            (["10.1.0.0/24", "10.2.0.0/24"], [], ["10.1.0.1", "10.1.0.2"], {}),
            "cannot configure multiple gateways (10.1.0.2, 10.1.0.1) for the same subnet (10.1.0.0/24)",
        ),
        (
            (["10.1.0.0/24"], [], [], {"a": "10.9.0.1"}),
            "no matching subnet for aux-address 10.9.0.1",
        ),
    ]
    for args, message in cases:
        with pytest.raises(CommandError) as info:
            ipam_config(*args)
        assert str(info.value).startswith(message), args


def test_volume_rows():
    v = {
        "Name": "v1",
        "Driver": "local",
        "Scope": "local",
        "Mountpoint": "/m",
        "Labels": {"b": "2", "a": "1"},
    }
    out = format_rows(
        [VolumeRow(v)], "table {{.Driver}}\t{{.Name}}", {"Driver": "DRIVER", "Name": "VOLUME NAME"}
    )
    assert out == "DRIVER    VOLUME NAME\nlocal     v1\n"
    row = VolumeRow(v)
    assert (row.Labels(), row.Links(), row.Size(), row.Status()) == ("a=1,b=2", "N/A", "N/A", "N/A")
    used = VolumeRow({"Name": "x", "UsageData": {"RefCount": 2, "Size": 4096}})
    assert (used.Links(), used.Size()) == ("2", "4.1kB")
    assert format_rows([VolumeRow({"Name": "n", "Driver": "d"})], "{{json .}}", {}) == (
        '{"Availability":"N/A","Driver":"d","Group":"N/A","Labels":"","Links":"N/A","Mountpoint":"",'
        '"Name":"n","Scope":"","Size":"N/A","Status":"N/A"}\n'
    )


def test_network_rows():
    n = {
        "Name": "n1",
        "Id": "a" * 64,
        "Driver": "bridge",
        "Scope": "local",
        "Internal": True,
        "Created": "2026-01-02T03:04:05.1Z",
    }
    assert NetworkRow(n, True).ID() == "a" * 12 and NetworkRow(n, False).ID() == "a" * 64
    assert (NetworkRow(n, True).Internal(), NetworkRow(n, True).IPv6()) == ("true", "false")
    assert NetworkRow(n, True).CreatedAt() == "2026-01-02 03:04:05.1 +0000 UTC"


def test_typed_field_error():
    raw = 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'
    assert (
        _typed_field_error(raw, "volume.Volume")
        == 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type volume.Volume'
    )
    nested = 'template: :1:2: executing "" at <.Labels.x>: map has no entry for key "x"'
    assert _typed_field_error(nested, "volume.Volume") == nested
