"""A running container's resources (asyncio world): ``update`` (live, through its cgroup,
and the restart policy), ``stats`` samples and ``top``.

Reads and writes the container's cgroup (``runtime/cgroups``, opened by the service) and
never changes its run state: pause and unpause are transitions, in ``lifecycle.py``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from dockyard.containers import createconfig, hostconfig
from dockyard.errors import Conflict, InvalidParameter

if TYPE_CHECKING:
    from dockyard.containers.core import ContainerCore

__all__ = ["Resources"]

_UPDATABLE = (
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuQuota",
    "CpuPeriod",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "BlkioWeight",
    "RestartPolicy",
)


class Resources:
    def __init__(self, core: ContainerCore) -> None:
        self.core = core

    async def update(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change resources (live, through the cgroup) and the restart policy."""
        c = self.core.get(name)
        changes = {k: v for k, v in body.items() if k in _UPDATABLE and v not in (None, "")}
        merged = {**c.host_config, **changes}
        if changes.get("NanoCpus"):
            merged.pop("CpuQuota", None), merged.pop("CpuPeriod", None)
        createconfig.check_limits(merged)
        hostconfig.validate(merged)
        if merged.get("AutoRemove") and (merged.get("RestartPolicy") or {}).get("Name") not in (
            None,
            "",
            "no",
        ):
            raise Conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        if c.state.Running:
            try:
                await self.core.cgroup_op(c, "set", hostconfig.resources(merged))
            except Conflict:
                pass  # it exited meanwhile: the next start applies the new limits
        c.host_config = merged
        self.core._save(c)
        self.core._event(c, "update")
        return {"Warnings": None}

    def stats_sample(self, name: str) -> dict[str, Any]:
        """One Docker-shaped stats sample read from the container's cgroup (blocking)."""
        from dockyard.containers.stats import sample

        c = self.core.get(name)
        return sample(c, self.core._cgroup(c) if c.state.Running else None)

    async def top(self, name: str, ps_args: str) -> dict[str, Any]:
        c = self.core.get(name)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        pids = set(await self.core.cgroup_op(c, "pids"))
        args = ps_args.split() if ps_args else ["-ef"]
        proc = await asyncio.create_subprocess_exec(
            "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise InvalidParameter(f"ps: {err.decode().strip()}")
        lines = out.decode().splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidParameter("Couldn't find PID field in ps output")
        at = titles.index("PID")
        procs = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > at and fields[at].isdigit() and int(fields[at]) in pids:
                procs.append(fields)
        return {"Titles": titles, "Processes": procs}
