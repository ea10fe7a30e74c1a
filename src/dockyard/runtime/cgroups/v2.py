"""cgroup v2 driver (synchronous world): one directory in the unified hierarchy.

Facts relied on (Documentation/admin-guide/cgroup-v2.rst): a controller is usable in a
cgroup only when every ancestor lists it in ``cgroup.subtree_control``; ``memory.swap.max``
is swap alone, so the spec's memory+swap figure is converted as runc does
(``swap - limit``); ``cpu.weight`` (1..10000) and ``io.weight`` (1..10000) replace v1's
shares (2..262144) and blkio weight (10..1000) with runc's linear conversions; freezing is
``cgroup.freeze`` and completes when ``cgroup.events`` says ``frozen 1``.  Device rules
need an eBPF program in v2 and are not applied yet.
"""

from __future__ import annotations

import errno
import os

from dockyard.runtime.cgroups._files import read, remove_dir, write
from dockyard.runtime.cgroups.base import Stats
from dockyard.runtime.spec import Resources

__all__ = ["V2", "blkio_to_io_weight", "shares_to_weight", "swap_max"]

_WANTED = ("cpuset", "cpu", "io", "memory", "pids")


def shares_to_weight(shares: int) -> int:
    """runc ``cgroups.ConvertCPUSharesToCgroupV2Value``."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """runc ``cgroups.ConvertBlkIOToIOWeightValue``."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_max(limit: int | None, swap: int) -> str:
    """``memory.swap.max`` for the spec's memory+swap ``swap`` (runc ``ConvertMemorySwap…``)."""
    if swap == -1:
        return "max"
    if limit is None or limit == -1:
        raise ValueError("a memory+swap limit needs a memory limit")
    if swap < limit:
        raise ValueError("memory+swap limit must be at least the memory limit")
    return str(swap - limit)


class V2:
    def __init__(self, path: str, root: str = "/sys/fs/cgroup") -> None:
        self.path = "/" + path.strip("/")
        self.root = root
        self.dir = os.path.join(root, self.path.lstrip("/"))

    def mount_sources(self) -> list[tuple[str, str]]:
        return [("", self.dir)]

    def _file(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def create(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        available = read(os.path.join(self.root, "cgroup.controllers")).split()
        enable = " ".join("+" + c for c in _WANTED if c in available)
        if not enable:
            return
        parent = self.root
        for part in self.path.strip("/").split("/")[:-1] or []:
            write(os.path.join(parent, "cgroup.subtree_control"), enable)
            parent = os.path.join(parent, part)
        write(os.path.join(parent, "cgroup.subtree_control"), enable)

    def apply(self, pid: int) -> None:
        write(self._file("cgroup.procs"), pid)

    def set(self, resources: Resources) -> None:
        mem, cpu = resources.memory, resources.cpu
        if mem is not None:
            if mem.limit is not None:
                write(self._file("memory.max"), "max" if mem.limit == -1 else mem.limit)
            if mem.swap is not None:
                write(self._file("memory.swap.max"), swap_max(mem.limit, mem.swap))
            if mem.reservation is not None:
                write(self._file("memory.low"), mem.reservation)
        if cpu is not None:
            if cpu.shares:
                write(self._file("cpu.weight"), shares_to_weight(cpu.shares))
            if cpu.quota is not None or cpu.period is not None:
                quota = "max" if cpu.quota is None or cpu.quota <= 0 else str(cpu.quota)
                write(self._file("cpu.max"), f"{quota} {cpu.period or 100000}")
            if cpu.cpus:
                write(self._file("cpuset.cpus"), cpu.cpus)
            if cpu.mems:
                write(self._file("cpuset.mems"), cpu.mems)
        if resources.pids is not None:
            limit = resources.pids.limit
            write(self._file("pids.max"), "max" if limit <= 0 else limit)
        if resources.block_io is not None and resources.block_io.weight:
            name = "io.weight" if os.path.exists(self._file("io.weight")) else "io.bfq.weight"
            write(self._file(name), blkio_to_io_weight(resources.block_io.weight))

    def _freeze(self, value: int) -> None:
        write(self._file("cgroup.freeze"), value)
        events = self._file("cgroup.events")
        for _ in range(1000):
            for line in read(events).splitlines():
                if line == f"frozen {value}":
                    return
            os.sched_yield()
        raise OSError(errno.EBUSY, "cgroup did not reach the requested freezer state", events)

    def freeze(self) -> None:
        self._freeze(1)

    def thaw(self) -> None:
        self._freeze(0)

    def stats(self) -> Stats:
        usage = int(read(self._file("memory.current")))
        raw_limit = read(self._file("memory.max"))
        limit = None if raw_limit == "max" else int(raw_limit)
        cpu = 0
        for line in read(self._file("cpu.stat")).splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                cpu = int(value) * 1000
        return Stats(usage, limit, cpu, int(read(self._file("pids.current"))))

    def pids(self) -> list[int]:
        return [int(x) for x in read(self._file("cgroup.procs")).split()]

    def destroy(self) -> None:
        remove_dir(self.dir)
