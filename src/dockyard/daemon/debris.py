"""Crash debris, collected at start-up (blocking world: run it before serving).

A ``kill -9`` or a power cut can stop the daemon between any two steps of a write, and the
steps are ordered so that what is left behind is never *referenced* by a record: bytes are
written (temp file, layer directory, container directory) before the metadata store names
them, and records go before files on removal.  So what no record owns is debris, and this
module finds and removes it, logging each item and the bytes it gave back:

- temp files: ``<data root>/tmp`` (loads, uploads, commits in progress), the content
  store's ``ingest/``, ``atomic_write`` temps (``.<name>.tmp-<pid>-<tid>``) and overlay probes;
- layer directories of the storage driver that neither a layer record (half-extracted
  layers of an interrupted pull, load or commit) nor a container (its rw layer) owns, and
  tar-split files (``<data root>/tarsplit/<diff>/<chain>``) of layers without a record;
- container directories (``<data root>/containers/<id>``, ``<exec root>/containers/<id>``)
  without a container record;
- mounts under the data and exec roots that nothing owns: overlay roots of unknown layers,
  ``docker cp`` binds below a container root (no copy survives a restart), network
  namespaces pinned for containers that no longer exist;
- cgroups under the daemon's cgroup parent named after containers that no longer exist
  (only empty ones: a cgroup that still holds processes is reported, not killed).

It must run before any service writes (nothing may be in flight) and after the metadata
store is open.  It only reads the stores; it never removes anything a record names.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass, field

from dockyard.content import LocalStore
from dockyard.daemon.config import Config
from dockyard.runtime import linux
from dockyard.storage import Driver, disk_usage, mount_points

__all__ = ["Report", "collect"]

log = logging.getLogger("dockyard.debris")

_ID = re.compile(r"[0-9a-f]{64}")
_ATOMIC_TEMP = re.compile(r"\..+\.tmp-\d+(-\d+)?")
_CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(slots=True)
class Report:
    """What start-up removed: ``(kind, path, bytes)`` per item, and what it left alone."""

    removed: list[tuple[str, str, int]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(size for _, _, size in self.removed)

    def add(self, kind: str, path: str, size: int) -> None:
        self.removed.append((kind, path, size))
        log.info("debris: removed %s %s (%d bytes)", kind, path, size)


def collect(
    db: sqlite3.Connection,
    content: LocalStore,
    driver: Driver,
    config: Config,
) -> Report:
    """Remove everything under the roots that no record owns; return what was done."""
    from dockyard.containers.store import Store as ContainerStore
    from dockyard.images.store import Store as ImageStore

    report = Report()
    containers = {c.id: c for c in ContainerStore(db).all()}
    layers = {row.chain_id.removeprefix("sha256:") for row in ImageStore(db).layers()}
    owned = layers | {c.rw_layer for c in containers.values()}
    data_root, exec_root = os.path.realpath(config.data_root), os.path.realpath(config.exec_root)

    _temp_files(report, content, data_root)
    _mounts(report, data_root, exec_root, set(containers), owned)
    for layer_id in driver.ids():
        if layer_id.removesuffix("-init") not in owned:
            path = os.path.join(getattr(driver, "home", data_root), layer_id)
            size = _size(path)
            driver.remove(layer_id)
            report.add("layer", path, size)
    for top in (os.path.join(data_root, "containers"), os.path.join(exec_root, "containers")):
        for name in _ids_in(top):
            if name not in containers:
                path = os.path.join(top, name)
                size = _size(path)
                shutil.rmtree(path, ignore_errors=True)
                report.add("container directory", path, size)
    recorded = {
        (r.diff_id.removeprefix("sha256:"), r.chain_id.removeprefix("sha256:"))
        for r in ImageStore(db).layers()
    }
    _tar_splits(report, os.path.join(data_root, "tarsplit"), recorded)
    _cgroups(report, str(config.extra.get("cgroup-parent") or "/dockyard"), set(containers))
    if report.removed or report.kept:
        log.info(
            "debris: removed %d item(s), %d bytes given back; %d left alone",
            len(report.removed),
            report.freed,
            len(report.kept),
        )
    return report


def _temp_files(report: Report, content: LocalStore, data_root: str) -> None:
    tmp = os.path.join(data_root, "tmp")
    if os.path.isdir(tmp):
        for name in os.listdir(tmp):
            path = os.path.join(tmp, name)
            size = _size(path)
            _remove(path)
            report.add("temp file", path, size)
    count, freed = content.clean_ingests()
    if count:
        report.add("content ingest", os.path.join(data_root, "content", "ingest"), freed)
    for name in os.listdir(data_root):
        if name.startswith(".overlay-probe-"):
            path = os.path.join(data_root, name)
            _unmount_below(path)
            size = _size(path)
            _remove(path)
            report.add("overlay probe", path, size)
    # atomic_write temps sit beside their target: container records and layer metadata.
    for top in (os.path.join(data_root, "containers"), os.path.join(data_root, "overlay2")):
        for name in _ids_in(top):
            directory = os.path.join(top, name)
            for entry in os.listdir(directory):
                if _ATOMIC_TEMP.fullmatch(entry):
                    path = os.path.join(directory, entry)
                    size = _size(path)
                    _remove(path)
                    report.add("temp file", path, size)


def _mounts(
    report: Report, data_root: str, exec_root: str, containers: set[str], owned: set[str]
) -> None:
    overlay = os.path.join(data_root, "overlay2") + "/"
    netns = os.path.join(exec_root, "netns") + "/"
    # Deepest first, so a bind below a container root goes before the root itself.
    points = sorted({p for p, _ in mount_points()}, key=len, reverse=True)
    for point in points:
        if point.startswith(overlay):
            layer_id, _, rest = point[len(overlay) :].partition("/")
            if rest == "merged" and layer_id in owned:
                continue  # a container's root: restore decides about it
            kind = "copy bind" if rest.startswith("merged/") else "layer mount"
        elif point.startswith(netns):
            name = point[len(netns) :]
            if "/" in name or not _ID.fullmatch(name) or name in containers:
                continue
            kind = "network namespace"
        else:
            if point.startswith((data_root + "/", exec_root + "/")):
                report.kept.append(point)
            continue
        try:
            linux.umount2(point, linux.MNT_DETACH | linux.UMOUNT_NOFOLLOW)
        except OSError as exc:
            log.warning("debris: could not unmount %s: %s", point, exc)
            continue
        if kind == "network namespace":
            _remove(point)
        report.add(kind, point, 0)


def _tar_splits(report: Report, top: str, recorded: set[tuple[str, str]]) -> None:
    """Split files of layers no record names (an apply that crashed before its record)."""
    for diff in _ids_in(top):
        directory = os.path.join(top, diff)
        for entry in os.listdir(directory):
            if (diff, entry) not in recorded:
                path = os.path.join(directory, entry)
                size = _size(path)
                _remove(path)
                report.add("tar-split file", path, size)
        if not os.listdir(directory):
            os.rmdir(directory)


def _cgroups(report: Report, parent: str, containers: set[str]) -> None:
    parent = parent.strip("/")
    if not parent or not os.path.isdir(_CGROUP_ROOT):
        return
    unified = os.path.exists(os.path.join(_CGROUP_ROOT, "cgroup.controllers"))
    tops = (
        [os.path.join(_CGROUP_ROOT, parent)]
        if unified
        else [os.path.join(_CGROUP_ROOT, h, parent) for h in sorted(os.listdir(_CGROUP_ROOT))]
    )
    for top in tops:
        for name in _ids_in(top):
            if name in containers:
                continue
            path = os.path.join(top, name)
            try:
                os.rmdir(path)
            except OSError as exc:
                report.kept.append(path)
                log.warning("debris: cgroup %s has no container record but stays: %s", path, exc)
                continue
            report.add("cgroup", path, 0)


def _ids_in(top: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(top) if _ID.fullmatch(name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _unmount_below(path: str) -> None:
    for point, _ in mount_points():
        if point == path or point.startswith(path + "/"):
            try:
                linux.umount2(point, linux.MNT_DETACH)
            except OSError:
                pass


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _size(path: str) -> int:
    """Bytes under ``path`` (hard links once), never following symlinks."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size
    try:
        return disk_usage(path)
    except OSError:
        return 0
