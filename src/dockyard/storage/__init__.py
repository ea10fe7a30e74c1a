"""Storage drivers (blocking world): layer directories, container rw layers, their mounts.
It must not know containers' config or image records: callers name layers by id.

``open_driver`` is the one place that chooses a driver (from daemon.json's
``storage-driver``, or by probing when unset); callers only see the ``Driver`` protocol.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidParameter, Unavailable
from dockyard.storage import overlay2
from dockyard.storage._mountinfo import mount_points
from dockyard.storage._usage import disk_usage
from dockyard.storage.base import Driver
from dockyard.storage.vfs import Vfs

__all__ = ["DRIVERS", "Driver", "disk_usage", "mount_points", "open_driver"]

DRIVERS = ("overlay2", "vfs")


def open_driver(name: str | None, root: str) -> Driver:
    """Open the driver ``name`` under the data root ``root``.

    ``None`` picks overlay2 when overlayfs really mounts on ``root``'s filesystem (a tiny
    probe mount, immediately undone), else vfs.
    """
    os.makedirs(root, 0o700, exist_ok=True)
    if name is None:
        return overlay2.Overlay2(root) if overlay2.supported(root) else Vfs(root)
    if name == "overlay2":
        if not overlay2.supported(root):
            raise Unavailable(
                f"storage driver overlay2 is not supported on the filesystem of {root}: "
                'set "storage-driver": "vfs" in daemon.json or move the data root'
            )
        return overlay2.Overlay2(root)
    if name == "vfs":
        return Vfs(root)
    raise InvalidParameter(f"unknown storage driver {name!r}: use one of {', '.join(DRIVERS)}")
