"""Forking into a pid namespace (synchronous): a new one, one joined by path, or ours.

The parent joins (or unshares) the namespace only around the ``fork`` and then returns to
its own, so the child is the namespace's first process (its init) or a member of it.  Used
by the native runtime (``native.py``) for inits and execs and by ``spare.py`` for parked
inits, neither of which imports the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dockyard.runtime import linux, spec

__all__ = ["fork_into"]


def fork_into(pid_ns: spec.Namespace | None, child: Callable[[], object]) -> int:
    """Fork ``child()`` (it never returns) into ``pid_ns``: new, joined by path, or ours."""
    restore = None
    if pid_ns is not None:
        restore = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if pid_ns is not None and pid_ns.path:
            fd = os.open(pid_ns.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                linux.setns(fd, linux.CLONE_NEWPID)
            finally:
                os.close(fd)
        elif pid_ns is not None:
            linux.unshare(linux.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            child()
            os._exit(1)
        return pid
    finally:
        if restore is not None:
            linux.setns(restore, linux.CLONE_NEWPID)
            os.close(restore)
