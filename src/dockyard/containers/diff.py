"""What a container changed, as a list and as a layer tar; its whole filesystem as a tar.

Blocking, pure-filesystem functions over an overlay2 rw layer (see
``dockyard.storage.overlay2``): ``upper`` is ``HOME/<rw id>/diff``, the overlayfs upper dir,
where a deletion is a 0:0 character device and a directory that hides its lower-layer
children carries ``trusted.overlay.opaque=y``; ``lower`` is the image's layer diff dirs,
topmost first (the lower dirs of the mount, in overlayfs order).

- ``changes``: ``GET /containers/{id}/changes`` (moby ``archive.OverlayChanges``);
- ``diff_tar``: the layer tar ``docker commit`` stores (moby's overlay2 ``Diff``, i.e.
  ``TarWithOptions`` with ``OverlayWhiteoutFormat``): whiteouts written the OCI way;
- ``export_tar``: ``docker export``, the merged root as a plain tar.

Tars are PAX, names relative (``etc/passwd``, directories ``etc/``), the root itself not
an entry, symlinks never followed, hard links within the tar kept as links, mtimes in
whole seconds and no user/group names (as moby's ``FileInfoHeader``), the
``security.capability`` xattr carried as ``SCHILY.xattr.security.capability``; sockets
are skipped (tar cannot hold them).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.containers.tarinfo import TypedTarInfo
from dockyard.layers.whiteout import OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

__all__ = [
    "CHANGE_ADD",
    "CHANGE_DELETE",
    "CHANGE_MODIFY",
    "RUNTIME_PATHS",
    "changes",
    "diff_tar",
    "export_tar",
]

CHANGE_MODIFY, CHANGE_ADD, CHANGE_DELETE = 0, 1, 2

_CAPABILITY_XATTR = "security.capability"
_XATTR_PAX = "SCHILY.xattr."


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:  # ENODATA, or xattrs unsupported here
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _in_lower(parts: list[str], lower: list[str]) -> bool:
    """Whether ``parts`` is visible in the overlay of ``lower`` (topmost first).

    A layer's 0:0 char device hides the name (and below) from the layers under it, a
    non-directory hides everything below its name, an opaque directory hides the
    lower layers' children of that directory.
    """
    for layer in lower:
        cur = layer
        stop = False  # an opaque ancestor in this layer: nothing below it shows through
        for i, name in enumerate(parts):
            cur = os.path.join(cur, name)
            st = _lstat(cur)
            if st is None:
                break
            if _is_whiteout(st):
                return False
            if i == len(parts) - 1:
                return True
            if not stat.S_ISDIR(st.st_mode):
                return False
            if _is_opaque(cur):
                stop = True
        if stop:
            return False
    return False


def _entries(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(path, name relative to root, lstat)`` for everything below ``root``, depth first
    in byte order (as Go's filepath.Walk), a directory before its entries, symlinks not
    followed."""

    def listing(directory: str, rel: str) -> Iterator[tuple[str, str]]:
        for name in sorted(os.listdir(directory), key=os.fsencode):
            yield os.path.join(directory, name), f"{rel}/{name}" if rel else name

    stack = [listing(root, "")]  # iterators, not recursion: no depth limit
    while stack:
        for path, relname in stack[-1]:
            st = _lstat(path)
            if st is None:  # vanished meanwhile
                continue
            yield path, relname, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(listing(path, relname))
                break
        else:
            stack.pop()


# What moby's init layer (between the image and the rw layer) holds: the runtime's own mount
# points.  dockyard has no init layer, so these stubs land in the rw layer; they are not the
# process's changes and ``changes`` leaves them out, with directories changed only by them.
RUNTIME_PATHS = frozenset(
    {
        "/.dockerenv",
        "/dev/console",
        "/dev/pts",
        "/dev/shm",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/mtab",
        "/etc/resolv.conf",
        "/proc",
        "/sys",
    }
)


def _without_runtime_paths(found: list[dict], runtime_paths: frozenset[str]) -> list[dict]:
    kept = [c for c in found if c["Path"] not in runtime_paths or c["Kind"] == CHANGE_DELETE]
    parents = {os.path.dirname(p) for p in runtime_paths}

    def only_for_runtime(c: dict) -> bool:
        if c["Path"] not in parents or c["Kind"] != CHANGE_MODIFY:
            return False
        prefix = c["Path"].rstrip("/") + "/"
        return not any(other["Path"].startswith(prefix) for other in kept)

    return [c for c in kept if not only_for_runtime(c)]


