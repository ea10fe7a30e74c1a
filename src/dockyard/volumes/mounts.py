"""A container's mount requests → validated mount points (pure logic).

Four ways in, as moby's volume/mounts parser takes them: ``HostConfig.Binds`` (``-v``
strings), ``HostConfig.Mounts`` (``--mount`` objects), ``HostConfig.Tmpfs`` (``--tmpfs``)
and ``Config.Volumes`` (``-v /path`` and the image's ``VOLUME``, both anonymous).  Errors
carry moby's wording so a user sees what Docker would have said.  Whether a bind source
exists and which volume a name means are the service's business, not this module's.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

import msgspec

from dockyard.errors import InvalidParameter

__all__ = [
    "MountPoint",
    "from_host_config",
    "parse_bind",
    "parse_mount",
    "parse_tmpfs",
    "sort_for_mounting",
    "validate_volume_name",
]

_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_LABEL_MODES = ("z", "Z")
_CONSISTENCY = ("consistent", "cached", "delegated")


class MountPoint(msgspec.Struct, omit_defaults=True):
    """One mount of a container, as stored in its record and shown in inspect."""

    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""  # host path (bind) or volume name (volume)
    rw: bool = True
    mode: str = ""  # the option string as given (moby shows it in inspect)
    propagation: str = ""
    nocopy: bool = False
    anonymous: bool = False
    nonrecursive: bool = False
    driver: str = "local"
    driver_opts: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    tmpfs_options: list[str] | None = None
    from_volumes_of: str = ""  # --volumes-from: the container it came from
    autocreate: bool = False  # -v makes a missing bind source; --mount refuses it


def validate_volume_name(name: str) -> str:
    if not _VOLUME_NAME.match(name or ""):
        raise InvalidParameter(
            f'"{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )
    return name


def _target(raw: str, kind: str, spec: str | None = None) -> str:
    def fail(why: str) -> InvalidParameter:
        inner = f'invalid mount config for type "{kind}": {why}'
        return InvalidParameter(
            f"invalid volume specification: '{spec}': {inner}" if spec else inner
        )

    if not raw:
        raise fail("field Target must not be empty")
    if not raw.startswith("/"):
        raise fail(f"invalid mount path: '{raw}' mount path must be absolute")
    clean = posixpath.normpath(raw)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if clean == "/":
        raise fail("invalid specification: destination can't be '/'")
    return clean


def parse_bind(spec: str) -> MountPoint:
    """One ``-v`` string: ``[source:]target[:options]``."""
    if not isinstance(spec, str) or not spec:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    parts = spec.split(":")
    if len(parts) > 3 or any(p == "" for p in parts):
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    if len(parts) == 1:
        dest = _target(parts[0], "volume", spec)
        return MountPoint(type="volume", destination=dest, anonymous=True)
    if len(parts) == 2 and not parts[1].startswith("/") and parts[0].startswith("/"):
        # "/path:ro": an anonymous volume with options
        source, dest_raw, mode = "", parts[0], parts[1]
    else:
        source, dest_raw = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else ""
    kind = "bind" if source.startswith("/") else "volume"
    rw, propagation, nocopy = True, "", False
    seen_rw = False
    for opt in mode.split(",") if mode else []:
        if opt in ("ro", "rw"):
            if seen_rw:
                raise InvalidParameter(f"invalid mode: {mode}")
            seen_rw, rw = True, opt == "rw"
        elif opt in _PROPAGATIONS:
            if kind != "bind":
                raise InvalidParameter(
                    f"invalid volume specification: '{spec}': propagation "
                    "options apply to bind mounts only"
                )
            propagation = opt
        elif opt == "nocopy":
            if kind != "volume":
                raise InvalidParameter(f"invalid mode: {mode}")
            nocopy = True
        elif opt in _LABEL_MODES or opt in _CONSISTENCY:
            pass
        else:
            raise InvalidParameter(f"invalid mode: {mode}")
    dest = _target(dest_raw, kind, spec)
    if kind == "bind":
        source = posixpath.normpath(source)
        return MountPoint(
            type="bind",
            destination=dest,
            source=source,
            rw=rw,
            mode=mode,
            propagation=propagation or "rprivate",
            autocreate=True,
        )
    if source:
        validate_volume_name(source)
    return MountPoint(
        type="volume",
        destination=dest,
        source=source,
        rw=rw,
        mode=mode or "z",
        nocopy=nocopy,
        anonymous=not source,
    )


def _opt_dict(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(f"{what} must be an object of strings")
    return dict(value)


def parse_mount(m: Any) -> MountPoint:
    """One ``HostConfig.Mounts`` entry (``--mount``)."""
    if not isinstance(m, dict):
        raise InvalidParameter("invalid mount config: each entry of Mounts must be an object")
    known = {
        "Type",
        "Source",
        "Target",
        "ReadOnly",
        "Consistency",
        "BindOptions",
        "VolumeOptions",
        "TmpfsOptions",
        "ImageOptions",
        "ClusterOptions",
    }
    unknown = set(m) - known
    if unknown:
        raise InvalidParameter(f"invalid mount config: unknown field {sorted(unknown)[0]!r}")
    kind = m.get("Type")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidParameter(
            f'invalid mount config for type "{kind}": mount type unknown'
            if kind
            else "invalid mount config: mount type must be given"
        )
    source = m.get("Source") or ""
    if not isinstance(source, str):
        raise InvalidParameter(
            f'invalid mount config for type "{kind}": field Source must be a string'
        )
    dest = _target(m.get("Target") or "", kind)
    rw = not bool(m.get("ReadOnly"))
    for key, owner in (
        ("BindOptions", "bind"),
        ("VolumeOptions", "volume"),
        ("TmpfsOptions", "tmpfs"),
    ):
        if m.get(key) and kind != owner:
            raise InvalidParameter(
                f'invalid mount config for type "{kind}": field {key} must not be specified'
            )
    if kind == "bind":
        if not source:
            raise InvalidParameter(
                'invalid mount config for type "bind": field Source must not be empty'
            )
        if not source.startswith("/"):
            raise InvalidParameter(
                f'invalid mount config for type "bind": invalid mount path: '
                f"'{source}' mount path must be absolute"
            )
        opts = m.get("BindOptions") or {}
        propagation = opts.get("Propagation") or "rprivate"
        if propagation not in _PROPAGATIONS:
            raise InvalidParameter(f"invalid propagation mode: {propagation}")
        return MountPoint(
            type="bind",
            destination=dest,
            source=posixpath.normpath(source),
            rw=rw,
            propagation=propagation,
            nonrecursive=bool(opts.get("NonRecursive")),
        )
    if kind == "tmpfs":
        if source:
            raise InvalidParameter(
                'invalid mount config for type "tmpfs": field Source must not be specified'
            )
        opts = m.get("TmpfsOptions") or {}
        size, mode = opts.get("SizeBytes"), opts.get("Mode")
        options: list[str] = []
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidParameter(f"invalid tmpfs size: {size!r}")
            if size:
                options.append(f"size={size}")
        if mode is not None:
            if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
                raise InvalidParameter(f"invalid tmpfs mode: {mode!r}")
            options.append(f"mode={mode:o}")
        return MountPoint(type="tmpfs", destination=dest, rw=rw, tmpfs_options=options)
    opts = m.get("VolumeOptions") or {}
    if source:
        validate_volume_name(source)
    driver_cfg = opts.get("DriverConfig") or {}
    driver = driver_cfg.get("Name") or "local"
    if driver != "local":
        raise InvalidParameter(
            f"volume driver {driver!r} is not available: dockyard has the local driver only"
        )
    return MountPoint(
        type="volume",
        destination=dest,
        source=source,
        rw=rw,
        nocopy=bool(opts.get("NoCopy")),
        anonymous=not source,
        driver_opts=_opt_dict(driver_cfg.get("Options"), "volume-opt") or None,
        labels=_opt_dict(opts.get("Labels"), "volume-label") or None,
    )


def parse_tmpfs(dest: str, options: str) -> MountPoint:
    """One ``--tmpfs /path[:opts]`` entry (``HostConfig.Tmpfs``)."""
    if not isinstance(options, str):
        raise InvalidParameter(f"invalid tmpfs options for {dest}: must be a string")
    target = _target(dest, "tmpfs")
    rw = True
    kept: list[str] = []
    for opt in options.split(",") if options else []:
        key = opt.split("=", 1)[0]
        if opt in ("ro", "rw"):
            rw = opt == "rw"
        elif (
            key in ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks") and "=" in opt
        ) or opt in (
            "exec",
            "noexec",
            "suid",
            "nosuid",
            "dev",
            "nodev",
            "sync",
            "async",
            "atime",
            "noatime",
            "diratime",
            "nodiratime",
            "relatime",
            "strictatime",
        ):
            kept.append(opt)
        else:
            raise InvalidParameter(f'invalid tmpfs option ["{opt}"]')
    return MountPoint(type="tmpfs", destination=target, rw=rw, tmpfs_options=kept, mode=options)


def from_host_config(config: dict[str, Any], hc: dict[str, Any]) -> list[MountPoint]:
    """Every mount the request asks for (``--volumes-from`` excepted), duplicates refused."""
    points: list[MountPoint] = []
    binds = hc.get("Binds") or []
    mounts = hc.get("Mounts") or []
    tmpfs = hc.get("Tmpfs") or {}
    if not isinstance(binds, list) or not isinstance(mounts, list) or not isinstance(tmpfs, dict):
        raise InvalidParameter("HostConfig.Binds and Mounts must be arrays, Tmpfs an object")
    points.extend(parse_bind(b) for b in binds)
    points.extend(parse_mount(m) for m in mounts)
    points.extend(parse_tmpfs(d, o) for d, o in tmpfs.items())
    seen: set[str] = set()
    for p in points:
        if p.destination in seen:
            raise InvalidParameter(f"Duplicate mount point: {p.destination}")
        seen.add(p.destination)
    volumes = config.get("Volumes") or {}
    if not isinstance(volumes, dict):
        raise InvalidParameter("Config.Volumes must be an object")
    for raw in list(volumes):  # -v /path and the image's VOLUME entries (merged at create)
        dest = _target(raw, "volume", raw)
        if dest not in seen:
            seen.add(dest)
            points.append(MountPoint(type="volume", destination=dest, anonymous=True))
    return points


def sort_for_mounting(points: list[MountPoint]) -> list[MountPoint]:
    """Parents before children: ``/a`` is mounted before ``/a/b`` (moby sorts the same way)."""
    return sorted(points, key=lambda p: len([c for c in p.destination.split("/") if c]))
