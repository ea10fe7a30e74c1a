import asyncio
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
