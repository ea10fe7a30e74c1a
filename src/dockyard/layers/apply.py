"""Apply one layer tar to a directory, safely (blocking world: run it in a thread).

Semantics follow the OCI image spec's layer format and moby's ``pkg/archive``
(``UnpackLayer``/``createTarFile``):
- entries are read once, in order (``tarfile`` mode ``r|``: the input may be a pipe);
- an entry replaces whatever is at its path (remove, then create), except that a directory
  entry over an existing directory only updates its metadata and keeps its children;
- metadata is applied as Docker does: lchown, then xattrs (chown clears
  ``security.capability``), then chmod (chown clears setuid/setgid), then times;
  directory times are set after the last entry, since creating children changes them;
- missing parent directories are created with mode 0755;
- whiteouts are written in the driver's encoding (see ``whiteout``).

Safety (hostile layers): every path goes through ``_tree``, which normalises names
lexically (absolute names and ``..`` escapes are refused) and then reaches each parent by
``openat(O_NOFOLLOW | O_DIRECTORY)`` from an fd on the root; its docstring proves that no
write can land outside the root.  On top of that:
- a symlink may point anywhere: its target is interpreted inside the container and never
  followed here;
- a hard link's target is a path inside the root (a leading ``/`` is stripped, as Docker
  does), already extracted, reached without symlinks; linking never follows a symlink
  (``linkat`` without ``AT_SYMLINK_FOLLOW``) and a link to a symlink whose target is
  absolute or climbs out of the root is refused outright;
- device nodes need ``allow_devices``; FIFOs are always allowed;
- ``trusted.overlay.*``/``user.overlay.*`` xattrs from the tar are dropped, so a layer
  cannot forge opaque directories or redirects for overlayfs;
- a corrupt or truncated tar (bad header checksum, short data, broken compression) is
  refused, never silently cut short.

Errors: ``InvalidParameter`` for anything wrong with the tar; ``Internal`` when writing to
the root fails (disk full, xattrs unsupported...).  A failed apply leaves the root
half-written; the storage driver discards it (``Driver.create`` starts over).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import BinaryIO, Literal, Self

from dockyard.errors import Internal, InvalidParameter
from dockyard.layers import whiteout
from dockyard.layers._tree import Parts, Tree, display, normalise
from dockyard.layers.compression import READ_ERRORS
from dockyard.layers.tarsplit import Recorder

__all__ = ["apply_tar"]

_XATTR_PAX = "SCHILY.xattr."
_DROPPED_XATTRS = ("trusted.overlay.", "user.overlay.")
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_TAR_ERRORS: tuple[type[BaseException], ...] = (tarfile.TarError, *READ_ERRORS)
# Not in typeshed, but public names of tarfile since Python 3.2.
_BAD_HEADER: tuple[type[BaseException], ...] = (
    tarfile.InvalidHeaderError,  # type: ignore[attr-defined]
    tarfile.TruncatedHeaderError,  # type: ignore[attr-defined]
)


class _StrictTarInfo(tarfile.TarInfo):
    """Make a bad or partial header an error instead of a silent end of archive.

    ``TarFile.next`` treats ``InvalidHeaderError``/``TruncatedHeaderError`` after the
    first member as the end of the archive; Go's archive/tar (and so Docker) reports them.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except _BAD_HEADER as exc:
            raise tarfile.ReadError(
                f"corrupt tar header at offset {tarfile_.offset}: {exc}"
            ) from None


def apply_tar(
    stream: BinaryIO,
    root: str,
    *,
    whiteouts: Literal["overlay", "naive"],
    allow_devices: bool = False,
    owner: tuple[int, int] | None = None,
    recorder: Recorder | None = None,
) -> int:
    """Extract one uncompressed layer tar into ``root``; return the layer's size as
    dockerd's overlay2 reports it (``directory.Size`` of the applied diff): the bytes of
    regular files plus each symlink's own size, the length of its target.

    ``owner`` (uid, gid) replaces every entry's own: ``docker cp -a`` into a container
    that runs as a user gives that user the files, as moby's ``tarCopyOptions`` does.
    ``recorder`` (wrapping ``stream``, which is then not read directly) records the tar's
    headers and payload references so it can be rebuilt later (``tarsplit``).

    Raises ``InvalidParameter`` on a corrupt/truncated tar or a hostile entry.
    """
    if whiteouts not in ("overlay", "naive"):
        raise InvalidParameter(f"unknown whiteout format {whiteouts!r}: use 'overlay' or 'naive'")
    tree = Tree(root)
    if recorder is not None:
        tree.on_remove = recorder.removed
    try:
        return _Applier(tree, whiteouts, allow_devices, owner, recorder).run(
            recorder if recorder is not None else stream
        )
    finally:
        tree.close()


