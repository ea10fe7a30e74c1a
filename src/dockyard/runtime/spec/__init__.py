"""OCI runtime spec (both worlds): records by section, the default spec, validation.
Pure data and checks: no I/O beyond load/dump, no knowledge of Docker's HostConfig.

Layout: ``config.py`` (root record, ``root`` and ``linux``), ``process.py``, ``mounts.py``,
``devices.py``, ``seccomp.py``, ``default.py`` and ``validate.py``; this module is the public
face.
"""

from dockyard.runtime.spec.config import (
    OCI_VERSION,
    BlockIO,
    Cpu,
    Linux,
    Memory,
    Namespace,
    Pids,
    Resources,
    Root,
    Spec,
    dump,
    load,
)
from dockyard.runtime.spec.default import default_spec
from dockyard.runtime.spec.devices import (
    DEFAULT_DEVICE_RULES,
    DEFAULT_DEVICES,
    DEFAULT_DEVICES_BY_PATH,
    Device,
    DeviceRule,
)
from dockyard.runtime.spec.mounts import Mount
from dockyard.runtime.spec.process import Box, Capabilities, Process, Rlimit, User
from dockyard.runtime.spec.seccomp import Seccomp, Syscall, SyscallArg
from dockyard.runtime.spec.validate import validate

__all__ = [
    "DEFAULT_DEVICES",
    "DEFAULT_DEVICES_BY_PATH",
    "DEFAULT_DEVICE_RULES",
    "OCI_VERSION",
    "BlockIO",
    "Box",
    "Capabilities",
    "Cpu",
    "Device",
    "DeviceRule",
    "Linux",
    "Memory",
    "Mount",
    "Namespace",
    "Pids",
    "Process",
    "Resources",
    "Rlimit",
    "Root",
    "Seccomp",
    "Spec",
    "Syscall",
    "SyscallArg",
    "User",
    "default_spec",
    "dump",
    "load",
    "validate",
]
