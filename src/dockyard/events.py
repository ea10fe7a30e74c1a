"""The event bus behind ``GET /events`` (asyncio world).

Services publish; every ``/events`` client holds a bounded queue.  A ring buffer keeps the
recent past so ``since`` can replay it, as dockerd's events log does (moby daemon/events).
A slow client whose queue fills is dropped rather than letting daemon memory grow.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Mapping

import msgspec

__all__ = ["Actor", "Event", "EventBus", "matches"]


class Actor(msgspec.Struct, rename={"id": "ID", "attributes": "Attributes"}):
    id: str
    attributes: dict[str, str]


class Event(msgspec.Struct, omit_defaults=True, rename={"from_": "from"}):
    Type: str
    Action: str
    Actor: Actor
    scope: str  # always "local" here; no default, or omit_defaults would drop it (dockerd sends it)
    time: int = 0
    timeNano: int = 0
    status: str | None = None
    id: str | None = None
    from_: str | None = None  # legacy fields, set on container events only (as moby does)


_QUEUE_LIMIT = 4096
_HISTORY = 1024
_HISTORY_DECODER = msgspec.msgpack.Decoder(list[Event])


def matches(event: Event, filters: Mapping[str, list[str]]) -> bool:
    """Docker's events filters: type, event/action, image, container, label, and friends."""
    if (types := filters.get("type")) and event.Type not in types:
        return False
    # "health_status: healthy" and "exec_start: sh" match "health_status", "exec_start"
    if (
        (actions := filters.get("event"))
        and event.Action not in actions
        and event.Action.split(":", 1)[0] not in actions
    ):
        return False
    attrs = event.Actor.attributes
    for kind in ("image", "container", "volume", "network", "daemon", "node", "service"):
        wanted = filters.get(kind)
        if not wanted:
            continue
        if kind == "image" and event.Type == "container":
            candidates = {attrs.get("image", "")}
        elif event.Type != kind:
            return False
        else:
            candidates = {
                event.Actor.id,
                event.Actor.id.removeprefix("sha256:"),
                attrs.get("name", ""),
            }
        if not any(
            w in candidates or any(c.startswith(w) for c in candidates if c) for w in wanted
        ):
            return False
    for label in filters.get("label", []):
        key, _, value = label.partition("=")
        if key not in attrs or ("=" in label and attrs[key] != value):
            return False
    return True


class EventBus:
    """Publish/subscribe with a bounded history for ``since`` replays."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._history: collections.deque[Event] = collections.deque(maxlen=_HISTORY)
        self._packed = b""  # older history, packed by ``compact``

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    def compact(self) -> None:
        """Pack the history into one msgpack blob, once the daemon is idle after a burst.

        The last 1024 events of a burst were allocated wherever the allocator had room at
        its peak, so a few of them (each an Event, an Actor, a dict and strings: some ten
        small objects) sit in nearly every 1 MiB pymalloc arena the burst opened and keep it
        resident.  One bytes object (a few hundred KB, outside pymalloc) holds the same
        history; a ``since`` replay decodes it (bench/README.md, "Daemon RSS under load.sh").
        """
        if not self._history:
            return
        self._packed = msgspec.msgpack.encode(self._recent())
        self._history = collections.deque(maxlen=_HISTORY)

    def _recent(self) -> list[Event]:
        """The history, oldest first: the packed part still in the window, then the rest."""
        keep = _HISTORY - len(self._history)
        old = _HISTORY_DECODER.decode(self._packed)[-keep:] if self._packed and keep else []
        return [*old, *self._history]

    def publish(
        self,
        type_: str,
        action: str,
        actor_id: str,
        attributes: dict[str, str],
        from_: str | None = None,
    ) -> Event:
        now = time.time_ns()
        event = Event(
            Type=type_,
            Action=action,
            Actor=Actor(id=actor_id, attributes=attributes),
            scope="local",
            time=now // 1_000_000_000,
            timeNano=now,
        )
        if type_ == "container":
            event.status, event.id, event.from_ = action, actor_id, from_
        self._history.append(event)
        if self._packed and len(self._history) == _HISTORY:
            self._packed = b""  # wholly out of the window now
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # Too slow a reader: drop it (its stream ends) instead of buffering forever.
                self._subscribers.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
        return event

    async def subscribe(
        self, since_ns: int | None, until_ns: int | None, filters: Mapping[str, list[str]]
    ) -> AsyncIterator[Event]:
        """Replay history from ``since``, then follow live events until ``until``."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(_QUEUE_LIMIT)
        now = time.time_ns()
        replay = (
            [e for e in self._recent() if e.timeNano >= since_ns] if since_ns is not None else []
        )
        if until_ns is None or until_ns > now:
            self._subscribers.add(queue)
        try:
            for event in replay:
                if until_ns is not None and event.timeNano > until_ns:
                    return
                if matches(event, filters):
                    yield event
            if until_ns is not None and until_ns <= now:
                return
            while True:
                timeout = None if until_ns is None else max(0.0, (until_ns - time.time_ns()) / 1e9)
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return
                if event is None:
                    return
                if until_ns is not None and event.timeNano > until_ns:
                    return
                if matches(event, filters):
                    yield event
        finally:
            self._subscribers.discard(queue)
