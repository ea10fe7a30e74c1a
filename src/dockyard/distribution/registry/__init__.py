"""dockyard's registry server: the OCI distribution spec v1.1 over a filesystem storage.

``main`` is the ``dockyard-registry`` entry point (``serve`` and ``gc``); ``make_app`` builds
the aiohttp application (``app``: middlewares and dispatch; ``routes``: handlers;
``service``: the API's rules; ``auth``: htpasswd, token auth and the token server;
``proxy``/``upstream``: the pull-through cache); ``FilesystemStorage`` is the storage back
end behind the roles of ``base``; ``gc.collect`` is the online garbage collector.  It must
not import ``api`` or ``daemon``.
"""

from __future__ import annotations

from dockyard.distribution.registry.app import make_app
from dockyard.distribution.registry.config import Config, load
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.filesystem import FilesystemStorage
from dockyard.distribution.registry.gc import Report, collect

__all__ = ["Config", "FilesystemStorage", "RegistryError", "Report", "collect", "load", "make_app"]
