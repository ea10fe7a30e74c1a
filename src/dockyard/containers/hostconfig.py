"""HostConfig → the security and resource parts of the OCI spec (pure logic).

As moby's daemon/oci_linux.go: capabilities from Docker's default set with CapAdd/CapDrop
(names with or without ``CAP_``, ``ALL``), ``Privileged`` lifting capabilities, masked and
read-only paths and the device cgroup; cgroup resources (memory, memory+swap, cpus,
shares, quota/period, cpuset, pids, blkio weight); rlimits from Ulimits; namespaced sysctls;
the seccomp profile (``seccomp.py``).
``validate`` runs at create so bad values are a 400 before anything is made.
"""

from __future__ import annotations

from typing import Any

from dockyard.containers import devices, seccomp
from dockyard.errors import Internal, InvalidParameter
from dockyard.runtime.capabilities import CAPABILITIES
from dockyard.runtime.spec.config import BlockIO, Cpu, Memory, Pids, Resources, Spec
from dockyard.runtime.spec.default import (
    DEFAULT_CAPABILITIES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
)
from dockyard.runtime.spec.devices import DeviceRule
from dockyard.runtime.spec.process import Rlimit

__all__ = [
    "apply",
    "canonical",
    "capabilities",
    "configure_no_new_privileges",
    "inspect_view",
    "no_new_privileges",
    "resources",
    "validate",
]

_RLIMITS = {
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
}
_NAMESPACED_SYSCTL_PREFIXES = ("kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue.", "net.")
_NAMESPACED_SYSCTLS = {
    "kernel.domainname",
    "kernel.hostname",
    "kernel.shmmax",
    "kernel.shmall",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
}
_PERIOD = 100_000


def _cap(name: str) -> str:
    upper = name.upper()
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if upper != "ALL" and full not in CAPABILITIES:
        raise InvalidParameter(f'invalid CapAdd: unknown capability: "{full}"')
    return "ALL" if upper == "ALL" else full


def _all_held() -> list[str]:
    """Every capability this host lets us hold: "ALL" and --privileged mean these (a VM
    or nested container may withhold some, e.g. CAP_SYS_RESOURCE; asking for it fails)."""
    bounding = (1 << 64) - 1
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    bounding = int(line.split()[1], 16)
    except OSError:
        pass
    return [
        c
        for c in sorted(CAPABILITIES, key=CAPABILITIES.__getitem__)
        if bounding >> CAPABILITIES[c] & 1
    ]


def capabilities(hc: dict[str, Any]) -> list[str]:
    if hc.get("Privileged"):
        return _all_held()
    add = [_cap(c) for c in hc.get("CapAdd") or []]
    drop = [_cap(c) for c in hc.get("CapDrop") or []]
    caps = list(DEFAULT_CAPABILITIES)
    if "ALL" in add:
        caps = _all_held()
    else:
        caps += [c for c in add if c not in caps]
    if "ALL" in drop:
        return [c for c in add if c != "ALL"]
    return [c for c in caps if c not in drop]


_daemon_no_new_privileges = False  # dockerd's --no-new-privileges


def configure_no_new_privileges(enabled: bool) -> None:
    """The daemon-wide default (``--no-new-privileges``, daemon.json ``no-new-privileges``);
    a container's own ``no-new-privileges=false`` still turns it off, as in moby."""
    global _daemon_no_new_privileges
    _daemon_no_new_privileges = enabled


def no_new_privileges(hc: dict[str, Any]) -> bool:
    """``no-new-privileges`` alone, or with a boolean after "=" (or the old ":"), as moby's
    parseSecurityOpt; the last one wins.  Execs inherit it, as they do in Docker."""
    wanted = _daemon_no_new_privileges
    for opt in hc.get("SecurityOpt") or []:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "no-new-privileges":
            wanted = not sep or value in ("1", "t", "T", "true", "TRUE", "True")
    return wanted


def _check_security_opts(hc: dict[str, Any]) -> None:
    """Refuse a --security-opt dockyard does not know rather than ignore it."""
    for opt in hc.get("SecurityOpt") or []:
        key, _, _ = opt.replace("=", ":", 1).partition(":")
        if key not in ("seccomp", "no-new-privileges", "label", "apparmor"):
            raise InvalidParameter(f"Invalid --security-opt: {opt!r}")


# moby's built-in log drivers on Linux (daemon/logdrivers_linux.go); any other name is a
# plugin, which dockyard has none of.
_LOG_DRIVERS = {
    "awslogs",
    "fluentd",
    "gcplogs",
    "gelf",
    "journald",
    "json-file",
    "local",
    "logentries",
    "none",
    "splunk",
    "syslog",
}

