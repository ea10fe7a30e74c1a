"""Upgrading the supervisor without stopping containers (synchronous world).

The running supervisor hands over to new code by re-executing itself in place
(``execve``), after writing its state to ``ROOT/handover.json`` and clearing close-on-exec
on the fds the new code needs (the listening socket, container stdio pipes/ptys).  Why
exec rather than a second process taking fds over SCM_RIGHTS: container inits are our
*children*; only their parent can read their exit status with ``waitpid``, and an orphan is
reparented to the nearest subreaper *ancestor*, never to a sibling or a child.  The same
process keeps its pid, its children, its subreaper flag (preserved across execve) and
the listening socket, so:

- no container exit is missed (an exit during the exec is a zombie until the new code
  reaps it at start);
- output written meanwhile waits in the pipe/pty buffers and reaches the log after;
- the socket never stops accepting (connections queue in its backlog).

Connections of the old code close (they belonged to the daemon being replaced).

The daemon compares ``code_stamp()`` (a hash of the runtime package's sources as they are
on disk now) with the stamp the running supervisor computed at its own start; when they
differ it asks for ``handover`` with its own interpreter and ``sys.path``, so the new
supervisor runs exactly the daemon's code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from typing import Any

__all__ = ["STATE_FILE", "code_stamp", "dump", "exec_new", "load"]

STATE_FILE = "handover.json"


def code_stamp() -> str:
    """sha256 of every ``.py`` of ``dockyard.runtime`` (the supervisor's code and what its
    launcher imports), read from disk: what a freshly started supervisor would run."""
    import dockyard.runtime

    top = os.path.dirname(os.path.abspath(dockyard.runtime.__file__))
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, top).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()[:16]


def dump(sup: Any, listener_fd: int) -> dict:
    """The state the new code needs, as JSON-able data; marks the fds inheritable."""
    containers = []
    fds = [listener_fd]
    for c in sup.containers.values():
        log = None
        if c.log is not None:
            log = {
                "path": c.log.path,
                "max_size": c.log.max_size,
                "max_file": c.log.max_file,
                "partial": {k: base64.b64encode(v).decode() for k, v in c.log._partial.items()},
            }
        containers.append(
            {
                "id": c.id,
                "dir": c.dir,
                "pid": c.pid,
                "tty": c.tty,
                "stdin_fd": c.stdin_fd,
                "stdin_buf": base64.b64encode(bytes(c.stdin_buf)).decode(),
                "stdin_closing": c.stdin_closing,
                "outputs": {str(fd): stream for fd, stream in c.outputs.items()},
                "log": log,
                "exit_code": c.exit_code,
                "started_at": c.started_at,
                "finished_at": c.finished_at,
                "runtime": c.runtime,
                "request": c.request,
                "oom_killed": c.oom_killed,
            }
        )
        fds += list(c.outputs) + ([c.stdin_fd] if c.stdin_fd >= 0 else [])
    for fd in fds:
        os.set_inheritable(fd, True)
    return {"listener": listener_fd, "containers": containers}


def load(sup: Any, state: dict) -> int:
    """Rebuild ``sup``'s containers from ``dump``'s data; returns the listener fd."""
    from dockyard.runtime.supervisor.jsonlog import JsonLog
    from dockyard.runtime.supervisor.server import _Container

    for d in state["containers"]:
        c = _Container(d["id"], d["dir"])
        c.pid = d["pid"]
        c.tty = d["tty"]
        c.stdin_fd = d["stdin_fd"]
        c.stdin_buf = bytearray(base64.b64decode(d["stdin_buf"]))
        c.stdin_closing = d["stdin_closing"]
        c.outputs = {int(fd): stream for fd, stream in d["outputs"].items()}
        c.exit_code = d["exit_code"]
        c.started_at = d["started_at"]
        c.finished_at = d["finished_at"]
        c.runtime = d["runtime"]
        c.request = d["request"]
        c.oom_killed = d["oom_killed"]
        if d["log"] is not None:
            c.log = JsonLog(d["log"]["path"], d["log"]["max_size"], d["log"]["max_file"])
            c.log._partial = {k: base64.b64decode(v) for k, v in d["log"]["partial"].items()}
        for fd in [*c.outputs, c.stdin_fd]:
            if fd >= 0:
                os.set_inheritable(fd, False)
        sup.containers[c.id] = c
        if c.exit_code is None:
            sup.by_pid[c.pid] = c
    os.set_inheritable(state["listener"], False)
    return int(state["listener"])


def exec_new(root: str, state: dict, python: str, path: list[str]) -> None:
    """Write the state and become the new code (does not return)."""
    from dockyard.fsutil import atomic_write

    state_path = os.path.join(root, STATE_FILE)
    atomic_write(state_path, json.dumps(state).encode())
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        python,
        [python, "-m", "dockyard.runtime.supervisor", root, "--handover", state_path],
        env,
    )
