"""Container state on disk, runc-compatible (synchronous world).

Layout: ``<root>/<id>/state.json`` (this record) and, between ``create`` and ``start``,
``<root>/<id>/exec.fifo`` on which the container's init blocks before ``execve``
(runc ``libcontainer/container_linux.go``).  The status is never stored: it is derived
each time from the init process, as runc does — gone, a zombie or a different process
under the same pid (start time differs) means ``stopped``; the fifo still present means
``created``; otherwise ``running`` (``paused`` when its cgroup is frozen is not tracked yet).
"""

from __future__ import annotations

import os

import msgspec

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.fsutil import atomic_write

__all__ = [
    "DEFAULT_ROOT",
    "FIFO",
    "Report",
    "State",
    "Store",
    "process_start_time",
]

DEFAULT_ROOT = "/run/dockyard-runtime"
FIFO = "exec.fifo"
_STATE = "state.json"


class State(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """What is stored; ``Report`` is what ``state`` prints."""

    oci_version: str
    id: str
    pid: int
    bundle: str
    rootfs: str
    created: str
    owner: str = ""
    init_start_time: int = 0
    cgroup_path: str = ""
    annotations: dict[str, str] | None = None


class Report(msgspec.Struct, rename="camel", kw_only=True):
    """``runc state`` output (libcontainer ``utils.State`` fields)."""

    oci_version: str
    id: str
    pid: int
    status: str
    bundle: str
    rootfs: str
    created: str
    owner: str
    annotations: dict[str, str] | None = None


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None when the pid is gone
    or a zombie; two processes that shared a pid never share this."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _check_id(container_id: str) -> None:
    if (
        not container_id
        or container_id in (".", "..")
        or "/" in container_id
        or len(container_id) > 1024
    ):
        raise InvalidParameter(f"invalid container id {container_id!r}")


class Store:
    """The state root (``--root``): one directory per container."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root

    def dir(self, container_id: str) -> str:
        _check_id(container_id)
        return os.path.join(self.root, container_id)

    def reserve(self, container_id: str) -> str:
        """Create the container's directory; Conflict if the id is taken."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        path = self.dir(container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise Conflict(f"container with id exists: {container_id}") from None
        return path

    def save(self, state: State) -> None:
        # Not fsynced (as runc's): a container does not outlive a reboot, its record need not.
        path = os.path.join(self.dir(state.id), _STATE)
        atomic_write(path, msgspec.json.encode(state), 0o600, durable=False)

    def load(self, container_id: str) -> State:
        try:
            with open(os.path.join(self.dir(container_id), _STATE), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotFound(f"container does not exist: {container_id}") from None
        return msgspec.json.decode(data, type=State)

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if os.path.exists(os.path.join(self.root, n, _STATE)))

    def status(self, state: State) -> str:
        if process_start_time(state.pid) != state.init_start_time:
            return "stopped"
        if os.path.exists(os.path.join(self.dir(state.id), FIFO)):
            return "created"
        return "running"

    def report(self, state: State) -> Report:
        status = self.status(state)
        return Report(
            oci_version=state.oci_version,
            id=state.id,
            pid=0 if status == "stopped" else state.pid,
            status=status,
            bundle=state.bundle,
            rootfs=state.rootfs,
            created=state.created,
            owner=state.owner,
            annotations=state.annotations,
        )

    def remove(self, container_id: str) -> None:
        import shutil

        shutil.rmtree(self.dir(container_id), ignore_errors=True)
