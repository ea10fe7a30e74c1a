"""Persistent network namespaces (blocking world): bind-mounted nsfs files, and code run inside.

A container's network namespace must outlive the processes in it (the daemon sets up
eth0 before the container's process starts, and keeps the namespace across restarts of
the container), so, like ``ip netns add`` and moby's ``libnetwork/osl``, it is pinned by
bind-mounting its ``/proc/thread-self/ns/net`` onto a file chosen by the caller, e.g.
``/run/dockyard/netns/<id>``; the runtime then joins it through that path.

Invariants:
- the calling process's own network namespace never changes: every namespace switch
  (``unshare`` to create, ``setns`` to enter) happens on a dedicated short-lived thread,
  which switches back before it ends (and, if that failed, dies with its namespace, so no
  thread of the daemon is left elsewhere); network namespaces are per thread in Linux;
- no fork: the daemon never forks (DESIGN.md), which is why pyroute2's own
  ``netns.create`` (a forked child) is not used;
- ``create`` and ``remove`` are idempotent in the way restarts need: ``remove`` of a missing
  namespace succeeds, ``create`` over a stale plain file (crash leftover) reuses it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dockyard.errors import Conflict, Internal
from dockyard.runtime import linux

__all__ = ["create", "exists", "remove", "run"]

T = TypeVar("T")

_SELF_NET = "/proc/thread-self/ns/net"
_EINVAL, _ENOENT = 22, 2
_OCTAL = re.compile(r"\\([0-7]{3})")  # mountinfo escapes space, tab, newline, backslash


def _in_thread(fn: Callable[[], T], name: str) -> T:
    """Run ``fn`` on a fresh thread (ended before returning); its result or exception."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as one:
        return one.submit(fn).result()


def _switched(enter: Callable[[], None], fn: Callable[[], T]) -> T:
    """On the current (dedicated) thread: ``enter`` a namespace, run ``fn``, switch back."""
    own = os.open(_SELF_NET, os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter()
        try:
            return fn()
        finally:
            linux.setns(own, linux.CLONE_NEWNET)
    finally:
        os.close(own)


def exists(path: str) -> bool:
    """Whether ``path`` is a mounted network namespace (not merely a file)."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split(" ")
            sep = fields.index("-")
            mountpoint = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
            if mountpoint == real and fields[sep + 1] == "nsfs":
                return True
    return False


def create(path: str) -> None:
    """Make a new network namespace with ``lo`` up and pin it at ``path``.

    ``Conflict`` if a namespace is already mounted there.
    """
    if exists(path):
        raise Conflict(f"network namespace {path} already exists")
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))

    def pin() -> None:
        # bind the *thread's* namespace: /proc/self would name the main thread's.
        linux.mount(_SELF_NET, path, None, linux.MS_BIND, None)
        _set_lo_up()

    try:
        _in_thread(
            lambda: _switched(lambda: linux.unshare(linux.CLONE_NEWNET), pin), "netns-create"
        )
    except OSError as exc:
        remove(path)
        raise Internal(f"creating network namespace {path}: {exc}") from exc


def _set_lo_up() -> None:
    from pyroute2 import IPRoute  # heavy; only the daemon's network paths need it

    with IPRoute(groups=0) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def remove(path: str) -> None:
    """Unpin and delete the namespace file (lazy unmount); a missing one is fine.

    The namespace itself goes away when its last process exits.
    """
    try:
        linux.umount2(path, linux.MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (_EINVAL, _ENOENT):  # EINVAL: not a mount point
            raise Internal(f"unmounting network namespace {path}: {exc}") from exc
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def run(path: str, fn: Callable[[], T]) -> T:
    """Call ``fn()`` inside the namespace at ``path``, on a dedicated thread, and return its result.

    Use it for anything that is bound to a namespace when created: netlink sockets
    (``pyroute2.IPRoute()`` made inside), listening or connecting sockets (a socket
    keeps its namespace after the thread switches back, so ``run(path, socket.socket)``
    hands back a socket living in the namespace). Exceptions from ``fn`` propagate.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _in_thread(
            lambda: _switched(lambda: linux.setns(fd, linux.CLONE_NEWNET), fn), "netns-run"
        )
    finally:
        os.close(fd)
