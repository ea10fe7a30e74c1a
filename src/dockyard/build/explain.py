"""Why a build step missed the cache (pure, both worlds): ``dockyard build --explain-cache``.

A step's cache key is one digest of its parent image, its expanded instruction, the build
args in effect and the content of its sources, so a miss alone cannot say which part
moved.  Each committed step therefore also records its ``Facts`` (the parts, kept beside
the key in the build store); on a miss the step's facts are compared with the most recent
earlier facts of the same instruction: on the same parent first (then the parent is not
the reason), else on any parent.  The answer names the parts that differ, most specific
first: build args by name, source files by path, else the parent or the instruction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["Facts", "reason"]

_MAX_NAMES = 8


@dataclass(frozen=True, slots=True)
class Facts:
    """What decided one step's key: ``step`` is the instruction as written (the same text
    in the next build of an unchanged Dockerfile), ``files`` maps each source path to the
    digest of its type, mode, owner and content."""

    step: str
    parent: str
    args: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps({"args": self.args, "files": self.files}, sort_keys=True)

    @classmethod
    def decode(cls, step: str, parent: str, text: str) -> Facts:
        data = json.loads(text or "{}")
        return cls(step, parent, dict(data.get("args") or {}), dict(data.get("files") or {}))


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMES])
    more = len(items) - _MAX_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _args_diff(old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(f"{name} (new)")
        elif name not in new:
            out.append(f"{name} (gone)")
        elif old[name] != new[name]:
            out.append(name)
    return out


def _files_diff(old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for path in sorted(set(old) | set(new)):
        if path not in old:
            out.append(f"{path} (added)")
        elif path not in new:
            out.append(f"{path} (removed)")
        elif old[path] != new[path]:
            out.append(path)
    return out


def reason(
    facts: Facts, same_step: list[Facts], on_parent: list[str], image_gone: bool = False
) -> str:
    """Why ``facts`` missed, given earlier facts of the same instruction (newest first),
    the instructions recorded earlier on the same parent (newest first), and whether this
    very key was cached once but its image is gone."""
    if image_gone:
        return "the image this step built before was removed (rmi, prune)"
    if not same_step:
        if on_parent:
            return f"instruction changed: this parent was last followed by {on_parent[0]!r}"
        return "first build of this instruction here"
    here = [f for f in same_step if f.parent == facts.parent]
    ref = here[0] if here else same_step[0]
    parts = []
    if not here:
        parts.append("parent changed (an earlier step, or the FROM image, is not the same)")
    args = _args_diff(ref.args, facts.args)
    if args:
        parts.append("build args changed: " + _names(args))
    files = _files_diff(ref.files, facts.files)
    if files:
        parts.append("sources changed: " + _names(files))
    if not parts:
        parts.append("its expanded arguments or flags changed (ENV, ARG or --mount values)")
    return "; ".join(parts)
