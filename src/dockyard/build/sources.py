"""COPY/ADD sources (blocking world): resolve them in a root, and hash them for the cache.

Resolution follows moby's builder: a source path is relative to the root (the context, or
another stage's file system for ``--from``), a ``..`` that climbs out of it is refused, a
symlink on the way is followed *inside* the root (moby's FollowSymlinkInScope: a link to
``/etc/passwd`` means ``<root>/etc/passwd``), wildcards (``* ? [``) match one path level
each with Go's filepath.Match rules, and a source that matches nothing is an error that
says so.  The hash covers relative names, file types, permission bits, owners and content,
never times: touching a file without changing it keeps the cache.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass

from dockyard.dockerignore import Matcher
from dockyard.errors import InvalidParameter, NotFound

__all__ = ["Source", "has_wildcards", "hash_sources", "resolve", "scoped"]

_MAX_LINKS = 255
_CHUNK = 1 << 20
_MAX_ENTRIES = 10_000  # per-path digests kept for --explain-cache


@dataclass(frozen=True, slots=True)
class Source:
    """A resolved source: ``path`` on the host, ``rel`` its name relative to the root."""

    path: str
    rel: str
    is_dir: bool
    wildcard: bool = False


def scoped(root: str, path: str, follow_last: bool = True) -> str:
    """The host path of ``path`` inside ``root``, symlinks followed without leaving it."""
    pending = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if (pending or follow_last) and os.path.islink(candidate):
            links += 1
            if links > _MAX_LINKS:
                raise InvalidParameter(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            pending = [p for p in target.split("/") if p and p != "."] + pending
            continue
        done.append(part)
    return os.path.join(root, *done)


def has_wildcards(path: str) -> bool:
    """Whether ``path`` holds an unescaped ``*``, ``?`` or ``[`` (moby's containsWildcards)."""
    i = 0
    while i < len(path):
        if path[i] == "\\":
            i += 2
            continue
        if path[i] in "*?[":
            return True
        i += 1
    return False


def _match_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise InvalidParameter(f"syntax error in pattern {pattern!r}")
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            if body.startswith("^"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def resolve(root: str, spec: str, what: str, excludes: Matcher | None = None) -> list[Source]:
    """The sources ``spec`` names in ``root``; ``what`` is ``COPY``/``ADD`` for messages."""
    rel = posixpath.normpath(spec.lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        raise InvalidParameter(
            f"{what} failed: forbidden path outside the build context: {spec} ({rel})"
        )
    if has_wildcards(rel):
        rx = _match_regex(rel)
        found: list[Source] = []
        for top, dirs, files in os.walk(root):
            dirs.sort()
            top_rel = os.path.relpath(top, root)
            for name in sorted(dirs + files):
                child = name if top_rel == "." else f"{top_rel}/{name}"
                if rx.match(child) and not (excludes and excludes.ignored(child)):
                    full = os.path.join(top, name)
                    found.append(Source(full, child, os.path.isdir(full), wildcard=True))
            dirs[:] = [d for d in dirs if not rx.match(d if top_rel == "." else f"{top_rel}/{d}")]
        if not found:
            raise NotFound(
                f"{what} failed: no source files were specified (nothing matches {spec})"
            )
        return found
    full = scoped(root, rel)
    if not os.path.lexists(full):
        raise NotFound(
            f"{what} failed: file not found in build context or excluded by .dockerignore: "
            f"stat {rel}: file does not exist"
        )
    return [Source(full, "" if rel == "." else rel, os.path.isdir(full))]


def hash_sources(
    sources: list[Source], excludes: Matcher | None = None, entries: dict[str, str] | None = None
) -> str:
    """A digest of names, types, modes, owners and contents (not times) of ``sources``;
    ``entries``, when given, gets each path's own digest (for ``--explain-cache``)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(b"\0S" + source.rel.encode())
        if source.is_dir:
            for top, dirs, files in os.walk(source.path):
                dirs.sort()
                for name in sorted(dirs + files):
                    full = os.path.join(top, name)
                    rel = os.path.relpath(full, source.path)
                    if excludes and excludes.ignored(rel):
                        continue
                    entry = _hash_entry(full, rel)
                    digest.update(entry)
                    if entries is not None and len(entries) < _MAX_ENTRIES:
                        entries[posixpath.join(source.rel, rel)] = entry.hex()
        else:
            entry = _hash_entry(source.path, "", follow=True)
            digest.update(entry)
            if entries is not None and len(entries) < _MAX_ENTRIES:
                entries[source.rel or "."] = entry.hex()
    return digest.hexdigest()


def _hash_entry(full: str, rel: str, follow: bool = False) -> bytes:
    """One path's digest: its name, mode, owner, and link target or content."""
    st = os.stat(full) if follow else os.lstat(full)
    digest = hashlib.sha256(f"\0E{rel}\0{st.st_mode:o}\0{st.st_uid}:{st.st_gid}\0".encode())
    if stat.S_ISLNK(st.st_mode):
        digest.update(os.readlink(full).encode())
    elif stat.S_ISREG(st.st_mode):
        with open(full, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return digest.digest()
