"""The default OCI spec (both worlds): what ``dockyard-runtime spec`` writes and what the
daemon starts from before applying a container's config.

Values follow Docker (moby ``oci/defaults.go`` and ``daemon/oci_linux.go``) where it and
``runc spec`` differ: Docker's 14 default capabilities (none inheritable, after
CVE-2022-24769), Docker's masked and read-only paths, a 64 MiB /dev/shm, and
RLIMIT_NOFILE 1048576 (what containers inherit from containerd's ``LimitNOFILE``).
"""

from __future__ import annotations

from dockyard.runtime.spec.config import OCI_VERSION, Linux, Namespace, Resources, Root, Spec
from dockyard.runtime.spec.devices import DEFAULT_DEVICE_RULES, DEFAULT_DEVICES
from dockyard.runtime.spec.mounts import Mount
from dockyard.runtime.spec.process import Capabilities, Process, Rlimit, User

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_ENV",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "DOCKER_NOFILE",
    "default_mounts",
    "default_nofile",
    "default_spec",
]

DOCKER_NOFILE = 1048576

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

DEFAULT_ENV: tuple[str, ...] = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TERM=xterm",
)

_NAMESPACES = ("pid", "network", "ipc", "uts", "mount")


def default_mounts() -> list[Mount]:
    """Docker's default mounts (``/sys/fs/cgroup`` shows the container its own cgroup)."""
    return [
        Mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        Mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        Mount("/sys/fs/cgroup", "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"]),
        Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        Mount(
            "/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        ),
    ]


def default_nofile() -> int:
    """Docker's 1048576, or this process's hard limit if it cannot raise to that.

    Docker containers inherit containerd's ``LimitNOFILE`` (1048576) rather than asking for
    it; a host that withholds CAP_SYS_RESOURCE (some VMs and nested containers do) could
    not grant more than the hard limit it already has, and the spec must stay runnable.
    """
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= DOCKER_NOFILE:
        return DOCKER_NOFILE
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            # CAP_SYS_RESOURCE (24) lets the hard limit rise.
            if line.startswith("CapEff:") and int(line.split()[1], 16) & (1 << 24):
                return DOCKER_NOFILE
    return hard


def default_spec(
    args: list[str] | None = None,
    rootfs: str = "rootfs",
    hostname: str = "dockyard",
    nofile: int = DOCKER_NOFILE,
) -> Spec:
    """A complete spec that runs ``args`` (default ``sh``) as root in fresh namespaces.

    ``nofile`` is RLIMIT_NOFILE (soft = hard); callers on the host pass ``default_nofile()``.
    """
    caps = list(DEFAULT_CAPABILITIES)
    return Spec(
        oci_version=OCI_VERSION,
        process=Process(
            args=list(args) if args else ["sh"],
            cwd="/",
            env=list(DEFAULT_ENV),
            user=User(uid=0, gid=0),
            capabilities=Capabilities(bounding=caps, effective=list(caps), permitted=list(caps)),
            rlimits=[Rlimit("RLIMIT_NOFILE", nofile, nofile)],
        ),
        root=Root(rootfs, False),
        hostname=hostname,
        mounts=default_mounts(),
        linux=Linux(
            namespaces=[Namespace(t) for t in _NAMESPACES],
            devices=list(DEFAULT_DEVICES),
            resources=Resources(devices=list(DEFAULT_DEVICE_RULES)),
            masked_paths=list(DEFAULT_MASKED_PATHS),
            readonly_paths=list(DEFAULT_READONLY_PATHS),
        ),
    )
