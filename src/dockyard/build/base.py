"""What the builder needs from the rest of the daemon, as Protocols (asyncio world).

The ``build`` package must not import ``containers``, ``api`` or ``daemon``: a RUN step is
run through a :class:`StepRunner`, which the daemon implements over the container service
(``dockyard.daemon.builder``).  Lifecycle per RUN step: ``create`` → ``run`` (start, stream
the output, wait: the exit code) → ``commit`` if it succeeded → ``remove`` as moby's legacy
builder removes: after a success with ``rm`` (the default), after a failure only with
``forcerm``, and always when the build is cancelled half-way.  Metadata steps and WORKDIR
get a container too (created, never started), as moby's ``probeAndCreate`` makes one.
Images a build names but does not have are pulled through an :class:`ImagePuller`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ImagePuller", "Output", "Progress", "RunMount", "RunRequest", "StepRunner"]

Output = Callable[[bytes], Awaitable[None]]
"""Where a step's output goes: the build's JSON stream, as ``{"stream": ...}`` lines."""

Progress = Callable[[dict[str, Any]], Awaitable[None]]
"""Where a pull's progress goes: its messages (``status``, ``id``, ``progressDetail``...)
written into the build's stream as they are, as moby's builder does."""


@dataclass(frozen=True, slots=True)
class RunMount:
    """A mount for one RUN step: ``bind`` (a host path) or ``tmpfs``."""

    type: str
    target: str
    source: str = ""
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A RUN step's container: the image config fields moby's builder sets, and the
    resource options of ``POST /build``."""

    image_id: str
    cmd: list[str]
    env: list[str]
    user: str
    working_dir: str
    labels: dict[str, str] = field(default_factory=dict)
    mounts: tuple[RunMount, ...] = ()
    network_mode: str = "default"
    extra_hosts: tuple[str, ...] = ()
    shm_size: int = 0
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    cpu_period: int = 0
    cpu_quota: int = 0
    ulimits: tuple[dict[str, Any], ...] = ()
    cgroup_parent: str = ""


class StepRunner(Protocol):
    """Runs RUN steps in containers with the same isolation as ``docker run``."""

    async def create(self, request: RunRequest) -> str:
        """Create (do not start) the step's container; returns its id."""
        ...

    async def run(self, container_id: str, output: Output) -> int:
        """Start it, send its stdout and stderr to ``output`` as they come, return its exit
        code.  Cancelling this kills the container."""
        ...

    async def commit(self, container_id: str) -> str:
        """Commit the exited container; returns the diff id of its layer, which stays in the
        content store while the temporary image from the commit exists (see ``release``)."""
        ...

    async def release(self, container_id: str) -> None:
        """Drop the temporary image ``commit`` made (the builder has registered its own)."""
        ...

    async def remove(self, container_id: str) -> None:
        """Remove the container (forcibly) and its rw layer; idempotent."""
        ...


class ImagePuller(Protocol):
    """Pulls the images a build names (FROM, ``COPY --from``, ``RUN --mount from=``) when
    they are missing or ``pull=1``: the daemon implements it over the distribution
    service, which ``build`` may not import."""

    async def pull(self, ref: str, platform: str, registry_config: str, output: Progress) -> None:
        """Pull ``ref`` (a full reference with a tag or digest), sending its progress to
        ``output``; ``registry_config`` is the request's ``X-Registry-Config`` (base64 JSON
        credentials by registry, maybe empty).  Raises a ``dockyard.errors`` class when the
        pull fails (not found, denied, unreachable)."""
        ...
