"""Userland proxies that outlive the daemon: one helper process per published port.

Docker runs ``docker-proxy`` as a process of its own for the same reason: a published
port must keep answering while the engine restarts (live-restore) or after it is killed.
The daemon binds the socket itself (so a port in use fails at once with Docker's
message), then starts ``python -m dockyard.network.proxyproc`` with that socket as an
inherited fd, in a new session so signals sent to the daemon's process group miss it.
The helper runs ``proxy.serve_socket`` until it gets SIGTERM.

Each helper is recorded in ``<run_dir>/<proto>_<ip>_<port>.json`` (pid, process start
time, backend).  ``start`` first looks there: a live helper for the same port and backend
is adopted, not replaced, so a restarted daemon does not drop a single connection.
``stop`` ends the helper recorded for a port, whichever daemon started it (pidfds: no
reuse race, and no need to be its parent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass

from dockyard.network import proxy as _proxy

__all__ = ["ProxyProcess", "start", "stop"]

log = logging.getLogger("dockyard.network")

STOP_TIMEOUT = 5.0


@dataclass(slots=True)
class ProxyProcess:
    """A helper process serving one published port (``port``: the bound host port)."""

    proto: str
    host_ip: str
    port: int
    container_ip: str
    container_port: int
    pid: int
    state_path: str

    async def close(self) -> None:
        """Stop the helper: the port is free when this returns."""
        await asyncio.to_thread(_terminate, self.pid, self.state_path)


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
            try:  # our own child (not adopted): reap it
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    except ProcessLookupError:
        pass
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        try:
            os.unlink(state_path)
        except FileNotFoundError:
            pass


def _matching(state_path: str, container_ip: str, container_port: int) -> dict | None:
    state = _read_state(state_path)
    if state is not None and state.get("backend") == [container_ip, container_port]:
        return state
    return None  # another backend's helper is left alone: binding then fails as it should


def _spawn(
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
    if adopt and host_port:
        path = _state_path(run_dir, proto, host_ip, host_port)
        state = _matching(path, container_ip, container_port)
        if state is not None:
            return ProxyProcess(
                proto, host_ip, host_port, container_ip, container_port, state["pid"], path
            )
    sock = _proxy.bind(proto, host_ip, host_port, endpoint)
    try:
        port = sock.getsockname()[1]
        path = _state_path(run_dir, proto, host_ip, port)
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        fd = sock.fileno()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dockyard.network.proxyproc",
                str(fd),
                proto,
                host_ip,
                container_ip,
                str(container_port),
                path,  # names the daemon's exec root: tests find leftovers by it
            ],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        sock.close()  # the helper holds it now (or nobody, if it could not start)
    state = {
        "pid": proc.pid,
        "start": _start_time(proc.pid),
        "backend": [container_ip, container_port],
    }
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(tmp, path)
    proc.returncode = 0  # Popen must not warn at GC: _terminate reaps it
    return ProxyProcess(proto, host_ip, port, container_ip, container_port, proc.pid, path)


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
    """Serve ``host_ip:host_port`` from a helper process.

    ``adopt`` (restore of a running container): a live helper recorded for the same port
    and backend is taken over instead of starting another.  Raises ``errors.Internal`` with Docker's message when the port cannot be bound.
    """
    if proto not in ("tcp", "udp"):
        raise ValueError(f"unsupported protocol {proto!r}")
    return await asyncio.to_thread(
        _spawn, run_dir, proto, host_ip, host_port, container_ip, container_port, endpoint, adopt
    )


async def stop(run_dir: str, proto: str, host_ip: str, port: int) -> None:
    """End the helper recorded for a port (one a previous daemon started, too)."""
    path = _state_path(run_dir, proto, host_ip or "0.0.0.0", port)
    state = await asyncio.to_thread(_read_state, path)
    if state is not None:
        await asyncio.to_thread(_terminate, state["pid"], path)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


async def _helper(fd: int, proto: str, host_ip: str, container_ip: str, cport: int) -> None:
    import socket

    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    p = await _proxy.serve_socket(sock, proto, host_ip, container_ip, cport)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await p.close()


def main(argv: list[str]) -> int:
    """``proxyproc FD PROTO HOST_IP CONTAINER_IP CONTAINER_PORT STATE_PATH``."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="dockyard-proxy %(levelname)s %(message)s")
    fd, proto, host_ip, cip, cport = argv[:5]
    asyncio.run(_helper(int(fd), proto, host_ip, cip, int(cport)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
