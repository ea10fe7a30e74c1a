"""Host devices for ``--device`` and ``--privileged`` (blocking world: stats the host's /dev).

As moby's ``daemon/oci_linux.go`` with containerd's ``oci.DevicesFromPath``/``HostDevices``:
a device path names a node (or a directory, walked for nodes); each node becomes a spec
device created inside the container with the host node's type, numbers, mode and owner,
plus a device-cgroup rule granting the asked permissions.  Paths are checked with
``lstat``: a symlink under /dev is followed once to its node, as containerd does.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from dockyard.errors import InvalidParameter
from dockyard.runtime.spec.devices import Device, DeviceRule

__all__ = ["check", "devices_from_path", "host_devices"]

# Directories of /dev whose contents are per-container (made by the runtime) or not devices.
_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def check(entries: list[Any]) -> None:
    """Create-time checks of ``HostConfig.Devices`` (the host paths are looked at on start)."""
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("PathOnHost"), str)
            or not entry["PathOnHost"]
        ):
            raise InvalidParameter(f"invalid device: {entry!r}: PathOnHost is required")
        inside = entry.get("PathInContainer") or entry["PathOnHost"]
        if not isinstance(inside, str) or not inside.startswith("/"):
            raise InvalidParameter(
                f"invalid device {entry['PathOnHost']}: "
                f"the path in the container must be absolute: {inside!r}"
            )
        mode = entry.get("CgroupPermissions") or "rwm"
        if not isinstance(mode, str) or len(mode) > 3 or set(mode) - set("rwm"):
            raise InvalidParameter(f"invalid device mode: {mode}")


def _node(path: str) -> tuple[str, int, int, int, int, int] | None:
    """(type, major, minor, mode, uid, gid) of a device node, None if ``path`` is not one."""
    st = os.stat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return (
        kind,
        os.major(st.st_rdev),
        os.minor(st.st_rdev),
        stat.S_IMODE(st.st_mode),
        st.st_uid,
        st.st_gid,
    )


def devices_from_path(
    host: str, inside: str, permissions: str
) -> tuple[list[Device], list[DeviceRule]]:
    """The nodes at (or under) ``host``, placed at ``inside``, with their cgroup rules."""
    try:
        node = _node(host)
    except OSError as exc:
        raise InvalidParameter(
            f'error gathering device information while adding custom device "{host}": '
            f"{(exc.strerror or str(exc)).lower()}"
        ) from None
    devices: list[Device] = []
    rules: list[DeviceRule] = []
    if node is not None:
        kind, major, minor, mode, uid, gid = node
        devices.append(Device(inside, kind, major, minor, mode, uid, gid))
        rules.append(DeviceRule(True, kind, major, minor, permissions))
        return devices, rules
    if not os.path.isdir(host):
        raise InvalidParameter(
            f'error gathering device information while adding custom device "{host}": '
            "not a device node"
        )
    for dirpath, dirnames, filenames in os.walk(host):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                found = _node(path)
            except OSError:
                continue
            if found is None:
                continue
            kind, major, minor, mode, uid, gid = found
            target = os.path.join(inside, os.path.relpath(path, host))
            devices.append(Device(target, kind, major, minor, mode, uid, gid))
            rules.append(DeviceRule(True, kind, major, minor, permissions))
    return devices, rules


def host_devices() -> list[Device]:
    """Every node of the host's /dev, for ``--privileged`` (its cgroup already allows all)."""
    out: list[Device] = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path in ("/dev/console", "/dev/ptmx"):
                continue  # the runtime makes the container's own
            try:
                found = None if os.path.islink(path) else _node(path)
            except OSError:
                continue
            if found is not None:
                kind, major, minor, mode, uid, gid = found
                out.append(Device(path, kind, major, minor, mode, uid, gid))
    return out
