"""``dockyard-runtime state <id>``: the container's state as runc prints it (JSON)."""

from __future__ import annotations

import sys

import msgspec

from dockyard.runtime import native
from dockyard.runtime.cli._args import parse
from dockyard.runtime.cli.create import one_id
from dockyard.runtime.state import Store

__all__ = ["main"]


def main(store: Store, argv: list[str]) -> int:
    report = native.state(store, one_id(parse(argv, {}, {}), "state"))
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n")
    return 0
