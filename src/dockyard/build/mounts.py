"""``RUN --mount=...`` specifications (pure parsing; the executor prepares the mounts).

Types as BuildKit's: ``bind`` (the default; ``source`` from the context or ``from`` a stage
or image, read-only unless ``rw``, writes then discarded), ``cache`` (a directory kept under
the data root between builds, keyed by ``id``, by default the target), ``tmpfs``, ``secret``
(``id``, ``target`` defaulting to ``/run/secrets/<id>``, ``required``) and ``ssh``, which
the legacy build API cannot carry and is refused.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from dockyard.errors import InvalidParameter

__all__ = ["MountSpec", "parse_mount"]

_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_BOOLS = ("readonly", "ro", "rw", "readwrite", "required")


@dataclass(frozen=True, slots=True)
class MountSpec:
    type: str
    target: str
    source: str = ""
    from_: str = ""
    id: str = ""
    readonly: bool = True
    required: bool = False
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: str = ""


def parse_mount(text: str) -> MountSpec:
    """One ``--mount`` value (``type=cache,target=/root/.cache``) to a :class:`MountSpec`."""
    fields: dict[str, str] = {}
    for item in next(csv.reader([text])):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq and key not in _BOOLS:
            raise InvalidParameter(f"invalid field '{item}' must be a key=value pair")
        fields[key] = value if eq else "true"
    kind = fields.pop("type", "bind")
    if kind not in _TYPES:
        raise InvalidParameter(f"unsupported mount type {kind!r}: use one of {', '.join(_TYPES)}")
    target = fields.pop("target", "") or fields.pop("dst", "") or fields.pop("destination", "")
    ident = fields.pop("id", "")
    if kind == "secret":
        ident = ident or (target.rsplit("/", 1)[-1] if target else "")
        target = target or f"/run/secrets/{ident}"
    if kind == "ssh":
        raise InvalidParameter(
            "RUN --mount=type=ssh needs an SSH agent forwarded by BuildKit's session, which the "
            "legacy build API cannot carry"
        )
    if not target:
        raise InvalidParameter(f"mount type={kind} needs a target")
    if not target.startswith("/"):
        raise InvalidParameter(f"mount target {target!r} must be an absolute path")
    rw = _truth(fields.pop("rw", "false")) or _truth(fields.pop("readwrite", "false"))
    ro = _truth(fields.pop("readonly", "false")) or _truth(fields.pop("ro", "false"))
    readonly = ro if kind == "cache" else (not rw or ro)
    spec = MountSpec(
        type=kind,
        target=target,
        source=fields.pop("source", fields.pop("src", "")),
        from_=fields.pop("from", ""),
        id=ident or (target if kind == "cache" else ""),
        readonly=readonly if kind in ("bind", "cache") else kind == "secret",
        required=_truth(fields.pop("required", "false")),
        sharing=fields.pop("sharing", "shared"),
        mode=_number(fields.pop("mode", ""), 8),
        uid=_number(fields.pop("uid", ""), 10),
        gid=_number(fields.pop("gid", ""), 10),
        size=fields.pop("size", ""),
    )
    if spec.sharing not in ("shared", "private", "locked"):
        raise InvalidParameter(f"unsupported sharing value {spec.sharing!r}")
    if fields:
        raise InvalidParameter(f"unexpected key '{sorted(fields)[0]}' in '{text}'")
    return spec


def _truth(value: str) -> bool:
    if value.lower() in ("true", "1", ""):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidParameter(f"invalid boolean value {value!r} in --mount")


def _number(value: str, base: int) -> int | None:
    if not value:
        return None
    try:
        return int(value, base)
    except ValueError:
        raise InvalidParameter(f"invalid number {value!r} in --mount") from None
