"""The shared core of the container service (asyncio world): records, lookups, the
per-container lock, saving and events.

Every part (``lifecycle``, ``streams``, ``filesystem``, ``resources``, ``execs``, ``health``,
``networking``) works on containers through this; ``service.ContainerService`` is this core
plus the parts, and the object the routes call.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import TYPE_CHECKING, Any

from dockyard import errors
from dockyard.containers.record import Container
from dockyard.containers.runtimes import Runtime, Runtimes
from dockyard.containers.shim import Shim
from dockyard.containers.store import Store
from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.events import EventBus

if TYPE_CHECKING:
    from dockyard.containers.execs import Execs
    from dockyard.containers.filesystem import Filesystem

__all__ = ["ContainerCore", "NoSuchContainer"]


class NoSuchContainer(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such container: {name}")


class ContainerCore:
    """What the parts of the container service share: the records (cached from the SQLite
    ``Store``), lookup by id, prefix or name, the per-container lock, saving, events, the
    container's cgroup and what the supervisor needs to run it."""

    execs: Execs  # set by ContainerService: health checks run their probes as execs
    fs: Filesystem  # set by ContainerService: an exit unmounts the root through it

    def __init__(
        self,
        store: Store,
        images: Any,
        driver: Any,
        shim: Shim,
        events: EventBus,
        data_root: str,
        exec_root: str,
        cgroup_parent: str = "/dockyard",
        volumes: Any = None,
        runtimes: Runtimes | None = None,
    ) -> None:
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self.runtimes = runtimes or Runtimes.from_config({})
        self.store = store
        self.images = images
        self.driver = driver
        self.shim = shim
        self.events = events
        self.volumes = volumes
        self.net: Any = None  # containers.networking.Networking, set by the daemon
        if volumes is not None:
            volumes.users = self.volume_users
        self.data_root = data_root
        self.exec_root = exec_root
        self._records: dict[str, Container] = {c.id: c for c in store.all()}
        self._locks: dict[str, asyncio.Lock] = {}
        images.users = self.image_users
        images.held_layers = self.held_layers
        self._add_parts()

    def _add_parts(self) -> None:
        """Where ``ContainerService`` attaches its parts (streams, lifecycle, filesystem,
        resources, execs); the core alone has none."""

    # ---- lookups ---------------------------------------------------------------------------
    def get(self, name: str) -> Container:
        if name in self._records:
            return self._records[name]
        by_name = "/" + name.lstrip("/")
        for c in self._records.values():
            if c.name == by_name:
                return c
        for c in self._records.values():  # a legacy link's name, "/parent/alias"
            target = c.links.get(by_name)
            if target is not None and target in self._records:
                return self._records[target]
        matches = [c for c in self._records.values() if c.id.startswith(name)] if name else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {name}")
        raise NoSuchContainer(name)

    def children(self, c: Container) -> list[tuple[str, Container]]:
        """``c``'s legacy links: (full link name, target), in the order they were made."""
        return [(n, self._records[t]) for n, t in c.links.items() if t in self._records]

    def parents(self, c: Container) -> list[tuple[str, Container]]:
        """The containers linking to ``c``: (full link name, parent)."""
        return [(n, p) for p in self._records.values() for n, t in p.links.items() if t == c.id]

    def image_users(self, image_id: str) -> list[str]:
        return [c.id[:12] for c in self._records.values() if c.image_id == image_id]

    def held_layers(self) -> set[str]:
        """Chain ids the containers' rw layers stand on: image GC must keep them."""
        return {"sha256:" + c.top_layer for c in self._records.values() if c.top_layer}

    def volume_users(self, name: str) -> list[str]:
        from dockyard.containers.mounts import uses_volume

        return [c.id for c in self._records.values() if uses_volume(c, name)]

    def sizes(self, name: str) -> tuple[int, int]:
        """(SizeRw, SizeRootFs) as ``ps -s`` and ``inspect -s`` show them (blocking: walks
        the container's layer).  On vfs the layer is a full copy, so its own bytes are
        estimated as the copy's size less the image's."""
        c = self.get(name)
        row = self.images.store.image(c.image_id)
        image_size = row.size if row is not None else 0
        try:
            if hasattr(self.driver, "diff_dir"):
                from dockyard.storage._usage import disk_usage

                rw = disk_usage(self.driver.diff_dir(c.rw_layer))
            else:
                rw = max(0, self.driver.size(c.rw_layer) - image_size)
        except (OSError, errors.NotFound):
            rw = 0  # the layer is being removed
        return rw, rw + image_size

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    def _save(self, c: Container) -> None:
        self._records[c.id] = c
        self.store.save(c)

    def _event(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"image": c.image_name, "name": c.name.lstrip("/")}
        attrs.update(c.config.get("Labels") or {})
        attrs.update(extra)
        self.events.publish("container", action, c.id, attrs, from_=c.image_name)

    def _cgroup(self, c: Container):  # type: ignore[no-untyped-def]
        from dockyard.runtime.cgroups import open_manager

        parent = c.host_config.get("CgroupParent")
        path = ("/" + parent.strip("/") if parent else self.cgroup_parent) + "/" + c.id
        return open_manager(path)

    async def cgroup_op(self, c: Container, op: str, *args: Any) -> Any:
        """One operation on the container's cgroup, in a thread.  The cgroup goes with the
        last process, before the monitor records the exit: a file missing then means the
        container is not running (409, as dockerd says), never a 500."""
        try:
            return await asyncio.to_thread(getattr(self._cgroup(c), op), *args)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENODEV) and (
                not c.state.Running or not os.path.exists(f"/proc/{c.state.Pid}")
            ):
                raise Conflict(f"Container {c.id} is not running") from exc
            raise

    def _runtime(self, host_config: dict[str, Any]) -> Runtime:
        try:
            return self.runtimes.resolve(host_config.get("Runtime"))
        except KeyError:
            raise InvalidParameter(
                f"unknown or invalid runtime name: {host_config.get('Runtime')}"
            ) from None

    def runtime_request(self, c: Container) -> dict[str, Any]:
        """What the supervisor needs to run (or exec into) ``c`` with its runtime."""
        rt = self._runtime(c.host_config)
        request = {"runtime": rt.name, "runtime_root": os.path.join(self.exec_root, rt.state_dir)}
        if not rt.native:
            request.update(runtime_path=rt.path, runtime_args=list(rt.args))
        return request
