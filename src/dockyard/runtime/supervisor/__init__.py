"""The container supervisor (``dockyard-shim``): the parent of container processes, their
stdio and logs, exit statuses on disk; it outlives the daemon.  Synchronous and
single-threaded; ``server.py`` must not import asyncio code, ``client.py`` is the daemon's
side of its socket."""

__all__: list[str] = []
