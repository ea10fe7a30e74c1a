"""OCI runtime-spec root record and its ``root``/``linux`` sections (both worlds).

``Spec`` decodes a bundle's config.json (``load``) and encodes one (``dump``); unknown
fields (hooks, intelRdt, annotations of other tools…) are ignored on decode, so specs made
by ``runc spec``, containerd or Docker load unchanged.  ``linux.seccomp`` is decoded
(records in ``seccomp.py``) and compiled by the runtime into the container's filter.
"""

from __future__ import annotations

import msgspec

from dockyard.runtime.spec.devices import Device, DeviceRule
from dockyard.runtime.spec.mounts import Mount
from dockyard.runtime.spec.process import Process
from dockyard.runtime.spec.seccomp import Seccomp

__all__ = [
    "OCI_VERSION",
    "BlockIO",
    "Cpu",
    "Linux",
    "Memory",
    "Namespace",
    "Pids",
    "Resources",
    "Root",
    "Spec",
    "dump",
    "load",
]

OCI_VERSION = "1.0.2"


class Root(msgspec.Struct, omit_defaults=True):
    path: str
    readonly: bool = False


class Namespace(msgspec.Struct, omit_defaults=True):
    type: str  # pid, network, mount, ipc, uts, user, cgroup
    path: str | None = None


class Memory(msgspec.Struct, omit_defaults=True):
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None  # memory + swap, as in cgroup v1's memsw


class Cpu(msgspec.Struct, omit_defaults=True):
    shares: int | None = None
    quota: int | None = None
    period: int | None = None
    cpus: str | None = None
    mems: str | None = None


class Pids(msgspec.Struct, omit_defaults=True):
    limit: int


class BlockIO(msgspec.Struct, omit_defaults=True):
    weight: int | None = None


class Resources(msgspec.Struct, rename={"block_io": "blockIO"}, omit_defaults=True):
    devices: list[DeviceRule] | None = None
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None


class Linux(msgspec.Struct, rename="camel", omit_defaults=True):
    namespaces: list[Namespace] = msgspec.field(default_factory=list)
    devices: list[Device] | None = None
    cgroups_path: str | None = None
    resources: Resources | None = None
    rootfs_propagation: str | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None
    sysctl: dict[str, str] | None = None
    seccomp: Seccomp | None = None


class Spec(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """The bundle's config.json; ``ociVersion`` and ``root`` are required, as for runc."""

    oci_version: str
    process: Process | None = None
    root: Root
    hostname: str | None = None
    mounts: list[Mount] = msgspec.field(default_factory=list)
    linux: Linux = msgspec.field(default_factory=Linux)
    annotations: dict[str, str] | None = None


def load(data: bytes) -> Spec:
    """Decode config.json; raises ``msgspec.ValidationError``/``DecodeError`` on bad input."""
    return msgspec.json.decode(data, type=Spec)


def dump(spec: Spec) -> bytes:
    """Encode as indented JSON, the way ``runc spec`` writes config.json."""
    return msgspec.json.format(msgspec.json.encode(spec), indent=2) + b"\n"
