"""``GET /containers/{id}/stats`` samples, shaped as moby's types.StatsJSON (blocking world).

CPU figures are nanoseconds: the container's cgroup usage and the host's total from
/proc/stat (moby's getSystemCPUUsage: jiffies × 1e9 / USER_HZ), so the CLI's CPU % maths
(delta container / delta system × online CPUs) works unchanged.

The details (``memory_stats.stats``, per-CPU and kernel/user CPU time, throttling, block
I/O, the pids limit) are read from the cgroup's own files, one reader per cgroup version,
with the keys moby's ``statsV1``/``statsV2`` (daemon/daemon_unix.go) fill from containerd's
cgroups metrics: a fixed set, present with 0 when the kernel has no such counter.
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["detail_v1", "detail_v2", "networks", "sample", "system_cpu_ns"]

_ZERO = "0001-01-01T00:00:00Z"

# moby statsV1: memory.stat keys it copies (containerd's cgroups v1 MemoryStat fields)
_V1_MEMORY_KEYS = (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout",
    "pgfault", "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file",
    "unevictable", "hierarchical_memory_limit", "hierarchical_memsw_limit",
)  # fmt: skip
_V1_MEMORY = (*_V1_MEMORY_KEYS, *(f"total_{k}" for k in _V1_MEMORY_KEYS[:15]))
# moby statsV2: memory.stat keys it copies (containerd's cgroups v2 MemoryStat fields)
_V2_MEMORY = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty",
    "file_writeback", "anon_thp", "inactive_anon", "active_anon", "inactive_file",
    "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable", "pgfault",
    "pgmajfault", "workingset_refault", "workingset_activate", "workingset_nodereclaim",
    "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
)  # fmt: skip
_BLKIO_KEYS = (
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "io_queue_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "io_time_recursive",
    "sectors_recursive",
)


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


def _read(d: str | None, name: str) -> str:
    """A cgroup file's text, "" when the controller or the file is not there."""
    if d is None:
        return ""
    try:
        with open(os.path.join(d, name), encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0  # "max", or nothing


def _keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, cpuacct.stat)."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        out[key] = _int(value.strip())
    return out