# Every HostConfig field of the Engine API (swagger HostConfig and Resources): Go decodes
# JSON field names case-insensitively and answers with these spellings.
_FIELDS = [
    "Binds",
    "ContainerIDFile",
    "LogConfig",
    "NetworkMode",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "VolumeDriver",
    "VolumesFrom",
    "Mounts",
    "ConsoleSize",
    "Annotations",
    "CapAdd",
    "CapDrop",
    "CgroupnsMode",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "IpcMode",
    "Cgroup",
    "Links",
    "OomScoreAdj",
    "PidMode",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "SecurityOpt",
    "StorageOpt",
    "Tmpfs",
    "UTSMode",
    "UsernsMode",
    "ShmSize",
    "Sysctls",
    "Runtime",
    "Isolation",
    "MaskedPaths",
    "ReadonlyPaths",
    "CpuShares",
    "Memory",
    "CgroupParent",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "KernelMemory",
    "KernelMemoryTCP",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "NanoCpus",
    "OomKillDisable",
    "Init",
    "PidsLimit",
    "Ulimits",
    "CpuCount",
    "CpuPercent",
    "IOMaximumIOps",
    "IOMaximumBandwidth",
]
_BY_FOLDED = {name.lower(): name for name in _FIELDS}

# What dockerd fills in for a field the client left out (its inspect always has them).
# IpcMode "private" and CgroupnsMode "host" are what dockyard does: it makes an IPC
# namespace per container and does not make a cgroup namespace.
_DEFAULTS: dict[str, Any] = {
    "Binds": None,
    "ContainerIDFile": "",
    "PortBindings": None,
    "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "ConsoleSize": [0, 0],
    "CapAdd": None,
    "CapDrop": None,
    "CgroupnsMode": "host",
    "Dns": None,
    "DnsOptions": None,
    "DnsSearch": None,
    "ExtraHosts": None,
    "GroupAdd": None,
    "IpcMode": "private",
    "Cgroup": "",
    "Links": None,
    "OomScoreAdj": 0,
    "PidMode": "",
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "SecurityOpt": None,
    "UTSMode": "",
    "UsernsMode": "",
    "ShmSize": 64 * 1024 * 1024,
    "Isolation": "",
    "CpuShares": 0,
    "Memory": 0,
    "NanoCpus": 0,
    "CgroupParent": "",
    "BlkioWeight": 0,
    "BlkioWeightDevice": None,
    "BlkioDeviceReadBps": None,
    "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None,
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "Devices": None,
    "DeviceCgroupRules": None,
    "DeviceRequests": None,
    "KernelMemory": 0,
    "KernelMemoryTCP": 0,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "MemorySwappiness": None,
    "OomKillDisable": False,
    "PidsLimit": None,
    "Ulimits": None,
    "CpuCount": 0,
    "CpuPercent": 0,
    "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
}


def canonical(hc: dict[str, Any]) -> dict[str, Any]:
    """The create request's HostConfig with field names spelled as moby spells them
    (``CPURealtimeRuntime`` → ``CpuRealtimeRuntime``), so every reader finds them; an exact
    spelling wins over a folded one.  A missing RestartPolicy is stored as dockerd stores it."""
    out: dict[str, Any] = {}
    for key, value in hc.items():
        name = _BY_FOLDED.get(key.lower(), key) if isinstance(key, str) else key
        if name != key and name in hc:
            continue
        out[name] = value
    out.setdefault("RestartPolicy", dict(_DEFAULTS["RestartPolicy"]))
    bindings = out.get("PortBindings")
    if isinstance(bindings, dict):
        # moby stores each binding with both fields (nat.PortBinding)
        out["PortBindings"] = {
            port: [{"HostIp": "", "HostPort": "", **b} if isinstance(b, dict) else b for b in binds]
            if isinstance(binds, list)
            else binds
            for port, binds in bindings.items()
        }
    return out


def inspect_view(hc: dict[str, Any]) -> dict[str, Any]:
    """HostConfig as dockerd's inspect shows it: every field, defaults filled in."""
    view = {**_DEFAULTS, **hc}
    for key, paths in (
        ("MaskedPaths", DEFAULT_MASKED_PATHS),
        ("ReadonlyPaths", DEFAULT_READONLY_PATHS),
    ):
        if view.get(key) is None:
            view[key] = None if view.get("Privileged") else list(paths)
    return view


