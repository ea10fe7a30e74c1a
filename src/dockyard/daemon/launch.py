"""``dockyardd``'s entry point: pick the memory allocator, then run the daemon.

After a burst of API requests CPython's own allocator keeps the daemon's RSS near its peak:
pymalloc returns a 1 MiB arena only once every object in it is gone, and a burst leaves a
few long-lived objects in most of the arenas it opened (bench/README.md, "Daemon RSS under
load.sh": 24 arenas before a load, 71 after it, for 1.9 MB more live data).  With every
allocation going to jemalloc instead (``PYTHONMALLOC=malloc``, jemalloc preloaded), freed
pages go back to the OS page by page a second after they fall idle: under ``bench/load.sh``
the daemon ends 15 % above its start instead of 110 %, at the same container start time.

Both must be set before the interpreter starts, so this module, which imports nothing heavy,
executes the interpreter again once with them set when Debian's ``libjemalloc2`` is
installed.  ``DOCKYARD_ALLOCATOR=system`` keeps glibc and pymalloc; ``DOCKYARD_MALLOC_CONF``
replaces jemalloc's settings below (for measuring).  The daemon's children (the supervisor,
proxies, container processes) get the environment as it was.
"""

from __future__ import annotations

import os
import sys

__all__ = ["JEMALLOC_PATHS", "MALLOC_CONF", "allocator_env", "main"]

JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)
# background_thread, decay: a background thread purges pages idle for a second (an idle
# daemon does no allocations that would purge them otherwise).
# tcache_nslots_*: small thread caches, so that blocks are handed out from the fullest slabs
# rather than in batches of up to 200 from wherever: fewer pages stay half used after a burst.
# slab_sizes: one-page slabs for every size class up to 4 KiB (jemalloc picks up to 7 pages
# to waste fewer bytes per slab), so one long-lived object pins one page, not seven.
# Measured under bench/load.sh (bench/README.md, "jemalloc's settings"): RSS 30 s after the
# load +30 % with jemalloc's defaults, +15 % with these, the same request throughput.
MALLOC_CONF = (
    "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,"
    "tcache_nslots_small_max:16,tcache_nslots_small_min:4,slab_sizes:1-4096:1"
)
_SAVED = "DOCKYARD_ALLOCATOR_SAVED_"  # the variables as they were, to give back to children
_VARS = ("LD_PRELOAD", "PYTHONMALLOC", "MALLOC_CONF")


def allocator_env(environ: dict[str, str]) -> dict[str, str] | None:
    """The environment to execute the daemon again with, or None to run it as it is."""
    if environ.get("DOCKYARD_ALLOCATOR", "jemalloc") != "jemalloc" or _SAVED + "SET" in environ:
        return None
    lib = next((p for p in JEMALLOC_PATHS if os.path.exists(p)), None)
    if lib is None:
        return None
    env = dict(environ)
    for name in _VARS:
        if name in environ:
            env[_SAVED + name] = environ[name]
    env[_SAVED + "SET"] = lib
    env["LD_PRELOAD"] = " ".join(filter(None, (lib, environ.get("LD_PRELOAD"))))
    env["PYTHONMALLOC"] = "malloc"
    env["MALLOC_CONF"] = environ.get("DOCKYARD_MALLOC_CONF") or MALLOC_CONF
    return env


def _restore(environ: os._Environ[str]) -> None:
    """Give the daemon's children the environment it was started with."""
    if environ.pop(_SAVED + "SET", None) is None:
        return
    for name in _VARS:
        saved = environ.pop(_SAVED + name, None)
        if saved is None:
            environ.pop(name, None)
        else:
            environ[name] = saved


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    env = allocator_env(dict(os.environ))
    if env is not None:
        try:
            os.execve(sys.executable, [sys.executable, "-m", "dockyard.daemon.launch", *args], env)
        except OSError as exc:  # run on the system allocator rather than not at all
            print(f"dockyardd: could not switch to jemalloc: {exc}", file=sys.stderr)
    _restore(os.environ)
    from dockyard.daemon.main import main as run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
