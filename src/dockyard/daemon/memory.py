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

Under jemalloc (``daemon/launch.py``) ``malloc_trim`` reaches only glibc's own small heap;
jemalloc's background thread returns pages.  What stays after a burst there is
fragmentation, which ``warm_up`` (long-lived objects made before the first burst) and the
compaction steps keep down.  SIGUSR2 logs ``report()``: RSS and jemalloc's split of it.

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
import sys
import tracemalloc
from collections.abc import Callable, Sequence

__all__ = [
    "IDLE_CPU",
    "IDLE_PERIOD",
    "clear_request_caches",
    "idle_trim",
    "install_sigusr2",
    "jemalloc_stats",
    "limit_arenas",
    "report",
    "rss_kb",
    "trim",
    "warm_up",
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


_JEMALLOC_STATS = (
    "allocated",
    "active",
    "resident",
    "metadata",
    "mapped",
    "retained",
    "arenas.4096.tcache_bytes",  # 4096: all arenas; freed blocks held in thread caches
)


def jemalloc_stats() -> dict[str, int] | None:
    """jemalloc's own totals (bytes), or None when it is not the allocator.

    ``allocated`` is what live objects hold, ``active`` the pages their slabs occupy (the
    difference is fragmentation), ``resident`` what jemalloc has in RAM (metadata and dirty
    pages not yet purged included): the split says whether RSS is data, fragmentation or
    pages waiting to go back."""
    mallctl = getattr(_LIBC, "mallctl", None) if _LIBC is not None else None
    if mallctl is None:
        return None
    epoch = ctypes.c_uint64(1)
    size = ctypes.c_size_t(ctypes.sizeof(epoch))
    if mallctl(b"epoch", ctypes.byref(epoch), ctypes.byref(size), ctypes.byref(epoch), size):
        return None
    out: dict[str, int] = {}
    for name in _JEMALLOC_STATS:
        value = ctypes.c_size_t(0)
        size = ctypes.c_size_t(ctypes.sizeof(value))
        if mallctl(f"stats.{name}".encode(), ctypes.byref(value), ctypes.byref(size), None, 0):
            return None
        out[name.rsplit(".", 1)[-1]] = value.value
    return out


def report() -> str:
    """One line on where the daemon's memory is, for the log."""
    line = f"memory: RSS {rss_kb() / 1024:.1f} MB"
    stats = jemalloc_stats()
    if stats is not None:
        line += "; jemalloc " + ", ".join(f"{k} {v / 1048576:.1f} MB" for k, v in stats.items())
    return line


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
    """Empty yarl's and aiohttp's per-request ``lru_cache``s, and CPython's attribute
    lookup cache (it keeps each looked-up name alive, such as pyroute2's ``f"get_{key}"``).

    yarl keeps the last 128 URLs it parsed in each of several caches; every request path
    names a container or exec id, so after a burst each holds URL objects (with their query
    MultiDicts) scattered over the arenas the burst opened; aiohttp caches each route's
    middleware chain the same way.  They are only caches: the next request fills them."""
    import importlib

    sys._clear_type_cache()
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
            log.info("%s", report())
            since_trim = _cpu()


# Modules the container paths import on first use (measured: sys.modules before and after
# bench/load.sh), and the objects they build once and keep.
WARM_MODULES = (
    "dockyard.containers.health",
    "dockyard.network.etcfiles",
    "dockyard.network.proxy",
    "dockyard.network.proxyproc",
)


def warm_up() -> None:
    """Import and build at start-up what the first containers would otherwise import and
    build in the middle of a burst of requests.

    Those objects live for the daemon's life; made during a burst they land one here and
    one there among the burst's short-lived objects, and each keeps its page resident once
    the burst is gone (under ``bench/load.sh``: about a thousand blocks of module code and
    the decoded default seccomp profile).  Made now, they pack together."""
    import importlib

    from dockyard.containers import seccomp

    for name in WARM_MODULES:
        importlib.import_module(name)
    seccomp.default_profile()


def install_sigusr2(loop: asyncio.AbstractEventLoop) -> bool:
    """SIGUSR2 logs where the memory is (``report``); with ``DOCKYARD_TRACEMALLOC=1`` it also
    dumps the traced allocations.  True when tracing."""
    if os.environ.get(TRACE_ENV) != "1":
        loop.add_signal_handler(signal.SIGUSR2, lambda: log.warning("%s", report()))
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
        lines.append(report())
        log.warning("\n".join(lines))

    loop.add_signal_handler(signal.SIGUSR2, dump)
    return True