class _Applier:
    def __init__(
        self,
        tree: Tree,
        whiteouts: str,
        allow_devices: bool,
        owner: tuple[int, int] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.tree = tree
        self.recorder = recorder
        self.owner = owner
        self.overlay = whiteouts == "overlay"
        self.allow_devices = allow_devices
        self.written: set[Parts] = set()
        self.opaque: list[Parts] = []
        self.dir_times: list[tuple[Parts, int]] = []
        self.total = 0

    def run(self, stream: BinaryIO) -> int:
        try:
            tf = tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictTarInfo)
        except _TAR_ERRORS as exc:
            raise InvalidParameter(f"invalid layer tar: {exc}") from exc
        while True:
            if self.recorder is not None and tf.firstmember is None:  # type: ignore[attr-defined]
                # Before the next header (tarfile.open read the first one already).
                self.recorder.flush(tf.offset)
            try:
                member = tf.next()
            except _TAR_ERRORS as exc:
                raise InvalidParameter(f"invalid layer tar (corrupt or truncated): {exc}") from exc
            if member is None:
                break
            self.tree.trim()
            if self.owner is not None:
                member.uid, member.gid = self.owner
            try:
                self.entry(tf, member)
            except OSError as exc:
                raise Internal(f"failed to apply layer entry {member.name!r}: {exc}") from exc
        try:
            for parts in self.opaque:
                self.prune(parts)
            self.set_dir_times()
        except OSError as exc:
            raise Internal(f"failed to finish applying layer: {exc}") from exc
        return self.total

    def mark_written(self, parts: Parts) -> None:
        for i in range(len(parts), 0, -1):
            prefix = parts[:i]
            if prefix in self.written:
                return
            self.written.add(prefix)

    def entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = normalise(member.name)
        if not parts:
            if not member.isdir():
                raise InvalidParameter(f"invalid tar entry {member.name!r}: names the layer root")
            self.metadata(self.tree.root_fd, None, member)
            self.dir_times.append(((), _ns(member.mtime)))
            return
        kind = whiteout.classify(parts[-1])
        if kind is whiteout.Kind.META:
            return
        if kind is whiteout.Kind.OPAQUE:
            self.opaque_marker(parts[:-1], member)
        elif kind is whiteout.Kind.WHITEOUT:
            target = parts[-1][len(whiteout.WHITEOUT_PREFIX) :]
            if target in ("", ".", ".."):
                raise InvalidParameter(f"invalid tar entry {member.name!r}: whiteout of no name")
            self.whiteout(parts[:-1] + (target,), member)
        else:
            self.create(tf, parts, member)

    def whiteout(self, path: Parts, member: tarfile.TarInfo) -> None:
        if self.overlay:
            pfd = self.tree.parent(path[:-1], member.name)
            whiteout.write_overlay_whiteout(self.tree, pfd, path, member.uid, member.gid)
            self.mark_written(path)
            return
        try:
            pfd = self.tree.parent(path[:-1], member.name, create=False)
        except FileNotFoundError:
            return  # nothing below to delete
        self.tree.remove(pfd, path[-1], path)

    def opaque_marker(self, directory: Parts, member: tarfile.TarInfo) -> None:
        dfd = self.tree.parent(directory, member.name)
        self.mark_written(directory)
        if self.overlay:
            whiteout.mark_overlay_opaque(dfd)
        else:
            self.opaque.append(directory)

    def prune(self, directory: Parts) -> None:
        try:
            dfd = self.tree.parent(directory, display(directory), create=False)
        except (FileNotFoundError, InvalidParameter):
            return  # a later entry replaced the opaque directory itself
        whiteout.prune_opaque(self.tree, dfd, directory, self.written)

    def create(self, tf: tarfile.TarFile, parts: Parts, member: tarfile.TarInfo) -> None:
        if (member.ischr() or member.isblk()) and not self.allow_devices:
            raise InvalidParameter(
                f"invalid tar entry {member.name!r}: device nodes are not allowed in image layers"
            )
        if not (
            member.isdir()
            or member.isreg()
            or member.issym()
            or member.islnk()
            or member.isfifo()
            or member.isdev()
        ):
            raise InvalidParameter(
                f"invalid tar entry {member.name!r}: unsupported entry type {member.type!r}"
            )
        pfd = self.tree.parent(parts[:-1], member.name)
        name = parts[-1]
        self.mark_written(parts)
        existing = self.tree.lstat(pfd, name)
        if member.isdir() and existing is not None and stat.S_ISDIR(existing.st_mode):
            pass  # a directory over a directory keeps its children
        elif existing is not None:
            self.tree.remove(pfd, name, parts)
        if member.isdir():
            self.directory(
                pfd,
                name,
                parts,
                member,
                create=existing is None or not stat.S_ISDIR(existing.st_mode),
            )
        elif member.isreg():
            self.regular(tf, pfd, parts, member)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=pfd)
            self.metadata(pfd, name, member, symlink=True)
            self.total += len(os.fsencode(member.linkname))
        elif member.islnk():
            self.hardlink(pfd, parts, member)
        else:
            kind = (
                stat.S_IFIFO
                if member.isfifo()
                else (stat.S_IFCHR if member.ischr() else stat.S_IFBLK)
            )
            os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=pfd)
            self.metadata(pfd, name, member)

    def directory(
        self, pfd: int, name: str, parts: Parts, member: tarfile.TarInfo, *, create: bool
    ) -> None:
        if create:
            os.mkdir(name, 0o700, dir_fd=pfd)
        fd = self.tree.open_dir(pfd, name)
        try:
            self.metadata(fd, None, member)
        finally:
            os.close(fd)
        self.dir_times.append((parts, _ns(member.mtime)))

    def regular(self, tf: tarfile.TarFile, pfd: int, parts: Parts, member: tarfile.TarInfo) -> None:
        fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=pfd)
        if self.recorder is not None:
            self.recorder.payload(member, parts)
        try:
            _copy(tf, member, fd)
            self.metadata(fd, None, member)
        finally:
            os.close(fd)
        self.total += member.size

    def hardlink(self, pfd: int, parts: Parts, member: tarfile.TarInfo) -> None:
        what = f"hard link {member.name!r} -> {member.linkname!r}"
        target = normalise(member.linkname.lstrip("/"), what=f"hard link target of {member.name!r}")
        if not target or target == parts:
            raise InvalidParameter(f"invalid {what}: the target must be another file in the layer")
        try:
            tfd = self.tree.parent(target[:-1], member.name, create=False)
        except FileNotFoundError:
            tfd = None
        found = self.tree.lstat(tfd, target[-1]) if tfd is not None else None
        if tfd is None or found is None:
            raise InvalidParameter(
                f"invalid {what}: target not found (it must come earlier in the tar)"
            )
        if stat.S_ISDIR(found.st_mode):
            raise InvalidParameter(f"invalid {what}: cannot hard link a directory")
        if stat.S_ISLNK(found.st_mode) and _escapes(
            target[:-1], os.readlink(target[-1], dir_fd=tfd)
        ):
            raise InvalidParameter(
                f"invalid {what}: target is a symlink pointing outside the layer"
            )
        os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    def metadata(
        self, fd: int, name: str | None, member: tarfile.TarInfo, *, symlink: bool = False
    ) -> None:
        """Owner, xattrs, mode, mtime (not for directories) of ``fd`` or ``fd``/``name``."""
        if name is None:
            os.fchown(fd, member.uid, member.gid)
        else:
            os.chown(name, member.uid, member.gid, dir_fd=fd, follow_symlinks=False)
        for attr, value in _xattrs(member):
            try:
                if name is None:
                    os.setxattr(fd, attr, value)
                else:
                    os.setxattr(Tree.proc_path(fd, name), attr, value, follow_symlinks=False)
            except OSError as exc:
                if not (symlink and exc.errno in (errno.EPERM, errno.ENOTSUP)):
                    raise  # user.* xattrs are not allowed on symlinks: skip only those
        if not symlink:
            if name is None:
                os.fchmod(fd, member.mode & 0o7777)
            else:
                os.chmod(name, member.mode & 0o7777, dir_fd=fd)
        if member.isdir():
            return
        ns = (_ns(member.mtime), _ns(member.mtime))
        if name is None:
            os.utime(fd, ns=ns)
        else:
            os.utime(name, ns=ns, dir_fd=fd, follow_symlinks=False)

    def set_dir_times(self) -> None:
        for parts, mtime in reversed(self.dir_times):
            if not parts:
                os.utime(self.tree.root_fd, ns=(mtime, mtime))
                continue
            try:
                pfd = self.tree.parent(parts[:-1], display(parts), create=False)
            except (FileNotFoundError, InvalidParameter):
                continue  # replaced or removed by a later entry
            found = self.tree.lstat(pfd, parts[-1])
            if found is not None and stat.S_ISDIR(found.st_mode):
                os.utime(parts[-1], ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)


