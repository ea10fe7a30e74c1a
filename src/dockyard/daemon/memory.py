"""The daemon's own memory (asyncio world): give freed heap back to the OS after a burst,
and a debug switch to see what holds memory.

After a burst of requests most of what the daemon allocated is garbage again, but glibc keeps
the freed chunks: the top of each heap is only returned when it is free, and each thread that
ran in ``asyncio.to_thread`` got an arena of its own, so RSS stays near its peak.
``malloc_trim(0)`` walks every arena and returns whole free pages (``madvise(MADV_DONTNEED)``)
in the middle of heaps too.  It costs a walk of the heap (a few ms), so ``idle_trim`` calls it
(after a ``gc.collect()``: closed connections wait as cyclic garbage) only once the daemon has
gone quiet after having been busy, measured by its own CPU time.  Measured (bench/README.md,
issue 14): after a burst of API requests it returns only 1-3 MB, because what stays is pinned
by live objects spread over the pages used at the peak; whole freed buffers (pulls, builds)
do go back.

``M_ARENA_MAX`` caps how many malloc arenas threads spread over (glibc's default is 8 per
core).  It must be set before the first thread allocates, so ``limit_arenas`` runs first thing
in ``main``; ``DOCKYARD_MALLOC_ARENA_MAX=N`` sets it, for measuring: 2 gained nothing
measurable under ``bench/load.sh``, so the default is glibc's.

``DOCKYARD_TRACEMALLOC=1`` starts ``tracemalloc`` at start-up; each SIGUSR2 then logs the
top allocation sites and what grew since the previous SIGUSR2 (the first one is the
baseline), so a leak shows up as a line that grows from one dump to the next.  Debug only:
tracing slows every allocation and costs memory of its own.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import gc
import logging
import os
import signal
import tracemalloc
from collections.abc import Callable, Sequence

__all__ = [
    "IDLE_CPU",
    "IDLE_PERIOD",
    "clear_request_caches",
    "idle_trim",
    "install_tracemalloc",
    "limit_arenas",
    "rss_kb",
    "trim",
]

log = logging.getLogger("dockyard.daemon")

IDLE_PERIOD = 5.0  # seconds between checks
IDLE_CPU = 0.05  # at most this CPU time (s) in a period: idle
BUSY_CPU = 0.5  # at least this CPU time (s) since the last trim: worth a trim
_M_ARENA_MAX = -8  # glibc malloc.h
TRACE_ENV = "DOCKYARD_TRACEMALLOC"
TRACE_FRAMES = 12
TRACE_TOP = 25


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)  # the interpreter's own symbols, libc's among them
        libc.malloc_trim  # noqa: B018  (not glibc, e.g. musl: no trimming)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas (call before threads start); False when not glibc."""
    if _LIBC is None or count <= 0:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, count))


def trim() -> bool:
    """Return free heap pages to the OS; True if some memory was released."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


def rss_kb() -> int:
    """This process's resident set (kB), as ``ps`` and the benchmarks see it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def clear_request_caches() -> None:
    """Empty yarl's and aiohttp's per-request ``lru_cache``s.

    yarl keeps the last 128 URLs it parsed in each of several caches; every request path
    names a container or exec id, so after a burst each holds URL objects (with their query
    MultiDicts) scattered over the arenas the burst opened; aiohttp caches each route's
    middleware chain the same way.  They are only caches: the next request fills them."""
    import importlib

    for name in ("yarl._url", "yarl._parse", "aiohttp.web_app", "aiohttp.helpers"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # (their layout is the library's business: nothing to clear)
            continue
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)) and hasattr(value, "cache_info"):
                value.cache_clear()


async def idle_trim(
    period: float = IDLE_PERIOD, compact: Sequence[Callable[[], None]] = ()
) -> None:
    """Run for the daemon's life: trim once it is idle after having been busy.  Each of
    ``compact`` first re-makes or drops long-lived objects that a burst scattered over the
    arenas it opened (events history, URL caches): without that, a few hundred of them keep
    tens of 1 MiB arenas resident that hold nothing else."""
    last = since_trim = _cpu()
    while True:
        await asyncio.sleep(period)
        now = _cpu()
        idle = now - last < IDLE_CPU
        last = now
        if idle and now - since_trim >= BUSY_CPU:
            before = rss_kb()
            for step in compact:
                try:
                    step()
                except Exception as exc:  # a failed compaction only costs memory
                    log.warning("memory compaction step %r failed: %s", step, exc)
            gc.collect()  # cycles (closed transports, finished requests) free whole pools
            await asyncio.to_thread(trim)
            after = rss_kb()
            log.info(
                "idle after %.1f s of CPU: returned %.1f MB of freed heap to the OS (RSS %.1f MB)",
                now - since_trim,
                (before - after) / 1024,
                after / 1024,
            )
            since_trim = _cpu()


def install_tracemalloc(loop: asyncio.AbstractEventLoop) -> bool:
    """With ``DOCKYARD_TRACEMALLOC=1``: trace allocations, dump them on SIGUSR2."""
    if os.environ.get(TRACE_ENV) != "1":
        return False
    if not tracemalloc.is_tracing():
        tracemalloc.start(TRACE_FRAMES)
    state: dict[str, tracemalloc.Snapshot] = {}

    def dump() -> None:
        unreachable = gc.collect()  # cyclic garbage is not what holds memory for good
        snap = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__),)
        )
        current, peak = tracemalloc.get_traced_memory()
        lines = [
            f"tracemalloc: {current / 1e6:.1f} MB traced (peak {peak / 1e6:.1f} MB), "
            f"{unreachable} unreachable objects collected first; live objects by type:"
        ]
        kinds = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        lines += [f"  {n:8d} {kind}" for kind, n in kinds.most_common(TRACE_TOP)]
        for stat in snap.statistics("traceback")[:TRACE_TOP]:
            lines.append(f"  {stat.size / 1024:9.1f} KiB {stat.count:7d} blocks")
            lines += [f"      {line}" for line in stat.traceback.format(limit=TRACE_FRAMES)]
        before = state.get("baseline")
        if before is not None:
            lines.append("tracemalloc: growth since the first dump")
            for diff in snap.compare_to(before, "traceback")[:TRACE_TOP]:
                lines.append(
                    f"  {diff.size_diff / 1024:+9.1f} KiB {diff.count_diff:+7d} blocks "
                    f"(now {diff.size / 1024:.1f} KiB)"
                )
                lines += [f"      {line}" for line in diff.traceback.format(limit=TRACE_FRAMES)]
        else:
            state["baseline"] = snap
        log.warning("\n".join(lines))

    loop.add_signal_handler(signal.SIGUSR2, dump)
    return True
