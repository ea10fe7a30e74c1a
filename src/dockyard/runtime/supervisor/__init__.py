"""The container supervisor (``dockyard-shim``): see ``server.py``; ``client.py`` is the
daemon's side of its socket."""

__all__: list[str] = []
