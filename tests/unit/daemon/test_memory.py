"""The daemon's memory hooks: the idle trim runs once the daemon goes quiet after a busy
spell (and not while it is busy or was never busy), the tracemalloc switch dumps on SIGUSR2."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import tracemalloc

from dockyard.daemon import memory


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(range(1000))


def test_idle_trim_after_a_busy_spell_only(caplog):
    compacted: list[str] = []

    def failing() -> None:
        raise RuntimeError("a compaction step broke")

    async def scenario() -> list[str]:
        steps = (lambda: compacted.append("events"), failing)
        task = asyncio.create_task(memory.idle_trim(0.2, compact=steps))
        await asyncio.sleep(0.5)  # quiet from the start: nothing to give back
        quiet = [r.message for r in caplog.records if "returned" in r.message]
        assert compacted == []
        junk = [bytearray(2000) for _ in range(20000)]
        _burn(memory.BUSY_CPU + 0.2)
        del junk
        await asyncio.sleep(1.0)
        task.cancel()
        assert quiet == []
        return [r.message for r in caplog.records if "returned" in r.message]

    with caplog.at_level(logging.INFO, logger="dockyard.daemon"):
        trims = asyncio.run(scenario())
    assert len(trims) == 1, trims
    assert "MB of freed heap to the OS" in trims[0]
    # the compaction steps ran once, before the trim; one failing did not stop it
    assert compacted == ["events"]
    assert any("a compaction step broke" in r.message for r in caplog.records)


def test_clear_request_caches_empties_yarls_url_caches():
    """Each request path names an id, so yarl's URL caches fill with a burst's URLs; the
    idle compaction empties them (they are only caches)."""
    from yarl import URL, _url

    memory.clear_request_caches()  # (the first call imports aiohttp, which parses a URL)
    for i in range(50):
        URL(f"/v1.47/containers/{i:064x}/json?size=1")
    filled = [v for v in vars(_url).values() if hasattr(v, "cache_info")]
    assert sum(v.cache_info().currsize for v in filled) > 0
    memory.clear_request_caches()
    assert sum(v.cache_info().currsize for v in filled) == 0


def test_trim_and_arena_limit_on_glibc():
    assert isinstance(memory.trim(), bool)
    assert memory.limit_arenas(0) is False  # 0: keep glibc's default
    assert memory.rss_kb() > 0


def test_tracemalloc_switch_dumps_on_sigusr2(caplog, monkeypatch):
    monkeypatch.setenv(memory.TRACE_ENV, "1")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert memory.install_tracemalloc(loop)
        try:
            for _ in range(2):  # a baseline, then the growth since it
                os.kill(os.getpid(), signal.SIGUSR2)
                await asyncio.sleep(0.2)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)
            tracemalloc.stop()

    with caplog.at_level(logging.WARNING, logger="dockyard.daemon"):
        asyncio.run(scenario())
    dumps = [r.message for r in caplog.records if r.message.startswith("tracemalloc:")]
    assert len(dumps) == 2
    assert "live objects by type" in dumps[0] and "growth since the first dump" in dumps[1]


def test_tracemalloc_switch_off_by_default(monkeypatch):
    monkeypatch.delenv(memory.TRACE_ENV, raising=False)

    async def scenario() -> bool:
        return memory.install_tracemalloc(asyncio.get_running_loop())

    assert asyncio.run(scenario()) is False
    assert not tracemalloc.is_tracing()
