"""The container service (asyncio world): the one object the container endpoints call.

It is ``core.ContainerCore`` -- what every part shares: the records (SQLite through
``Store``, cached in ``_records``), lookup by id or name, the per-container lock, saving and
events -- plus the parts, and hands each call to the part that does it:

- ``lifecycle.py``: create, start, stop, kill, restart, pause, remove, wait, the exit path,
  restart policies and ``restore`` (the state machine, listed there);
- ``housekeeping.py``: rename, link removal, prune;
- ``streams.py``: attach, resize, logs;
- ``filesystem.py``: archive (docker cp), changes, export, commit;
- ``resources.py``: update, stats, top;
- ``execs.py``: exec instances (``service.execs``).

Inspect and list views are built here from ``inspection.py`` and ``listing.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from dockyard import errors
from dockyard.containers import inspection, links
from dockyard.containers.attach import Hub, Subscriber
from dockyard.containers.core import ContainerCore, NoSuchContainer
from dockyard.containers.execs import Execs
from dockyard.containers.filesystem import Filesystem
from dockyard.containers.housekeeping import Housekeeping
from dockyard.containers.lifecycle import Lifecycle, now_rfc3339, parse_signal
from dockyard.containers.logs import Entry
from dockyard.containers.record import Container
from dockyard.containers.resources import Resources
from dockyard.containers.streams import Streams

__all__ = ["LIST_FILTERS", "ContainerService", "NoSuchContainer", "now_rfc3339", "parse_signal"]

LIST_FILTERS = (
    "id",
    "name",
    "label",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "health",
    "volume",
    "network",
    "isolation",
    "is-task",
    "publish",
    "expose",
)


class ContainerService(ContainerCore):
    """The container endpoints' one entry point: the shared core plus its parts, each route
    calling one method here that hands the call to the part that does it."""

    def _add_parts(self) -> None:
        """The parts, made once the core's shared state exists (``ContainerCore.__init__``
        calls this last, so the constructor's signature lives in one place)."""
        self.streams = Streams(self)
        self.lifecycle = Lifecycle(self, self.streams)
        self.fs = Filesystem(self, self.lifecycle)
        self.housekeeping = Housekeeping(self, self.lifecycle)
        self.resources = Resources(self)
        self.execs = Execs(self)

    # ---- lifecycle (lifecycle.py) ----------------------------------------------------------
    async def create(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return await self.lifecycle.create(name, body)

    async def start(self, name: str) -> None:
        await self.lifecycle.start(name)

    def wait_future(self, name: str, condition: str) -> asyncio.Future[int]:
        return self.lifecycle.wait_future(name, condition)

    async def kill(self, name: str, signal: str | int | None) -> None:
        await self.lifecycle.kill(name, signal)

    async def stop(self, name: str, timeout: int | None, signal: str | None = None) -> None:
        await self.lifecycle.stop(name, timeout, signal)

    async def restart(self, name: str, timeout: int | None) -> None:
        await self.lifecycle.restart(name, timeout)

    async def pause(self, name: str, pause: bool) -> None:
        await self.lifecycle.pause(name, pause)

    async def remove(self, name: str, force: bool, volumes: bool, link: bool = False) -> None:
        if link:
            await self.housekeeping.remove_link(name)
        else:
            await self.lifecycle.remove(name, force, volumes)

    async def rename(self, name: str, new: str) -> None:
        await self.housekeeping.rename(name, new)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        return await self.housekeeping.prune(filters)

    async def restore(self) -> None:
        await self.lifecycle.restore()

    # ---- streams (streams.py) --------------------------------------------------------------
    async def attach(
        self, name: str, stdout: bool, stderr: bool
    ) -> tuple[Container, Hub, Subscriber]:
        return await self.streams.attach(name, stdout, stderr)

    def detached(self, c: Container) -> None:
        self.streams.detached(c)

    async def resize(self, name: str, height: int | None, width: int | None) -> None:
        await self.streams.resize(name, height, width)

    async def log_entries(self, cid: str, stdout: bool = True, stderr: bool = True) -> list[Entry]:
        return await self.streams.log_entries(cid, stdout, stderr)

    def logs(
        self,
        cid: str,
        stdout: bool,
        stderr: bool,
        tail: str,
        since: float,
        until: float,
        follow: bool,
    ) -> AsyncIterator[Entry]:
        return self.streams.logs(cid, stdout, stderr, tail, since, until, follow)

    # ---- filesystem (filesystem.py) --------------------------------------------------------
    async def archive_stat(self, name: str, path: str) -> tuple[Container, str, str]:
        """The path's stat header; the root stays mounted until ``_release(c)``."""
        return await self.fs.archive_stat(name, path)

    async def _release(self, c: Container) -> None:
        await self.fs.release(c)

    async def archive_get(self, name: str, path: str) -> tuple[str, AsyncIterator[bytes]]:
        return await self.fs.archive_get(name, path)

    async def archive_put(
        self, name: str, path: str, body: Any, no_overwrite: bool, copy_uid_gid: bool = False
    ) -> None:
        await self.fs.archive_put(name, path, body, no_overwrite, copy_uid_gid)

    async def changes(self, name: str) -> list[dict[str, Any]]:
        return await self.fs.changes(name)

    async def export(self, name: str) -> AsyncIterator[bytes]:
        return await self.fs.export(name)

    async def commit(
        self,
        name: str,
        repo: str,
        tag: str,
        comment: str,
        author: str,
        changes: list[str],
        pause: bool,
        overrides: dict[str, Any] | None,
    ) -> str:
        return await self.fs.commit(name, repo, tag, comment, author, changes, pause, overrides)

    # ---- resources (resources.py) ----------------------------------------------------------
    async def update(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.resources.update(name, body)

    def stats_sample(self, name: str) -> dict[str, Any]:
        return self.resources.stats_sample(name)

    async def top(self, name: str, ps_args: str) -> dict[str, Any]:
        return await self.resources.top(name, ps_args)

    # ---- networks --------------------------------------------------------------------------
    async def connect(self, name: str, network: str, endpoint: Any) -> None:
        c = self.get(name)
        if self.net is None:
            raise errors.NotImplemented("this daemon has no network service")
        async with self._lock(c.id):
            await self.net.connect(c, network, endpoint)
            self._save(c)

    async def disconnect(self, name: str, network: str, force: bool) -> None:
        c = self.get(name)
        if self.net is None:
            raise errors.NotImplemented("this daemon has no network service")
        async with self._lock(c.id):
            await self.net.disconnect(c, network, force)
            self._save(c)

    # ---- list / inspect --------------------------------------------------------------------
    def inspect(self, name: str) -> dict[str, Any]:
        c = self.get(name)
        from dockyard.containers.mounts import inspect_view

        view = inspection.view(c, self.driver.name, self.driver.metadata(c.rw_layer))
        # moby shows the live links, "/target:/me/alias", not the request's spelling
        view["HostConfig"]["Links"] = [
            links.spec(n, child.name) for n, child in self.children(c)
        ] or None
        view["Mounts"] = inspect_view(c, self.volumes)
        if self.net is not None:
            view["NetworkSettings"] = self.net.view(c)
            files = os.path.dirname(c.log_path)
            if c.has_been_started and not (c.host_config.get("NetworkMode") or "").startswith(
                "container:"
            ):
                view["ResolvConfPath"] = os.path.join(files, "resolv.conf")
                view["HostnamePath"] = os.path.join(files, "hostname")
                view["HostsPath"] = os.path.join(files, "hosts")
        return view

    def list(
        self, all_: bool, limit: int | None, filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        from dockyard.containers.listing import matches, summary

        records = sorted(self._records.values(), key=lambda c: c.created_ns, reverse=True)
        link_names: dict[str, list[str]] = {}  # target id -> "/parent/alias" names
        for parent in records:
            for link_name, target in parent.links.items():
                link_names.setdefault(target, []).append(link_name)
        out = []
        for c in records:
            if not all_ and not c.state.Running and not filters and limit in (None, -1, 0):
                continue
            if not matches(c, filters, self, all_ or bool(filters) or (limit not in (None, -1, 0))):
                continue
            out.append(summary(c, self.volumes, self.net, link_names.get(c.id)))
            if limit and limit > 0 and len(out) >= limit:
                break
        return out

    def running_count(self) -> tuple[int, int, int, int]:
        records = list(self._records.values())
        running = sum(1 for c in records if c.state.Running and not c.state.Paused)
        paused = sum(1 for c in records if c.state.Paused)
        return len(records), running, paused, len(records) - running - paused
