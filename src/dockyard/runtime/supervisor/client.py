"""The daemon's side of the supervisor socket (synchronous; the daemon calls it from
threads).  ``ensure`` starts a supervisor unless a live one already answers, which is how
the daemon re-attaches to running containers after a restart or a kill -9."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

from dockyard.runtime.supervisor.handover import code_stamp
from dockyard.runtime.supervisor.protocol import FRAME

__all__ = ["SupervisorClient", "SupervisorError", "ensure"]

log = logging.getLogger("dockyard.runtime")


class SupervisorError(Exception):
    """The supervisor refused a request; the message is its reason."""


class SupervisorClient:
    def __init__(self, sock_path: str) -> None:
        self.sock_path = sock_path

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock_path)
        return s

    def call(self, op: str, **args: object) -> dict:
        with self._connect() as s:
            s.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise SupervisorError("supervisor closed the connection")
                data += chunk
        reply = json.loads(data)
        if "error" in reply:
            raise SupervisorError(reply["error"])
        return reply

    def attach(self, cid: str, stdin: bool = False) -> tuple[socket.socket, bool]:
        """Returns the framed stream socket and whether the container has a TTY."""
        s = self._connect()
        s.sendall(json.dumps({"op": "attach", "id": cid, "stdin": stdin}).encode() + b"\n")
        head = b""
        while b"\n" not in head:
            chunk = s.recv(1)
            if not chunk:
                raise SupervisorError("supervisor closed the connection")
            head += chunk
        reply = json.loads(head)
        if "error" in reply:
            s.close()
            raise SupervisorError(reply["error"])
        return s, bool(reply.get("tty"))


def read_frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Read a non-TTY attach stream to its end (tests and simple callers)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    out = []
    while data:
        stream, length = FRAME.unpack_from(data)
        out.append((stream, data[FRAME.size : FRAME.size + length]))
        data = data[FRAME.size + length :]
    return out


def _hand_over(client: SupervisorClient, timeout: float) -> None:
    """The running supervisor runs other code than ours (an upgrade was installed): it
    re-executes as our code, keeping its containers (handover.py).  It execs right after
    its answer, so the next ping is answered by the new code (queued in the backlog)."""
    try:
        client.call("handover", python=sys.executable, path=sys.path)
    except SupervisorError as exc:  # a supervisor older than handovers: keep it as it is
        log.warning("the supervisor cannot hand over to new code (%s); it keeps running", exc)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.call("ping")
            return
        except (OSError, SupervisorError):
            if time.monotonic() > deadline:
                raise SupervisorError("no supervisor after a handover") from None
            time.sleep(0.02)


def ensure(root: str, timeout: float = 10) -> SupervisorClient:
    """Connect to the supervisor of ``root``: start one if none answers, hand over to our
    code if the running one is another version."""
    client = SupervisorClient(os.path.join(root, "supervisor.sock"))
    try:
        reply = client.call("ping")
    except (OSError, SupervisorError):
        pass
    else:
        if reply.get("stamp") != code_stamp():
            _hand_over(client, timeout)
        return client
    os.makedirs(root, mode=0o700, exist_ok=True)
    log = open(os.path.join(root, "supervisor.log"), "ab")
    subprocess.Popen(
        [sys.executable, "-m", "dockyard.runtime.supervisor", root],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.call("ping")
            return client
        except (OSError, SupervisorError):
            time.sleep(0.02)
    raise SupervisorError(f"the supervisor did not start; see {root}/supervisor.log")
