"""OCI runtime-spec ``mounts`` entries (both worlds; plain records)."""

from __future__ import annotations

import msgspec

__all__ = ["Mount"]


class Mount(msgspec.Struct, omit_defaults=True):
    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] | None = None
