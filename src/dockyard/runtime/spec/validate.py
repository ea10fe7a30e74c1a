"""Checks a spec before anything is created (both worlds; pure).

Runs first, so every later step may assume: a process with args, absolute mount
destinations, known namespace types, no duplicate namespaces, known capability and rlimit
names, a seccomp section a runtime can compile.  Raises ``dockyard.errors.InvalidParameter``
with the offending field named.
"""

from __future__ import annotations

from dockyard.errors import InvalidParameter
from dockyard.runtime.capabilities import CAPABILITIES
from dockyard.runtime.spec.config import Spec
from dockyard.runtime.spec.seccomp import check as check_seccomp

__all__ = ["NAMESPACE_TYPES", "RLIMITS", "validate"]

NAMESPACE_TYPES = frozenset({"pid", "network", "mount", "ipc", "uts", "user", "cgroup"})

RLIMITS = frozenset(
    "RLIMIT_" + n
    for n in [
        "AS",
        "CORE",
        "CPU",
        "DATA",
        "FSIZE",
        "LOCKS",
        "MEMLOCK",
        "MSGQUEUE",
        "NICE",
        "NOFILE",
        "NPROC",
        "RSS",
        "RTPRIO",
        "RTTIME",
        "SIGPENDING",
        "STACK",
    ]
)


def validate(spec: Spec) -> None:
    process = spec.process
    if process is None or not process.args:
        raise InvalidParameter("config.json: process.args must name the program to run")
    if not process.cwd.startswith("/"):
        raise InvalidParameter(f"config.json: process.cwd {process.cwd!r} must be absolute")
    seen: set[str] = set()
    for ns in spec.linux.namespaces:
        if ns.type not in NAMESPACE_TYPES:
            raise InvalidParameter(f"config.json: unknown namespace type {ns.type!r}")
        if ns.type in seen:
            raise InvalidParameter(f"config.json: namespace {ns.type!r} listed twice")
        seen.add(ns.type)
    if "user" in seen:
        raise InvalidParameter("config.json: user namespaces are not supported yet")
    if spec.hostname and "uts" not in seen:
        raise InvalidParameter("config.json: hostname needs a new uts namespace")
    for m in spec.mounts:
        if not m.destination.startswith("/"):
            raise InvalidParameter(
                f"config.json: mount destination {m.destination!r} must be absolute"
            )
    caps = process.capabilities
    if caps is not None:
        for name in (
            *(caps.bounding or ()),
            *(caps.effective or ()),
            *(caps.permitted or ()),
            *(caps.inheritable or ()),
            *(caps.ambient or ()),
        ):
            if name not in CAPABILITIES:
                raise InvalidParameter(f"config.json: unknown capability {name!r}")
    for rl in process.rlimits or ():
        if rl.type not in RLIMITS:
            raise InvalidParameter(f"config.json: unknown rlimit {rl.type!r}")
        if rl.soft > rl.hard:
            raise InvalidParameter(f"config.json: {rl.type} soft limit exceeds hard limit")
    if spec.linux.seccomp is not None:
        try:
            check_seccomp(spec.linux.seccomp)
        except InvalidParameter as exc:
            raise InvalidParameter(f"config.json: linux.{exc}") from None
