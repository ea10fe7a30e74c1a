"""What ``/version``, ``/info`` and ``/system/df`` report (asyncio world).

It reads the other services and the host; it owns no state of its own beyond the engine ID.
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
import uuid
from typing import Any

from dockyard import __version__
from dockyard.api.version import DEFAULT_VERSION, DF_TYPES, MIN_VERSION, format_version
from dockyard.daemon.config import Config
from dockyard.distribution.config import RegistryConfig
from dockyard.events import EventBus
from dockyard.images.service import ImageService
from dockyard.storage import disk_usage

__all__ = ["SystemService"]


def _engine_id(data_root: str) -> str:
    path = os.path.join(data_root, "engine-id")
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except FileNotFoundError:
        from dockyard.fsutil import atomic_write

        value = str(uuid.uuid4())
        atomic_write(path, value.encode())
        return value


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _mem_total() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


class SystemService:
    def __init__(
        self,
        config: Config,
        images: ImageService,
        events: EventBus,
        containers: Any = None,
        volumes: Any = None,
    ) -> None:
        self.containers = containers
        self.volumes = volumes
        self.config = config
        self.images = images
        self.events = events
        self.engine_id = _engine_id(config.data_root)
        self.build: Any = None  # the BuildService, set by the daemon's wiring

    def version(self) -> dict[str, Any]:
        uname = os.uname()
        return {
            "Platform": {"Name": "dockyard"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": __version__,
                    "Details": {
                        "ApiVersion": format_version(DEFAULT_VERSION),
                        "Arch": "amd64" if uname.machine == "x86_64" else uname.machine,
                        "BuildTime": "",
                        "Experimental": "false",
                        "GitCommit": "",
                        "GoVersion": "python" + platform.python_version(),
                        "KernelVersion": uname.release,
                        "MinAPIVersion": format_version(MIN_VERSION),
                        "Os": "linux",
                    },
                }
            ],
            "Version": __version__,
            "ApiVersion": format_version(DEFAULT_VERSION),
            "MinAPIVersion": format_version(MIN_VERSION),
            "GitCommit": "",
            "GoVersion": "python" + platform.python_version(),
            "Os": "linux",
            "Arch": "amd64" if uname.machine == "x86_64" else uname.machine,
            "KernelVersion": uname.release,
            "BuildTime": "",
        }

    async def info(self) -> dict[str, Any]:
        uname = os.uname()
        images = len(self.images.store.images())
        return {
            "ID": self.engine_id,
            **dict(
                zip(
                    ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped"),
                    self.containers.running_count() if self.containers else (0, 0, 0, 0),
                )
            ),
            "Images": images,
            "Driver": self.images.driver.name,
            "DriverStatus": [list(kv) for kv in self.images.driver.status()],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "null"],
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": True,
            "KernelMemory": False,
            "KernelMemoryTCP": False,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "IPv4Forwarding": True,
            "BridgeNfIptables": True,
            "BridgeNfIp6tables": True,
            "Debug": self.config.debug,
            "NFd": len(os.listdir("/proc/self/fd")),
            "OomKillDisable": True,
            "NGoroutines": len(asyncio.all_tasks()),  # the closest thing: its tasks
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000000Z",
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": _cgroup_version(),
            "NEventsListener": self.events.listeners,
            "KernelVersion": uname.release,
            "OperatingSystem": _os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": uname.machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": self.config.registry.info()
            if self.config.registry is not None
            else RegistryConfig().info(),
            "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(),
            "GenericResources": None,
            "DockerRootDir": self.config.data_root,
            "HttpProxy": os.environ.get("HTTP_PROXY", ""),
            "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
            "NoProxy": os.environ.get("NO_PROXY", ""),
            "Name": uname.nodename,
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": self.containers.runtimes.info() if self.containers is not None else {},
            "DefaultRuntime": self.containers.runtimes.default
            if self.containers is not None
            else "dockyard",
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": list(self.config.security_options),
            "Warnings": None,
            # 1.44+: no CDI support, so no spec directories (moby lists [] unless experimental)
            "CDISpecDirs": [],
            # 1.49+: rules go through iptables (network/iptables.py), as dockerd's default
            "FirewallBackend": {"Driver": "iptables"},
        }

    async def disk_usage(self, types: frozenset[str] = frozenset(DF_TYPES)) -> dict[str, Any]:
        """``system df``; ``types`` (API 1.42's ``type=``) limits which objects are counted,
        the others are null, as moby answers."""
        usage = self.images.disk_usage()
        containers: list[dict[str, Any]] = []
        if self.containers is not None and "container" in types:
            containers = self.containers.list(True, None, {})
            for entry in containers:
                entry["SizeRw"], entry["SizeRootFs"] = await asyncio.to_thread(
                    self.containers.sizes, entry["Id"]
                )
        cache: list[dict[str, Any]] = []
        if self.build is not None and "build-cache" in types:
            cache = await self.build.disk_usage()
        volumes: list[dict[str, Any]] = []
        if self.volumes is not None and "volume" in types:
            volumes = await self.volumes.usage()
        layers_size = usage["LayersSize"]
        if len(types) == len(DF_TYPES):
            # Everything on disk under the data root is counted, so nothing grows unseen:
            # what is neither a container's rw layer nor a volume (image layers, the content
            # store's blobs, logs, the metadata store, leftovers) is shown as the images'
            # size.  Only when every type was counted can the others be told apart.
            total = await asyncio.to_thread(disk_usage, self.config.data_root, True)
            others = (
                sum(c.get("SizeRw") or 0 for c in containers)
                + sum((v.get("UsageData") or {}).get("Size", 0) for v in volumes)
                + sum(int(c["Size"]) for c in cache)
            )
            layers_size = max(layers_size, total - others)
        wanted = {
            "LayersSize": layers_size,
            "Images": usage["Images"],
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": cache,
            "BuilderSize": sum(int(c["Size"]) for c in cache),
        }
        if "image" not in types:
            wanted["LayersSize"], wanted["Images"] = 0, None
        for key, kind in (("Containers", "container"), ("Volumes", "volume")):
            if kind not in types:
                wanted[key] = None
        if "build-cache" not in types:
            wanted["BuildCache"] = None
        return wanted
