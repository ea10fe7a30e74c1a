"""A container's root held by fd, paths resolved inside it as the container sees them
(blocking world).

Why.  ``docker cp`` runs while the container runs, and a process inside may rename a
directory and put a symlink to ``/`` in its place at any moment (CVE-2018-15664).  Resolving
a path string first and opening it afterwards lets that swap land between the two steps, so
the copy would read or write the host.  Here every path is resolved *while it is opened*,
relative to an fd on the root, so the kernel never leaves the root whatever changes meanwhile:

- ``openat2(RESOLVE_IN_ROOT)`` (Linux 5.6+): the kernel treats the root fd as ``/`` for
  absolute symlinks and ``..`` during the walk itself (and answers EAGAIN, retried here, if
  a rename raced a ``..`` step);
- otherwise a walk by fds, one component at a time, each opened with ``O_PATH | O_NOFOLLOW``
  relative to the fd of the previous one; symlinks are read (``readlinkat``) and their target
  is walked the same way, from the root fd when absolute; ``..`` pops the walk's own stack of
  fds (clamped at the root) rather than asking the kernel for a parent.  Every fd held was
  reached below the root by a single-component open, so no swap can take the walk outside.

Mount points inside the root (volumes bound there for the copy) are crossed, as the
container would cross them.  The last component is opened by the caller relative to the
parent fd with ``O_NOFOLLOW`` when it must not be followed (``docker cp`` copies a symlink
itself, not its target).
"""

from __future__ import annotations

import errno
import os
import stat

from dockyard.runtime import linux

__all__ = ["make_target", "open_in_root", "open_parent", "split"]

_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC
_MAX_SYMLINKS = 40  # the kernel's own limit (MAXSYMLINKS)
_RETRIES = 64

# None until first use: whether this kernel has openat2 (tests flip it to cover the walk).
_openat2: list[bool] = []


def split(path: str) -> tuple[str, str]:
    """``(parent, name)`` of an in-container path; ``name`` is "" for ``/`` itself."""
    clean = "/" + path.strip("/")
    parent, _, name = clean.rpartition("/")
    return parent or "/", name


def open_in_root(root_fd: int, path: str, flags: int = _PATH_FLAGS) -> int:
    """Open ``path`` as a process whose ``/`` is ``root_fd`` would, following symlinks
    (the last one too) without ever leaving the root.  ``flags`` are ``open(2)`` flags;
    the default gives an ``O_PATH`` fd.  Raises ``OSError`` as ``open`` does."""
    flags |= os.O_CLOEXEC
    if _has_openat2():
        for _ in range(_RETRIES):
            try:
                return linux.openat2(root_fd, path or "/", flags, linux.RESOLVE_IN_ROOT)
            except BlockingIOError:
                continue  # a rename raced a ".." step: the kernel asks for a retry
        raise OSError(errno.EAGAIN, "path resolution kept racing renames", path)
    fd = _walk(root_fd, path)
    if flags & os.O_PATH and not flags & os.O_DIRECTORY:
        return fd
    try:
        return os.open(f"/proc/self/fd/{fd}", flags)  # reopen the pinned inode itself
    finally:
        os.close(fd)


def open_parent(root_fd: int, path: str) -> tuple[int, str]:
    """An ``O_PATH`` fd on the directory holding ``path`` and the last component's name
    (not followed; "" when ``path`` is the root).  The caller closes the fd."""
    parent, name = split(path)
    if name in ("", ".", ".."):
        return open_in_root(root_fd, path, _PATH_FLAGS | os.O_DIRECTORY), ""
    return open_in_root(root_fd, parent, _PATH_FLAGS | os.O_DIRECTORY), name


def make_target(root_fd: int, path: str, *, directory: bool) -> int:
    """An ``O_PATH`` fd on ``path`` inside the root, made first if missing: directories
    with mode 0755 (as Docker's MkdirAll), the last one an empty file unless ``directory``.
    Each missing component is created relative to its parent's pinned fd.  A path that
    keeps vanishing while it is made (a process inside renaming it) gives
    ``FileNotFoundError`` after a few tries."""
    for _ in range(_RETRIES // 8):
        try:
            return _make_target(root_fd, path, directory)
        except FileNotFoundError:
            continue
    return _make_target(root_fd, path, directory)


def _make_target(root_fd: int, path: str, directory: bool) -> int:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for i, name in enumerate(parts):
        prefix = "/" + "/".join(parts[: i + 1])
        try:
            os.close(open_in_root(root_fd, prefix))
            continue
        except FileNotFoundError:
            pass
        parent = open_in_root(root_fd, "/" + "/".join(parts[:i]), _PATH_FLAGS | os.O_DIRECTORY)
        try:
            if directory or i < len(parts) - 1:
                os.mkdir(name, 0o755, dir_fd=parent)
            else:
                flags = os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                os.close(os.open(name, flags, 0o644, dir_fd=parent))
        except FileExistsError:
            pass  # made meanwhile, or a dangling symlink: the open below decides
        finally:
            os.close(parent)
    return open_in_root(root_fd, path)


def _has_openat2() -> bool:
    if not _openat2:
        try:
            os.close(linux.openat2(-100, "/", _PATH_FLAGS, linux.RESOLVE_IN_ROOT))
            _openat2.append(True)
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
                raise
            _openat2.append(False)
    return _openat2[0]


def _walk(root_fd: int, path: str) -> int:
    """The fd walk: an ``O_PATH`` fd on ``path`` resolved inside ``root_fd``."""
    stack = [os.dup(root_fd)]
    pending = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    hops = 0
    try:
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                fd = os.open(part, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=stack[-1])
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, path) from None
            if not stat.S_ISLNK(os.fstat(fd).st_mode):
                stack.append(fd)
                continue
            os.close(fd)
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(part, dir_fd=stack[-1])
            if target.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop())
            pending.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)
