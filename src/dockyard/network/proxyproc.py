"""Userland proxies that outlive the daemon (blocking world, called through
``asyncio.to_thread``): one helper process per daemon serves every published port.

Docker runs ``docker-proxy`` as a process of its own per port for the same reason: a
published port must keep answering while the engine restarts (live-restore) or after it is
killed.  A Python process per port costs ~21 MB, so here one helper (``proxyhost``, started
``python -I -S``, in a new session so signals sent to the daemon's process group miss it)
holds them all.  The daemon binds each port itself (so a port in use fails at once with
Docker's message) and passes the socket over ``<run_dir>/control.sock`` with SCM_RIGHTS.

Each request runs under an flock on ``<run_dir>/proxy.lock``; a request that finds no
helper (the first port, or the last one went away and the helper exited) binds the control
socket and starts one.  ``start(adopt=True)`` at restore asks the helper whether it already
serves the port for the same backend and takes it over, so a restarted daemon does not drop
a single connection; ``stop`` removes a port whichever daemon added it.

Ports published before this layout were served by one helper each, recorded in
``<run_dir>/<proto>_<ip>_<port>.json`` (pid, process start time, backend); those are still
adopted and stopped (pidfds: no reuse race), so an upgrade keeps their connections too.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass

from dockyard.errors import Internal
from dockyard.network import proxy as _proxy

__all__ = ["ProxyProcess", "start", "stop"]

log = logging.getLogger("dockyard.network")

STOP_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0
CONTROL_NAME = "control.sock"
LOCK_NAME = "proxy.lock"  # proxyhost.LOCK_NAME (not imported: it would import the helper)
HOST_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxyhost.py")


@dataclass(slots=True)
class ProxyProcess:
    """A published port served by a helper (``port``: the bound host port; ``pid``: the
    helper's)."""

    proto: str
    host_ip: str
    port: int
    container_ip: str
    container_port: int
    pid: int
    run_dir: str
    legacy_state: str = ""  # a per-port helper of an older daemon: its state file

    async def close(self) -> None:
        """Stop serving the port: it is free when this returns."""
        if self.legacy_state:
            await asyncio.to_thread(_terminate, self.pid, self.legacy_state)
        else:
            await asyncio.to_thread(_remove, self.run_dir, self.proto, self.host_ip, self.port)


# -- the shared helper -------------------------------------------------------------------


class _NoHelper(Exception):
    """No helper answers on the control socket."""


def _key(proto: str, host_ip: str, port: int) -> dict:
    return {"proto": proto, "host_ip": host_ip, "port": port}


def _ask(path: str, request: dict, fd: int | None) -> dict:
    """One request/answer on the control socket; ``_NoHelper`` when nobody answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(REQUEST_TIMEOUT)
        try:
            s.connect(path)
            data = json.dumps(request).encode() + b"\n"
            anc = (
                []
                if fd is None
                else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
            )
            s.sendmsg([data], anc)
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise _NoHelper(path)  # it exited (or crashed) before answering
                answer += chunk
        except (
            FileNotFoundError,
            ConnectionRefusedError,
            ConnectionResetError,
            BrokenPipeError,
        ) as exc:
            raise _NoHelper(path) from exc
        except OSError as exc:
            raise Internal(f"userland proxy helper at {path}: {exc}") from exc
    reply = json.loads(answer)
    if "error" in reply:
        raise Internal(f"userland proxy helper: {reply['error']}")
    return reply


def _spawn_helper(run_dir: str, path: str) -> None:
    """Bind the control socket and start a helper on it (under the request lock)."""
    try:
        os.unlink(path)  # a helper that crashed left it
    except FileNotFoundError:
        pass
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        control.bind(path)
        control.listen(_proxy.BACKLOG)
        fd = control.fileno()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", HOST_SCRIPT, str(fd), path],  # path: names our root
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        control.close()  # the helper holds it now; requests queue in its backlog meanwhile
    if proc.wait(REQUEST_TIMEOUT) != 0:  # it forks and exits at once: init reaps the helper
        raise Internal(f"the userland proxy helper could not start ({proc.returncode})")


def _request(run_dir: str, request: dict, fd: int | None = None, spawn: bool = False) -> dict:
    """Ask the helper, starting one first if there is none and ``spawn``; without one and
    without ``spawn``: ``{}`` (nothing is served)."""
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    path = os.path.join(run_dir, CONTROL_NAME)
    lock = os.open(os.path.join(run_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _ask(path, request, fd)
        except _NoHelper:
            if not spawn:
                return {}
        _spawn_helper(run_dir, path)
        try:
            return _ask(path, request, fd)
        except _NoHelper as exc:
            raise Internal(
                "the userland proxy helper exited at start: see the daemon's log"
            ) from exc
    finally:
        os.close(lock)


def _remove(run_dir: str, proto: str, host_ip: str, port: int) -> None:
    _request(run_dir, {"op": "remove", **_key(proto, host_ip, port)})


# -- per-port helpers of older daemons ---------------------------------------------------


def _state_path(run_dir: str, proto: str, host_ip: str, port: int) -> str:
    return os.path.join(run_dir, f"{proto}_{host_ip.replace(':', '-')}_{port}.json")


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a recycled pid from the helper we started."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _read_state(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        return None
    if _start_time(state["pid"]) != state.get("start"):
        return None  # gone (or the pid now belongs to someone else)
    return state


def _terminate(pid: int, state_path: str) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = -1
    try:
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            if not select.select([pidfd], [], [], STOP_TIMEOUT)[0]:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                select.select([pidfd], [], [], STOP_TIMEOUT)
    except ProcessLookupError:
        pass
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        try:
            os.unlink(state_path)
        except FileNotFoundError:
            pass


# -- the API -----------------------------------------------------------------------------


def _start(
    run_dir: str,
    proto: str,
    host_ip: str,
    host_port: int,
    container_ip: str,
    container_port: int,
    endpoint: str,
    adopt: bool,
) -> ProxyProcess:
    host_ip = host_ip or "0.0.0.0"
    backend = [container_ip, container_port]
    if adopt and host_port:
        legacy = _state_path(run_dir, proto, host_ip, host_port)
        state = _read_state(legacy)
        if state is not None and state.get("backend") == backend:
            return ProxyProcess(
                proto, host_ip, host_port, container_ip, container_port, state["pid"], run_dir,
                legacy,
            )  # fmt: skip
        served = _request(run_dir, {"op": "get", **_key(proto, host_ip, host_port)})
        if served.get("backend") == backend:
            return ProxyProcess(
                proto, host_ip, host_port, container_ip, container_port, served["pid"], run_dir
            )
        # another backend's port is left alone: binding then fails as it should
    sock = _proxy.bind(proto, host_ip, host_port, endpoint)
    try:
        port = sock.getsockname()[1]
        request = {"op": "add", **_key(proto, host_ip, port), "backend": backend}
        reply = _request(run_dir, request, sock.fileno(), spawn=True)
    finally:
        sock.close()  # the helper holds it now (or nobody, if it failed)
    return ProxyProcess(proto, host_ip, port, container_ip, container_port, reply["pid"], run_dir)


async def start(
    run_dir: str,
    proto: str,
    host_ip: str,
    host_port: int,
    container_ip: str,
    container_port: int,
    *,
    endpoint: str = "",
    adopt: bool = False,
) -> ProxyProcess:
    """Serve ``host_ip:host_port`` from the helper.

    ``adopt`` (restore of a running container): a port the helper (or an older daemon's
    per-port helper) already serves for the same backend is taken over instead of bound
    again.  Raises ``errors.Internal`` with Docker's message when the port cannot be bound.
    """
    if proto not in ("tcp", "udp"):
        raise ValueError(f"unsupported protocol {proto!r}")
    return await asyncio.to_thread(
        _start, run_dir, proto, host_ip, host_port, container_ip, container_port, endpoint, adopt
    )


def _stop(run_dir: str, proto: str, host_ip: str, port: int) -> None:
    host_ip = host_ip or "0.0.0.0"
    legacy = _state_path(run_dir, proto, host_ip, port)
    state = _read_state(legacy)
    if state is not None:
        _terminate(state["pid"], legacy)
    elif os.path.exists(legacy):
        os.unlink(legacy)
    _remove(run_dir, proto, host_ip, port)


async def stop(run_dir: str, proto: str, host_ip: str, port: int) -> None:
    """Stop serving a port (one a previous daemon published, too)."""
    await asyncio.to_thread(_stop, run_dir, proto, host_ip, port)
