"""Exec fidelity (issue 15), side by side on the reference dockerd and on dockyardd: the
start stream is framed by the *start* request's ``Tty`` (docker-py relies on it), a missing
command exits 126, and the exec's detach keys end the hijacked connection with moby's
message.  Containers use ``--network none`` (the reference dockerd has no bridge) and are
force-removed by the ``names`` finalizer even when a test fails."""

from __future__ import annotations

import json
import uuid

import docker as docker_py
import pytest
from engines import api_request
from test_attach import Raw, demux

V = "/v1.41"


@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def low(engine):
    client = docker_py.APIClient(base_url=engine.host, version="auto", timeout=60)
    yield client
    client.close()


@pytest.fixture
def sleeper(engine):
    name = f"dyt-fx-{uuid.uuid4().hex[:8]}"
    body = {"Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": "none"}}
    status, out = api_request(
        engine, "POST", f"{V}/containers/create?name={name}", json.dumps(body).encode()
    )
    assert status == 201, out
    try:
        status, out = api_request(engine, "POST", f"{V}/containers/{name}/start")
        assert status == 204, out
        yield name
    finally:
        api_request(engine, "DELETE", f"{V}/containers/{name}?force=1")


def exec_create(engine, name: str, **config) -> str:
    status, out = api_request(
        engine, "POST", f"{V}/containers/{name}/exec", json.dumps(config).encode()
    )
    assert status == 201, out
    return json.loads(out)["Id"]


def exec_inspect(engine, exec_id: str) -> dict:
    status, out = api_request(engine, "GET", f"{V}/exec/{exec_id}/json")
    assert status == 200, out
    return json.loads(out)


def test_a_tty_exec_started_without_tty_is_multiplexed(engine, sleeper):
    exec_id = exec_create(
        engine, sleeper, Cmd=["echo", "hello out"], Tty=True, AttachStdout=True, AttachStderr=True
    )
    conn = Raw(engine, f"{V}/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    try:
        assert conn.status == 101
        out, eof = conn.read()
    finally:
        conn.close()
    assert eof
    # the exec has a terminal (CRLF), its stream framed as the start request asked
    assert demux(out) == [(1, b"hello out\r\n")]


def test_a_plain_exec_started_with_tty_is_raw(engine, sleeper):
    exec_id = exec_create(engine, sleeper, Cmd=["echo", "plain"], AttachStdout=True)
    conn = Raw(engine, f"{V}/exec/{exec_id}/start", {"Detach": False, "Tty": True})
    try:
        out, eof = conn.read()
    finally:
        conn.close()
    assert (out, eof) == (b"plain\n", True)


def test_docker_py_reads_a_tty_exec(engine, sleeper, low):
    exec_id = low.exec_create(sleeper, ["echo", "hello out"], tty=True)["Id"]
    assert low.exec_start(exec_id) == b"hello out\r\n"
    exec_id = low.exec_create(sleeper, ["echo", "hello out"], tty=True)["Id"]
    assert low.exec_start(exec_id, demux=True) == (b"hello out\r\n", None)
    exec_id = low.exec_create(sleeper, ["sh", "-c", "echo o; echo e >&2"])["Id"]
    assert low.exec_start(exec_id, demux=True) == (b"o\n", b"e\n")


def test_exec_of_a_missing_command_exits_126(engine, sleeper, low):
    exec_id = low.exec_create(sleeper, ["/no/such/command"])["Id"]
    out = low.exec_start(exec_id)
    assert b"OCI runtime exec failed" in out
    inspect = low.exec_inspect(exec_id)
    assert (inspect["Running"], inspect["ExitCode"]) == (False, 126)
    result = engine.cli("exec", sleeper, "nosuchcommand")
    assert result.returncode == 126, result.stderr


@pytest.mark.parametrize("start_tty", [True, False])
def test_detach_keys_end_the_exec_connection_with_moby_message(engine, sleeper, start_tty):
    exec_id = exec_create(
        engine,
        sleeper,
        Cmd=["cat"],
        AttachStdin=True,
        AttachStdout=True,
        Tty=True,
        DetachKeys="ctrl-x",
    )
    conn = Raw(engine, f"{V}/exec/{exec_id}/start", {"Detach": False, "Tty": start_tty})
    try:
        conn.send(b"hi\n", b"\x18", b"after\n")
        out, eof = conn.read()
    finally:
        conn.close()
    assert eof
    frames = [(1, out)] if start_tty else demux(out)
    text = b"".join(data for _, data in frames)
    assert (
        text == b"hi\r\nhi\r\nexec attach failed: error on attach stdin: read escape sequence\r\n"
    )
    inspect = exec_inspect(engine, exec_id)
    assert (inspect["Running"], inspect["ExitCode"]) == (False, 126)
    _status, raw = api_request(engine, "GET", f"{V}/containers/{sleeper}/json")
    assert json.loads(raw)["State"]["Running"]


def _caps(engine, *args: str) -> dict[str, str]:
    out = engine.cli(*args, "grep", "^Cap", "/proc/self/status", check=True).stdout.decode()
    return dict(line.split(":\t") for line in out.splitlines())


@pytest.fixture
def capped(engine):
    """A running container with one capability added and one dropped."""
    name = f"dyt-fx-{uuid.uuid4().hex[:8]}"
    try:
        engine.cli(
            "run", "-d", "--name", name, "--network", "none", "--cap-add", "NET_ADMIN",
            "--cap-drop", "CHOWN", "busybox", "sleep", "300", check=True,
        )  # fmt: skip
        yield name
    finally:
        engine.cli("rm", "-f", name)


def test_exec_runs_with_the_containers_capabilities(engine, capped):
    """An exec has its container's capabilities, --cap-add/--cap-drop included (moby starts
    it from the container's process spec), not the default set."""
    own = engine.cli("exec", capped, "grep", "^Cap", "/proc/1/status", check=True)
    container = dict(line.split(":\t") for line in own.stdout.decode().splitlines())
    assert _caps(engine, "exec", capped) == container
    assert int(container["CapEff"], 16) >> 12 & 1  # CAP_NET_ADMIN
    assert not int(container["CapEff"], 16) & 1  # no CAP_CHOWN


def test_privileged_exec_gets_what_a_privileged_container_gets(daemon):
    """``exec --privileged`` holds the full set a ``--privileged`` container holds (one
    capability list for both).  dockyardd only: this host withholds CAP_SYS_RESOURCE, and
    runc (under the reference dockerd) then refuses every privileged start ("unable to
    apply caps"), where dockyard grants what the host holds."""
    name = f"dyt-fx-{uuid.uuid4().hex[:8]}"
    try:
        daemon.cli(
            "run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "300", check=True
        )
        privileged = _caps(daemon, "run", "--rm", "--network", "none", "--privileged", "busybox")
        assert _caps(daemon, "exec", "--privileged", name) == privileged
        with open("/proc/self/status", encoding="ascii") as f:
            held = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
        assert int(privileged["CapBnd"], 16) == int(held, 16)
    finally:
        daemon.cli("rm", "-f", name)
