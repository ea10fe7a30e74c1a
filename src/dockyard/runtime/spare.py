"""A pre-forked container init that has already joined its cgroup (cgroup v1; synchronous).

Joining a v1 cgroup (a write to ``cgroup.procs``) takes the kernel's
``cgroup_threadgroup_rwsem`` for writing, which first waits out an RCU grace period:
about 10 ms on these machines, the largest single cost of starting a container, and runc
pays it on every start too.  A long-lived runtime process (a ``dockyard-runtime`` server
worker) pays it before the container is asked for: it forks the init into a new pid
namespace, parks it in a hidden cgroup ``<parent>/.spare-<pid>`` and, when a container
comes, renames that cgroup to the container's (v1 allows a rename within one parent; v2
has no rename, so there are no spares on v2) and hands the parked init its arguments.
The container ends up in exactly the cgroup, namespaces and state it would have had.

The parked init copies its caller's umask, rlimits and oom_score_adj at hand-over time,
so it is indistinguishable from an init forked at that moment.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
from typing import TYPE_CHECKING, NoReturn

import msgspec

from dockyard.runtime import fdpass
from dockyard.runtime.cgroups import is_unified
from dockyard.runtime.cgroups.v1 import V1
from dockyard.runtime.rootfs import Plan
from dockyard.runtime.seccomp import Filter
from dockyard.runtime.spec import Spec
from dockyard.runtime.state import process_start_time

if TYPE_CHECKING:
    from dockyard.runtime.process import InitArgs

__all__ = ["RLIMIT_COUNT", "Spare", "discard_ready", "offer", "sweep", "take"]

_PREFIX = ".spare-"
RLIMIT_COUNT = 16  # RLIMIT_NLIMITS on Linux (the resource module does not export it)
_ready: Spare | None = None


class _Handoff(msgspec.Struct, array_like=True):
    """What the parked init needs from ``process.InitArgs``, plus its caller's state."""

    spec: Spec
    plan: Plan
    seccomp: Filter | None
    umask: int
    rlimits: list[tuple[int, int]]
    oom_score_adj: bytes


_DECODER = msgspec.msgpack.Decoder(_Handoff)


class Spare:
    """A parked init (``pid``) in cgroup ``<parent>/.spare-<pid>``."""

    def __init__(self, pid: int, start_time: int, sock: socket.socket, cgroup: V1) -> None:
        self.pid = pid
        self.start_time = start_time
        self.sock = sock
        self.cgroup = cgroup
        self.parent = os.path.dirname(cgroup.path)

    @classmethod
    def prepare(cls, parent: str) -> Spare | None:
        """Fork and park an init under cgroup ``parent``; ``None`` where spares cannot work."""
        if is_unified():
            return None
        from dockyard.runtime import spec
        from dockyard.runtime.pidns import fork_into

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = fork_into(spec.Namespace(type="pid"), lambda: _park(theirs, ours))
        finally:
            theirs.close()
        cgroup = V1(f"{'/' + parent.strip('/')}/{_PREFIX}{pid}".replace("//", "/"))
        spare = cls(pid, process_start_time(pid) or 0, ours, cgroup)
        try:
            cgroup.create()
            cgroup.apply(pid)
        except OSError:
            spare.discard()
            return None
        return spare

    def claim(self, path: str) -> V1 | None:
        """Rename the parked cgroup to ``path`` (same parent); ``None`` if that fails."""
        target = V1(path, self.cgroup.mounts)
        done: list[tuple[str, str]] = []
        try:
            for old, new in zip(self.cgroup._dirs(), target._dirs(), strict=True):
                os.rename(old, new)
                done.append((old, new))
        except (OSError, ValueError):
            for old, new in reversed(done):
                try:
                    os.rename(new, old)
                except OSError:
                    pass
            return None
        self.cgroup = target
        return target

    def start(self, args: InitArgs, report_fd: int) -> None:
        """Hand the parked init its arguments (stdio: ours) and ``report_fd``."""
        handoff = _Handoff(
            args.spec,
            args.plan,
            args.seccomp,
            _umask(),
            [resource.getrlimit(r) for r in range(RLIMIT_COUNT)],
            _read("/proc/self/oom_score_adj"),
        )
        fdpass.send(self.sock, msgspec.msgpack.encode(handoff), [report_fd, 0, 1, 2])
        self.sock.close()

    def discard(self) -> None:
        """Kill the parked init and remove its cgroup (it ran nothing)."""
        self.sock.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            self.cgroup.destroy()
        except OSError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _park(sock: socket.socket, parent_end: socket.socket) -> NoReturn:
    """The parked init: wait for arguments, become the caller, then ``process.init``."""
    parent_end.close()
    import gc  # our share of the heap copied now, not on the container's start path

    gc.unfreeze()
    gc.collect()
    gc.freeze()
    own_limits = [resource.getrlimit(r) for r in range(RLIMIT_COUNT)]
    own_oom = _read("/proc/self/oom_score_adj")
    try:
        data, fds = fdpass.receive(sock, 4)
    except (OSError, ValueError):
        os._exit(0)  # discarded
    sock.close()
    handoff = _DECODER.decode(data)
    report_fd, *stdio = fds
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
        os.close(fd)
    os.umask(handoff.umask)
    for res, limits in enumerate(handoff.rlimits):
        if res < len(own_limits) and tuple(limits) == own_limits[res]:
            continue
        try:
            resource.setrlimit(res, limits)
        except (ValueError, OSError):
            pass
    if handoff.oom_score_adj and handoff.oom_score_adj != own_oom:
        try:
            with open("/proc/self/oom_score_adj", "wb") as f:
                f.write(handoff.oom_score_adj)
        except OSError:
            pass
    from dockyard.runtime import process

    process.init(
        process.InitArgs(handoff.spec, handoff.plan, None, report_fd, None, None, handoff.seccomp)
    )


def offer(spare: Spare | None) -> None:
    """Make ``spare`` the one the next ``native.run`` in this process may use."""
    global _ready
    _ready = spare


def take(cgroup_path: str) -> Spare | None:
    """The ready spare if it can become cgroup ``cgroup_path`` (same parent), else None."""
    global _ready
    spare = _ready
    if spare is None or os.path.dirname("/" + cgroup_path.strip("/")) != spare.parent:
        return None
    _ready = None
    return spare


def discard_ready() -> None:
    global _ready
    if _ready is not None:
        _ready.discard()
        _ready = None


def sweep(parent: str) -> None:
    """Remove empty spare cgroups under ``parent`` that a killed runtime left behind."""
    if is_unified():
        return
    base = V1("/" + parent.strip("/"))
    for directory in base._dirs():
        try:
            names = [n for n in os.listdir(directory) if n.startswith(_PREFIX)]
        except OSError:
            continue
        for name in names:
            try:
                os.rmdir(os.path.join(directory, name))  # EBUSY while an init is parked
            except OSError:
                pass
