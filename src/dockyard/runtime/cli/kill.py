"""``dockyard-runtime kill [-a] <id> [SIGNAL]``: signal the init (or every process)."""

from __future__ import annotations

from dockyard.errors import InvalidParameter
from dockyard.runtime import native
from dockyard.runtime.cli._args import parse
from dockyard.runtime.state import Store

__all__ = ["main"]


def main(store: Store, argv: list[str]) -> int:
    args = parse(argv, {}, {"-a": "all", "--all": "all"})
    if not 1 <= len(args.positionals) <= 2:
        raise InvalidParameter('"kill" requires 1 or 2 arguments: <id> [SIGNAL]')
    sig = native.parse_signal(args.positionals[1]) if len(args.positionals) == 2 else 15
    native.kill(store, args.positionals[0], sig, all="all" in args.flags)
    return 0
