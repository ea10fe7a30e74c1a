"""A directory tree reached only through directory fds, never through a symlink (blocking world).

Why this is safe.  A layer tar is hostile input.  Its entry names are normalised lexically
first (``normalise``): absolute names and any ``..`` that would climb above the root are
refused, so what remains is a list of plain components ("a", "b", "c").  The tree is then
walked from an fd on the root, one component at a time, with
``openat(parent_fd, component, O_DIRECTORY | O_NOFOLLOW)``: the kernel refuses to open a
symlink with ``O_NOFOLLOW`` (ELOOP) and a non-directory with ``O_DIRECTORY`` (ENOTDIR), so
every directory fd we hold was reached by real directories only, each one below the root.
All writes then use the ``*at`` forms relative to that parent fd (``mkdirat``, ``openat``
with ``O_CREAT | O_EXCL | O_NOFOLLOW``, ``symlinkat``, ``linkat`` without
``AT_SYMLINK_FOLLOW``, ``mknodat``, ``fchownat(AT_SYMLINK_NOFOLLOW)``,
``utimensat(AT_SYMLINK_NOFOLLOW)``) on a single final component, which is never followed.
Hence nothing can be written outside the root, whatever symlinks the layer (or an earlier
layer copied into the root) contains, and even if the tree changes between two calls.

The only path string handed to the kernel is ``/proc/self/fd/<dirfd>/<name>`` for
``lsetxattr`` (Python has no ``*xattrat``): the magic link resolves to the pinned directory
itself, and the final component is not followed.

Parent fds are cached by path; removing a directory drops the cached fds at and below it,
so a cached fd never names a directory that was replaced.  The cache is trimmed only
between entries (``trim``), so fds returned while handling one entry stay open.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable

from dockyard.errors import InvalidParameter

__all__ = ["Tree", "normalise"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE_LIMIT = 256

Parts = tuple[str, ...]


def normalise(name: str, *, what: str = "tar entry") -> Parts:
    """Split a tar name into safe components; refuse absolute names and escapes."""
    if name.startswith("/"):
        raise InvalidParameter(f"invalid {what} {name!r}: absolute paths are not allowed in layers")
    if "\x00" in name:
        raise InvalidParameter(f"invalid {what} {name!r}: NUL byte in name")
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise InvalidParameter(f"invalid {what} {name!r}: path escapes the layer root")
            parts.pop()
            continue
        parts.append(comp)
    return tuple(parts)


def display(parts: Parts) -> str:
    return "/".join(parts) or "."


class Tree:
    """The layer root, opened once; every operation names a parent fd and one component."""

    def __init__(self, root: str) -> None:
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cache: dict[Parts, int] = {}
        # Told of every removal (the tar-split recorder notices payloads a tar deletes).
        self.on_remove: Callable[[Parts], None] | None = None

    def close(self) -> None:
        self.forget()
        os.close(self.root_fd)

    def forget(self, below: Parts = ()) -> None:
        """Close cached fds for ``below`` and its descendants (all of them by default)."""
        n = len(below)
        for key in [k for k in self._cache if k[:n] == below]:
            os.close(self._cache.pop(key))

    def trim(self) -> None:
        """Bound the number of open fds; call only between entries."""
        if len(self._cache) > _CACHE_LIMIT:
            self.forget()

    def parent(self, parts: Parts, entry: str, *, create: bool = True) -> int:
        """Return an fd (owned by the tree) for the directory ``parts``.

        Missing components are made with mode 0755 (as Docker's MkdirAll does) when
        ``create``, else ``FileNotFoundError``; a symlink or non-directory component is
        refused with ``InvalidParameter`` naming ``entry``.
        """
        if not parts:
            return self.root_fd
        cached = self._cache.get(parts)
        if cached is not None:
            return cached
        fd = self.parent(parts[:-1], entry, create=create)
        name = parts[-1]
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=fd)
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            kind = "a symlink" if self.is_symlink(fd, name) else "not a directory"
            raise InvalidParameter(
                f"invalid tar entry {entry!r}: parent {display(parts)!r} is {kind}; "
                "layers may not write through symlinks"
            ) from exc
        self._cache[parts] = child
        return child

    @staticmethod
    def lstat(dir_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def is_symlink(self, dir_fd: int, name: str) -> bool:
        st = self.lstat(dir_fd, name)
        return st is not None and stat.S_ISLNK(st.st_mode)

    def remove(self, dir_fd: int, name: str, path: Parts) -> None:
        """Remove ``name`` (the entry at ``path``), recursively if a real directory.

        Never follows a symlink: ``shutil.rmtree`` with ``dir_fd`` walks by fd too.
        """
        st = self.lstat(dir_fd, name)
        if st is None:
            return
        if self.on_remove is not None:
            self.on_remove(path)
        if stat.S_ISDIR(st.st_mode):
            self.forget(path)
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)

    @staticmethod
    def open_dir(dir_fd: int, name: str) -> int:
        """An fd the caller owns on the real directory ``name`` (not a symlink)."""
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)

    @staticmethod
    def proc_path(dir_fd: int, name: str) -> str:
        """A path that reaches ``name`` through the pinned directory (for lsetxattr)."""
        return f"/proc/self/fd/{dir_fd}/{name}"
