"""OCI runtime-spec device records (both worlds): nodes to create and cgroup device rules.

``DEFAULT_DEVICES`` are the nodes every container gets even when the spec does not list
them (runc's ``AllowedDevices`` in libcontainer/specconv/spec_linux.go does the same).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "DEFAULT_DEVICES",
    "DEFAULT_DEVICES_BY_PATH",
    "DEFAULT_DEVICE_RULES",
    "Device",
    "DeviceRule",
]


class Device(msgspec.Struct, rename="camel", omit_defaults=True):
    path: str
    type: str  # "c", "b", "u" or "p"
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class DeviceRule(msgspec.Struct, omit_defaults=True):
    """``linux.resources.devices`` entry; ``None`` major/minor means any (``*``)."""

    allow: bool
    type: str | None = None  # "a", "c" or "b"; None = "a"
    major: int | None = None
    minor: int | None = None
    access: str | None = None  # subset of "rwm"; None = "rwm"


DEFAULT_DEVICES: tuple[Device, ...] = (
    Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    Device("/dev/zero", "c", 1, 5, 0o666, 0, 0),
    Device("/dev/full", "c", 1, 7, 0o666, 0, 0),
    Device("/dev/random", "c", 1, 8, 0o666, 0, 0),
    Device("/dev/urandom", "c", 1, 9, 0o666, 0, 0),
    Device("/dev/tty", "c", 5, 0, 0o666, 0, 0),
)

DEFAULT_DEVICES_BY_PATH: dict[str, Device] = {d.path: d for d in DEFAULT_DEVICES}

# moby oci/defaults.go + runc's AllowedDevices: deny everything, then allow the default
# nodes, mknod of any node (creating one is harmless while access is denied), the pty
# master/slaves and /dev/console.
DEFAULT_DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(False, "a", None, None, "rwm"),
    DeviceRule(True, "c", None, None, "m"),
    DeviceRule(True, "b", None, None, "m"),
    *(DeviceRule(True, "c", d.major, d.minor, "rwm") for d in DEFAULT_DEVICES),
    DeviceRule(True, "c", 5, 1, "rwm"),  # /dev/console
    DeviceRule(True, "c", 5, 2, "rwm"),  # /dev/ptmx
    DeviceRule(True, "c", 136, None, "rwm"),  # /dev/pts/*
    DeviceRule(True, "c", 10, 200, "rwm"),  # /dev/net/tun
)
