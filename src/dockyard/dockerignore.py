"""``.dockerignore`` patterns (pure, both worlds): shared by the CLI, which leaves ignored
files out of the context tar it sends, and the builder, which applies them again to
contexts that other clients send.

A port of moby/patternmatcher (``ReadAll`` and ``MatchesOrParentMatches``): lines are
trimmed, ``#`` lines are comments, patterns are cleaned and made relative, ``**`` matches
any number of directories, ``*``/``?`` never match ``/``, ``!`` re-includes, and the last
matching pattern wins.  A path is excluded when it or one of its parent directories is.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

__all__ = ["Matcher", "read_patterns"]

_ESCAPED = set(".+()|{}$^")


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, cleaned as moby's ignorefile.ReadAll."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/") or "/"
        out.append("!" + line if invert else line)
    return out


def _regex(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in _ESCAPED:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        else:
            out.append(ch)
    out.append("$")
    try:
        return re.compile("".join(out), re.S)
    except re.error:
        # moby reports a bad pattern as a syntax error at match time; matching nothing is
        # the closest a path filter can do.
        return re.compile(r"(?!)")


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool
    dirs: tuple[str, ...]


class Matcher:
    """Decides whether a context-relative path (``a/b``, no leading ``/``) is ignored."""

    def __init__(self, patterns: list[str]) -> None:
        self.raw = tuple(patterns)
        self.patterns = [
            _Pattern(_regex(p.lstrip("!")), p.startswith("!"), tuple(p.lstrip("!").split("/")))
            for p in patterns
            if p.lstrip("!")
        ]

    @property
    def has_exclusions(self) -> bool:
        """Whether a ``!`` pattern exists: an ignored directory must still be walked then."""
        return any(p.exclusion for p in self.patterns)

    def ignored(self, path: str) -> bool:
        path = path.strip("/")
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = bool(pattern.regex.match(path))
            if not match and parents:
                for i in range(len(parents)):
                    if pattern.regex.match("/".join(parents[: i + 1])):
                        match = True
                        break
            if match:
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception pattern could re-include something under ``directory``."""
        directory = directory.strip("/")
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            if pattern.regex.pattern.startswith("^(.*/)?") or "**" in "/".join(pattern.dirs):
                return True
            depth = directory.count("/") + 1
            prefix = "/".join(pattern.dirs[:depth])
            if _regex(prefix).match(directory) or prefix.startswith(directory + "/"):
                return True
        return False
