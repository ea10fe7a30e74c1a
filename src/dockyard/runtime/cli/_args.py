"""A minimal option parser for dockyard-runtime (synchronous world).

argparse costs several milliseconds of import and start-up, and ``dockyard-runtime run``
is benchmarked against ``runc run``; runc's verbs need only flags, ``--flag=value``,
``--flag value``, repeated flags, ``--`` and positionals.
"""

from __future__ import annotations

import msgspec

from dockyard.errors import InvalidParameter

__all__ = ["Parsed", "parse"]


class Parsed(msgspec.Struct):
    values: dict[str, list[str]] = msgspec.field(default_factory=dict)
    flags: set[str] = msgspec.field(default_factory=set)
    positionals: list[str] = msgspec.field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else default


def parse(
    argv: list[str],
    valued: dict[str, str],
    boolean: dict[str, str],
    stop_at_positional: int | None = None,
) -> Parsed:
    """``valued``/``boolean`` map every spelling (``-b``, ``--bundle``) to a canonical name.

    After ``stop_at_positional`` positionals everything else is positional (exec's
    command line), as after ``--``.
    """
    out = Parsed()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if stop_at_positional is not None and len(out.positionals) >= stop_at_positional:
            out.positionals.append(arg)
            out.positionals.extend(argv[i:])
            break
        if arg == "--":
            out.positionals.extend(argv[i:])
            break
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in valued:
                if not eq:
                    if i >= len(argv):
                        raise InvalidParameter(f"flag needs an argument: {name}")
                    value = argv[i]
                    i += 1
                out.values.setdefault(valued[name], []).append(value)
                continue
            if name in boolean and (not eq or value in ("true", "false")):
                if value != "false":
                    out.flags.add(boolean[name])
                continue
            raise InvalidParameter(f"flag provided but not defined: {name}")
        out.positionals.append(arg)
    return out
