"""Validation of the ids storage drivers turn into directory names (any world).

Ids become path components under the driver's home, so anything but the expected shape is
refused before it reaches the filesystem: 64 lowercase hex digits (an OCI chain id or a
container id), optionally followed by ``-init`` (Docker's init layer of a container).
"""

from __future__ import annotations

import os
import re

from dockyard.errors import InvalidParameter

__all__ = ["check", "stored_ids"]

_ID = re.compile(r"[0-9a-f]{64}(-init)?")


def check(layer_id: str) -> str:
    """Return ``layer_id`` if well formed, else raise ``InvalidParameter``."""
    if not isinstance(layer_id, str) or not _ID.fullmatch(layer_id):
        raise InvalidParameter(
            f"invalid layer id {layer_id!r}: expected 64 lowercase hex digits (a chain id)"
        )
    return layer_id


def stored_ids(home: str) -> list[str]:
    """The well-formed ids with a directory in ``home`` (other names are not layers)."""
    try:
        with os.scandir(home) as entries:
            return sorted(
                e.name for e in entries if _ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
            )
    except FileNotFoundError:
        return []
