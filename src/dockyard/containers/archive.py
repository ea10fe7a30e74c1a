"""``docker cp``: stat, read and write paths inside a container's root (blocking world).

Paths are resolved as the container sees them, with symlinks followed only inside its
root (``runtime.rootfs.resolve``), so ``..`` or a symlink to ``/etc`` cannot reach the
host.  Writes go through the layer extractor, which refuses escaping names, writing
through symlinks and device nodes.  ``mode`` in the stat header is Go's os.FileMode
(ENGINE-API.md §1), not st_mode.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import tarfile
import time
from typing import BinaryIO

from dockyard.errors import InvalidParameter, NotFound
from dockyard.runtime.rootfs import resolve

__all__ = ["PathStat", "extract", "locate", "path_stat", "write_tar"]

_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_mode(st: os.stat_result) -> int:
    mode = st.st_mode & 0o777
    kind = stat.S_IFMT(st.st_mode)
    mode |= {
        stat.S_IFDIR: _GO_DIR,
        stat.S_IFLNK: _GO_SYMLINK,
        stat.S_IFIFO: _GO_PIPE,
        stat.S_IFSOCK: _GO_SOCKET,
        stat.S_IFBLK: _GO_DEVICE,
        stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV,
    }.get(kind, 0)
    if st.st_mode & stat.S_ISUID:
        mode |= _GO_SETUID
    if st.st_mode & stat.S_ISGID:
        mode |= _GO_SETGID
    if st.st_mode & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


PathStat = dict


def locate(rootfs: str, path: str, cid: str) -> str:
    """Host path of ``path`` in the container; the last component is not followed."""
    if not path:
        raise InvalidParameter("path cannot be empty")
    clean = "/" + path.strip("/")
    parent, _, name = clean.rpartition("/")
    base = resolve(rootfs, parent or "/")
    host = os.path.join(base, name) if name else base
    if path.endswith("/.") or path.endswith("/"):
        host = resolve(rootfs, clean)
    if not os.path.lexists(host):
        raise NotFound(f"Could not find the file {path} in container {cid}")
    return host


def path_stat(rootfs: str, host: str, path: str) -> str:
    st = os.lstat(host)
    mtime = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime))
        + f".{int(st.st_mtime_ns % 1_000_000_000):09d}Z"
    )
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = os.readlink(host)
    name = os.path.basename(path.rstrip("/")) or "/"
    data = {
        "name": name,
        "size": st.st_size,
        "mode": go_mode(st),
        "mtime": mtime,
        "linkTarget": link,
    }
    return base64.b64encode(json.dumps(data).encode()).decode()


def write_tar(host: str, name: str, out: BinaryIO) -> None:
    """The tar ``docker cp`` expects: the path's own name at the top, recursively."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(host, arcname=name, recursive=True)


def extract(
    rootfs: str,
    path: str,
    body: BinaryIO,
    cid: str,
    no_overwrite_dir_non_dir: bool,
    owner: tuple[int, int] | None = None,
) -> None:
    from dockyard.layers import apply_tar

    target = resolve(rootfs, "/" + path.strip("/"))
    if not os.path.exists(target):
        raise NotFound(f"Could not find the file {path} in container {cid}")
    if not os.path.isdir(target):
        raise InvalidParameter(f"extraction point is not a directory: {path}")
    apply_tar(body, target, whiteouts="naive", allow_devices=False, owner=owner)
