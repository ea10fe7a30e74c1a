"""The vfs storage driver (blocking world): every layer is a full copy of its parent.

The fallback when overlayfs does not mount on the data root (e.g. the root is itself on
overlayfs, or on a filesystem without d_type), as moby's ``daemon/graphdriver/vfs``.
Slow and space-hungry, but it needs nothing from the kernel: no mounts at all, so
``mount`` just returns the layer directory.  ``whiteouts="naive"``: ``apply_tar`` deletes
whited-out paths from the copy.

Layout: ``ROOT/vfs/dir/<id>``.  The copy is made with ``cp -a --reflink=auto`` (GNU
coreutils): it preserves hard links, symlinks, owners, modes, times and all xattrs
(including ``trusted.*`` and ``security.capability`` when run as root), and shares extents
on filesystems that can (btrfs, xfs).  ``subprocess`` execs without running Python in the
child, so it is safe from the threaded daemon.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Literal

from dockyard.errors import Internal, NotFound
from dockyard.fsutil import fsync_dir
from dockyard.storage import _layerid
from dockyard.storage._layerid import stored_ids
from dockyard.storage._sync import sync_tree
from dockyard.storage._usage import disk_usage

__all__ = ["Vfs"]


class Vfs:
    """Layers as plain directories, each a full copy of its parent."""

    name = "vfs"
    whiteouts: Literal["overlay", "naive"] = "naive"

    def __init__(self, root: str) -> None:
        self.home = os.path.join(os.path.realpath(root), "vfs", "dir")
        os.makedirs(self.home, 0o700, exist_ok=True)

    def _dir(self, layer_id: str) -> str:
        return os.path.join(self.home, _layerid.check(layer_id))

    def diff_dir(self, layer_id: str) -> str:
        """The directory ``create`` returned for the layer (a full copy of its parents)."""
        return self._dir(layer_id)

    def create(self, layer_id: str, parent: str | None) -> str:
        d = self._dir(layer_id)
        source = self._dir(parent) if parent is not None else None
        if source is not None and not os.path.isdir(source):
            raise NotFound(f"parent layer {parent} does not exist: pull or load it first")
        self.remove(layer_id)  # a leftover of a crash: start over
        if source is None:
            os.mkdir(d, 0o755)
            fsync_dir(self.home)
            return d
        proc = subprocess.run(
            ["cp", "-a", "--reflink=auto", "-T", "--", source, d],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            shutil.rmtree(d, ignore_errors=True)
            detail = proc.stderr.decode(errors="replace").strip()
            raise Internal(f"failed to copy layer {parent} for {layer_id}: {detail}")
        sync_tree(d, layer_id)  # the copy itself, so that a rw layer outlives a power cut
        fsync_dir(self.home)
        return d

    def ids(self) -> list[str]:
        return stored_ids(self.home)

    def sync(self, layer_id: str) -> None:
        sync_tree(self._dir(layer_id), layer_id)

    def exists(self, layer_id: str) -> bool:
        return os.path.isdir(self._dir(layer_id))

    def remove(self, layer_id: str) -> None:
        try:
            shutil.rmtree(self._dir(layer_id))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise Internal(f"failed to remove layer {layer_id}: {exc}") from exc

    def size(self, layer_id: str) -> int:
        d = self._dir(layer_id)
        if not os.path.isdir(d):
            raise NotFound(f"layer {layer_id} does not exist")
        return disk_usage(d)

    def prepare(self, rw_id: str, parent: str | None) -> None:
        self.create(rw_id, parent)

    def mount(self, rw_id: str) -> str:
        d = self._dir(rw_id)
        if not os.path.isdir(d):
            raise NotFound(f"layer {rw_id} does not exist")
        return d

    def unmount(self, rw_id: str) -> None:
        self._dir(rw_id)  # validates the id; nothing is mounted

    def status(self) -> list[tuple[str, str]]:
        return []  # moby's vfs reports no DriverStatus

    def metadata(self, layer_id: str) -> dict[str, str] | None:
        self._dir(layer_id)  # validates the id
        return None  # moby's vfs GetMetadata: nothing (inspect shows "Data": null)
