"""The container record and its state machine's data (pure, serialisable).

``config`` and ``host_config`` are the create request's objects as the client sent them
(moby stores them the same way and answers inspect with them); ``State`` follows moby's
container.State field names.
"""

from __future__ import annotations

from typing import Any

import msgspec

from dockyard.volumes.mounts import MountPoint

__all__ = ["ZERO_TIME", "Container", "State"]

ZERO_TIME = "0001-01-01T00:00:00Z"


class State(msgspec.Struct):
    Status: str = "created"  # created running paused restarting removing exited dead
    Running: bool = False
    Paused: bool = False
    Restarting: bool = False
    OOMKilled: bool = False
    Dead: bool = False
    Pid: int = 0
    ExitCode: int = 0
    Error: str = ""
    StartedAt: str = ZERO_TIME
    FinishedAt: str = ZERO_TIME
    Health: dict[str, Any] | None = None


class Container(msgspec.Struct):
    id: str
    name: str  # with the leading "/", as moby keeps it
    created: str
    created_ns: int
    image_id: str
    image_name: str  # as the client gave it
    path: str
    args: list[str]
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: State = msgspec.field(default_factory=State)
    restart_count: int = 0
    log_path: str = ""
    rw_layer: str = ""
    top_layer: str | None = None
    has_been_started: bool = False
    manually_stopped: bool = False
    mounts: list[MountPoint] = msgspec.field(default_factory=list)
    net: dict[str, Any] = msgspec.field(default_factory=dict)  # see containers/networking.py
    # legacy links to other containers: "/me/alias" -> target id (see containers/links.py)
    links: dict[str, str] = msgspec.field(default_factory=dict)
