"""cgroup drivers (synchronous world): v1 (per controller) and v2 (unified), chosen once.
Paths and limits only: it knows nothing of containers' records.

``open_manager`` looks at the host the way runc's ``manager/new.go`` does: a unified
hierarchy has ``cgroup.controllers`` at ``/sys/fs/cgroup``; anything else (legacy or
hybrid, where v2 is an empty ``unified`` mount) is driven as v1.
"""

from __future__ import annotations

import os

from dockyard.runtime.cgroups.base import Cgroup, Stats
from dockyard.runtime.cgroups.v1 import V1
from dockyard.runtime.cgroups.v2 import V2

__all__ = ["V1", "V2", "Cgroup", "Stats", "is_unified", "open_manager"]


def is_unified(root: str = "/sys/fs/cgroup") -> bool:
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def open_manager(path: str, root: str = "/sys/fs/cgroup") -> Cgroup:
    """The driver for cgroup ``path`` (e.g. ``/dockyard/<id>``) on this host."""
    if is_unified(root):
        return V2(path, root)
    return V1(path)
