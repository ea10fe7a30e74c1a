"""Container create and inspect fidelity (issue 15), side by side on the reference dockerd and
on dockyardd: an unknown log driver or isolation is refused at create (400), inspect's
HostConfig carries every field dockerd always fills, with dockerd's defaults and canonical
spellings, and ``--tmpfs`` is not listed in ``Mounts``.  Containers are force-removed even
when a test fails."""

from __future__ import annotations

import json
import uuid

import pytest
from engines import api_request

V = "/v1.41"


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def made(engine):
    names: list[str] = []

    def create(host_config: dict, **config) -> tuple[int, dict, str]:
        name = f"dyt-fh-{uuid.uuid4().hex[:8]}"
        names.append(name)
        body = {
            "Image": "busybox",
            "Cmd": ["sleep", "300"],
            "HostConfig": {"NetworkMode": "none", **host_config},
            **config,
        }
        status, out = api_request(
            engine, "POST", f"{V}/containers/create?name={name}", json.dumps(body).encode()
        )
        return status, json.loads(out), name

    yield create
    for name in names:
        api_request(engine, "DELETE", f"{V}/containers/{name}?force=1")


def inspect(engine, name: str) -> dict:
    status, out = api_request(engine, "GET", f"{V}/containers/{name}/json")
    assert status == 200, out
    return json.loads(out)


def test_unknown_log_driver_is_refused(made):
    status, body, _ = made({"LogConfig": {"Type": "nosuch", "Config": {}}})
    assert (status, body) == (
        400,
        {"message": 'error looking up logging plugin nosuch: plugin "nosuch" not found'},
    )


def test_unknown_isolation_is_refused(made):
    status, body, _ = made({"Isolation": "hyperv"})
    assert (status, body) == (
        500,
        {"message": "Invalid isolation: \"hyperv\" - linux only supports 'default'"},
    )
    status, body, _ = made({"Isolation": "default"})
    assert status == 201, body


DEFAULTS = {
    "Binds": None,
    "ContainerIDFile": "",
    "PortBindings": None,
    "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "CapAdd": None,
    "CapDrop": None,
    "CgroupnsMode": "host",
    "Dns": None,
    "DnsOptions": None,
    "DnsSearch": None,
    "ExtraHosts": None,
    "GroupAdd": None,
    "IpcMode": "private",
    "Cgroup": "",
    "Links": None,
    "OomScoreAdj": 0,
    "PidMode": "",
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "SecurityOpt": None,
    "UTSMode": "",
    "UsernsMode": "",
    "ShmSize": 67108864,
    "ConsoleSize": [0, 0],
    "Isolation": "",
    "CpuShares": 0,
    "Memory": 0,
    "NanoCpus": 0,
    "CgroupParent": "",
    "BlkioWeight": 0,
    "BlkioWeightDevice": None,
    "BlkioDeviceReadBps": None,
    "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None,
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "Devices": None,
    "DeviceCgroupRules": None,
    "DeviceRequests": None,
    "KernelMemory": 0,
    "KernelMemoryTCP": 0,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "MemorySwappiness": None,
    "OomKillDisable": False,
    "PidsLimit": None,
    "Ulimits": None,
    "CpuCount": 0,
    "CpuPercent": 0,
    "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
}


def test_inspect_host_config_has_dockerd_defaults(engine, made):
    status, body, name = made({})
    assert status == 201, body
    hc = inspect(engine, name)["HostConfig"]
    missing = {k: v for k, v in DEFAULTS.items() if k not in hc}
    assert missing == {}
    assert {k: hc[k] for k in DEFAULTS} == DEFAULTS
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert "/proc/kcore" in hc["MaskedPaths"] and "/proc/sys" in hc["ReadonlyPaths"]
    status, body, name = made({"Privileged": True})
    hc = inspect(engine, name)["HostConfig"]
    assert (hc["Privileged"], hc["MaskedPaths"], hc["ReadonlyPaths"]) == (True, None, None)


def test_host_config_fields_come_back_in_canonical_spelling(engine, made):
    status, body, name = made({"CPURealtimeRuntime": 0, "cpushares": 512, "MEMORY": 0})
    assert status == 201, body
    hc = inspect(engine, name)["HostConfig"]
    assert hc["CpuShares"] == 512
    assert "CPURealtimeRuntime" not in hc and "cpushares" not in hc and "MEMORY" not in hc
    assert hc["CpuRealtimeRuntime"] == 0


def test_tmpfs_is_not_listed_in_mounts(engine, made):
    status, body, name = made({"Tmpfs": {"/scratch": "size=1m"}})
    assert status == 201, body
    view = inspect(engine, name)
    assert view["Mounts"] == []
    assert view["HostConfig"]["Tmpfs"] == {"/scratch": "size=1m"}


@pytest.mark.parametrize("cmd", [["touch", "/test"], ["sh", "-c", "touch /test; rm /bin/ls"]])
def test_changes_list_only_what_the_process_changed(engine, made, cmd):
    status, body, name = made({}, Cmd=cmd)
    assert status == 201, body
    status, out = api_request(engine, "POST", f"{V}/containers/{name}/start")
    assert status == 204, out
    api_request(engine, "POST", f"{V}/containers/{name}/wait")
    status, out = api_request(engine, "GET", f"{V}/containers/{name}/changes")
    assert status == 200, out
    expected = [{"Path": "/test", "Kind": 1}]
    if "rm" in cmd[-1]:
        expected = [{"Path": "/bin", "Kind": 0}, {"Path": "/bin/ls", "Kind": 2}, *expected]
    assert sorted(json.loads(out), key=lambda c: c["Path"]) == expected
