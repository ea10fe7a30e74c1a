"""The Engine API server (asyncio world): routes, version negotiation, errors, streams.
It must not hold business logic nor import ``daemon``: each route decodes a request, makes
one service call and encodes the answer.

The services are handed over by ``daemon`` through :class:`Services`.
"""

from dockyard.api.app import Services, make_app

__all__ = ["Services", "make_app"]
