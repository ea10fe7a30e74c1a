"""The single seam for kernel calls (blocking world; safe in any thread, never forks).

Every syscall dockyard makes that Python's ``os`` module does not offer goes through this
module, as a thin ctypes wrapper over libc, so the kernel surface is easy to find and audit
(youki's ``syscall/linux.rs`` plays the same role).  Code elsewhere computes *what* to mount
and calls these functions; nothing here decides policy.

Conventions:
- every wrapper raises ``OSError(errno, strerror, path)`` on failure, with the errno read
  from libc's thread-local ``errno`` (``use_errno=True``), so callers can branch on
  ``exc.errno`` exactly as for ``os`` functions;
- constants carry the kernel's names (``MS_*`` from ``<sys/mount.h>``, ``MNT_*`` for umount2,
  ``FSCONFIG_*``/``MOVE_MOUNT_*`` from ``<linux/mount.h>``).

The new mount API (``fsopen``/``fsconfig``/``fsmount``/``move_mount``, Linux 5.2+) has no
glibc wrappers in older releases, so it is reached through ``syscall(2)``.  Its syscall
numbers (428–433) come from the unified table added in Linux 5.1 and are the same on
x86_64, aarch64, arm, riscv, s390x and ppc64 (only alpha differs, unsupported here).
overlayfs uses it for the ``lowerdir+`` key (Linux 6.8+), which appends one lower layer per
call and so avoids the one-page (4096 byte) limit of ``mount(2)``'s data string.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = [
    "MS_RDONLY",
    "MS_NOSUID",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_REMOUNT",
    "MS_BIND",
    "MS_MOVE",
    "MS_REC",
    "MS_PRIVATE",
    "MS_SLAVE",
    "MS_SHARED",
    "MNT_FORCE",
    "MNT_DETACH",
    "MNT_EXPIRE",
    "UMOUNT_NOFOLLOW",
    "FSOPEN_CLOEXEC",
    "FSMOUNT_CLOEXEC",
    "FSCONFIG_SET_FLAG",
    "FSCONFIG_SET_STRING",
    "FSCONFIG_CMD_CREATE",
    "MOVE_MOUNT_F_EMPTY_PATH",
    "mount",
    "umount2",
    "fsopen",
    "fsconfig",
    "fsmount",
    "move_mount",
    "fs_log",
]

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20

# umount2(2)
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# <linux/mount.h>, new mount API
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 4
_AT_FDCWD = -100

_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int
_libc.syscall.restype = ctypes.c_long


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _fail(path: str | None) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), path)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    """mount(2). ``data`` is the filesystem's option string (at most one page)."""
    if _libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)) != 0:
        raise _fail(target)


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2); ``MNT_DETACH`` makes it lazy (succeeds even while the mount is busy)."""
    if _libc.umount2(_encode(target), flags) != 0:
        raise _fail(target)


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    """fsopen(2): a filesystem context fd for ``fstype`` (close it with ``os.close``)."""
    fd = _libc.syscall(ctypes.c_long(_SYS_FSOPEN), _encode(fstype), ctypes.c_uint(flags))
    if fd < 0:
        raise _fail(fstype)
    return int(fd)


def fsconfig(fs_fd: int, cmd: int, key: str | None = None, value: str | None = None) -> None:
    """fsconfig(2) with a string value (or none, for flags and commands)."""
    rc = _libc.syscall(
        ctypes.c_long(_SYS_FSCONFIG),
        ctypes.c_int(fs_fd),
        ctypes.c_uint(cmd),
        _encode(key),
        _encode(value),
        ctypes.c_int(0),
    )
    if rc < 0:
        raise _fail(value if value is not None else key)


def fsmount(fs_fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    """fsmount(2): turn a created filesystem context into a detached mount fd."""
    fd = _libc.syscall(
        ctypes.c_long(_SYS_FSMOUNT),
        ctypes.c_int(fs_fd),
        ctypes.c_uint(flags),
        ctypes.c_uint(attr_flags),
    )
    if fd < 0:
        raise _fail(None)
    return int(fd)


def move_mount(from_fd: int, target: str) -> None:
    """move_mount(2) of the detached mount ``from_fd`` onto the path ``target``."""
    rc = _libc.syscall(
        ctypes.c_long(_SYS_MOVE_MOUNT),
        ctypes.c_int(from_fd),
        b"",
        ctypes.c_int(_AT_FDCWD),
        _encode(target),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
    if rc < 0:
        raise _fail(target)


def fs_log(fs_fd: int) -> str:
    """Drain the messages the kernel queued on a filesystem context (why fsconfig failed)."""
    lines: list[str] = []
    while True:
        try:
            chunk = os.read(fs_fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        lines.append(chunk.decode(errors="replace").strip())
    return "; ".join(lines)
