"""Events (issue 15): one life of a container on a user network with a named volume (create,
start, exec, disconnect and connect, pause, rename, kill, remove) on the reference dockerd
and on dockyardd, and the kinds of event each emits compared: type, action and attribute
names.  Everything made is removed even when the test fails."""

from __future__ import annotations

import json
import time
import uuid

from engines import api_request

V = "/v1.41"


def life(engine) -> set[tuple[str, str, tuple[str, ...]]]:
    n = f"dyt-fev{uuid.uuid4().hex[:6]}"
    since = time.time() - 0.5

    def call(method: str, path: str, body=None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        status, out = api_request(engine, method, V + path, data)
        assert status < 300, (path, out)

    try:
        call("POST", "/networks/create", {"Name": n, "CheckDuplicate": True})
        call("POST", "/volumes/create", {"Name": n})
        body = {
            "Image": "busybox",
            "Cmd": ["sleep", "30"],
            "Labels": {"l": "v"},
            "HostConfig": {"NetworkMode": n, "Binds": [f"{n}:/v"]},
        }
        call("POST", f"/containers/create?name={n}", body)
        call("POST", f"/containers/{n}/start")
        call("POST", f"/containers/{n}/exec", {"Cmd": ["true"]})
        call("POST", f"/networks/{n}/disconnect", {"Container": n})
        call("POST", f"/networks/{n}/connect", {"Container": n})
        call("POST", f"/containers/{n}/pause")
        call("POST", f"/containers/{n}/unpause")
        call("POST", f"/containers/{n}/rename?name={n}x")
        call("POST", f"/containers/{n}x/rename?name={n}")
        call("POST", f"/containers/{n}/kill?signal=SIGKILL")
        call("POST", f"/containers/{n}/wait")
        call("DELETE", f"/containers/{n}")
        call("DELETE", f"/networks/{n}")
        call("DELETE", f"/volumes/{n}")
    finally:
        api_request(engine, "DELETE", f"{V}/containers/{n}?force=1")
        api_request(engine, "DELETE", f"{V}/networks/{n}")
        api_request(engine, "DELETE", f"{V}/volumes/{n}")
    status, out = api_request(
        engine, "GET", f"{V}/events?since={since:.3f}&until={time.time():.3f}"
    )
    assert status == 200, out
    kinds = set()
    for line in out.splitlines():
        e = json.loads(line)
        kinds.add((e["Type"], e["Action"].split(":")[0], tuple(sorted(e["Actor"]["Attributes"]))))
    return kinds


def test_event_kinds_match_dockerd(dockerd, daemon):
    theirs, mine = life(dockerd), life(daemon)
    assert sorted(theirs - mine) == [] and sorted(mine - theirs) == []
