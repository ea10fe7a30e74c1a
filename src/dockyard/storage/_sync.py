"""Flushing a layer directory to disk (blocking world).

One ``syncfs`` of the filesystem holding the layer rather than an fsync per extracted file:
a layer holds thousands of files, and the kernel writes them out in one pass (containerd's
overlay snapshotter and moby do no flush at all; Docker can lose a pulled layer's bytes on a
power cut while its metadata says it is complete).
"""

from __future__ import annotations

import os

from dockyard.errors import Internal
from dockyard.runtime import linux

__all__ = ["sync_tree"]


def sync_tree(path: str, layer_id: str) -> None:
    """Make everything written under ``path`` durable; ``Internal`` naming the layer if not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            linux.syncfs(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise Internal(f"failed to flush layer {layer_id} to disk: {exc}") from exc
