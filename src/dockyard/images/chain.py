"""OCI chain ids and image-id helpers (pure logic).

chainid(L0) = diffid(L0); chainid(Ln) = sha256(chainid(Ln-1) + " " + diffid(Ln))
(OCI image spec, config.md "Layer ChainID").  The storage driver names layers by the hex
part of their chain id, so identical stacks are shared between images.
"""

from __future__ import annotations

import hashlib
import re

from dockyard.errors import InvalidParameter

__all__ = ["chain_ids", "check_digest", "is_full_id", "short_id"]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def check_digest(value: object, what: str) -> str:
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InvalidParameter(f"invalid {what}: {value!r} is not a sha256 digest")
    return value


def is_full_id(name: str) -> bool:
    return bool(_DIGEST.fullmatch(name) or _HEX64.fullmatch(name))


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