def _copy(tf: tarfile.TarFile, member: tarfile.TarInfo, fd: int) -> None:
    source = tf.extractfile(member)
    if source is None:
        raise InvalidParameter(f"invalid tar entry {member.name!r}: no data")
    while True:
        try:
            chunk = source.read(_CHUNK)
        except _TAR_ERRORS as exc:
            raise InvalidParameter(
                f"invalid layer tar: data of {member.name!r} is truncated or corrupt: {exc}"
            ) from exc
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    """Extended attributes carried as PAX ``SCHILY.xattr.*`` records, minus overlay's own."""
    found = []
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PAX):
            continue
        attr = key[len(_XATTR_PAX) :]
        if attr.startswith(_DROPPED_XATTRS):
            continue
        found.append((attr, value.encode("utf-8", "surrogateescape")))
    return found


def _escapes(directory: Parts, link: str) -> bool:
    """Whether a symlink in ``directory`` with target ``link`` resolves outside the root."""
    if link.startswith("/"):
        return True
    depth = len(directory)
    for comp in link.split("/"):
        if comp == "..":
            depth -= 1
            if depth < 0:
                return True
        elif comp not in ("", "."):
            depth += 1
    return False


def _ns(mtime: float) -> int:
    return round(mtime * 1_000_000_000) if isinstance(mtime, float) else int(mtime) * 1_000_000_000
