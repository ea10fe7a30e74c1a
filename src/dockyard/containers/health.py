"""Health checks: HEALTHCHECK / --health-* run as execs on a timer (asyncio world).

moby daemon/health.go semantics: the first probe after ``Interval``; a probe that exits 0
is healthy, non-zero or over ``Timeout`` a failure; ``Retries`` consecutive failures make
the container unhealthy; failures during ``StartPeriod`` do not count.  Each status change
is a ``health_status: <status>`` event; the last five probe results are kept in the log.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dockyard.containers.attach import Hub

__all__ = ["monitor", "probe_command"]

_DEFAULT_NS = 30_000_000_000
_MAX_OUTPUT = 4096
_KEEP = 5


def probe_command(check: dict[str, Any] | None) -> list[str] | None:
    test = list((check or {}).get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return test[1:] or None
    return test


def _stamp() -> str:
    ns = time.time_ns()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
        + f".{ns % 1_000_000_000:09d}Z"
    )


async def _probe(service: Any, cid: str, cmd: list[str], timeout: float) -> tuple[int, str]:
    execs = service.execs
    exec_id = execs.create(cid, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})["Id"]
    hub = Hub()
    sub = hub.subscribe()
    e = await execs.start(exec_id, hub=hub)
    output = bytearray()

    async def collect() -> None:
        while (item := await sub.queue.get()) is not None:
            if len(output) < _MAX_OUTPUT:
                output.extend(item[1][: _MAX_OUTPUT - len(output)])
        await e.done.wait()

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        try:
            await service.shim.call("kill", id=exec_id, signal=9)
        except Exception:
            pass
        return -1, f"Health check exceeded timeout ({timeout:g}s)"
    finally:
        execs.records.pop(exec_id, None)
    return int(e.exit_code or 0), output.decode("utf-8", "replace")


async def monitor(service: Any, cid: str) -> None:
    c = service.get(cid)
    check = c.config.get("Healthcheck") or {}
    cmd = probe_command(check)
    if cmd is None:
        return
    interval = (check.get("Interval") or _DEFAULT_NS) / 1e9
    timeout = (check.get("Timeout") or _DEFAULT_NS) / 1e9
    retries = check.get("Retries") or 3
    start_period = (check.get("StartPeriod") or 0) / 1e9
    started = time.monotonic()
    health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    c.state.Health = health
    service._save(c)
    while True:
        await asyncio.sleep(interval)
        c = service._records.get(cid)
        if c is None or not c.state.Running:
            return
        if c.state.Paused:
            continue
        begin = _stamp()
        try:
            code, output = await _probe(service, cid, cmd, timeout)
        except Exception as exc:
            code, output = -1, str(exc)
        c = service._records.get(cid)
        if c is None or not c.state.Running:
            return
        health["Log"] = (
            health["Log"] + [{"Start": begin, "End": _stamp(), "ExitCode": code, "Output": output}]
        )[-_KEEP:]
        previous = health["Status"]
        if code == 0:
            health["Status"], health["FailingStreak"] = "healthy", 0
        elif time.monotonic() - started >= start_period or previous != "starting":
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= retries:
                health["Status"] = "unhealthy"
        c.state.Health = health
        service._save(c)
        if health["Status"] != previous:
            service._event(c, f"health_status: {health['Status']}")
