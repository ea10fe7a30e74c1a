"""``docker cp``: stat, read and write paths inside a container's root (blocking world).

Paths are resolved as the container sees them, symlinks followed inside its root only, and
resolved *while they are opened*, relative to an fd on the root (``rootdir``: ``openat2``
with ``RESOLVE_IN_ROOT``, else a walk by fds with ``O_NOFOLLOW``).  No path string under the
root is ever handed to the kernel, so a process inside the running container that swaps a
directory for a symlink to ``/`` cannot make a copy read or write the host
(CVE-2018-15664).  The tree below the copied path is read by fd (``openat`` with
``O_NOFOLLOW`` per entry) and written by the layer extractor, which works the same way and
refuses escaping names, writing through symlinks and device nodes.

``locate`` returns a ``Located``: a ``str`` (the host path, for logs and older callers) that
also carries the root and the in-container path, so ``write_tar`` resolves it again by fd
instead of trusting the string.  ``mode`` in the stat header is Go's os.FileMode
(ENGINE-API.md §1), not st_mode.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import tarfile
import time
import weakref
from typing import BinaryIO

from dockyard.containers import rootdir
from dockyard.containers.tarinfo import TypedTarInfo
from dockyard.errors import InvalidParameter, NotFound

__all__ = ["Located", "extract", "locate", "path_stat", "write_tar"]

_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHARDEV, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in for a file must not hang the copy; fstat then refuses it.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CAPABILITY = "security.capability"
_CHUNK = 1 << 20


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


class Located(str):
    """A host path found by ``locate`` that also pins what was found: an ``O_PATH`` fd on
    its directory (closed by ``write_tar`` or when the object is dropped), so the copy
    reads the very entry that was stat'ed, even if the path is renamed meanwhile."""

    parent: int
    name: str

    def __new__(cls, host: str, parent: int, name: str) -> Located:
        obj = super().__new__(cls, host)
        obj.parent = parent
        obj.name = name
        obj._close = weakref.finalize(obj, os.close, parent)
        return obj

    def close(self) -> None:
        self._close()


def locate(rootfs: str, path: str, cid: str) -> str:
    """Host path of ``path`` in the container; the last component is not followed
    (unless ``path`` ends in ``/`` or ``/.``).  Raises ``NotFound`` when it is missing."""
    if not path:
        raise InvalidParameter("path cannot be empty")
    inner = _inner(path)
    with _Target(rootfs, inner, path, cid) as target:
        target.lstat()
        host = os.path.join(rootfs, *[p for p in inner.split("/") if p])
        parent = os.dup(target.parent)
    return Located(host, parent, target.name)


def path_stat(rootfs: str, host: str, path: str) -> str:
    """The base64 JSON ``X-Docker-Container-Path-Stat`` header for ``path``."""
    with _Target(rootfs, _inner(path), path) as target:
        st = target.lstat()
        link = os.readlink(target.name, dir_fd=target.parent) if stat.S_ISLNK(st.st_mode) else ""
    mtime = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime))
        + f".{int(st.st_mtime_ns % 1_000_000_000):09d}Z"
    )
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
    """The tar ``docker cp`` expects: the path's own name at the top, recursively.

    ``host`` from ``locate`` is read through the directory fd it pinned; for a plain path
    only what is below its directory is protected from swaps."""
    if isinstance(host, Located):
        try:
            with tarfile.open(
                fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, tarinfo=TypedTarInfo
            ) as tar:
                _TarWriter(tar).add(host.parent, host.name, name)
        finally:
            host.close()
        return
    root, inner = os.path.dirname(host.rstrip("/")) or "/", "/" + os.path.basename(host)
    with (
        _Target(root, inner) as target,
        tarfile.open(
            fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, tarinfo=TypedTarInfo
        ) as tar,
    ):
        _TarWriter(tar).add(target.parent, target.name, name)


def extract(
    rootfs: str,
    path: str,
    body: BinaryIO,
    cid: str,
    no_overwrite_dir_non_dir: bool,
    owner: tuple[int, int] | None = None,
) -> None:
    """Unpack the tar ``body`` into the directory ``path`` of the container."""
    from dockyard.layers import apply_tar

    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = rootdir.open_in_root(root_fd, _inner(path))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Could not find the file {path} in container {cid}") from None
        except OSError as exc:
            raise InvalidParameter(f"cannot resolve {path} in container {cid}: {exc}") from exc
    finally:
        os.close(root_fd)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise InvalidParameter(f"extraction point is not a directory: {path}")
        # The magic link reaches the directory pinned above, wherever it is renamed to; the
        # extractor then walks below it by fd, never following a symlink.
        apply_tar(body, f"/proc/self/fd/{fd}", whiteouts="naive", allow_devices=False, owner=owner)
    finally:
        os.close(fd)


