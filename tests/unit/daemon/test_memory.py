"""The daemon's memory hooks: the idle trim runs once the daemon goes quiet after a busy
spell (and not while it is busy or was never busy), SIGUSR2 reports
where the memory is and, with the tracemalloc switch, dumps the traced allocations."""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import tracemalloc

from dockyard.daemon import launch, memory


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
        assert memory.install_sigusr2(loop)
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


def test_tracemalloc_switch_off_by_default_sigusr2_reports(caplog, monkeypatch):
    """Without tracing SIGUSR2 still logs the RSS (and jemalloc's split when it is the
    allocator) rather than killing the daemon, SIGUSR2's default action."""
    monkeypatch.delenv(memory.TRACE_ENV, raising=False)

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        tracing = memory.install_sigusr2(loop)
        try:
            os.kill(os.getpid(), signal.SIGUSR2)
            await asyncio.sleep(0.2)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)
        return tracing

    with caplog.at_level(logging.WARNING, logger="dockyard.daemon"):
        assert asyncio.run(scenario()) is False
    assert not tracemalloc.is_tracing()
    assert [r.message for r in caplog.records if r.message.startswith("memory: RSS ")]


def test_jemalloc_stats_split_under_jemalloc():
    """Under jemalloc (as dockyardd runs) the report splits live data, fragmentation and
    pages not yet purged; elsewhere it says nothing about jemalloc."""
    lib = next((p for p in launch.JEMALLOC_PATHS if os.path.exists(p)), None)
    assert lib is not None, "libjemalloc2 is missing: install.sh installs it"
    code = (
        "from dockyard.daemon import memory; print(memory.jemalloc_stats()); print(memory.report())"
    )
    env = {**os.environ, "LD_PRELOAD": lib, "PYTHONMALLOC": "malloc"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    stats = ast.literal_eval(out[0])
    assert 0 < stats["allocated"] <= stats["active"] <= stats["resident"] <= stats["mapped"]
    assert "jemalloc allocated" in out[1]
    assert memory.jemalloc_stats() is None  # this test process runs on glibc malloc


def test_warm_up_imports_what_containers_load_on_first_use():
    from dockyard.containers import seccomp

    memory.warm_up()
    assert all(name in sys.modules for name in memory.WARM_MODULES)
    assert seccomp.default_profile.cache_info().currsize == 1
