"""The supervisor (dockyard-shim) with real processes: stdio, logs, exits, attach, restart
of its client.  Containers here are plain processes (the exec launcher); isolation is the
native runtime's business and tested there."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from dockyard.runtime.supervisor.client import SupervisorError, ensure, read_frames
from dockyard.runtime.supervisor.jsonlog import JsonLog
from dockyard.runtime.supervisor.protocol import STDIN, frame


@pytest.fixture
def sup(tmp_path):
    root = str(tmp_path / "sup")
    client = ensure(root)
    pid = client.call("ping")["pid"]
    yield client, root
    for c in client.call("list")["containers"]:
        if c["running"]:
            try:
                os.kill(c["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)


def _log(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_exit_code_and_separated_logs(sup, tmp_path):
    client, root = sup
    log = str(tmp_path / "c1.log")
    client.call(
        "start",
        id="c1",
        argv=["sh", "-c", "echo out; echo err >&2; exit 3"],
        env=["PATH=/usr/bin:/bin"],
        log_path=log,
    )
    state = client.call("wait", id="c1")
    assert state["exit_code"] == 3 and not state["running"]
    for _ in range(50):
        if len(_log(log)) == 2:
            break
        time.sleep(0.02)
    entries = _log(log)
    assert {(e["stream"], e["log"]) for e in entries} == {("stdout", "out\n"), ("stderr", "err\n")}
    assert entries[0]["time"].endswith("Z")
    recorded = json.load(open(os.path.join(root, "c1", "exit.json")))
    assert recorded["exit_code"] == 3


def test_attach_with_stdin(sup):
    client, _ = sup
    client.call(
        "start",
        id="c2",
        argv=["sh", "-c", "read x; echo got $x; echo e >&2"],
        env=["PATH=/usr/bin:/bin"],
        stdin=True,
    )
    stream, tty = client.attach("c2", stdin=True)
    assert not tty
    stream.sendall(frame(STDIN, b"hello\n") + frame(STDIN, b""))
    frames = read_frames(stream)
    stream.close()
    assert (1, b"got hello\n") in frames and (2, b"e\n") in frames
    assert client.call("wait", id="c2")["exit_code"] == 0


def test_tty_is_raw_and_resizable(sup):
    client, _ = sup
    client.call(
        "start",
        id="c3",
        argv=["sh", "-c", "sleep 0.3; stty size; tty"],
        env=["PATH=/usr/bin:/bin"],
        tty=True,
    )
    client.call("resize", id="c3", h=30, w=100)
    stream, tty = client.attach("c3")
    assert tty
    data = b""
    while chunk := stream.recv(65536):
        data += chunk
    stream.close()
    assert b"30 100" in data and b"/dev/pts/" in data


def test_kill_and_missing_binary(sup):
    client, _ = sup
    client.call("start", id="c4", argv=["sleep", "30"], env=["PATH=/usr/bin:/bin"])
    client.call("kill", id="c4", signal=int(signal.SIGTERM))
    assert client.call("wait", id="c4")["exit_code"] == 143
    with pytest.raises(SupervisorError, match="is not running"):
        client.call("kill", id="c4", signal=9)
    with pytest.raises(SupervisorError, match='exec: "definitely-not-here"'):
        client.call("start", id="c5", argv=["definitely-not-here"], env=["PATH=/usr/bin:/bin"])


def test_containers_outlive_the_client(sup, tmp_path):
    client, root = sup
    log = str(tmp_path / "c6.log")
    client.call(
        "start",
        id="c6",
        argv=["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done; exit 5"],
        env=["PATH=/usr/bin:/bin"],
        log_path=log,
    )
    # The "daemon" goes away and comes back: a new client finds the same supervisor.
    again = ensure(root)
    assert again.call("ping")["pid"] == client.call("ping")["pid"]
    assert again.call("wait", id="c6")["exit_code"] == 5
    time.sleep(0.1)
    assert [e["log"] for e in _log(log)] == ["1\n", "2\n", "3\n"]
    listed = {c["id"]: c for c in again.call("list")["containers"]}
    assert listed["c6"]["exit_code"] == 5


def test_hostile_requests(sup):
    client, root = sup
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(root, "supervisor.sock"))
    s.sendall(b'not json\n{"op":"nope"}\n{"op":"state","id":"missing"}\n')
    data = b""
    while data.count(b"\n") < 3:
        data += s.recv(4096)
    s.close()
    replies = [json.loads(line) for line in data.splitlines()]
    assert all("error" in r for r in replies)
    assert client.call("ping")["ok"]


def test_jsonlog_rotation(tmp_path):
    path = str(tmp_path / "x.log")
    log = JsonLog(path, max_size=200, max_file=3)
    for i in range(40):
        log.write("stdout", f"line {i}\n".encode())
    log.write("stdout", b"partial")
    log.close()
    files = sorted(os.listdir(tmp_path))
    assert files == ["x.log", "x.log.1", "x.log.2"]
    assert all(os.path.getsize(tmp_path / f) <= 200 for f in files)
    last = _log(path)[-1]
    assert last["log"] == "partial"
    assert _log(str(tmp_path / "x.log.1"))[-1]["log"].startswith("line")
