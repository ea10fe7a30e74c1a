"""Volumes as the Engine API sees them (asyncio world): create, list, inspect, remove,
prune, and the reference counts that keep a used volume's data alive.

Who uses a volume is asked of the container service (``users``) rather than recorded
twice: a container record names its volumes, so a crash cannot leave the two disagreeing.
A volume with a device is mounted while at least one running container holds it.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.events import EventBus
from dockyard.filters import labels_match, labels_match_none
from dockyard.volumes.local import LocalDriver
from dockyard.volumes.mounts import validate_volume_name
from dockyard.volumes.store import Store, Volume

__all__ = ["ANONYMOUS_LABEL", "LIST_FILTERS", "PRUNE_FILTERS", "VolumeService"]

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
LIST_FILTERS = ("dangling", "driver", "label", "name")
PRUNE_FILTERS = ("all", "label", "label!")


def _created_at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _truthy(values: list[str], what: str) -> bool:
    value = values[-1].lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise InvalidParameter(f"invalid filter '{what}={values[-1]}'")


class VolumeService:
    def __init__(self, store: Store, driver: LocalDriver, events: EventBus) -> None:
        self.store = store
        self.driver = driver
        self.events = events
        self.users: Callable[[str], list[str]] = lambda name: []
        self._held: dict[str, set[str]] = {}  # name → ids of running containers using it
        self._lock = asyncio.Lock()

    def _event(self, action: str, name: str, **attrs: str) -> None:
        self.events.publish("volume", action, name, {"driver": "local", **attrs})

    # ---- records ---------------------------------------------------------------------------
    def get(self, name: str) -> Volume:
        v = self.store.get(name) if isinstance(name, str) and name else None
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def inspect(self, name: str) -> dict[str, Any]:
        return self._view(self.get(name))

    def _view(self, v: Volume, size: int | None = None) -> dict[str, Any]:
        view: dict[str, Any] = {
            "CreatedAt": v.created_at,
            "Driver": v.driver,
            "Labels": v.labels or None,
            "Mountpoint": self.driver.path(v.name),
            "Name": v.name,
            "Options": v.options or None,
            "Scope": "local",
        }
        if size is not None:
            view["UsageData"] = {"Size": size, "RefCount": len(self.users(v.name))}
        return view

    async def create(
        self,
        name: str | None,
        driver: str | None = None,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        return self._view(await self.ensure(name, driver, options, labels, anonymous))

    async def ensure(
        self,
        name: str | None,
        driver: str | None = None,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> Volume:
        """The named volume, made if missing (``docker volume create`` on an existing name
        answers the existing one, as moby does)."""
        driver = driver or "local"
        if driver != "local":
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        for what, value in (("DriverOpts", options), ("Labels", labels)):
            if value is not None and (
                not isinstance(value, dict)
                or not all(isinstance(k, str) and isinstance(x, str) for k, x in value.items())
            ):
                raise InvalidParameter(f"{what} must be an object of strings")
        if name:
            try:
                validate_volume_name(name)
            except InvalidParameter as exc:
                # as moby's local driver words it (the volume service wraps its error)
                raise InvalidParameter(f"create {name}: {exc.message}") from None
            existing = self.store.get(name)
            if existing is not None:
                return existing
        name = name or secrets.token_hex(32)
        options = dict(options or {})
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        self.driver.validate(options)
        v = Volume(
            name=name, driver=driver, created_at=_created_at(), labels=labels, options=options
        )
        async with self._lock:
            existing = self.store.get(name)
            if existing is not None:
                return existing
            await asyncio.to_thread(self.driver.create, name)
            try:
                self.store.insert(v)
            except sqlite3.IntegrityError:
                return self.get(name)
            except BaseException:
                # Not recorded (a full disk): the directory must not outlive the failure.
                await asyncio.to_thread(self.driver.remove, name)
                raise
        self._event("create", name)
        return v

    def list(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        out = []
        for v in self.store.all():
            if "name" in filters and not any(f in v.name for f in filters["name"]):
                continue
            if "driver" in filters and v.driver not in filters["driver"]:
                continue
            if not labels_match(v.labels, filters.get("label", [])):
                continue
            if "dangling" in filters and _truthy(filters["dangling"], "dangling") == bool(
                self.users(v.name)
            ):
                continue
            out.append(self._view(v))
        return {"Volumes": out, "Warnings": None}

    async def remove(self, name: str, force: bool = False) -> None:
        try:
            v = self.get(name)
        except NotFound:
            if force:
                return
            raise
        users = self.users(v.name)
        if users:
            raise Conflict(f"remove {v.name}: volume is in use - [{', '.join(users)}]")
        async with self._lock:
            self.store.delete(v.name)
            await asyncio.to_thread(self.driver.remove, v.name)
        self._held.pop(v.name, None)
        self._event("destroy", v.name)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """Unused anonymous volumes; with ``all=true`` unused named ones too (API 1.42+)."""
        everything = "all" in filters and _truthy(filters["all"], "all")
        deleted: list[str] = []
        reclaimed = 0
        for v in self.store.all():
            if not everything and ANONYMOUS_LABEL not in v.labels:
                continue
            if not labels_match(v.labels, filters.get("label", [])):
                continue
            if not labels_match_none(v.labels, filters.get("label!", [])):
                continue
            if self.users(v.name):
                continue
            size = await asyncio.to_thread(self.driver.size, v.name)
            try:
                await self.remove(v.name)
            except Conflict:  # taken meanwhile
                continue
            deleted.append(v.name)
            reclaimed += size
        if deleted:
            self.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        # dockerd answers [] here (an empty slice), unlike the other prunes' null
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    async def usage(self) -> list[dict[str, Any]]:
        """Every volume with its size and users, for ``system df``."""
        out = []
        for v in self.store.all():
            size = await asyncio.to_thread(self.driver.size, v.name)
            out.append(self._view(v, size))
        return out

    # ---- use by containers -----------------------------------------------------------------
    async def acquire(
        self, name: str, cid: str, destination: str = "", rw: bool = True, propagation: str = ""
    ) -> str:
        """The volume's host path, mounted if it has a device; held until ``release``."""
        v = self.get(name)
        path = await asyncio.to_thread(self.driver.mount, v.name, v.options)
        self._held.setdefault(v.name, set()).add(cid)
        self._event(
            "mount",
            v.name,
            container=cid,
            destination=destination,
            **{"read/write": str(rw).lower(), "propagation": propagation},
        )
        return path

    async def release(self, name: str, cid: str) -> None:
        held = self._held.get(name)
        if held is None or cid not in held:
            return
        held.discard(cid)
        self._event("unmount", name, container=cid)
        if not held:
            del self._held[name]
            v = self.store.get(name)
            if v is not None and v.options.get("device"):
                await asyncio.to_thread(self.driver.unmount, name)

    def hold(self, name: str, cid: str) -> None:
        """After a daemon restart: a running container still uses this volume."""
        self._held.setdefault(name, set()).add(cid)
