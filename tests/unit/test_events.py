import asyncio
import collections
import time

import msgspec

from dockyard.events import EventBus, matches


def test_filters():
    bus = EventBus()
    e = bus.publish("image", "tag", "sha256:abc", {"name": "busybox:latest", "l": "1"})
    assert matches(e, {"type": ["image"], "event": ["tag"]})
    assert not matches(e, {"type": ["container"]})
    assert matches(e, {"image": ["busybox:latest"]}) and matches(e, {"label": ["l=1"]})
    assert not matches(e, {"label": ["l=2"]})


def test_since_replay_and_until_end():
    async def run():
        bus = EventBus()
        start = time.time_ns()
        bus.publish("image", "tag", "a", {})
        bus.publish("image", "untag", "a", {})
        got = [e.Action async for e in bus.subscribe(start, time.time_ns(), {})]
        assert got == ["tag", "untag"]
        until = time.time_ns() + 200_000_000
        stream = bus.subscribe(None, until, {})

        async def publish_later():
            await asyncio.sleep(0.05)
            bus.publish("image", "delete", "a", {})

        task = asyncio.create_task(publish_later())
        got = [e.Action async for e in stream]
        await task
        assert got == ["delete"]
        assert bus.listeners == 0

    asyncio.run(run())


def test_every_event_carries_the_local_scope():
    # dockerd always sends "scope"; omit_defaults must not drop it
    event = EventBus().publish("volume", "create", "v1", {"driver": "local"})
    encoded = msgspec.json.decode(msgspec.json.encode(event))
    assert encoded["scope"] == "local"
    assert "status" not in encoded  # the legacy fields stay off non-container events


def test_compacted_history_replays_the_same_window():
    """``compact`` packs the history into one blob (daemon memory after a burst); a
    ``since`` replay still gives the last 1024 events, oldest first, with every field."""
    from dockyard import events as events_module

    limit = events_module._HISTORY

    async def replay(bus: EventBus) -> list[msgspec.Struct]:
        return [e async for e in bus.subscribe(0, time.time_ns(), {})]

    bus = EventBus()
    for i in range(limit + 10):
        bus.publish("container", f"start{i}", f"id{i}", {"name": f"n{i}"}, from_="busybox")
    before = [msgspec.to_builtins(e) for e in bus._history]
    bus.compact()
    assert bus._history == collections.deque() and bus._packed
    got = asyncio.run(replay(bus))
    assert [msgspec.to_builtins(e) for e in got] == before
    assert got[0].Action == "start10" and got[0].from_ == "busybox"
    # Newer events push the packed ones out of the window, one by one, then wholly.
    for i in range(3):
        bus.publish("image", "tag", f"new{i}", {})
    got = asyncio.run(replay(bus))
    assert len(got) == limit and got[0].Action == "start13" and got[-1].Actor.id == "new2"
    for i in range(limit):
        bus.publish("image", "tag", f"later{i}", {})
    assert bus._packed == b""
    got = asyncio.run(replay(bus))
    assert len(got) == limit and got[0].Actor.id == "later0"