def _v1_blkio(text: str) -> list[dict[str, Any]]:
    """blkio.throttle.* lines ``8:0 Read 4096``; the ``Total`` line is skipped, as
    containerd does."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        out.append(
            {"major": int(major), "minor": int(minor), "op": fields[1], "value": int(fields[2])}
        )
    return out


def detail_v1(dirs: dict[str, str]) -> dict[str, Any]:
    """Details of a cgroup v1 container; ``dirs`` maps a controller name to its directory."""
    mem, cpuacct, cpu = dirs.get("memory"), dirs.get("cpuacct"), dirs.get("cpu")
    blkio, pids = dirs.get("blkio"), dirs.get("pids")
    raw = _keyed(_read(mem, "memory.stat"))
    memory: dict[str, Any] = {"stats": {k: raw.get(k, 0) for k in _V1_MEMORY}}
    if (max_usage := _int(_read(mem, "memory.max_usage_in_bytes"))) > 0:
        memory["max_usage"] = max_usage
    if (failcnt := _int(_read(mem, "memory.failcnt"))) > 0:
        memory["failcnt"] = failcnt
    ticks = _keyed(_read(cpuacct, "cpuacct.stat"))
    per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    throttling = _keyed(_read(cpu, "cpu.stat"))
    blk: dict[str, Any] = {key: [] for key in _BLKIO_KEYS}  # CFQ-only lists stay empty
    for key in ("io_service_bytes_recursive", "io_serviced_recursive"):
        blk[key] = _v1_blkio(_read(blkio, f"blkio.throttle.{key}"))
    return {
        "memory": memory,
        "cpu_usage": {
            "percpu_usage": [int(x) for x in _read(cpuacct, "cpuacct.usage_percpu").split()],
            "usage_in_kernelmode": ticks.get("system", 0) * per_tick,
            "usage_in_usermode": ticks.get("user", 0) * per_tick,
        },
        "throttling_data": {
            "periods": throttling.get("nr_periods", 0),
            "throttled_periods": throttling.get("nr_throttled", 0),
            "throttled_time": throttling.get("throttled_time", 0),
        },
        "blkio": blk,
        "pids_limit": _int(_read(pids, "pids.max")),
    }


def detail_v2(d: str) -> dict[str, Any]:
    """Details of a cgroup v2 container (one directory)."""
    raw = _keyed(_read(d, "memory.stat"))
    cpu = _keyed(_read(d, "cpu.stat"))
    service_bytes: list[dict[str, Any]] | None = None
    for line in _read(d, "io.stat").splitlines():
        dev, *pairs = line.split()
        major, _, minor = dev.partition(":")
        counters = dict(p.split("=", 1) for p in pairs if "=" in p)
        service_bytes = service_bytes or []
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            entry = {"major": int(major), "minor": int(minor), "op": op}
            service_bytes.append({**entry, "value": _int(counters.get(key, ""))})
    blk: dict[str, Any] = dict.fromkeys(_BLKIO_KEYS)
    blk["io_service_bytes_recursive"] = service_bytes
    return {
        "memory": {"stats": {k: raw.get(k, 0) for k in _V2_MEMORY}},
        "cpu_usage": {
            "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
            "usage_in_usermode": cpu.get("user_usec", 0) * 1000,
        },
        "throttling_data": {
            "periods": cpu.get("nr_periods", 0),
            "throttled_periods": cpu.get("nr_throttled", 0),
            "throttled_time": cpu.get("throttled_usec", 0) * 1000,
        },
        "blkio": blk,
        "pids_limit": _int(_read(d, "pids.max")),
    }


def _detail(cgroup: Any) -> dict[str, Any] | None:
    try:
        sources = cgroup.mount_sources()
    except (AttributeError, OSError):
        return None
    if len(sources) == 1 and sources[0][0] == "":
        return detail_v2(sources[0][1])
    dirs: dict[str, str] = {}
    for name, path in sources:
        for controller in name.split(","):  # "cpu,cpuacct" where they share a mount
            dirs.setdefault(controller, path)
    return detail_v1(dirs)


def sample(c: Any, cgroup: Any) -> dict[str, Any]:
    online = os.cpu_count() or 1
    if cgroup is None:
        stats = None
    else:
        try:
            stats = cgroup.stats()
        except OSError:
            stats = None
    detail = _detail(cgroup) if stats else None
    usage = stats.cpu_usage_ns if stats else 0
    mem = stats.memory_usage if stats else 0
    limit = (stats.memory_limit if stats and stats.memory_limit else None) or os.sysconf(
        "SC_PAGE_SIZE"
    ) * os.sysconf("SC_PHYS_PAGES")
    cpu_usage: dict[str, Any] = {"total_usage": usage}
    cpu_usage.update({"usage_in_kernelmode": 0, "usage_in_usermode": 0})
    throttling = {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    # dockerd: every list null without a sample
    blkio: dict[str, Any] = dict.fromkeys(_BLKIO_KEYS)
    memory: dict[str, Any] = {}
    pids: dict[str, int] = {}
    if stats:
        pids = {"current": stats.pids}
        memory = {"usage": mem, "stats": {}, "limit": limit}
        blkio = {k: [] for k in _BLKIO_KEYS}
    if detail:
        cpu_usage.update(detail["cpu_usage"])
        order = ("total_usage", "percpu_usage", "usage_in_kernelmode", "usage_in_usermode")
        # moby's field order; percpu_usage is omitempty (cgroup v2 has none)
        cpu_usage = {k: cpu_usage[k] for k in order if cpu_usage.get(k) != [] and k in cpu_usage}
        throttling = detail["throttling_data"]
        blkio = detail["blkio"]
        memory.update(detail["memory"])
        if detail["pids_limit"] > 0:
            pids["limit"] = detail["pids_limit"]
    cpu = {
        "cpu_usage": cpu_usage,
        "system_cpu_usage": system_cpu_ns() if stats else 0,
        "online_cpus": online if stats else 0,
        "throttling_data": throttling,
    }
    return {
        "read": _now() if stats else _ZERO,
        "preread": _ZERO,
        "pids_stats": pids,
        "blkio_stats": blkio,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": _ordered_memory(memory),
        "name": c.name,
        "id": c.id,
        **({"networks": nets} if stats and (nets := networks(c)) else {}),
    }


def _ordered_memory(memory: dict[str, Any]) -> dict[str, Any]:
    """moby's MemoryStats field order: usage, max_usage, stats, failcnt, limit."""
    order = ("usage", "max_usage", "stats", "failcnt", "limit")
    return {k: memory[k] for k in order if k in memory}


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
