"""Image endpoints beside dockerd (issue 15): a bad ``images/load`` body, ``GraphDriver.Data``
of image and container inspect, and the image/system shapes of API 1.42..1.50 (dockerd 20.10
stops at 1.41, so later shapes are checked on dockyardd against moby's version history).
Everything made is removed even when a test fails."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from engines import DOCKER_CLI, UnixHTTPConnection, api_request

ENGINES = ["dockerd", "dockyardd"]


def _engine(request, name: str):
    return request.getfixturevalue("dockerd" if name == "dockerd" else "daemon")


def _post_raw(engine, path: str, body: bytes) -> tuple[int, str, bytes]:
    conn = UnixHTTPConnection(engine.sock, 60)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-tar"})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def _image_ids(engine) -> set[str]:
    status, out = api_request(engine, "GET", "/v1.41/images/json?all=1")
    assert status == 200, out
    return {i["Id"] for i in json.loads(out)}


@pytest.mark.parametrize("engine_name", ENGINES)
def test_load_of_a_non_archive_reports_in_the_stream(request, engine_name, tmp_path):
    engine = _engine(request, engine_name)
    before = _image_ids(engine)
    for version in ("/v1.41", ""):
        status, ctype, body = _post_raw(
            engine, f"{version}/images/load?quiet=1", os.urandom(20_000)
        )
        # dockerd has answered 200 before it reads the archive; the error is the one line
        assert (status, ctype) == (200, "application/json"), body
        assert body.endswith(b"}\r\n") and body.count(b"\n") == 1, body
        line = json.loads(body)
        assert line["error"] and line["errorDetail"] == {"message": line["error"]}, line
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(20_000))
    for quiet in ([], ["-q"]):
        res = subprocess.run(
            [DOCKER_CLI, "load", *quiet, "-i", str(junk)],
            env=engine.env,
            capture_output=True,
            timeout=60,
        )
        # the CLI prints the stream's error bare and fails
        assert res.returncode == 1 and res.stdout == b"", res
        assert res.stderr.count(b"\n") == 1 and b"Error response" not in res.stderr, res
    assert _image_ids(engine) == before
    # the daemon keeps serving, and a real archive still loads
    status, saved = api_request(engine, "GET", "/v1.41/images/get?names=busybox")
    assert status == 200
    status, ctype, body = _post_raw(engine, "/v1.41/images/load?quiet=1", saved)
    assert status == 200 and b"busybox:latest" in body and b"errorDetail" not in body, body


@pytest.fixture
def made(request):
    """Containers created on an engine, removed at the end."""
    created: list[tuple[object, str]] = []

    def make(engine, *args: str) -> str:
        name = f"dyt-fimg-{uuid.uuid4().hex[:8]}"
        res = subprocess.run(
            [DOCKER_CLI, "run", "-d", "--name", name, *args],
            env=engine.env,
            capture_output=True,
            timeout=60,
        )
        created.append((engine, name))
        assert res.returncode == 0, res.stderr
        return name

    yield make
    for engine, name in created:
        api_request(engine, "DELETE", f"/v1.41/containers/{name}?force=1")


@pytest.mark.parametrize("engine_name", ENGINES)
def test_graph_driver_data_names_the_overlay_dirs(request, engine_name, made):
    engine = _engine(request, engine_name)
    status, out = api_request(engine, "GET", "/v1.41/images/busybox/json")
    assert status == 200, out
    graph = json.loads(out)["GraphDriver"]
    assert graph["Name"] == "overlay2"
    data = graph["Data"]
    # busybox is one layer: no LowerDir, and that layer's own dirs
    assert set(data) == {"MergedDir", "UpperDir", "WorkDir"}, data
    assert os.path.isdir(data["UpperDir"]) and os.path.exists(os.path.join(data["UpperDir"], "bin"))
    layer_dir = os.path.dirname(data["UpperDir"])
    assert data["MergedDir"] == os.path.join(layer_dir, "merged")
    assert data["WorkDir"] == os.path.join(layer_dir, "work")

    name = made(engine, "busybox", "sh", "-c", "echo marked > /marker; sleep 600")
    status, out = api_request(engine, "GET", f"/v1.41/containers/{name}/json")
    assert status == 200, out
    view = json.loads(out)
    cdata = view["GraphDriver"]["Data"]
    assert set(cdata) == {"LowerDir", "MergedDir", "UpperDir", "WorkDir"}, cdata
    lowers = cdata["LowerDir"].split(":")
    # the image's layer is the bottom one (dockerd adds its "-init" layer above it)
    assert lowers[-1] == data["UpperDir"], (lowers, data)
    assert all(os.path.isdir(p) for p in lowers), lowers
    for _ in range(50):
        if os.path.exists(os.path.join(cdata["UpperDir"], "marker")):
            break
        subprocess.run(["sleep", "0.1"], check=True)
    with open(os.path.join(cdata["UpperDir"], "marker"), encoding="ascii") as f:
        assert f.read() == "marked\n"  # the container's writes land in UpperDir
    with open(os.path.join(cdata["MergedDir"], "marker"), encoding="ascii") as f:
        assert f.read() == "marked\n"  # and MergedDir is its mounted root


# ---- shapes per API version (dockyardd; 1.41 on both engines) -------------------------------
def _get(engine, path: str):
    status, out = api_request(engine, "GET", path)
    assert status == 200, (path, out)
    return json.loads(out)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_a_1_41_client_sees_1_41_image_and_system_shapes(request, engine_name):
    engine = _engine(request, engine_name)
    (image,) = [i for i in _get(engine, "/v1.41/images/json") if "busybox:latest" in i["RepoTags"]]
    assert image["VirtualSize"] == image["Size"] and image["SharedSize"] == -1
    view = _get(engine, "/v1.41/images/busybox/json")
    assert {"VirtualSize", "Container", "ContainerConfig"} <= set(view)
    assert "Hostname" in view["Config"] and "Created" in view
    info = _get(engine, "/v1.41/info")
    assert "CDISpecDirs" not in info and "FirewallBackend" not in info
    assert "BridgeNfIptables" in info and "Expected" in info["RuncCommit"]
    assert "AllowNondistributableArtifactsCIDRs" in info["RegistryConfig"]
    df = _get(engine, "/v1.41/system/df")
    assert "BuilderSize" in df and isinstance(df["Images"], list)
    assert all("VirtualSize" in i for i in df["Images"])


def test_later_image_shapes_by_prefix(daemon):
    image = next(i for i in _get(daemon, "/v1.43/images/json") if "busybox:latest" in i["RepoTags"])
    assert "VirtualSize" in image
    image = next(i for i in _get(daemon, "/v1.44/images/json") if "busybox:latest" in i["RepoTags"])
    assert "VirtualSize" not in image and image["SharedSize"] == -1
    shared = _get(daemon, "/v1.42/images/json?shared-size=1")
    assert all(i["SharedSize"] >= 0 for i in shared)
    assert all(i["SharedSize"] == -1 for i in _get(daemon, "/v1.41/images/json?shared-size=1"))
    v44 = _get(daemon, "/v1.44/images/busybox/json")
    assert "VirtualSize" not in v44 and "Container" in v44 and "ContainerConfig" in v44
    v45 = _get(daemon, "/v1.45/images/busybox/json")
    assert not {"VirtualSize", "Container", "ContainerConfig"} & set(v45)
    assert "Hostname" in v45["Config"]
    v50 = _get(daemon, "/v1.50/images/busybox/json")
    assert not {"Hostname", "Domainname", "AttachStdin", "Tty", "Image"} & set(v50["Config"])
    assert v50["Config"]["Cmd"] == ["sh"] and v50["GraphDriver"]["Data"]["UpperDir"]
    assert _get(daemon, "/images/busybox/json") == v50  # no prefix: the newest


def test_platform_parameter_of_history_inspect_save(daemon):
    here = '{"os":"linux","architecture":"amd64"}'
    other = '{"os":"linux","architecture":"arm64"}'
    assert _get(daemon, f"/v1.48/images/busybox/history?platform={here}")
    status, out = api_request(daemon, "GET", f"/v1.48/images/busybox/history?platform={other}")
    assert status == 404, out
    assert "does not match the specified platform: wanted linux/arm64" in out.decode()
    # before 1.48 the parameter does not exist: ignored
    assert _get(daemon, f"/v1.47/images/busybox/history?platform={other}")
    assert api_request(daemon, "GET", f"/v1.49/images/busybox/json?platform={other}")[0] == 404
    assert api_request(daemon, "GET", f"/v1.48/images/busybox/json?platform={other}")[0] == 200
    status, out = api_request(daemon, "GET", f"/v1.48/images/busybox/get?platform={other}")
    assert status == 404, out
    status, out = api_request(daemon, "GET", "/v1.48/images/busybox/history?platform=linux")
    assert status == 400 and b"failed to parse platform" in out, out


def test_later_info_and_df_shapes_by_prefix(daemon):
    v44 = _get(daemon, "/v1.44/info")
    assert v44["CDISpecDirs"] == [] and "FirewallBackend" not in v44
    v49 = _get(daemon, "/v1.49/info")
    assert v49["FirewallBackend"] == {"Driver": "iptables"}
    assert "Expected" not in v49["RuncCommit"]
    assert "AllowNondistributableArtifactsCIDRs" not in v49["RegistryConfig"]
    assert "BridgeNfIptables" in v49
    v50 = _get(daemon, "/v1.50/info")
    assert "BridgeNfIptables" not in v50 and "BridgeNfIp6tables" not in v50
    df = _get(daemon, "/v1.42/system/df")
    assert "BuilderSize" not in df and isinstance(df["Images"], list)
    only = _get(daemon, "/v1.42/system/df?type=volume")
    assert only["Images"] is None and only["Containers"] is None and only["BuildCache"] is None
    assert isinstance(only["Volumes"], list) and only["LayersSize"] == 0
    # 1.41 has no type parameter: everything is counted
    assert isinstance(_get(daemon, "/v1.41/system/df?type=volume")["Images"], list)
    status, out = api_request(daemon, "GET", "/v1.42/system/df?type=images")
    assert status == 400 and b"unknown object type: images" in out, out
    df_all = _get(daemon, "/v1.44/system/df")
    assert all("VirtualSize" not in i for i in df_all["Images"])


def test_version_and_ping_advertise_1_50(daemon):
    conn = UnixHTTPConnection(daemon.sock, 10)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        resp.read()
        assert resp.getheader("API-Version") == "1.50"
    finally:
        conn.close()
    version = _get(daemon, "/version")
    assert (version["ApiVersion"], version["MinAPIVersion"]) == ("1.50", "1.12")
    res = subprocess.run(
        [DOCKER_CLI, "version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}"],
        env=daemon.env,
        capture_output=True,
        timeout=30,
    )
    assert res.stdout.split() == [b"1.50", b"1.50"], res  # docker CLI 28: no downgrade


def test_image_list_until_filter(daemon):
    import time
    import urllib.parse

    def listed(until: str) -> list[str]:
        filters = urllib.parse.quote(json.dumps({"until": [until]}))
        return [t for i in _get(daemon, f"/images/json?filters={filters}") for t in i["RepoTags"]]

    assert "busybox:latest" in listed(str(int(time.time()) + 3600))
    assert listed("1") == []  # nothing was made before 1970
    status, out = api_request(
        daemon, "GET", "/images/json?filters=%7B%22until%22%3A%5B%22x%22%5D%7D"
    )
    assert status == 400 and b"until" in out, out
