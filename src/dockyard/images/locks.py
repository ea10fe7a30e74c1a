"""Keyed shared/exclusive locks and leases for image metadata (asyncio world).

One global lock made a slow ``load`` (its body arriving over minutes) hold up ``tag``,
``rm`` and ``run`` of every other image.  Work is now serialised only where it touches
the same thing, named by a key:

- ``image:<id>``: exclusive while an image record is deleted (rmi, prune, a build's
  intermediate); shared while something relies on it staying (container create, tag,
  commit onto it);
- ``ref:<name>``: exclusive while a reference is pointed somewhere;
- ``layer:<chain id>``: exclusive while a layer is applied or collected, so two loads of
  the same layer apply it once and a collection never removes a layer mid-apply.

Several keys are always acquired in sorted order, so two holders cannot deadlock.  An
entry lives only while held or awaited: the table does not grow with every image ever seen.

Leases are counters, not locks: a chain id or blob digest a load, pull, build or commit is
writing is leased before the work starts, and collection (which takes the layer's lock and
then looks) skips anything leased.  Metadata reads and writes are synchronous SQLite on the
event-loop thread, so what happens between two awaits needs no lock at all.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager

__all__ = ["KeyedLocks", "Leases", "image_key", "layer_key", "ref_key"]


def image_key(image_id: str) -> str:
    return "image:" + image_id


def ref_key(name: str) -> str:
    return "ref:" + name


def layer_key(chain_id: str) -> str:
    return "layer:" + chain_id


class _Entry:
    """One key's state: readers, a writer, and writers queued (they go first)."""

    __slots__ = ("readers", "users", "waiters", "waiting", "writer")

    def __init__(self) -> None:
        self.readers = 0
        self.writer = False
        self.waiting = 0  # exclusive waiters: new shared holders queue behind them
        self.users = 0  # holders plus waiters; the entry is dropped at zero
        self.waiters: list[asyncio.Future[None]] = []

    def free_for(self, excl: bool) -> bool:
        if excl:
            return not self.writer and not self.readers
        return not self.writer and not self.waiting

    def wake(self) -> None:
        """Let every waiter look again (few wait on one key; simpler than hand-offs)."""
        for fut in self.waiters:
            if not fut.done():
                fut.set_result(None)
        self.waiters.clear()


class KeyedLocks:
    """Shared/exclusive locks by key, created on demand and dropped when unused."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def busy(self, key: str) -> bool:
        """Whether anyone holds or awaits ``key`` (for tests and diagnostics)."""
        return key in self._entries

    @asynccontextmanager
    async def hold(
        self, exclusive: Iterable[str] = (), shared: Iterable[str] = ()
    ) -> AsyncIterator[None]:
        """Hold every key, in sorted order; a key asked for both ways is held exclusively."""
        modes = {key: False for key in shared}
        modes.update({key: True for key in exclusive})
        taken: list[tuple[str, bool]] = []
        try:
            for key in sorted(modes):
                await self._acquire(key, modes[key])
                taken.append((key, modes[key]))
            yield
        finally:
            for key, excl in reversed(taken):
                self._release(key, excl)

    async def _acquire(self, key: str, excl: bool) -> None:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            if excl:
                entry.waiting += 1
            try:
                while not entry.free_for(excl):
                    fut = asyncio.get_running_loop().create_future()
                    entry.waiters.append(fut)
                    try:
                        await fut
                    finally:
                        if fut in entry.waiters:
                            entry.waiters.remove(fut)
            finally:
                if excl:
                    entry.waiting -= 1
        except BaseException:
            # Cancelled while waiting: shared waiters may have queued behind this one.
            self._drop(key, entry)
            raise
        if excl:
            entry.writer = True
        else:
            entry.readers += 1

    def _release(self, key: str, excl: bool) -> None:
        entry = self._entries[key]
        if excl:
            entry.writer = False
        else:
            entry.readers -= 1
        self._drop(key, entry)

    def _drop(self, key: str, entry: _Entry) -> None:
        entry.users -= 1
        entry.wake()
        if entry.users == 0 and self._entries.get(key) is entry:
            del self._entries[key]


class Leases(Counter[str]):
    """Chain ids and digests that work in progress holds: collection skips them.

    A ``Counter`` (``leased[name]`` is 0 when free); ``hold`` is the way to take some."""

    @contextmanager
    def hold(self, names: Iterable[str]) -> Iterator[None]:
        held = list(names)
        for name in held:
            self[name] += 1
        try:
            yield
        finally:
            for name in held:
                self[name] -= 1
                if self[name] <= 0:
                    del self[name]
