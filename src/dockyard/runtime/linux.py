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
import os

__all__ = [
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "FSCONFIG_CMD_CREATE",
    "FSCONFIG_SET_FLAG",
    "FSCONFIG_SET_STRING",
    "FSMOUNT_CLOEXEC",
    "FSOPEN_CLOEXEC",
    "MNT_DETACH",
    "MNT_EXPIRE",
    "MNT_FORCE",
    "MOUNT_ATTR_RDONLY",
    "MOVE_MOUNT_F_EMPTY_PATH",
    "MS_BIND",
    "MS_DIRSYNC",
    "MS_MANDLOCK",
    "MS_MOVE",
    "MS_NOATIME",
    "MS_NODEV",
    "MS_NODIRATIME",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_PRIVATE",
    "MS_RDONLY",
    "MS_REC",
    "MS_RELATIME",
    "MS_REMOUNT",
    "MS_SHARED",
    "MS_SLAVE",
    "MS_STRICTATIME",
    "MS_SYNCHRONOUS",
    "MS_UNBINDABLE",
    "OPEN_TREE_CLOEXEC",
    "OPEN_TREE_CLONE",
    "PR_CAPBSET_DROP",
    "PR_CAP_AMBIENT",
    "PR_CAP_AMBIENT_CLEAR_ALL",
    "PR_CAP_AMBIENT_RAISE",
    "PR_SET_CHILD_SUBREAPER",
    "PR_SET_KEEPCAPS",
    "PR_SET_NO_NEW_PRIVS",
    "PR_SET_PDEATHSIG",
    "RESOLVE_BENEATH",
    "RESOLVE_IN_ROOT",
    "RESOLVE_NO_MAGICLINKS",
    "RESOLVE_NO_SYMLINKS",
    "RESOLVE_NO_XDEV",
    "UMOUNT_NOFOLLOW",
    "cap_last_cap",
    "capget",
    "capset",
    "fs_log",
    "fsconfig",
    "fsmount",
    "fsopen",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_mount_to_fd",
    "open_tree",
    "openat2",
    "pivot_root",
    "prctl",
    "seccomp_set_filter",
    "sethostname",
    "setns",
    "syncfs",
    "umount2",
    "unshare",
]

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
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

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_AT_RECURSIVE = 0x8000
_SYS_OPEN_TREE = 428
_SYS_MOUNT_SETATTR = 442
_AT_EMPTY_PATH = 0x1000
MOUNT_ATTR_RDONLY = 0x1
_MOVE_MOUNT_T_EMPTY_PATH = 0x40
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432


def _load_libc() -> ctypes.CDLL:
    # glibc's soname first: ctypes.util.find_library runs ``ldconfig -p`` in a subprocess
    # (and imports subprocess), which costs more than the rest of dockyard-runtime's start.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes import util

        return ctypes.CDLL(util.find_library("c"), use_errno=True)


_libc = _load_libc()

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
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


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


def move_mount_to_fd(from_fd: int, to_fd: int) -> None:
    """move_mount(2) of the detached mount ``from_fd`` onto the inode pinned by ``to_fd``
    (an ``O_PATH`` fd): no path is resolved, so nothing can be swapped in between."""
    rc = _libc.syscall(
        ctypes.c_long(_SYS_MOVE_MOUNT),
        ctypes.c_int(from_fd),
        b"",
        ctypes.c_int(to_fd),
        b"",
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH),
    )
    if rc < 0:
        raise _fail(f"/proc/self/fd/{to_fd}")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(mount_fd: int, attr_set: int = 0, propagation: int = 0) -> None:
    """mount_setattr(2) on the whole tree of ``mount_fd`` (Linux 5.12+): ``MOUNT_ATTR_*``
    to set and an ``MS_PRIVATE``/``MS_SLAVE``/... propagation (0 keeps it).  Works on a
    detached tree from ``open_tree``, before it is attached anywhere."""
    attr = _MountAttr(attr_set, 0, propagation, 0)
    rc = _libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(mount_fd),
        b"",
        ctypes.c_uint(_AT_EMPTY_PATH | _AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if rc < 0:
        raise _fail(f"/proc/self/fd/{mount_fd}")


def syncfs(fd: int) -> None:
    """syncfs(2): write out every dirty page and inode of the filesystem holding ``fd``
    (one call instead of an fsync per file after extracting a tree)."""
    if _libc.syncfs(ctypes.c_int(fd)) != 0:
        raise _fail(f"/proc/self/fd/{fd}")


def open_tree(path: str, flags: int = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC) -> int:
    """open_tree(2) with ``OPEN_TREE_CLONE``: a detached recursive bind of ``path``.

    Attached with ``move_mount`` onto a pinned fd (``/proc/self/fd/N``), the returned fd keeps
    naming that mount wherever its mount point is renamed to, so it can later be remounted
    or unmounted through ``/proc/self/fd/<it>`` without trusting any path again."""
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPEN_TREE),
        ctypes.c_int(_AT_FDCWD),
        _encode(path),
        ctypes.c_uint(flags | _AT_RECURSIVE),
    )
    if fd < 0:
        raise _fail(path)
    return int(fd)


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


