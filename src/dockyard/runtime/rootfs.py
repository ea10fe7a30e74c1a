"""The container's filesystem as a plan (synchronous world; pure apart from ``resolve``).

``plan(spec, bundle)`` turns a spec's mounts, devices, masked and read-only paths into two
lists of small op records: ``before_pivot`` (done inside the new mount namespace, with
destinations inside the rootfs) and ``after_pivot`` (paths as the container sees them, on
its own root).  ``runtime.process`` applies them; unit tests assert on them.

Destinations are NOT resolved here but by ``resolve`` just before each op is applied,
because earlier ops change what a path means (a fresh tmpfs on /dev hides an image's
``/dev/shm -> /run/shm`` symlink).  ``resolve`` is the guard against hostile images: it
walks the path one component at a time with ``lstat`` and interprets every symlink as if
the rootfs were ``/`` (absolute targets restart at the rootfs, ``..`` stops at it), so an
image whose /proc is a symlink to ``/etc`` gets its proc mounted on ``<rootfs>/etc``, never
on the host's /etc (the same rule as filepath-securejoin, used by runc).

Records are frozen ``msgspec.Struct``s rather than dataclasses: ``dockyard-runtime``'s
start-up is benchmarked against runc, and ``dataclasses`` (with ``inspect``) costs ~12 ms
of imports while msgspec is loaded anyway for config.json.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque

import msgspec

from dockyard.runtime import linux
from dockyard.runtime.spec import DEFAULT_DEVICES_BY_PATH, Spec

__all__ = [
    "CgroupOp",
    "DeviceOp",
    "MaskOp",
    "MountOp",
    "MountOptions",
    "Op",
    "Plan",
    "ReadonlyOp",
    "SymlinkOp",
    "SysctlOp",
    "parse_options",
    "plan",
    "resolve",
    "with_cgroup",
]

_MAX_SYMLINKS = 40


class MountOp(msgspec.Struct, frozen=True, tag=True):
    """Mount ``source`` on ``destination`` (inside the rootfs).

    ``bind`` mounts are made first and then remounted with ``flags`` (the kernel ignores
    most flags on the initial bind); ``propagation`` flags are applied one call each.
    """

    destination: str
    source: str
    fstype: str
    flags: int
    data: str
    propagation: tuple[int, ...] = ()

    @property
    def bind(self) -> bool:
        return bool(self.flags & linux.MS_BIND)


class DeviceOp(msgspec.Struct, frozen=True, tag=True):
    """Create a device node (``kind`` "c", "b" or "p") owned by ``uid``:``gid``."""

    path: str
    kind: str
    major: int
    minor: int
    mode: int
    uid: int
    gid: int


class SymlinkOp(msgspec.Struct, frozen=True, tag=True):
    path: str
    target: str


class SysctlOp(msgspec.Struct, frozen=True, tag=True):
    key: str
    value: str


class MaskOp(msgspec.Struct, frozen=True, tag=True):
    """Hide ``path``: /dev/null over a file, an empty read-only tmpfs over a directory."""

    path: str


class ReadonlyOp(msgspec.Struct, frozen=True, tag=True):
    """Bind ``path`` onto itself read-only (``/`` for a read-only root)."""

    path: str


class CgroupOp(msgspec.Struct, frozen=True, tag=True):
    """The container's own cgroup at ``destination`` (a spec mount of type ``cgroup``).

    cgroup v1: a tmpfs holding, per hierarchy, a bind of the container's directory there
    (runc's ``mountCgroupV1``; combined hierarchies get a symlink per controller).  v2:
    cgroup2 itself in a private cgroup namespace, else a bind of the container's directory.
    ``binds`` (name, host directory; one entry named "" on v2) are filled in by
    ``with_cgroup`` once the cgroup exists.
    """

    destination: str
    readonly: bool
    private_ns: bool
    binds: tuple[tuple[str, str], ...] = ()


Op = MountOp | DeviceOp | SymlinkOp | SysctlOp | MaskOp | ReadonlyOp | CgroupOp


class Plan(msgspec.Struct, frozen=True):
    rootfs: str
    root_propagation: int
    before_pivot: tuple[Op, ...]
    after_pivot: tuple[Op, ...]


class MountOptions(msgspec.Struct, frozen=True):
    flags: int
    propagation: tuple[int, ...]
    data: str


# libcontainer/specconv/spec_linux.go mountPropagationMapping / parseMountOptions.
_SET = {
    "bind": linux.MS_BIND,
    "rbind": linux.MS_BIND | linux.MS_REC,
    "dirsync": linux.MS_DIRSYNC,
    "mand": linux.MS_MANDLOCK,
    "noatime": linux.MS_NOATIME,
    "nodev": linux.MS_NODEV,
    "nodiratime": linux.MS_NODIRATIME,
    "noexec": linux.MS_NOEXEC,
    "nosuid": linux.MS_NOSUID,
    "relatime": linux.MS_RELATIME,
    "remount": linux.MS_REMOUNT,
    "ro": linux.MS_RDONLY,
    "strictatime": linux.MS_STRICTATIME,
    "sync": linux.MS_SYNCHRONOUS,
}
_CLEAR = {
    "async": linux.MS_SYNCHRONOUS,
    "atime": linux.MS_NOATIME,
    "defaults": 0,
    "dev": linux.MS_NODEV,
    "diratime": linux.MS_NODIRATIME,
    "exec": linux.MS_NOEXEC,
    "nomand": linux.MS_MANDLOCK,
    "norelatime": linux.MS_RELATIME,
    "nostrictatime": linux.MS_STRICTATIME,
    "rw": linux.MS_RDONLY,
    "suid": linux.MS_NOSUID,
}
PROPAGATION = {
    "private": linux.MS_PRIVATE,
    "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "slave": linux.MS_SLAVE,
    "rslave": linux.MS_SLAVE | linux.MS_REC,
    "shared": linux.MS_SHARED,
    "rshared": linux.MS_SHARED | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE,
    "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}


def parse_options(options: list[str] | None) -> MountOptions:
    """Split fstab-style options into mount flags, propagation changes and fs data."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for option in options or ():
        if option in _SET:
            flags |= _SET[option]
        elif option in _CLEAR:
            flags &= ~_CLEAR[option]
        elif option in PROPAGATION:
            propagation.append(PROPAGATION[option])
        else:
            data.append(option)
    return MountOptions(flags, tuple(propagation), ",".join(data))


def _mount_op(
    m_destination: str,
    source: str | None,
    fstype: str | None,
    options: list[str] | None,
    bundle: str,
) -> MountOp:
    parsed = parse_options(options)
    flags = parsed.flags
    kind = fstype or "none"
    if kind == "bind":
        flags |= linux.MS_BIND
    if flags & linux.MS_BIND:
        # A relative bind source is relative to the bundle (runc does the same).
        src = source or ""
        if not src.startswith("/"):
            src = os.path.join(bundle, src)
        return MountOp(m_destination, src, "none", flags, "", parsed.propagation)
    return MountOp(m_destination, source or kind, kind, flags, parsed.data, parsed.propagation)


def plan(spec: Spec, bundle: str) -> Plan:
    """The ops that build ``spec``'s filesystem; ``bundle`` anchors relative paths."""
    rootfs = spec.root.path
    if not rootfs.startswith("/"):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.normpath(rootfs)
    linux_section = spec.linux

    before: list[Op] = []
    dev_is_bound = False
    private_cgroupns = any(ns.type == "cgroup" and not ns.path for ns in linux_section.namespaces)
    for m in spec.mounts:
        if m.type == "cgroup":
            before.append(
                CgroupOp(
                    os.path.normpath(m.destination),
                    bool(parse_options(m.options).flags & linux.MS_RDONLY),
                    private_cgroupns,
                )
            )
            continue
        op = _mount_op(os.path.normpath(m.destination), m.source, m.type, m.options, bundle)
        if op.destination == "/dev" and op.bind:
            dev_is_bound = True
        before.append(op)

    if not dev_is_bound:
        devices = dict(DEFAULT_DEVICES_BY_PATH)
        for d in linux_section.devices or ():
            devices[os.path.normpath(d.path)] = d
        for path, d in devices.items():
            mode = 0o666 if d.file_mode is None else d.file_mode
            before.append(
                DeviceOp(path, d.type, d.major, d.minor, mode & 0o7777, d.uid or 0, d.gid or 0)
            )
        # libcontainer/rootfs_linux.go setupDevSymlinks and setupPtmx.
        for path, target in (
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"),
            ("/dev/stderr", "/proc/self/fd/2"),
            ("/dev/core", "/proc/kcore"),
            ("/dev/ptmx", "pts/ptmx"),
        ):
            before.append(SymlinkOp(path, target))

    after: list[Op] = [SysctlOp(k, v) for k, v in sorted((linux_section.sysctl or {}).items())]
    after.extend(ReadonlyOp(os.path.normpath(p)) for p in linux_section.readonly_paths or ())
    after.extend(MaskOp(os.path.normpath(p)) for p in linux_section.masked_paths or ())
    if spec.root.readonly:
        after.append(ReadonlyOp("/"))

    propagation = linux.MS_PRIVATE | linux.MS_REC
    if linux_section.rootfs_propagation:
        propagation = PROPAGATION[linux_section.rootfs_propagation]
    return Plan(rootfs, propagation, tuple(before), tuple(after))


def with_cgroup(plan: Plan, binds: list[tuple[str, str]]) -> Plan:
    """``plan`` with the cgroup mounts pointed at the container's cgroup directories."""
    ops = tuple(
        msgspec.structs.replace(op, binds=tuple(binds)) if isinstance(op, CgroupOp) else op
        for op in plan.before_pivot
    )
    return msgspec.structs.replace(plan, before_pivot=ops)


def resolve(root: str, path: str) -> str:
    """``path`` as seen from a process whose ``/`` is ``root``, as a host path under ``root``.

    Symlinks are followed inside ``root`` only; components that do not exist are kept
    literally (the caller creates them).  Raises ``OSError(ELOOP)`` on symlink loops.
    """
    root = root.rstrip("/") or "/"
    pending = deque(path.split("/"))
    current: list[str] = []
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = os.path.join(root, *current, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            current.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            current.append(part)
            continue
        hops += 1
        if hops > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.path.join(root, path))
        target = os.readlink(candidate)
        if target.startswith("/"):
            current = []
        pending.extendleft(reversed(target.split("/")))
    return os.path.join(root, *current)
