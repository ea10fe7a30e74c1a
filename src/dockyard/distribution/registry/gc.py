"""Online garbage collection (blocking world): mark and sweep while pushes go on.

Roots are the repositories' manifests (with ``delete_untagged``: only the tagged ones, the
manifests they list, and referrers of kept manifests); the marked set is every manifest
kept and every blob one names.  Safety against concurrent writers rests on three facts:

1. A blob's mtime is its last use (``filesystem``: commit, re-upload, mount and HEAD
   refresh it), and nothing used after ``start - grace`` is deleted: a blob uploaded or
   mounted during the GC, or by a push still under way, is spared.
2. The sweep holds ``lock.exclusive``; every writer's check-then-record step holds
   ``lock.shared``.  So a manifest PUT either finished before the sweep (its revision
   exists and the sweep re-marks revisions it had not seen, under the lock) or starts after
   it (and then finds any deleted blob missing: ``MANIFEST_BLOB_UNKNOWN``, never a visible
   manifest without its blobs).
3. Deletion re-reads each candidate's mtime under the lock, so a use recorded between mark
   and sweep wins.

``grace`` must exceed the longest time a client takes between checking a blob (HEAD or
upload) and pushing the manifest that names it; the default is an hour.  Keep it above a
minute in any case: a HEAD refreshes a blob's last use at most once a minute
(``service._TOUCH_AFTER``), to spare the disk a write per pull.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from dockyard.distribution.registry import lock
from dockyard.distribution.registry import manifest as manifests
from dockyard.distribution.registry.base import Storage
from dockyard.distribution.registry.errors import RegistryError

__all__ = ["Report", "collect"]

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What a collection removed (or, dry, would remove)."""

    dry_run: bool
    blobs: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)  # NAME@DIGEST
    freed: int = 0

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"{verb} {len(self.manifests)} manifest(s) and {len(self.blobs)} blob(s), "
            f"{self.freed} bytes"
        )


def _references(storage: Storage, digest: str, media_type: str) -> list[str]:
    """The blobs and child manifests a stored manifest names (empty if unreadable)."""
    try:
        with storage.open_blob(digest) as f:
            data = f.read()
        parsed = manifests.parse(data, media_type)
    except RegistryError as exc:
        log.warning("gc: manifest %s unreadable, its blobs are kept only if used: %s", digest, exc)
        return []
    refs = [d.digest for d in parsed.blobs] + [d.digest for d in parsed.children]
    if parsed.subject is not None:
        refs.append("subject:" + parsed.subject.digest)
    return refs


def _tagged(storage: Storage, name: str) -> set[str]:
    """The digests ``name``'s tags point at now."""
    out = set()
    try:
        tags = storage.tags(name)
    except RegistryError:
        return out  # a repository with blobs but no manifest yet
    for tag in tags:
        try:
            out.add(storage.resolve(name, tag))
        except RegistryError:
            continue
    return out


def _kept(
    storage: Storage, name: str, cutoff: float, delete_untagged: bool
) -> tuple[set[str], list[str], dict[str, list[str]]]:
    """(kept revisions, revisions to drop, references of every revision) of ``name``."""
    revisions = {r.digest: r for r in storage.revisions(name)}
    refs = {d: _references(storage, d, r.media_type) for d, r in revisions.items()}
    if not delete_untagged:
        return set(revisions), [], refs
    kept = {d for d, r in revisions.items() if r.mtime >= cutoff}
    kept |= _tagged(storage, name)
    changed = True
    while changed:  # children of kept indexes, referrers of kept subjects
        changed = False
        for digest, names in refs.items():
            if digest in kept:
                new = {r for r in names if not r.startswith("subject:")} - kept
                new &= revisions.keys()
                if new:
                    kept |= new
                    changed = True
            elif any(r.startswith("subject:") and r[8:] in kept for r in names):
                kept.add(digest)
                changed = True
    return kept, [d for d in revisions if d not in kept], refs


def collect(storage: Storage, grace: float, delete_untagged: bool, dry_run: bool) -> Report:
    """One collection; see the module docstring for why it is safe online."""
    start = time.time()
    cutoff = start - grace
    report = Report(dry_run)
    marked: set[str] = set()
    seen: dict[str, set[str]] = {}
    drop: dict[str, list[str]] = {}
    for name in storage.repositories():
        kept, dropped, refs = _kept(storage, name, cutoff, delete_untagged)
        seen[name] = set(refs)
        drop[name] = dropped
        for digest in kept:
            marked.add(digest)
            marked.update(r for r in refs[digest] if not r.startswith("subject:"))
    if dry_run:
        _sweep(storage, report, marked, drop, cutoff, dry_run=True)
        return report
    with lock.exclusive(storage.lock_path):
        # Manifests pushed since the mark: theirs are marked too.
        for name in storage.repositories():
            for revision in storage.revisions(name):
                if revision.digest not in seen.get(name, set()) or revision.mtime >= start:
                    marked.add(revision.digest)
                    refs = _references(storage, revision.digest, revision.media_type)
                    marked.update(r for r in refs if not r.startswith("subject:"))
        _sweep(storage, report, marked, drop, cutoff, dry_run=False)
    return report


def _sweep(
    storage: Storage,
    report: Report,
    marked: set[str],
    drop: dict[str, list[str]],
    cutoff: float,
    dry_run: bool,
) -> None:
    for name, digests in drop.items():
        current = {r.digest: r for r in storage.revisions(name)}
        tagged = _tagged(storage, name)
        for digest in digests:
            revision = current.get(digest)
            if revision is None or digest in tagged or revision.mtime >= cutoff:
                continue  # gone, re-tagged or re-pushed since the mark
            report.manifests.append(f"{name}@{digest}")
            if not dry_run:
                storage.remove_revision(name, digest)
    for digest, mtime in list(storage.walk_blobs()):
        if digest in marked or mtime >= cutoff:
            continue
        try:
            size = storage.blob_size(digest)
        except RegistryError:
            continue
        if dry_run or storage.delete_blob(digest, cutoff):
            report.blobs.append(digest)
            report.freed += size
    if dry_run:
        return
    for name in storage.repositories():
        for digest in storage.links(name):
            if not storage.has_blob(digest):
                storage.remove_link(name, digest)
