"""OCI runtime-spec ``process`` section (both worlds; plain records).

Field names are the spec's JSON names (config-linux.md / config.md, runtime-spec v1.0.2);
fields dockyard does not use are simply absent, and msgspec ignores them on decode.
"""

from __future__ import annotations

import msgspec

__all__ = ["Box", "Capabilities", "Process", "Rlimit", "User"]


class User(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    uid: int
    gid: int
    umask: int | None = None
    additional_gids: list[int] | None = None


class Capabilities(msgspec.Struct, omit_defaults=True):
    """Capability names as the spec writes them (``CAP_CHOWN``)."""

    bounding: list[str] | None = None
    effective: list[str] | None = None
    inheritable: list[str] | None = None
    permitted: list[str] | None = None
    ambient: list[str] | None = None


class Box(msgspec.Struct):
    """``consoleSize``: the terminal's initial size."""

    height: int
    width: int


class Rlimit(msgspec.Struct):
    type: str
    hard: int
    soft: int


class Process(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """``cwd`` and ``user`` are required by the spec; ``terminal`` is omitted when false."""

    terminal: bool = False
    user: User
    args: list[str] = msgspec.field(default_factory=list)
    env: list[str] | None = None
    cwd: str
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] | None = None
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    console_size: Box | None = None
