"""The options of one build, as ``POST /build`` carries them (pure record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BuildOptions"]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    tags: tuple[str, ...] = ()
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()  # stage names whose steps ignore the cache
    explain_cache: bool = False  # say per step why it hit or missed (dockyard's own)
    pull: bool = False
    rm: bool = True
    force_rm: bool = False
    quiet: bool = False
    cache_from: tuple[str, ...] = ()
    network_mode: str = "default"
    shm_size: int = 0
    extra_hosts: tuple[str, ...] = ()
    platform: str = ""
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    cpu_period: int = 0
    cpu_quota: int = 0
    ulimits: tuple[dict[str, Any], ...] = ()
    cgroup_parent: str = ""
    remote: str = ""
    registry_config: str = ""  # X-Registry-Config: credentials for pulls, by registry
    build_id: str = ""
    # RUN --mount=type=secret contents by id (X-Dockyard-Build-Secrets): never printed,
    # never in a layer, the history or the cache key.
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
