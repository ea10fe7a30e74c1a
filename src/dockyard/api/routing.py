"""Route registration with the optional ``/vX.Y`` prefix (asyncio world).

Each route is added twice, bare and behind ``/v{version}``; the error middleware validates
the captured version.  Image names hold ``/`` and ``:`` unescaped (ENGINE-API.md §10.7), so
``{name}`` in image paths is declared greedy by the route modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["Handler", "Routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PREFIX = r"/v{version:[0-9]+\.[0-9]+}"


class Routes:
    """A table of routes declared by one ``routes/*.py`` module."""

    def __init__(self) -> None:
        self.table: list[tuple[str, str, Handler]] = []

    def _add(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def deco(handler: Handler) -> Handler:
            self.table.append((method, path, handler))
            return handler

        return deco

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("GET", path)

    def head(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("HEAD", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("POST", path)

    def put(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("PUT", path)

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path)

    def install(self, app: web.Application) -> None:
        for method, path, handler in self.table:
            for full in (path, _PREFIX + path):
                app.router.add_route(method, full, handler)
