"""``GET /containers/{id}/stats`` samples, shaped as moby's types.StatsJSON (blocking world).

CPU figures are nanoseconds: the container's cgroup usage and the host's total from
/proc/stat (moby's getSystemCPUUsage: jiffies × 1e9 / USER_HZ), so the CLI's CPU % maths
(delta container / delta system × online CPUs) works unchanged.
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["networks", "sample", "system_cpu_ns"]

_ZERO = "0001-01-01T00:00:00Z"


def system_cpu_ns() -> int:
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def _now() -> str:
    ns = time.time_ns()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
        + f".{ns % 1_000_000_000:09d}Z"
    )


def sample(c: Any, cgroup: Any) -> dict[str, Any]:
    online = os.cpu_count() or 1
    if cgroup is None:
        stats = None
    else:
        try:
            stats = cgroup.stats()
        except OSError:
            stats = None
    usage = stats.cpu_usage_ns if stats else 0
    mem = stats.memory_usage if stats else 0
    limit = (stats.memory_limit if stats and stats.memory_limit else None) or os.sysconf(
        "SC_PAGE_SIZE"
    ) * os.sysconf("SC_PHYS_PAGES")
    blkio: list[Any] | None = [] if stats else None  # dockerd: null without a sample
    cpu = {
        "cpu_usage": {"total_usage": usage, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": system_cpu_ns() if stats else 0,
        "online_cpus": online if stats else 0,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    return {
        "read": _now() if stats else _ZERO,
        "preread": _ZERO,
        "pids_stats": {"current": stats.pids} if stats else {},
        "blkio_stats": {
            "io_service_bytes_recursive": blkio,
            "io_serviced_recursive": blkio,
            "io_queue_recursive": blkio,
            "io_service_time_recursive": blkio,
            "io_wait_time_recursive": blkio,
            "io_merged_recursive": blkio,
            "io_time_recursive": blkio,
            "sectors_recursive": blkio,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {"usage": mem, "stats": {}, "limit": limit} if stats else {},
        "name": c.name,
        "id": c.id,
        **({"networks": nets} if stats and (nets := networks(c)) else {}),
    }


def networks(c: Any) -> dict[str, dict[str, int]]:
    """Counters of the container's endpoint interfaces (``eth0``…), read from
    ``/proc/<pid>/net/dev``, which shows the process's network namespace.  moby leaves the
    key out when there are none (``--network none`` or ``host``)."""
    wanted = {ep.get("_ifname") for ep in ((c.net or {}).get("networks") or {}).values()}
    wanted.discard(None)
    pid = getattr(c.state, "Pid", 0)
    if not wanted or not pid:
        return {}
    try:
        with open(f"/proc/{pid}/net/dev", encoding="ascii") as f:
            lines = f.readlines()[2:]
    except OSError:  # the process is gone: no sample, as moby after an exit
        return {}
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name not in wanted:
            continue
        v = [int(x) for x in rest.split()]
        out[name] = {
            "rx_bytes": v[0],
            "rx_packets": v[1],
            "rx_errors": v[2],
            "rx_dropped": v[3],
            "tx_bytes": v[8],
            "tx_packets": v[9],
            "tx_errors": v[10],
            "tx_dropped": v[11],
        }
    return out
