"""cgroup v1 driver (synchronous world): one directory per controller hierarchy.

Facts relied on (Documentation/admin-guide/cgroup-v1/): each controller is its own mount
(``/sys/fs/cgroup/memory``, or combined as ``cpu,cpuacct``); a new cpuset cgroup starts
with empty ``cpuset.cpus``/``cpuset.mems`` and refuses tasks until they are filled, so
``create`` copies them from the parent; writing ``0`` to ``cgroup.procs`` moves the writer;
``memory.memsw.limit_in_bytes`` must stay >= ``memory.limit_in_bytes`` at every step, so
the order of the two writes depends on whether the limit grows (runc ``fs/memory.go``).
"""

from __future__ import annotations

import errno
import os

from dockyard.runtime.cgroups._files import read, remove_dir, write
from dockyard.runtime.cgroups.base import Stats
from dockyard.runtime.spec import DeviceRule, Resources

__all__ = ["CONTROLLERS", "V1", "device_rule_line", "discover_mounts", "remember_mounts"]

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
_UNLIMITED = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX pages, about 2**63


_remembered: dict[str, str] | None = None


def remember_mounts() -> None:
    """Read the hierarchies once for this process and the children it forks (the runtime
    server's workers): each ``V1`` then skips reading /proc/self/mountinfo."""
    global _remembered
    _remembered = discover_mounts()


def discover_mounts(mountinfo: str = "/proc/self/mountinfo") -> dict[str, str]:
    """Controller name → mount point of its v1 hierarchy."""
    found: dict[str, str] = {}
    with open(mountinfo, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] != "cgroup":
                continue
            for option in fields[sep + 3].split(","):
                if option in CONTROLLERS:
                    found.setdefault(option, fields[4])
    return found


def device_rule_line(rule: DeviceRule) -> str:
    """``devices.allow``/``devices.deny`` syntax: ``c 1:3 rwm``, ``a *:* rwm``."""
    kind = rule.type or "a"
    major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
    minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
    return f"{kind} {major}:{minor} {rule.access or 'rwm'}"


