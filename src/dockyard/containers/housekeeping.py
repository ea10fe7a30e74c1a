"""Renames, link removal and prune: calls that change a container's names or the set of
containers, but move no container between states (those are ``lifecycle.py``'s, and prune
hands each removal to it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from dockyard.containers import names
from dockyard.errors import Conflict, Internal, InvalidParameter, NotFound

if TYPE_CHECKING:
    from dockyard.containers.core import ContainerCore
    from dockyard.containers.lifecycle import Lifecycle

__all__ = ["Housekeeping"]


class Housekeeping:
    def __init__(self, core: ContainerCore, lifecycle: Lifecycle) -> None:
        self.core = core
        self.lifecycle = lifecycle

    async def remove_link(self, name: str) -> None:
        """``DELETE /containers/{parent/alias}?link=1``: forget the link, keep both
        containers; a running parent's /etc/hosts loses the target's line (moby's rmLink)."""
        self.core.get(name)  # 404 for an unknown name, as moby answers first
        full = name if name.startswith("/") else "/" + name
        parent_name, _, _ = full.rpartition("/")
        if not parent_name:
            raise Internal("Conflict, cannot remove the default link name of the container")
        parent = next((p for p in self.core._records.values() if p.name == parent_name), None)
        if parent is None or full not in parent.links:
            raise Internal(f"Cannot get parent {parent_name} for link name {name}")
        del parent.links[full]
        self.core._save(parent)
        if parent.state.Running and self.core.net is not None:
            await self.core.net.refresh_hosts(parent)

    async def rename(self, name: str, new: str) -> None:
        c = self.core.get(name)
        stored = names.validate(new)
        if stored == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        holder = next((o for o in self.core._records.values() if o.name == stored), None)
        if holder is not None and holder.id != c.id:
            raise Conflict(
                f'Conflict. The container name "{stored}" is already in use by container "{holder.id}". You have to remove (or rename) that container to be able to reuse that name.'
            )
        old = c.name
        c.name = stored
        c.links = {stored + n[len(old) :]: t for n, t in c.links.items()}  # "/new/alias"
        self.core._save(c)
        self.core._event(c, "rename", oldName=old)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted = []
        reclaimed = 0
        for c in list(self.core._records.values()):
            if c.state.Running:
                continue
            labels = c.config.get("Labels") or {}
            if not all(
                (
                    item.partition("=")[0] in labels
                    and (
                        not item.partition("=")[1]
                        or labels[item.partition("=")[0]] == item.partition("=")[2]
                    )
                )
                for item in filters.get("label", [])
            ):
                continue
            # moby counts each removed container's own layer (its written files)
            size = (await asyncio.to_thread(self.core.sizes, c.id))[0]
            try:
                await self.lifecycle.remove(c.id, force=False, volumes=False)
            except (Conflict, NotFound):
                continue  # started or removed meanwhile
            deleted.append(c.id)
            reclaimed += size
        self.core.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}
