"""A container's streams (asyncio world): attach to its stdio, resize its terminal, read its logs.

Attached clients share one ``Hub`` per running container (``attach.py``), fed by a stream
from the supervisor.  A client may attach before the start: its hub waits in ``_pending``
and the lifecycle hands it to the supervisor's ``start`` (``take_pending``/``adopt``); at
exit the lifecycle lets the hub drain (``drain``) before it records the exit, so attached
clients see all of the output.  Logs are read from the json-file the supervisor writes.
Owns no container state: records come from the core (``core.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from dockyard.background import spawn
from dockyard.containers.attach import Hub, Subscriber
from dockyard.containers.logs import Entry, LogReader
from dockyard.containers.record import Container
from dockyard.errors import Conflict

if TYPE_CHECKING:
    from dockyard.containers.core import ContainerCore

__all__ = ["Streams"]


class Streams:
    def __init__(self, core: ContainerCore) -> None:
        self.core = core
        self._hubs: dict[str, Hub] = {}
        self._pending: dict[str, Hub] = {}  # attached before start

    # ---- handed over by the lifecycle -----------------------------------------------------
    def take_pending(self, cid: str) -> Hub | None:
        """The hub of clients that attached before this start, if any (taken once)."""
        return self._pending.pop(cid, None)

    def adopt(
        self,
        cid: str,
        hub: Hub,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tty: bool,
    ) -> None:
        """Connect ``hub`` to the supervisor's stream of a container just started."""
        self._hubs[cid] = hub
        spawn(self._run_hub(cid, hub, reader, writer, tty))

    async def drain(self, cid: str, timeout: float = 5) -> None:
        """Wait (a bounded while) for attached clients to get the output of an exited one."""
        hub = self._hubs.get(cid)
        if hub is not None:
            try:
                await asyncio.wait_for(hub.done.wait(), timeout)
            except TimeoutError:
                pass

    async def _run_hub(
        self,
        cid: str,
        hub: Hub,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tty: bool,
    ) -> None:
        try:
            await hub.run(reader, writer, tty)
        finally:
            if self._hubs.get(cid) is hub:
                del self._hubs[cid]

    # ---- attach ----------------------------------------------------------------------------
    async def attach(
        self, name: str, stdout: bool, stderr: bool
    ) -> tuple[Container, Hub, Subscriber]:
        """Subscribe to a container's output (and its stdin), before its start if need be.

        Refused, with moby's words (409), while it is paused or restarting: output would not
        come and the caller could not tell why."""
        c = self.core.get(name)
        if c.state.Paused:
            raise Conflict(f"container {name} is paused, unpause the container before attach")
        if c.state.Restarting:
            raise Conflict(f"container {name} is restarting, wait until the container is running")
        hub = self._hubs.get(c.id)
        if hub is None and not c.state.Running:
            hub = self._pending.setdefault(c.id, Hub())
        elif hub is None:
            hub = Hub()
            reply, reader, writer = await self.core.shim.stream(
                "attach", id=c.id, stdin=bool(c.config.get("OpenStdin"))
            )
            self.adopt(c.id, hub, reader, writer, reply.get("tty", False))
        self.core._event(c, "attach")
        return c, hub, hub.subscribe(stdout, stderr)

    def detached(self, c: Container) -> None:
        """A client typed the detach keys: moby says so on the event stream."""
        self.core._event(c, "detach")

    async def resize(self, name: str, height: int | None, width: int | None) -> None:
        c = self.core.get(name)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if c.config.get("Tty") and height and width:
            await self.core.shim.call("resize", id=c.id, h=height, w=width)

    # ---- logs ------------------------------------------------------------------------------
    async def log_entries(self, cid: str, stdout: bool = True, stderr: bool = True) -> list[Entry]:
        c = self.core.get(cid)
        reader = LogReader(c.log_path)
        entries = await asyncio.to_thread(reader.read_all)
        reader.close()
        return [
            e for e in entries if (e[0] == "stdout" and stdout) or (e[0] == "stderr" and stderr)
        ]

    async def logs(
        self,
        cid: str,
        stdout: bool,
        stderr: bool,
        tail: str,
        since: float,
        until: float,
        follow: bool,
    ) -> AsyncIterator[Entry]:
        """Entries as the logs endpoint sends them; with ``follow``, until the container stops."""
        c = self.core.get(cid)
        reader = LogReader(c.log_path)
        entries = await asyncio.to_thread(reader.read_all)

        def wanted(e: Entry) -> bool:
            if not ((e[0] == "stdout" and stdout) or (e[0] == "stderr" and stderr)):
                return False
            if since or until:
                from dockyard.containers.listing import _since

                t = _since(e[1])
                if since and t < since:
                    return False
                if until and t > until:
                    return False
            return True

        try:
            entries = [e for e in entries if wanted(e)]
            if tail not in ("all", "") and int(tail) >= 0:
                entries = entries[len(entries) - int(tail) :] if int(tail) else []
            for e in entries:
                yield e
            if not follow or until:
                return
            while True:
                running = c.id in self.core._records and self.core._records[c.id].state.Running
                for e in await asyncio.to_thread(lambda: list(reader.read_new())):
                    if wanted(e):
                        yield e
                if not running:
                    return
                await asyncio.sleep(0.1)
        finally:
            reader.close()
