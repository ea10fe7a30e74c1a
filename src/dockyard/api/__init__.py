"""The Engine API server (asyncio world): routes, version negotiation, errors, streams.

Handlers decode a request, make one service call and encode the answer; business logic
lives in the services handed over by ``daemon`` through :class:`Services`.
"""

from dockyard.api.app import Services, make_app

__all__ = ["Services", "make_app"]