class V1:
    """One cgroup across the v1 hierarchies in ``mounts`` (discovered when omitted)."""

    def __init__(self, path: str, mounts: dict[str, str] | None = None) -> None:
        self.path = "/" + path.strip("/")
        if mounts is None:
            mounts = discover_mounts() if _remembered is None else dict(_remembered)
        self.mounts = mounts

    def dir(self, controller: str) -> str | None:
        mount = self.mounts.get(controller)
        return None if mount is None else os.path.join(mount, self.path.lstrip("/"))

    def _dirs(self) -> list[str]:
        seen: list[str] = []
        for controller in self.mounts:
            d = self.dir(controller)
            if d is not None and d not in seen:
                seen.append(d)
        return seen

    def mount_sources(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for mount in dict.fromkeys(self.mounts.values()):
            out.append((os.path.basename(mount), os.path.join(mount, self.path.lstrip("/"))))
        return out

    def create(self) -> None:
        for d in self._dirs():
            os.makedirs(d, exist_ok=True)
        cpuset = self.dir("cpuset")
        if cpuset is not None:
            self._fill_cpuset(self.mounts["cpuset"], cpuset)

    @staticmethod
    def _fill_cpuset(mount: str, leaf: str) -> None:
        parts = os.path.relpath(leaf, mount).split(os.sep)
        parent = mount
        for part in parts:
            child = os.path.join(parent, part)
            for name in ("cpuset.cpus", "cpuset.mems"):
                target = os.path.join(child, name)
                if not os.path.exists(target) or not read(target):
                    write(target, read(os.path.join(parent, name)))
            parent = child

    def apply(self, pid: int) -> None:
        for d in self._dirs():
            write(os.path.join(d, "cgroup.procs"), pid)

    def set(self, resources: Resources) -> None:
        mem, cpu = resources.memory, resources.cpu
        if mem is not None:
            self._set_memory(mem.limit, mem.swap)
            if mem.reservation is not None:
                self._write("memory", "memory.soft_limit_in_bytes", mem.reservation)
        if cpu is not None:
            if cpu.shares is not None:
                self._write("cpu", "cpu.shares", cpu.shares)
            if cpu.period is not None:
                self._write("cpu", "cpu.cfs_period_us", cpu.period)
            if cpu.quota is not None:
                self._write("cpu", "cpu.cfs_quota_us", cpu.quota)
            if cpu.cpus:
                self._write("cpuset", "cpuset.cpus", cpu.cpus)
            if cpu.mems:
                self._write("cpuset", "cpuset.mems", cpu.mems)
        if resources.pids is not None:
            limit = resources.pids.limit
            self._write("pids", "pids.max", "max" if limit <= 0 else limit)
        if resources.block_io is not None and resources.block_io.weight is not None:
            d = self.dir("blkio")
            if d is not None:
                name = "blkio.weight"
                if not os.path.exists(os.path.join(d, name)):
                    name = "blkio.bfq.weight"  # blk-mq kernels: only BFQ has weights
                self._write("blkio", name, resources.block_io.weight)
        if resources.devices:
            for rule in resources.devices:
                name = "devices.allow" if rule.allow else "devices.deny"
                self._write("devices", name, device_rule_line(rule))

    def _set_memory(self, limit: int | None, swap: int | None) -> None:
        if limit is None and swap is None:
            return
        d = self.dir("memory")
        if d is None:
            raise OSError(errno.ENOENT, "the memory cgroup controller is not mounted")
        memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
        if swap is not None and not os.path.exists(memsw):
            raise OSError(
                errno.ENOENT,
                "swap limits need swap accounting (boot with swapaccount=1)",
                memsw,
            )
        writes: list[tuple[str, int]] = []
        if limit is not None:
            writes.append(("memory.limit_in_bytes", limit))
        if swap is not None:
            writes.append(("memory.memsw.limit_in_bytes", swap))
        try:
            for name, value in writes:
                write(os.path.join(d, name), value)
        except OSError as exc:
            if exc.errno != errno.EINVAL or len(writes) < 2:
                raise
            for name, value in reversed(writes):  # growing: memsw must go first
                write(os.path.join(d, name), value)

    def _write(self, controller: str, name: str, value: str | int) -> None:
        d = self.dir(controller)
        if d is None:
            raise OSError(errno.ENOENT, f"the {controller} cgroup controller is not mounted")
        write(os.path.join(d, name), value)

    def _freezer(self, state: str) -> None:
        d = self.dir("freezer")
        if d is None:
            raise OSError(errno.ENOENT, "the freezer cgroup controller is not mounted")
        path = os.path.join(d, "freezer.state")
        # FREEZING is transient; v1 has no event for the end of it, so write until it sticks.
        for _ in range(1000):
            write(path, state)
            if read(path) == state:
                return
            os.sched_yield()
        raise OSError(errno.EBUSY, f"cgroup did not reach {state}", path)

    def freeze(self) -> None:
        self._freezer("FROZEN")

    def thaw(self) -> None:
        self._freezer("THAWED")

    def stats(self) -> Stats:
        mem, cpuacct = self.dir("memory"), self.dir("cpuacct")
        usage = int(read(os.path.join(mem, "memory.usage_in_bytes"))) if mem else 0
        limit: int | None = None
        if mem:
            limit = int(read(os.path.join(mem, "memory.limit_in_bytes")))
            limit = None if limit >= _UNLIMITED else limit
        cpu = int(read(os.path.join(cpuacct, "cpuacct.usage"))) if cpuacct else 0
        return Stats(usage, limit, cpu, len(self.pids()))

    def pids(self) -> list[int]:
        for controller in ("pids", "freezer", "memory", "cpu"):
            d = self.dir(controller)
            if d is not None:
                text = read(os.path.join(d, "cgroup.procs"))
                return [int(x) for x in text.split()]
        return []

    def destroy(self) -> None:
        for d in self._dirs():
            remove_dir(d)
