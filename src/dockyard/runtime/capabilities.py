"""Capability names and numbers (synchronous world; pure).

Numbers from <linux/capability.h>; ``mask`` turns a spec's name list into the 64-bit mask
that ``linux.capset`` takes.  Names this kernel does not know (above ``cap_last_cap``) are
dropped silently at apply time, as runc does.
"""

from __future__ import annotations

__all__ = ["CAPABILITIES", "mask"]

_NAMES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]

CAPABILITIES: dict[str, int] = {"CAP_" + name: i for i, name in enumerate(_NAMES)}


def mask(names: list[str] | tuple[str, ...] | None, last_cap: int = 63) -> int:
    """Bit mask of ``names``, keeping only capabilities ``<= last_cap``."""
    bits = 0
    for name in names or ():
        n = CAPABILITIES[name]
        if n <= last_cap:
            bits |= 1 << n
    return bits
