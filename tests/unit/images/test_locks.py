import asyncio

import pytest

from dockyard.images.locks import KeyedLocks, Leases


def run(coro):
    return asyncio.run(coro)


def test_exclusive_excludes_and_entries_are_dropped():
    async def main():
        locks = KeyedLocks()
        order = []
        gate = asyncio.Event()

        async def first():
            async with locks.hold(exclusive=["a"]):
                order.append("first in")
                await gate.wait()
                order.append("first out")

        async def second():
            async with locks.hold(exclusive=["a"]):
                order.append("second in")

        t1 = asyncio.create_task(first())
        await asyncio.sleep(0)
        t2 = asyncio.create_task(second())
        await asyncio.sleep(0)
        assert order == ["first in"]
        gate.set()
        await asyncio.gather(t1, t2)
        assert order == ["first in", "first out", "second in"]
        assert len(locks) == 0

    run(main())


def test_other_keys_do_not_wait():
    async def main():
        locks = KeyedLocks()
        gate = asyncio.Event()
        entered = asyncio.Event()

        async def holder():
            async with locks.hold(exclusive=["image:a"]):
                entered.set()
                await gate.wait()

        t = asyncio.create_task(holder())
        await entered.wait()
        async with locks.hold(exclusive=["image:b"], shared=["ref:x"]):
            assert locks.busy("image:a") and locks.busy("image:b")
        assert not t.done()
        gate.set()
        await t
        assert len(locks) == 0

    run(main())


def test_shared_holders_overlap_and_exclusive_waits_for_all():
    async def main():
        locks = KeyedLocks()
        inside = 0
        peak = 0
        release = asyncio.Event()

        async def reader():
            nonlocal inside, peak
            async with locks.hold(shared=["k"]):
                inside += 1
                peak = max(peak, inside)
                await release.wait()
                inside -= 1

        readers = [asyncio.create_task(reader()) for _ in range(3)]
        await asyncio.sleep(0)
        got = asyncio.Event()

        async def writer():
            async with locks.hold(exclusive=["k"]):
                assert inside == 0
                got.set()

        w = asyncio.create_task(writer())
        await asyncio.sleep(0)
        assert peak == 3 and not got.is_set()
        # A reader arriving now queues behind the waiting writer (no writer starvation).
        late = asyncio.create_task(reader())
        await asyncio.sleep(0)
        assert inside == 3
        release.set()
        await asyncio.gather(*readers, w, late)
        assert got.is_set() and len(locks) == 0

    run(main())


def test_sorted_acquisition_avoids_deadlock():
    async def main():
        locks = KeyedLocks()

        async def worker(keys):
            for _ in range(50):
                async with locks.hold(exclusive=keys):
                    await asyncio.sleep(0)

        await asyncio.wait_for(
            asyncio.gather(worker(["a", "b"]), worker(["b", "a"]), worker(["b", "c", "a"])), 10
        )
        assert len(locks) == 0

    run(main())


def test_cancelled_waiter_leaves_no_entry_and_lets_readers_in():
    async def main():
        locks = KeyedLocks()
        gate = asyncio.Event()

        async def reader():
            async with locks.hold(shared=["k"]):
                await gate.wait()

        r = asyncio.create_task(reader())
        await asyncio.sleep(0)

        async def writer():
            async with locks.hold(exclusive=["k"]):
                pass

        w = asyncio.create_task(writer())
        await asyncio.sleep(0)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        # With the writer gone, a new reader is not held behind it.
        async with locks.hold(shared=["k"]):
            pass
        gate.set()
        await r
        assert len(locks) == 0

    run(main())


def test_key_asked_both_ways_is_exclusive():
    async def main():
        locks = KeyedLocks()
        async with locks.hold(exclusive=["k"], shared=["k"]):
            blocked = asyncio.create_task(_enter(locks, "k"))
            await asyncio.sleep(0)
            assert not blocked.done()
        await blocked

    run(main())


async def _enter(locks, key):
    async with locks.hold(shared=[key]):
        pass


def test_leases_count_and_forget():
    leases = Leases()
    with leases.hold(["a", "b"]):
        with leases.hold(["a"]):
            assert leases["a"] == 2
        assert leases["a"] == 1 and leases["b"] == 1
    assert leases["a"] == 0 and len(leases) == 0
