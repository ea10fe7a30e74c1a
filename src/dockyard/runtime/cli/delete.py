"""``dockyard-runtime delete [-f] <id>``: remove a stopped (or, forced, any) container."""

from __future__ import annotations

from dockyard.errors import NotFound
from dockyard.runtime import native
from dockyard.runtime.cli._args import parse
from dockyard.runtime.cli.create import one_id
from dockyard.runtime.state import Store

__all__ = ["main"]


def main(store: Store, argv: list[str]) -> int:
    args = parse(argv, {}, {"-f": "force", "--force": "force"})
    container_id = one_id(args, "delete")
    try:
        native.delete(store, container_id, force="force" in args.flags)
    except NotFound:
        if "force" not in args.flags:  # runc: --force ignores a missing container
            raise
    return 0