def _inner(path: str) -> str:
    """The in-container path; a trailing ``/`` or ``/.`` means "follow the last link"."""
    if path.endswith("/") or path.endswith("/."):
        return "/" + path.strip("/") + "/."
    return "/" + path.strip("/")


class _Target:
    """The parent directory of an in-container path, pinned by fd, and its last name."""

    def __init__(self, rootfs: str, inner: str, path: str = "", cid: str = "") -> None:
        self.rootfs = rootfs
        self.inner = inner
        self.path = path or inner
        self.cid = cid
        self.parent = -1
        self.name = ""

    def __enter__(self) -> _Target:
        root_fd = os.open(self.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if self.inner.endswith("/."):
                self.parent = rootdir.open_in_root(root_fd, self.inner)
                self.name = ""
            else:
                self.parent, self.name = rootdir.open_parent(root_fd, self.inner)
        except OSError as exc:
            self.parent = -1
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise self.missing() from None
            raise InvalidParameter(f"cannot resolve {self.path}: {exc.strerror}") from exc
        finally:
            os.close(root_fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.parent >= 0:
            os.close(self.parent)

    def missing(self) -> NotFound:
        where = f" in container {self.cid}" if self.cid else ""
        return NotFound(f"Could not find the file {self.path}{where}")

    def lstat(self) -> os.stat_result:
        try:
            if not self.name:
                return os.fstat(self.parent)
            return os.stat(self.name, dir_fd=self.parent, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            raise self.missing() from None


class _TarWriter:
    """Write a tree into a tar by fd: each entry is opened relative to its parent's fd
    with ``O_NOFOLLOW``, and what is opened is what is described (``fstat``)."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.links: dict[tuple[int, int], str] = {}

    def add(self, parent: int, name: str, arcname: str) -> None:
        """Add ``parent``/``name`` (``parent`` itself when ``name`` is "") as ``arcname``."""
        if not name:
            fd = os.open(".", _DIR_FLAGS, dir_fd=parent)
            try:
                self.directory(fd, os.fstat(fd), arcname)
            finally:
                os.close(fd)
            return
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return  # removed while the copy ran, as tar does
        if stat.S_ISDIR(st.st_mode):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    return  # swapped while the copy ran: skip, never follow
                raise
            try:
                self.directory(fd, os.fstat(fd), arcname)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            self.regular(parent, name, arcname)
        elif stat.S_ISLNK(st.st_mode):
            info = self.info(st, arcname, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=parent)
            self.tar.addfile(info)
        elif stat.S_ISFIFO(st.st_mode):
            self.tar.addfile(self.info(st, arcname, tarfile.FIFOTYPE))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            kind = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info = self.info(st, arcname, kind)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        # sockets are skipped, as moby's archive does

    def directory(self, fd: int, st: os.stat_result, arcname: str) -> None:
        self.tar.addfile(self.info(st, arcname, tarfile.DIRTYPE))
        for child in sorted(os.listdir(fd)):
            self.add(fd, child, f"{arcname}/{child}")

    def regular(self, parent: int, name: str, arcname: str) -> None:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP):
                return  # swapped for a symlink or removed meanwhile: never follow
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return  # swapped for something else meanwhile
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info = self.info(st, arcname, tarfile.LNKTYPE)
                info.linkname = self.links[key]
                self.tar.addfile(info)
                return
            if st.st_nlink > 1:
                self.links[key] = arcname
            info = self.info(st, arcname, tarfile.REGTYPE)
            info.size = st.st_size
            try:
                cap = os.getxattr(fd, _CAPABILITY)
                info.pax_headers["SCHILY.xattr." + _CAPABILITY] = cap.decode(
                    "utf-8", "surrogateescape"
                )
            except OSError:
                pass  # no file capability (ENODATA) or no xattrs on this filesystem
            with os.fdopen(fd, "rb", buffering=_CHUNK, closefd=False) as f:
                self.tar.addfile(info, f)
        finally:
            os.close(fd)

    @staticmethod
    def info(st: os.stat_result, arcname: str, kind: bytes) -> tarfile.TarInfo:
        info = TypedTarInfo(arcname)
        info.type = kind
        info.mode = st.st_mode  # with its type bits, as moby's FileInfoHeader writes it
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = st.st_mtime
        info.size = 0
        return info
