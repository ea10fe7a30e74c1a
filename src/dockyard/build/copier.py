"""COPY, ADD and WORKDIR into a mounted image root, and the layer tar of what changed
(blocking world: run in a thread).

The builder mounts a scratch read-write layer over the parent image (``view.RootView``),
writes into it as moby's builder writes into a build container, and records every path it
creates or changes; :meth:`Writer.layer_tar` then tars exactly those paths and the
directories above them (the directories overlayfs would have copied up).  Destinations are
resolved with symlinks followed inside the root, so a link in the image never sends a
write outside it.  Semantics (moby builder/dockerfile/copy.go):
- a directory source copies its contents; a file goes to ``dest`` or, when ``dest`` ends
  with ``/`` or is an existing directory, to ``dest/<name>``;
- new files and directories belong to 0:0 unless ``--chown``; modes and mtimes are the
  source's unless ``--chmod``; missing parent directories are made 0755;
- ADD unpacks a local tar (plain, gzip, bzip2, xz) into ``dest``, keeping its owners.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
from typing import BinaryIO

from dockyard import layers
from dockyard.build.sources import Source, scoped
from dockyard.dockerignore import Matcher
from dockyard.errors import InvalidParameter

__all__ = ["Writer", "is_archive"]


def is_archive(path: str) -> bool:
    """Whether ``path`` is a tar, possibly compressed (what ADD unpacks)."""
    try:
        with open(path, "rb") as f:
            head = layers.decompress(f).read(512)
    except (OSError, EOFError, ValueError, InvalidParameter):
        return False
    if len(head) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    return True


class Writer:
    """Writes into ``root`` (a mounted rw layer) and remembers what it wrote."""

    def __init__(self, root: str, owner: tuple[int, int] | None = None) -> None:
        self.root = root
        self.owner = owner
        self.written: set[str] = set()

    # ---- paths -----------------------------------------------------------------------------
    def _host(self, rel: str, follow_last: bool = True) -> str:
        return scoped(self.root, rel, follow_last=follow_last)

    def _rel(self, host: str) -> str:
        return os.path.relpath(host, self.root)

    def mkdir_all(self, path: str, owner: tuple[int, int] | None = None) -> str:
        """``mkdir -p`` inside the root; returns the host path; records new directories."""
        owner = owner if owner is not None else (self.owner or (0, 0))
        current = self.root
        for part in [p for p in path.split("/") if p and p != "."]:
            rel = posixpath.join(self._rel(current), part) if current != self.root else part
            host = self._host(rel)
            if os.path.isdir(host):
                current = host
                continue
            if os.path.lexists(host):
                raise InvalidParameter(
                    f"cannot create directory /{rel}: a file of that name exists in the image"
                )
            os.mkdir(host, 0o755)
            os.chmod(host, 0o755)
            os.lchown(host, *owner)
            self.written.add(self._rel(host))
            current = host
        return current

    # ---- COPY / ADD ------------------------------------------------------------------------
    def copy(
        self,
        sources: list[Source],
        dest: str,
        *,
        chmod: int | None = None,
        unpack: bool = False,
        excludes: Matcher | None = None,
        parents: bool = False,
    ) -> None:
        """Copy resolved ``sources`` to ``dest`` (an absolute path in the image)."""
        dest_dir = dest.endswith("/") or len(sources) > 1
        for source in sources:
            target = dest
            if parents and source.rel:
                parent = posixpath.dirname(source.rel) if not source.is_dir else source.rel
                target = posixpath.join(dest, parent) + "/"
            if source.is_dir:
                self._copy_tree(source.path, self.mkdir_all(target), chmod, excludes)
            elif unpack and is_archive(source.path):
                self._unpack(source.path, self.mkdir_all(target))
            else:
                self._copy_file_to(source, target, dest_dir or parents, chmod)

    def _copy_file_to(self, source: Source, dest: str, dest_dir: bool, chmod: int | None) -> None:
        name = posixpath.basename(source.rel) or os.path.basename(source.path)
        host = self._host(dest.rstrip("/") or "/")
        if dest_dir or dest.endswith("/") or os.path.isdir(host):
            parent = self.mkdir_all(dest)
            target = os.path.join(parent, name)
        else:
            parent = self.mkdir_all(posixpath.dirname(dest.rstrip("/")) or "/")
            target = os.path.join(parent, posixpath.basename(dest.rstrip("/")))
        self._copy_entry(source.path, target, chmod, follow=True)

    def _copy_tree(self, src: str, dst: str, chmod: int | None, excludes: Matcher | None) -> None:
        for top, dirs, files in os.walk(src):
            dirs.sort()
            rel_top = os.path.relpath(top, src)
            kept = []
            for name in dirs:
                rel = name if rel_top == "." else f"{rel_top}/{name}"
                if excludes and excludes.ignored(rel):
                    continue
                full = os.path.join(top, name)
                target = os.path.join(dst, rel)
                if os.path.islink(full):
                    self._copy_entry(full, target, chmod)
                    continue
                self._copy_dir(full, target, chmod)
                kept.append(name)
            dirs[:] = kept
            for name in sorted(files):
                rel = name if rel_top == "." else f"{rel_top}/{name}"
                if excludes and excludes.ignored(rel):
                    continue
                self._copy_entry(os.path.join(top, name), os.path.join(dst, rel), chmod)
        # A destination directory that was there before the step keeps its owner under
        # --chown: it is not one of the things the step made (moby's fixPermissions).
        existed = self.owner is not None and self._rel(dst) not in self.written
        self._set_meta(dst, os.stat(src), chmod, is_dir=True, keep_owner=existed)

    def _copy_dir(self, src: str, target: str, chmod: int | None) -> None:
        st = os.lstat(src)
        if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
            os.unlink(target)
        if not os.path.isdir(target):
            os.mkdir(target, 0o755)
        self._set_meta(target, st, chmod, is_dir=True)

    def _copy_entry(self, src: str, target: str, chmod: int | None, follow: bool = False) -> None:
        st = os.stat(src) if follow else os.lstat(src)
        if os.path.isdir(target) and not os.path.islink(target):
            if stat.S_ISDIR(st.st_mode):
                self._set_meta(target, st, chmod, is_dir=True)
                return
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), target)
            os.lchown(target, *(self.owner or (0, 0)))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            self.written.add(self._rel(target))
            return
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(target, 0o755)
            self._set_meta(target, st, chmod, is_dir=True)
            return
        if not stat.S_ISREG(st.st_mode):
            raise InvalidParameter(
                f"cannot copy {os.path.basename(src)}: only regular files, directories and "
                "symbolic links can be copied"
            )
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with open(src, "rb") as fin, open(os.open(target, flags, 0o600), "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        self._set_meta(target, st, chmod, is_dir=False)

    def _set_meta(
        self,
        target: str,
        st: os.stat_result,
        chmod: int | None,
        is_dir: bool,
        keep_owner: bool = False,
    ) -> None:
        if not keep_owner:
            os.lchown(target, *(self.owner or (0, 0)))
        mode = chmod if chmod is not None else stat.S_IMODE(st.st_mode)
        os.chmod(target, mode)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.written.add(self._rel(target))

    def _unpack(self, archive: str, dst: str) -> None:
        with open(archive, "rb") as f:
            names = _member_names(layers.decompress(f))
        with open(archive, "rb") as f:
            layers.apply_tar(layers.decompress(f), dst, whiteouts="naive", owner=self.owner)
        base = self._rel(dst)
        for name in names:
            self.written.add(posixpath.normpath(posixpath.join(base, name)))

    # ---- inline files (COPY <<EOF) ---------------------------------------------------------
    def write_file(self, dest: str, content: bytes, mode: int = 0o644) -> None:
        parent = self.mkdir_all(posixpath.dirname(dest) or "/")
        target = os.path.join(parent, posixpath.basename(dest))
        if os.path.lexists(target):
            if os.path.isdir(target) and not os.path.islink(target):
                raise InvalidParameter(f"cannot write {dest}: it is a directory in the image")
            os.unlink(target)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with open(os.open(target, flags, 0o600), "wb") as f:
            f.write(content)
        os.lchown(target, *(self.owner or (0, 0)))
        os.chmod(target, mode)
        self.written.add(self._rel(target))

    # ---- the layer -------------------------------------------------------------------------
    def layer_tar(self, out: BinaryIO) -> bool:
        """Write the layer holding every recorded path and its parent directories to
        ``out``; returns False (and writes nothing) when nothing was written."""
        paths: set[str] = set()
        for rel in self.written:
            if rel in ("", "."):
                continue
            paths.add(rel)
            parent = posixpath.dirname(rel)
            while parent:
                paths.add(parent)
                parent = posixpath.dirname(parent)
        if not paths:
            return False
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for rel in sorted(paths, key=lambda p: p.split("/")):
                full = os.path.join(self.root, rel)
                if not os.path.lexists(full):
                    continue
                info = tf.gettarinfo(full, arcname=rel)
                info.uname = info.gname = ""
                if info.isdir():
                    tf.addfile(info)
                elif info.isreg():
                    with open(full, "rb") as f:
                        tf.addfile(info, f)
                else:
                    tf.addfile(info)
        return True


def _member_names(stream: BinaryIO) -> list[str]:
    names = []
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for member in tf:
                names.append(member.name.lstrip("/"))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidParameter(f"ADD: the archive is not valid: {exc}") from exc
    return names
