"""``-v``/``--mount``/``--tmpfs`` parsing: what Docker accepts, and its messages for the rest."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidParameter
from dockyard.volumes.mounts import (
    from_host_config,
    parse_bind,
    parse_mount,
    parse_tmpfs,
    sort_for_mounting,
)


def test_bind_and_volume_strings():
    p = parse_bind("/srv/data:/data:ro,rshared")
    assert (p.type, p.source, p.destination, p.rw, p.propagation, p.autocreate) == (
        "bind",
        "/srv/data",
        "/data",
        False,
        "rshared",
        True,
    )
    v = parse_bind("cache:/var/cache/")
    assert (v.type, v.source, v.destination, v.rw, v.mode, v.anonymous) == (
        "volume",
        "cache",
        "/var/cache",
        True,
        "z",
        False,
    )
    a = parse_bind("/scratch")
    assert a.type == "volume" and a.anonymous and a.destination == "/scratch"
    assert parse_bind("vol:/x:nocopy").nocopy


@pytest.mark.parametrize(
    "spec,message",
    [
        ("", "invalid volume specification"),
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        ("a::/x", "invalid volume specification"),
        ("vol:relative", "mount path must be absolute"),
        ("/src:/", "destination can't be '/'"),
        ("/src:/x:rw,ro", "invalid mode: rw,ro"),
        ("/src:/x:nocopy", "invalid mode: nocopy"),
        ("vol:/x:rshared", "propagation options apply to bind mounts only"),
        ("bad/name:/x", "includes invalid characters"),
        ("-x:/x", "includes invalid characters"),
    ],
)
def test_bad_bind_strings(spec, message):
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(")):
        parse_bind(spec)


def test_mount_objects():
    t = parse_mount(
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}}
    )
    assert t.tmpfs_options == ["size=1048576", "mode=1777"]
    v = parse_mount(
        {
            "Type": "volume",
            "Source": "vv",
            "Target": "/v",
            "ReadOnly": True,
            "VolumeOptions": {
                "NoCopy": True,
                "Labels": {"a": "b"},
                "DriverConfig": {"Options": {"type": "tmpfs"}},
            },
        }
    )
    assert (v.rw, v.nocopy, v.labels, v.driver_opts) == (False, True, {"a": "b"}, {"type": "tmpfs"})
    b = parse_mount(
        {"Type": "bind", "Source": "/s", "Target": "/d", "BindOptions": {"NonRecursive": True}}
    )
    assert b.nonrecursive and not b.autocreate and b.propagation == "rprivate"


@pytest.mark.parametrize(
    "mount,message",
    [
        ({"Type": "nfs", "Target": "/x"}, 'type "nfs": mount type unknown'),
        ({"Type": "bind", "Target": "/x"}, "field Source must not be empty"),
        ({"Type": "bind", "Source": "rel", "Target": "/x"}, "'rel' mount path must be absolute"),
        ({"Type": "tmpfs", "Source": "/x", "Target": "/x"}, "field Source must not be specified"),
        (
            {"Type": "volume", "Target": "/x", "BindOptions": {"Propagation": "shared"}},
            "field BindOptions must not",
        ),
        ({"Type": "volume", "Target": "/"}, "destination can't be '/'"),
        ({"Type": "volume", "Target": "/x", "Bogus": 1}, "unknown field"),
        (
            {"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"SizeBytes": "big"}},
            "invalid tmpfs size",
        ),
        (
            {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}},
            "local driver only",
        ),
        ("not an object", "must be an object"),
    ],
)
def test_bad_mount_objects(mount, message):
    with pytest.raises(InvalidParameter, match=message):
        parse_mount(mount)


def test_tmpfs_options():
    p = parse_tmpfs("/run", "size=64m,noexec,ro")
    assert p.tmpfs_options == ["size=64m", "noexec"] and not p.rw
    with pytest.raises(InvalidParameter, match="invalid tmpfs option"):
        parse_tmpfs("/run", "size")


def test_host_config_merges_and_refuses_duplicates():
    points = from_host_config(
        {"Volumes": {"/a": {}, "/b/c": {}}}, {"Binds": ["/s:/b"], "Tmpfs": {"/t": ""}}
    )
    assert [p.destination for p in points] == ["/b", "/t", "/a", "/b/c"]
    assert [p.destination for p in sort_for_mounting(points)] == ["/b", "/t", "/a", "/b/c"]
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /d"):
        from_host_config({}, {"Binds": ["/s:/d"], "Mounts": [{"Type": "tmpfs", "Target": "/d/"}]})
    # an explicit mount wins over an image VOLUME at the same place
    points = from_host_config({"Volumes": {"/d": {}}}, {"Binds": ["named:/d"]})
    assert len(points) == 1 and points[0].source == "named"