def validate(hc: dict[str, Any]) -> None:
    log_type = (hc.get("LogConfig") or {}).get("Type") or ""
    if log_type and log_type not in _LOG_DRIVERS:
        raise InvalidParameter(
            f'error looking up logging plugin {log_type}: plugin "{log_type}" not found'
        )
    isolation = hc.get("Isolation") or ""
    if isolation not in ("", "default"):
        # moby answers with a plain error (500)
        raise Internal(f"Invalid isolation: \"{isolation}\" - linux only supports 'default'")
    _check_security_opts(hc)
    devices.check(list(hc.get("Devices") or []))
    seccomp.resolve(hc, capabilities(hc))  # a bad profile is a 400 now, not a failed start
    for item in hc.get("Ulimits") or []:
        if not isinstance(item, dict) or item.get("Name") not in _RLIMITS:
            raise InvalidParameter(f"invalid ulimit: {item!r}")
        if int(item.get("Soft", 0)) > int(item.get("Hard", 0)):
            raise InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {item['Name']}"
            )
    for key in hc.get("Sysctls") or {}:
        if key not in _NAMESPACED_SYSCTLS and not key.startswith(_NAMESPACED_SYSCTL_PREFIXES):
            raise InvalidParameter(f"sysctl '{key}' is not allowed: it is not namespaced")
        if key.startswith("net.") and hc.get("NetworkMode") == "host":
            raise InvalidParameter(f"sysctl '{key}' is not allowed in host network mode")
    nano = hc.get("NanoCpus") or 0
    if nano and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and nano < 10_000_000:
        raise InvalidParameter("Range of CPUs is from 0.01 to the number of CPUs available")
    mem, swap = hc.get("Memory") or 0, hc.get("MemorySwap") or 0
    if swap > 0 and mem and swap < mem:
        raise InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if swap > 0 and not mem:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if (hc.get("BlkioWeight") or 0) and not 10 <= hc["BlkioWeight"] <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")


def resources(hc: dict[str, Any], base: Resources | None = None) -> Resources:
    res = base or Resources()
    mem = hc.get("Memory") or 0
    swap = hc.get("MemorySwap") or 0
    if mem:
        # Docker: no MemorySwap means twice the memory; -1 means unlimited swap.
        res.memory = Memory(limit=mem, swap=None if swap == -1 else (swap or 2 * mem))
    cpu = Cpu()
    if hc.get("NanoCpus"):
        cpu.quota, cpu.period = hc["NanoCpus"] * _PERIOD // 1_000_000_000, _PERIOD
    if hc.get("CpuQuota"):
        cpu.quota = hc["CpuQuota"]
    if hc.get("CpuPeriod"):
        cpu.period = hc["CpuPeriod"]
    if hc.get("CpuShares"):
        cpu.shares = hc["CpuShares"]
    if hc.get("CpusetCpus"):
        cpu.cpus = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu.mems = hc["CpusetMems"]
    if cpu != Cpu():
        res.cpu = cpu
    if (hc.get("PidsLimit") or 0) > 0:
        res.pids = Pids(limit=hc["PidsLimit"])
    if hc.get("BlkioWeight"):
        res.block_io = BlockIO(weight=hc["BlkioWeight"])
    if hc.get("Privileged"):
        res.devices = [DeviceRule(allow=True, access="rwm")]
    return res


def apply(spec: Spec, hc: dict[str, Any]) -> None:
    """Fill ``spec`` (from ``default_spec``) with what the HostConfig asks."""
    caps = capabilities(hc)
    proc = spec.process
    if proc.capabilities is not None:
        proc.capabilities.bounding = list(caps)
        proc.capabilities.effective = list(caps)
        proc.capabilities.permitted = list(caps)
    proc.no_new_privileges = no_new_privileges(hc)
    spec.linux.seccomp = seccomp.resolve(hc, caps)
    limits = {r.type: r for r in proc.rlimits or []}
    for item in hc.get("Ulimits") or []:
        name = "RLIMIT_" + item["Name"].upper()
        limits[name] = Rlimit(name, int(item["Hard"]), int(item["Soft"]))
    proc.rlimits = list(limits.values())
    linux = spec.linux
    linux.resources = resources(hc, linux.resources)
    if hc.get("Sysctls"):
        linux.sysctl = dict(hc["Sysctls"])
    if hc.get("Privileged"):
        linux.masked_paths = None
        linux.readonly_paths = None
        for m in spec.mounts or []:
            if m.destination in ("/sys", "/sys/fs/cgroup") and m.options:
                m.options = [o for o in m.options if o != "ro"] + ["rw"]
    if hc.get("ShmSize"):
        for m in spec.mounts or []:
            if m.destination == "/dev/shm" and m.options:
                m.options = [o for o in m.options if not o.startswith("size=")] + [
                    f"size={hc['ShmSize'] // 1024}k"
                ]