# --- path resolution confined to a directory ----------------------------------------------
#
# openat2(2) (Linux 5.6+) resolves a path relative to a directory fd under ``how.resolve``
# rules enforced by the kernel during the walk itself, so no rename race can defeat them:
# ``RESOLVE_IN_ROOT`` treats the fd as ``/`` (absolute symlinks and ``..`` are clamped to it,
# as for a chroot), ``RESOLVE_BENEATH`` refuses to leave it, ``RESOLVE_NO_MAGICLINKS``
# refuses ``/proc/<pid>/fd``-style links.  If a rename anywhere on the system races a ``..``
# step, the kernel answers EAGAIN rather than risk an escape; callers retry.  Kernels
# without it answer ENOSYS; unknown flags give EINVAL.

# <linux/openat2.h>
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # the unified table (Linux 5.6+), also x86_64 and aarch64


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dir_fd`` under the ``RESOLVE_*`` rules.

    Raises ``OSError`` (ENOSYS on kernels before 5.6, EAGAIN when a rename raced a ``..``
    step, EXDEV/ELOOP when a rule refused the walk).
    """
    how = _OpenHow(flags, mode, resolve)
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(dir_fd),
        _encode(path),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        raise _fail(path)
    return int(fd)


# --- namespaces, root switch, process attributes (the container child path) ----------------
#
# Facts the runtime relies on (man 2 unshare, setns, pivot_root, capset, prctl):
# - ``unshare(CLONE_NEWPID)`` does not move the caller: it sets the pid namespace *for
#   children* (``/proc/self/ns/pid_for_children``); the next fork becomes pid 1 there.  A
#   caller may ``setns`` back to its own pid namespace afterwards, so a long-lived parent can
#   start many containers without an intermediate process.
# - ``setns`` into a mount namespace resets the caller's root and cwd to that namespace's root.
# - ``pivot_root(".", ".")`` stacks the old root under the new one at the same place; an
#   ``umount2(".", MNT_DETACH)`` then drops it without needing a directory for it (runc's
#   trick, libcontainer/rootfs_linux.go ``pivotRoot``).
# - Capabilities: a uid change away from 0 clears permitted/effective unless
#   ``PR_SET_KEEPCAPS`` is set; the bounding set can only shrink (``PR_CAPBSET_DROP``).

# <sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = 155  # x86_64; aarch64 and the unified table use 41
_SYS_CAPGET = 125
_SYS_CAPSET = 126
_SYS_SECCOMP = 317
if os.uname().machine in ("aarch64", "arm64", "riscv64"):
    _SYS_PIVOT_ROOT, _SYS_CAPGET, _SYS_CAPSET, _SYS_SECCOMP = 41, 90, 91, 277
_SECCOMP_SET_MODE_FILTER = 1
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def unshare(flags: int) -> None:
    """unshare(2) with ``CLONE_NEW*`` flags."""
    if _libc.unshare(flags) != 0:
        raise _fail(None)


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace open on ``fd`` (``nstype`` 0 accepts any kind)."""
    if _libc.setns(fd, nstype) != 0:
        raise _fail(None)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (no glibc wrapper)."""
    rc = _libc.syscall(ctypes.c_long(_SYS_PIVOT_ROOT), _encode(new_root), _encode(put_old))
    if rc != 0:
        raise _fail(new_root)


def sethostname(name: str) -> None:
    """sethostname(2) in the caller's UTS namespace."""
    raw = name.encode()
    if _libc.sethostname(raw, len(raw)) != 0:
        raise _fail(name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2); returns the call's non-negative result."""
    rc = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if rc < 0:
        raise _fail(None)
    return int(rc)


def capget(pid: int = 0) -> tuple[int, int, int]:
    """capget(2): (effective, permitted, inheritable) as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    if _libc.syscall(ctypes.c_long(_SYS_CAPGET), ctypes.byref(header), data) != 0:
        raise _fail(None)
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) of the calling thread, from 64-bit masks (bit n = capability n)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if _libc.syscall(ctypes.c_long(_SYS_CAPSET), ctypes.byref(header), data) != 0:
        raise _fail(None)


def cap_last_cap() -> int:
    """The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
        return int(f.read())


class _SockFprog(ctypes.Structure):
    # struct sock_fprog from <linux/filter.h>: instruction count, then the array.
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER): install a classic-BPF filter on the calling thread
    (``program`` is an array of 8-byte ``struct sock_filter``, e.g. from libseccomp's
    ``seccomp_export_bpf``).  The kernel wants no_new_privs set or CAP_SYS_ADMIN held;
    filters stack and survive execve, fork and setuid."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    rc = _libc.syscall(
        ctypes.c_long(_SYS_SECCOMP),
        ctypes.c_uint(_SECCOMP_SET_MODE_FILTER),
        ctypes.c_uint(flags),
        ctypes.byref(prog),
    )
    if rc != 0:
        raise _fail(None)
