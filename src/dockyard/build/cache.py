"""The build cache (asyncio world, quick calls): step keys, their images, cache mounts.

A step's key is a digest of the parent image id, the instruction with its arguments
expanded (build args included) and, for COPY/ADD, the content hash of its sources
(``sources.hash_sources``: contents, modes, owners, not times).  The key maps to the image
the step produced, in the daemon's database, so the cache survives restarts; an entry
whose image is gone is a miss and is dropped.  ``RUN --mount=type=cache`` directories live
under ``<data root>/build/cache-mounts`` and are kept until ``builder prune``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Any

from dockyard.build.explain import Facts, reason
from dockyard.build.store import Store
from dockyard.images.service import ImageService

__all__ = ["Cache", "step_key"]


def step_key(parent: str, keyword: str, *parts: Any) -> str:
    """The cache key of one step (a stable digest of what decides its result)."""
    blob = json.dumps([parent, keyword, *parts], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    def __init__(self, store: Store, images: ImageService, root: str) -> None:
        self.store = store
        self.images = images
        self.mounts_root = os.path.join(root, "cache-mounts")
        # (image id, sources, excludes, keyword) -> source digests of COPY --from steps.
        self.digests: dict[tuple[str, tuple[str, ...], tuple[str, ...], str], list[str]] = {}

    def lookup(self, key: str) -> str | None:
        image_id = self.store.get(key)
        if image_id is None:
            return None
        if not self.images.exists(image_id):
            self.store.delete(key)
            return None
        return image_id

    def remember(self, key: str, image_id: str, facts: Facts | None = None) -> None:
        self.store.put(key, image_id)
        if facts is not None:
            self.store.put_facts(key, facts)

    def explain(self, key: str, facts: Facts) -> str:
        """Why ``key`` missed (``explain.reason``), from the facts of earlier builds."""
        if self.store.has_facts(key):
            return reason(facts, [], [], image_gone=True)
        same_step = self.store.facts_of_step(facts.step)
        return reason(facts, same_step, self.store.steps_on_parent(facts.parent))

    def mount_dir(self, ident: str, mode: int | None, uid: int | None, gid: int | None) -> str:
        """The host directory of cache mount ``ident`` (blocking: call from a thread)."""
        name = hashlib.sha256(ident.encode()).hexdigest()
        path = os.path.join(self.mounts_root, name)
        if not os.path.isdir(path):
            os.makedirs(self.mounts_root, 0o700, exist_ok=True)
            os.mkdir(path, 0o755 if mode is None else mode)
            os.chmod(path, 0o755 if mode is None else mode)
            os.chown(path, uid or 0, gid or 0)
        else:
            os.utime(path)  # its mtime is its last use: what prune's until measures
        return path

    # ---- prune / df --------------------------------------------------------------------------
    def usage(self) -> list[dict[str, Any]]:
        """``BuildCache`` records of ``system df``: one per cache mount directory."""
        out = []
        if not os.path.isdir(self.mounts_root):
            return out
        for name in sorted(os.listdir(self.mounts_root)):
            path = os.path.join(self.mounts_root, name)
            st = os.stat(path)
            out.append(
                {
                    "ID": name[:25],
                    "Parent": "",
                    "Type": "exec.cachemount",
                    "Description": "cached mount from RUN --mount=type=cache",
                    "InUse": False,
                    "Shared": False,
                    "Size": _du(path),
                    "CreatedAt": _rfc3339(st.st_ctime),
                    "LastUsedAt": _rfc3339(st.st_mtime),
                    "UsageCount": 1,
                }
            )
        return out

    def prune(self, all_: bool, until: float | None, keep_storage: int) -> tuple[list[str], int]:
        """Remove cache mounts (and, with ``all_``, every step key); returns ids and bytes."""
        removed: list[str] = []
        reclaimed = 0
        entries = []
        if os.path.isdir(self.mounts_root):
            for name in os.listdir(self.mounts_root):
                path = os.path.join(self.mounts_root, name)
                entries.append((os.stat(path).st_mtime, name, path, _du(path)))
        entries.sort()
        kept = sum(e[3] for e in entries)
        for mtime, name, path, size in entries:
            if until is not None and mtime >= until:
                continue
            if keep_storage and kept <= keep_storage:
                break
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name[:25])
            reclaimed += size
            kept -= size
        for row in self.store.rows():
            if all_ or not self.images.exists(row.image_id):
                if until is not None and row.last_used_ns / 1e9 >= until:
                    continue
                self.store.delete(row.key)
                removed.append(row.key.removeprefix("sha256:")[:25])
        self.store.drop_orphan_facts()
        return removed, reclaimed


def _du(path: str) -> int:
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                pass
    return total


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
