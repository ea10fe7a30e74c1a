"""Response shapes (issue 15): the same scene made on the reference dockerd and on dockyardd
(a user network, a named volume, a container on both with a published port, an exec), and
every field path and JSON type of container inspect, list and stats, exec inspect, network
inspect and list, volume inspect and list, and image inspect, list and history compared
between the two.  Only differences listed in
``KNOWN`` (with why) are allowed.  Everything made is removed even when the test fails."""

from __future__ import annotations

import json
import uuid

from engines import api_request

V = "/v1.41"

# Differences allowed per response, with why.  None left: GraphDriver.Data names the
# storage driver's directories and stats read the same cgroup v1 files as dockerd does.
KNOWN: dict[str, set[str]] = {}


def paths(x, prefix: str = "") -> set[str]:
    """``a.b.c:type`` for every field; ids and names made here are folded to ``<id>``."""
    out = set()
    if isinstance(x, dict):
        for k, v in x.items():
            if len(k) == 64 or k.startswith(("dyt-", "/data")):
                k = "<id>"
            out.add(f"{prefix}{k}:{type(v).__name__}")
            out |= paths(v, f"{prefix}{k}.")
    elif isinstance(x, list) and x and isinstance(x[0], dict):
        out |= paths(x[0], f"{prefix}[].")
    return out


def scene(engine) -> dict[str, set[str]]:
    tag = uuid.uuid4().hex[:8]
    net, vol, box = f"dyt-sh-{tag}", f"dyt-sh-{tag}", f"dyt-sh-{tag}"

    def call(method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        status, out = api_request(engine, method, V + path, data)
        assert status < 300, (path, out)
        return json.loads(out) if out.strip() else None

    found: dict[str, object] = {}
    try:
        call("POST", "/networks/create", {"Name": net, "Labels": {"a": "b"}})
        call("POST", "/volumes/create", {"Name": vol})
        body = {
            "Image": "busybox",
            "Cmd": ["sleep", "100"],
            "Labels": {"x": "y"},
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {
                "NetworkMode": net,
                "Binds": [f"{vol}:/data"],
                "PortBindings": {"80/tcp": [{"HostPort": ""}]},
            },
        }
        call("POST", f"/containers/create?name={box}", body)
        found["created"] = call("GET", f"/containers/{box}/json")
        call("POST", f"/containers/{box}/start")
        found["inspect"] = call("GET", f"/containers/{box}/json")
        found["list"] = call("GET", f'/containers/json?filters={{"name":["{box}"]}}')
        exec_id = call("POST", f"/containers/{box}/exec", {"Cmd": ["true"]})["Id"]
        found["exec"] = call("GET", f"/exec/{exec_id}/json")
        found["stats"] = call("GET", f"/containers/{box}/stats?stream=0")
        found["top"] = call("GET", f"/containers/{box}/top")
        found["sized"] = call("GET", f"/containers/{box}/json?size=1")
        found["sized-list"] = call("GET", f'/containers/json?size=1&filters={{"name":["{box}"]}}')
        found["network"] = call("GET", f"/networks/{net}")
        found["networks"] = call("GET", f'/networks?filters={{"name":["{net}"]}}')
        found["volume"] = call("GET", f"/volumes/{vol}")
        found["volumes"] = call("GET", f'/volumes?filters={{"name":["{vol}"]}}')
        found["image"] = call("GET", "/images/busybox/json")
        found["images"] = call("GET", '/images/json?filters={"reference":["busybox"]}')
        found["history"] = call("GET", "/images/busybox/history")
    finally:
        api_request(engine, "DELETE", f"{V}/containers/{box}?force=1")
        api_request(engine, "DELETE", f"{V}/networks/{net}")
        api_request(engine, "DELETE", f"{V}/volumes/{vol}")
    return {k: paths(v) - KNOWN.get(k, set()) for k, v in found.items()}


def test_response_shapes_match_dockerd(dockerd, daemon):
    theirs, mine = scene(dockerd), scene(daemon)
    diff = {
        k: {
            "only dockerd": sorted(theirs[k] - mine[k]),
            "only dockyard": sorted(mine[k] - theirs[k]),
        }
        for k in theirs
        if theirs[k] != mine[k]
    }
    assert diff == {}, json.dumps(diff, indent=1)
