"""Whiteouts and opaque directories: how a layer deletes what lower layers hold (blocking world).

In a layer tar (OCI image spec, "Whiteouts"; moby ``pkg/archive/whiteouts.go``):
- ``DIR/.wh.NAME`` means NAME is deleted from the lower layers;
- ``DIR/.wh..wh..opq`` means DIR is opaque: none of its lower-layer children show through;
- other ``.wh..wh.*`` names are aufs bookkeeping and are skipped.
The marker files themselves are never written.

Two on-disk encodings, chosen by the storage driver:
- ``overlay`` (the diff dir is an overlayfs upper dir): a whiteout is a character device
  0:0 named NAME, an opaque dir carries the xattr ``trusted.overlay.opaque=y``
  (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories");
- ``naive`` (the dir is a full copy of the parent, e.g. vfs): a whiteout deletes NAME now;
  an opaque marker deletes, once the whole tar is applied, every path below DIR that this
  tar did not write (so the order of marker and entries in the tar does not matter).
"""

from __future__ import annotations

import enum
import os
import stat

from dockyard.layers._tree import Parts, Tree

__all__ = [
    "OVERLAY_OPAQUE_XATTR",
    "WHITEOUT_META_PREFIX",
    "WHITEOUT_OPAQUE",
    "WHITEOUT_PREFIX",
    "Kind",
    "classify",
    "mark_overlay_opaque",
    "prune_opaque",
    "write_overlay_whiteout",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"


class Kind(enum.Enum):
    NONE = "none"  # an ordinary entry
    WHITEOUT = "whiteout"  # deletes the name after the prefix
    OPAQUE = "opaque"  # makes the parent directory opaque
    META = "meta"  # aufs bookkeeping: skip


def classify(basename: str) -> Kind:
    if basename == WHITEOUT_OPAQUE:
        return Kind.OPAQUE
    if basename.startswith(WHITEOUT_META_PREFIX):
        return Kind.META
    if basename.startswith(WHITEOUT_PREFIX):
        return Kind.WHITEOUT
    return Kind.NONE


def write_overlay_whiteout(tree: Tree, dir_fd: int, path: Parts, uid: int, gid: int) -> None:
    """Replace ``path`` (in the directory ``dir_fd``) with overlayfs's 0:0 char device."""
    name = path[-1]
    tree.remove(dir_fd, name, path)
    os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=dir_fd)
    os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def mark_overlay_opaque(dir_fd: int) -> None:
    """Hide every lower-layer child of the directory open as ``dir_fd``."""
    os.setxattr(dir_fd, OVERLAY_OPAQUE_XATTR, b"y")


def prune_opaque(tree: Tree, dir_fd: int, prefix: Parts, written: set[Parts]) -> None:
    """Naive opaque dir: delete below ``prefix`` every path this tar did not write.

    ``written`` holds every entry of the tar and every ancestor of one, so a directory that
    merely contains written entries is kept and pruned recursively.
    """
    for name in os.listdir(dir_fd):
        path = prefix + (name,)
        if path not in written:
            tree.remove(dir_fd, name, path)
            continue
        st = tree.lstat(dir_fd, name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            child = tree.open_dir(dir_fd, name)
            try:
                prune_opaque(tree, child, path, written)
            finally:
                os.close(child)
