"""``dockyard-runtime spec [-b BUNDLE]``: write a default config.json (like ``runc spec``)."""

from __future__ import annotations

import os

from dockyard.errors import Conflict
from dockyard.fsutil import atomic_write
from dockyard.runtime.cli._args import parse
from dockyard.runtime.spec import default_spec, dump
from dockyard.runtime.spec.default import default_nofile
from dockyard.runtime.state import Store

__all__ = ["main"]


def main(store: Store, argv: list[str]) -> int:
    args = parse(argv, {"-b": "bundle", "--bundle": "bundle"}, {"--rootless": "rootless"})
    bundle = args.get("bundle", ".") or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise Conflict(f"File {path} exists. Remove it first")
    atomic_write(path, dump(default_spec(nofile=default_nofile())), 0o644)
    return 0
