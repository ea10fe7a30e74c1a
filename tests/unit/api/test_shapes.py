"""The per-version encoders follow moby's version history (api/docs/CHANGELOG.md)."""

from __future__ import annotations

import pytest

from dockyard.api import shapes
from dockyard.api.version import DEFAULT_VERSION, MAX_VERSION, negotiate
from dockyard.errors import InvalidParameter


def _summary(tags: list[str], digests: list[str]) -> dict:
    return {"Id": "sha256:x", "RepoTags": tags, "RepoDigests": digests, "Size": 5, "VirtualSize": 5}


def test_no_prefix_is_the_newest_version():
    assert negotiate(None) == DEFAULT_VERSION == MAX_VERSION == (1, 50)


def test_image_summary_placeholders_until_1_43_and_virtual_size_until_1_44():
    old = shapes.image_summary(_summary([], []), (1, 41))
    assert (old["RepoTags"], old["RepoDigests"]) == (["<none>:<none>"], ["<none>@<none>"])
    assert old["VirtualSize"] == 5
    digest_only = shapes.image_summary(_summary([], ["busybox@sha256:ab"]), (1, 41))
    assert digest_only["RepoTags"] is None  # Go's nil slice, as dockerd 20.10
    assert digest_only["RepoDigests"] == ["busybox@sha256:ab"]
    tagged = shapes.image_summary(_summary(["busybox:latest"], []), (1, 41))
    assert tagged["RepoDigests"] is None
    mid = shapes.image_summary(_summary([], []), (1, 43))
    assert (mid["RepoTags"], mid["RepoDigests"], mid["VirtualSize"]) == ([], [], 5)
    new = shapes.image_summary(_summary([], []), (1, 44))
    assert "VirtualSize" not in new


def _inspect(created: str | None) -> dict:
    return {
        "Id": "sha256:x",
        "Created": created,
        "Container": "",
        "ContainerConfig": {"Hostname": ""},
        "VirtualSize": 5,
        "Config": {"Hostname": "", "Tty": False, "Image": "", "Cmd": ["sh"], "Env": None},
    }


@pytest.mark.parametrize(
    ("v", "gone"),
    [
        ((1, 41), set()),
        ((1, 43), set()),
        ((1, 44), {"VirtualSize"}),
        ((1, 45), {"VirtualSize", "Container", "ContainerConfig"}),
        ((1, 50), {"VirtualSize", "Container", "ContainerConfig"}),
    ],
)
def test_image_inspect_fields_by_version(v, gone):
    view = shapes.image_inspect(_inspect("2024-01-01T00:00:00Z"), v)
    assert {"VirtualSize", "Container", "ContainerConfig"} - set(view) == gone
    config_trimmed = v >= (1, 50)
    assert ("Hostname" not in view["Config"]) is config_trimmed
    assert view["Config"]["Cmd"] == ["sh"] and "Env" in view["Config"]


def test_image_inspect_created_missing():
    assert shapes.image_inspect(_inspect(None), (1, 41))["Created"] == "0001-01-01T00:00:00Z"
    assert "Created" not in shapes.image_inspect(_inspect(None), (1, 44))


def _info() -> dict:
    return {
        "KernelMemory": False,
        "KernelMemoryTCP": False,
        "BridgeNfIptables": True,
        "BridgeNfIp6tables": True,
        "CDISpecDirs": [],
        "FirewallBackend": {"Driver": "iptables"},
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        },
    }


def test_info_by_version():
    old = shapes.info(_info(), (1, 41))
    assert "CDISpecDirs" not in old and "FirewallBackend" not in old
    assert old["KernelMemory"] is False and old["BridgeNfIptables"] is True
    assert old["RuncCommit"] == {"ID": "", "Expected": ""}
    assert "AllowNondistributableArtifactsCIDRs" in old["RegistryConfig"]
    v44 = shapes.info(_info(), (1, 44))
    assert "KernelMemory" not in v44 and v44["CDISpecDirs"] == []
    assert "FirewallBackend" not in v44
    v49 = shapes.info(_info(), (1, 49))
    assert v49["FirewallBackend"] == {"Driver": "iptables"}
    assert v49["RuncCommit"] == {"ID": ""}
    assert set(v49["RegistryConfig"]) == {"InsecureRegistryCIDRs"}
    assert "BridgeNfIptables" in v49
    v50 = shapes.info(_info(), (1, 50))
    assert "BridgeNfIptables" not in v50 and "BridgeNfIp6tables" not in v50


def _df() -> dict:
    return {
        "LayersSize": 10,
        "Images": [_summary([], [])],
        "Containers": [],
        "Volumes": [],
        "BuildCache": [{"ID": "a", "Parent": "", "Size": 1}, {"ID": "b", "Parent": "a"}],
        "BuilderSize": 1,
    }


def test_disk_usage_by_version():
    old = shapes.disk_usage(_df(), (1, 41))
    assert old["BuilderSize"] == 1
    assert [r["Parent"] for r in old["BuildCache"]] == ["", "a"]
    assert old["Images"][0]["RepoTags"] == ["<none>:<none>"]
    new = shapes.disk_usage(_df(), (1, 42))
    assert "BuilderSize" not in new
    assert [r.get("Parents") for r in new["BuildCache"]] == [None, ["a"]]
    assert all("Parent" not in r for r in new["BuildCache"])
    assert "VirtualSize" not in shapes.disk_usage(_df(), (1, 44))["Images"][0]


def test_df_types():
    everything = {"container", "image", "volume", "build-cache"}
    assert shapes.df_types([], (1, 50)) == everything
    assert shapes.df_types(["image"], (1, 41)) == everything  # 1.41 ignores type=
    assert shapes.df_types(["image", "volume"], (1, 42)) == {"image", "volume"}
    with pytest.raises(InvalidParameter, match="unknown object type: images"):
        shapes.df_types(["images"], (1, 42))


def test_platform_parameter():
    raw = '{"os":"linux","architecture":"amd64"}'
    assert shapes.platform(raw, "history", (1, 47)) is None  # before 1.48: ignored
    assert shapes.platform(raw, "history", (1, 48)) == {"os": "linux", "architecture": "amd64"}
    assert shapes.platform(raw, "inspect", (1, 48)) is None  # inspect has it from 1.49
    assert shapes.platform(None, "save", (1, 50)) is None
    with pytest.raises(InvalidParameter, match="failed to parse platform"):
        shapes.platform("linux/amd64", "save", (1, 50))
    with pytest.raises(InvalidParameter, match="failed to parse platform"):
        shapes.platform('["linux"]', "save", (1, 50))
