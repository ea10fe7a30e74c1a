"""Content-addressable blob store (blocking world: the daemon calls it from threads).
It knows nothing about images (roots and edges are the image store's business, handed to
``unreachable``) and imports only utilities; only GC deletes blobs.

Blobs are immutable bytes named by ``sha256:`` digests, written through a verified ingest
and made visible by an atomic commit.  ``base`` names the roles (``Provider``, ``Ingester``,
``Manager``, ``Store``); ``local`` is the on-disk driver; ``gc`` decides reachability.
"""

from __future__ import annotations

from dockyard.content.base import Info, Ingester, Manager, Provider, Store, Writer
from dockyard.content.gc import unreachable
from dockyard.content.local import LocalStore

__all__ = [
    "Info",
    "Ingester",
    "LocalStore",
    "Manager",
    "Provider",
    "Store",
    "Writer",
    "unreachable",
    "write_blob",
]


def write_blob(store: Ingester, data: bytes, expected: str | None = None, ref: str = "blob") -> str:
    """Store ``data`` through any ``Ingester`` and return its digest.

    As containerd's content.WriteBlob: content that is already present is success.  With
    ``expected``, a mismatch raises ``InvalidParameter`` and stores nothing.
    """
    with store.writer(ref, expected=expected, expected_size=len(data)) as w:
        w.write(data)
        return w.commit()