def changes(
    upper: str, lower: list[str], runtime_paths: frozenset[str] = RUNTIME_PATHS
) -> list[dict]:
    """``[{"Path": "/abs", "Kind": 0|1|2}]`` sorted by path: 0 modified, 1 added, 2 deleted.

    Every name in ``upper`` is reported: a 0:0 char device as deleted; anything else as
    added if it is not visible in ``lower`` (no lower layer holds it, or a whiteout, a
    non-directory or an opaque dir above it hides it), else modified.  So a directory
    that only holds changed children is "modified" (moby: adding ``/data/f`` to an
    existing ``/data`` gives ``C /data`` and ``A /data/f``), and below an opaque
    directory everything is "added" and nothing of the lower layers is listed.
    ``runtime_paths`` (the runtime's mount points) are not listed: see ``RUNTIME_PATHS``.
    """
    found: list[dict] = []
    hidden_below: list[str] = []  # relnames (with trailing "/") whose lower children are hidden

    def hidden(relname: str) -> bool:
        return any(relname.startswith(prefix) for prefix in hidden_below)

    for path, relname, st in _entries(upper):
        if _is_whiteout(st):
            found.append({"Path": "/" + relname, "Kind": CHANGE_DELETE})
            continue
        visible = not hidden(relname) and _in_lower(relname.split("/"), lower)
        found.append({"Path": "/" + relname, "Kind": CHANGE_MODIFY if visible else CHANGE_ADD})
        hides = stat.S_ISDIR(st.st_mode) and (not visible or _is_opaque(path))
        if hides and not hidden(relname):
            hidden_below.append(relname + "/")
    found.sort(key=lambda c: os.fsencode(c["Path"]))
    return _without_runtime_paths(found, runtime_paths)


def diff_tar(upper: str, out: BinaryIO) -> None:
    """Write the layer tar of the rw layer whose overlayfs upper dir is ``upper``.

    A 0:0 char device NAME becomes an empty regular file ``.wh.NAME`` (mode 0600, the
    device's owner and mtime); an opaque dir is followed by an empty ``.wh..wh..opq``
    inside it (the dir's owner and permission bits).  ``trusted.overlay.*`` is not copied.
    """
    _write(upper, out, overlay=True)


def export_tar(rootfs: str, out: BinaryIO) -> None:
    """Write every entry below ``rootfs`` (the merged root) as a tar, nothing skipped."""
    _write(rootfs, out, overlay=False)


def _write(root: str, out: BinaryIO, *, overlay: bool) -> None:
    # TypedTarInfo: gettarinfo keeps st_mode, written whole with its type bits as moby does
    with tarfile.open(
        fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, tarinfo=TypedTarInfo
    ) as tf:
        for path, relname, st in _entries(root):
            if overlay and _is_whiteout(st):
                head, _, name = relname.rpartition("/")
                wh = tarfile.TarInfo((head + "/" if head else "") + WHITEOUT_PREFIX + name)
                wh.type, wh.size, wh.mode = tarfile.REGTYPE, 0, 0o600
                wh.uid, wh.gid, wh.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
                tf.addfile(wh)
                continue
            info = tf.gettarinfo(path, arcname=relname)
            if info is None:  # a socket
                continue
            info.uname = info.gname = ""
            info.mtime = int(st.st_mtime)
            try:
                cap = os.getxattr(path, _CAPABILITY_XATTR, follow_symlinks=False)
            except OSError:
                cap = None
            if cap:
                info.pax_headers = {
                    _XATTR_PAX + _CAPABILITY_XATTR: cap.decode("utf-8", "surrogateescape")
                }
            if info.isreg():
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)
            if overlay and info.isdir() and _is_opaque(path):
                opq = tarfile.TarInfo(relname + "/" + WHITEOUT_OPAQUE)
                opq.type, opq.size, opq.mode = tarfile.REGTYPE, 0, info.mode & 0o777
                opq.uid, opq.gid, opq.mtime = info.uid, info.gid, info.mtime
                tf.addfile(opq)
