"""Lifecycle fidelity (issue 15 leftovers), side by side on the reference dockerd and on
dockyardd: a SIGKILL kill returns once the exit is recorded, commit with pause of a stopped
container, prune's SpaceReclaimed, unpause/rename errors, ``Entrypoint: [""]`` and the events'
scope.  Containers use ``--network none`` and are force-removed even when a test fails."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import tarfile
import threading
import time
import uuid
from urllib.parse import quote

import pytest
from engines import api_request

V = "/v1.41"


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def names(engine):
    made: list[str] = []
    yield made
    for name in made:
        api_request(engine, "DELETE", f"{V}/containers/{name}?force=1")


def create(engine, names, cmd, start=True, **config) -> str:
    name = f"dyt-fl-{uuid.uuid4().hex[:8]}"
    body = {"Image": "busybox", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}, **config}
    status, out = api_request(
        engine, "POST", f"{V}/containers/create?name={name}", json.dumps(body).encode()
    )
    assert status == 201, out
    names.append(name)
    if start:
        status, out = api_request(engine, "POST", f"{V}/containers/{name}/start")
        assert status == 204, out
    return name


def inspect(engine, name: str) -> dict:
    status, out = api_request(engine, "GET", f"{V}/containers/{name}/json")
    assert status == 200, out
    return json.loads(out)


def wait_exit(engine, name: str) -> int:
    status, out = api_request(engine, "POST", f"{V}/containers/{name}/wait", timeout=60)
    assert status == 200, out
    return json.loads(out)["StatusCode"]


def test_kill_returns_once_the_container_is_exited(engine, names):
    for _ in range(5):
        name = create(engine, names, ["sleep", "300"])
        status, out = api_request(engine, "POST", f"{V}/containers/{name}/kill")
        assert status == 204, out
        state = inspect(engine, name)["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 137
        status, out = api_request(engine, "DELETE", f"{V}/containers/{name}")
        assert status == 204, out


def test_commit_with_pause_of_a_stopped_container(engine, names):
    name = create(engine, names, ["sh", "-c", "echo x > /made"])
    assert wait_exit(engine, name) == 0
    repo = f"dyt-fl-commit-{uuid.uuid4().hex[:8]}"
    status, out = api_request(
        engine, "POST", f"{V}/commit?container={name}&repo={repo}&tag=t&pause=1"
    )
    try:
        assert status == 201, out
        assert json.loads(out)["Id"].startswith("sha256:")
    finally:
        api_request(engine, "DELETE", f"{V}/images/{repo}:t?force=1")


def test_prune_counts_the_written_files(engine, names):
    label = f"dyt-fl-prune={uuid.uuid4().hex[:8]}"
    name = create(
        engine,
        names,
        ["dd", "if=/dev/zero", "of=/blob", "bs=1024", "count=2048"],
        Labels={label.split("=")[0]: label.split("=")[1]},
    )
    assert wait_exit(engine, name) == 0
    filters = quote(json.dumps({"label": [label]}))
    status, out = api_request(engine, "POST", f"{V}/containers/prune?filters={filters}")
    assert status == 200, out
    reply = json.loads(out)
    assert len(reply["ContainersDeleted"]) == 1
    assert 2 << 20 <= reply["SpaceReclaimed"] < 4 << 20


def test_unpause_of_a_container_that_is_not_paused(engine, names):
    name = create(engine, names, ["sleep", "300"])
    cid = inspect(engine, name)["Id"]
    status, out = api_request(engine, "POST", f"{V}/containers/{name}/unpause")
    assert (status, json.loads(out)["message"]) == (500, f"Container {cid} is not paused")


def test_rename_to_the_same_name(engine, names):
    name = create(engine, names, ["true"], start=False)
    status, out = api_request(engine, "POST", f"{V}/containers/{name}/rename?name={name}")
    assert (status, json.loads(out)["message"]) == (
        400,
        "Renaming a container with the same name as its current name",
    )


def test_an_empty_entrypoint_resets_the_images(engine, names):
    name = create(engine, names, ["echo", "hi"], Entrypoint=[""])
    assert wait_exit(engine, name) == 0
    info = inspect(engine, name)
    assert info["Path"] == "echo" and info["Args"] == ["hi"]
    status, out = api_request(engine, "GET", f"{V}/containers/{name}/logs?stdout=1")
    assert status == 200 and out.endswith(b"hi\n"), out


def test_events_carry_the_local_scope(engine, names):
    since = int(time.time()) - 1
    name = create(engine, names, ["true"], start=False)
    until = int(time.time()) + 1
    status, out = api_request(
        engine,
        "GET",
        f"{V}/events?since={since}&until={until}&filters="
        + quote(json.dumps({"container": [name]})),
    )
    assert status == 200, out
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events and all(e["scope"] == "local" for e in events), events


def _sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return count


def _goroutines(engine) -> int:
    status, out = api_request(engine, "GET", f"{V}/info")
    assert status == 200, out
    return json.loads(out)["NGoroutines"]


def test_a_wait_whose_client_hung_up_ends(engine, names):
    name = create(engine, names, ["sleep", "300"])
    pid = engine.proc.pid
    before, routines = _sockets(pid), _goroutines(engine)
    clients = []
    for _ in range(5):
        s = socket.socket(socket.AF_UNIX)
        s.connect(engine.sock)
        s.sendall(f"POST {V}/containers/{name}/wait HTTP/1.1\r\nHost: d\r\n\r\n".encode())
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        clients.append(s)
    assert _sockets(pid) > before  # (a keep-alive socket of the create may close meanwhile)
    assert _goroutines(engine) >= routines + 5
    for s in clients:
        s.close()
    deadline = time.monotonic() + 10
    while _sockets(pid) > before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sockets(pid) <= before
    # and the requests' handlers end with them (goroutines on dockerd, tasks on dockyardd)
    while _goroutines(engine) > routines + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _goroutines(engine) <= routines + 2
    # the container is untouched and a later wait still answers at its exit
    assert inspect(engine, name)["State"]["Running"]
    status, out = api_request(engine, "POST", f"{V}/containers/{name}/kill")
    assert status == 204, out
    assert wait_exit(engine, name) == 137


def test_commit_with_pause_while_the_container_is_killed(engine, names):
    repo = f"dyt-fl-race-{uuid.uuid4().hex[:8]}"
    try:
        for i in range(4):
            name = create(engine, names, ["sh", "-c", "echo x > /made; sleep 300"])
            replies: list[tuple[int, bytes]] = []
            committer = threading.Thread(
                target=lambda n=name, i=i, r=replies: r.append(
                    api_request(
                        engine, "POST", f"{V}/commit?container={n}&repo={repo}&tag=t{i}&pause=1"
                    )
                )
            )
            committer.start()
            killed = api_request(engine, "POST", f"{V}/containers/{name}/kill")
            committer.join(60)
            assert killed[0] in (204, 409), killed
            status, out = replies[0]
            assert status in (201, 409), out  # never a 500
            state = inspect(engine, name)["State"]
            assert state["Status"] == "exited" and not state["Paused"]
    finally:
        for i in range(4):
            api_request(engine, "DELETE", f"{V}/images/{repo}:t{i}?force=1")


def test_commit_with_pause_of_a_running_container_leaves_it_running(engine, names):
    name = create(engine, names, ["sh", "-c", "echo x > /made; sleep 300"])
    repo = f"dyt-fl-commit-{uuid.uuid4().hex[:8]}"
    status, out = api_request(
        engine, "POST", f"{V}/commit?container={name}&repo={repo}&tag=t&pause=1"
    )
    try:
        assert status == 201, out
        state = inspect(engine, name)["State"]
        assert state["Status"] == "running" and not state["Paused"]
    finally:
        api_request(engine, "DELETE", f"{V}/images/{repo}:t?force=1")


def test_exec_records_go_with_their_container(engine, names):
    name = create(engine, names, ["sleep", "300"])
    status, out = api_request(
        engine, "POST", f"{V}/containers/{name}/exec", json.dumps({"Cmd": ["true"]}).encode()
    )
    assert status == 201, out
    exec_id = json.loads(out)["Id"]
    status, out = api_request(
        engine, "POST", f"{V}/exec/{exec_id}/start", json.dumps({"Detach": True}).encode()
    )
    assert status == 200, out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, out = api_request(engine, "GET", f"{V}/exec/{exec_id}/json")
        assert status == 200, out
        if json.loads(out)["ExitCode"] is not None:
            break
        time.sleep(0.1)
    assert json.loads(out)["ExitCode"] == 0
    status, out = api_request(engine, "DELETE", f"{V}/containers/{name}?force=1")
    assert status == 204, out
    status, out = api_request(engine, "GET", f"{V}/exec/{exec_id}/json")
    assert (status, json.loads(out)["message"]) == (404, f"No such exec instance: {exec_id}")


def _tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _mounts_under(engine) -> list[str]:
    with open(f"/proc/{engine.proc.pid}/mountinfo", encoding="utf-8") as f:
        return [line for line in f if engine.root in line]


def test_concurrent_copies_into_one_container_leave_no_bind(engine, names):
    name = create(engine, names, ["ls", "/data", "/"], start=False, Volumes={"/data": {}})
    try:
        before = _mounts_under(engine)
        replies: list[tuple[int, bytes]] = []

        def copy(i: int) -> None:
            where = "/data" if i % 2 else "/"
            replies.append(
                api_request(
                    engine,
                    "PUT",
                    f"{V}/containers/{name}/archive?path={where}",
                    _tar_of(f"f{i}", b"x" * 100_000),
                    {"Content-Type": "application/x-tar"},
                    timeout=60,
                )
            )

        threads = [threading.Thread(target=copy, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [status for status, _ in replies] == [200] * 8, replies
        assert _mounts_under(engine) == before
        status, out = api_request(engine, "POST", f"{V}/containers/{name}/start")
        assert status == 204, out
        assert wait_exit(engine, name) == 0
        status, out = api_request(engine, "GET", f"{V}/containers/{name}/logs?stdout=1")
        assert status == 200, out
        listed = set(re.findall(rb"f\d", out))
        assert listed == {f"f{i}".encode() for i in range(8)}, out
    finally:
        api_request(engine, "DELETE", f"{V}/containers/{name}?force=1&v=1")


@pytest.mark.parametrize(
    ("config", "term"),
    [({"Tty": True}, "xterm"), ({}, None), ({"Tty": True, "Env": ["TERM=dumb"]}, "dumb")],
)
def test_term_is_set_for_a_tty_unless_the_env_gives_one(engine, names, config, term):
    """moby's CreateDaemonEnvironment: TERM=xterm for a tty container, before its own Env."""
    name = create(engine, names, ["env"], **config)
    assert wait_exit(engine, name) == 0
    status, out = api_request(engine, "GET", f"{V}/containers/{name}/logs?stdout=1")
    assert status == 200, out
    text = out.decode(errors="replace") if config.get("Tty") else out[8:].decode(errors="replace")
    terms = [line.strip() for line in text.splitlines() if line.strip().startswith("TERM=")]
    assert terms == ([f"TERM={term}"] if term else []), text
