"""``dockyard-runtime start <id>``: let a created container exec its program."""

from __future__ import annotations

from dockyard.runtime import native
from dockyard.runtime.cli._args import parse
from dockyard.runtime.cli.create import one_id
from dockyard.runtime.state import Store

__all__ = ["main"]


def main(store: Store, argv: list[str]) -> int:
    native.start(store, one_id(parse(argv, {}, {}), "start"))
    return 0
