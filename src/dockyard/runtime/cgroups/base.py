"""The cgroup driver contract (synchronous world: file writes under /sys/fs/cgroup).

Vocabulary: a *path* is the cgroup's name relative to the hierarchy root, as in the
spec's ``linux.cgroupsPath`` (``/dockyard/<id>``); a driver turns it into one directory
(v2, unified) or one per controller (v1).

Lifecycle: ``create`` (idempotent: existing directories are reused) → ``set`` the spec's
resources → ``apply`` the container's init (pid 0 means the caller, which is how the
container child joins itself before it unshares) → ``freeze``/``thaw``/``stats``/``pids``
while it runs → ``destroy`` once every process has exited (idempotent; leaves parents).
Errors are ``OSError`` naming the file that refused the write.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from dockyard.runtime.spec import Resources

__all__ = ["Cgroup", "Stats"]


class Stats(msgspec.Struct, frozen=True):
    memory_usage: int
    memory_limit: int | None  # None = unlimited
    cpu_usage_ns: int
    pids: int


class Cgroup(Protocol):
    path: str

    def create(self) -> None: ...

    def mount_sources(self) -> list[tuple[str, str]]:
        """(name under /sys/fs/cgroup, host directory) of this cgroup, for the container's
        view of it; v2 answers one entry named ""."""
        ...

    def apply(self, pid: int) -> None: ...

    def set(self, resources: Resources) -> None: ...

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    def stats(self) -> Stats: ...

    def pids(self) -> list[int]: ...

    def destroy(self) -> None: ...
