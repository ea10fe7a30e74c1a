"""Command-line flags with the docker CLI's (pflag's) rules (pure logic, cheap to import).

Why not argparse: it costs ~12 ms to import and parses differently from pflag
(``-abc`` clusters, ``--flag=false``, interspersed positionals, docker's error texts).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Flag", "FlagError", "parse"]


class FlagError(Exception):
    """Bad usage; the CLI prints it with the command's help hint and exits 125."""


class Flag:
    __slots__ = ("check", "default", "dest", "help", "kind", "long", "metavar", "short")

    def __init__(
        self,
        long: str,
        short: str = "",
        kind: str = "bool",
        default: object = None,
        help: str = "",
        metavar: str = "",
        check: Callable[[str], str] | None = None,
    ) -> None:
        """``check`` returns why a value is refused ("" if it is fine), as docker's
        validating option types (``opts.ValidateLink``…) do while flags are parsed."""
        self.check = check
        self.long = long
        self.short = short
        self.kind = kind  # bool | str | int | list
        self.default = (
            default
            if default is not None
            else ([] if kind == "list" else (False if kind == "bool" else None))
        )
        self.help = help
        self.dest = long.replace("-", "_")
        self.metavar = metavar or kind

    def convert(self, raw: str) -> object:
        if self.kind == "int":
            try:
                return int(raw)
            except ValueError:
                raise FlagError(
                    f'invalid argument "{raw}" for "{self._names()}" flag: strconv.ParseInt: parsing "{raw}": invalid syntax'
                ) from None
        if self.kind == "bool":
            low = raw.lower()
            if low in ("1", "t", "true"):
                return True
            if low in ("0", "f", "false"):
                return False
            raise FlagError(
                f'invalid argument "{raw}" for "{self._names()}" flag: strconv.ParseBool: parsing "{raw}": invalid syntax'
            )
        reason = self.check(raw) if self.check is not None else ""
        if reason:
            raise FlagError(f'invalid argument "{raw}" for "{self._names()}" flag: {reason}')
        return raw

    def _names(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"


def parse(
    flags: list[Flag], argv: list[str], interspersed: bool = True
) -> tuple[dict[str, object], list[str]]:
    """Returns (values by dest, positional args).  ``interspersed=False`` stops at the first
    positional (``run IMAGE CMD -x``: the rest belongs to the container)."""
    by_long = {f.long: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    values: dict[str, object] = {
        f.dest: (list(f.default) if f.kind == "list" else f.default) for f in flags
    }
    args: list[str] = []
    i = 0

    def store(flag: Flag, raw: str) -> None:
        value = flag.convert(raw)
        if flag.kind == "list":
            values[flag.dest].append(value)  # type: ignore[union-attr]
        else:
            values[flag.dest] = value

    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args.extend(argv[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, raw = arg[2:].partition("=")
            flag = by_long.get(name)
            if flag is None:
                raise FlagError(f"unknown flag: --{name}")
            if flag.kind == "bool":
                store(flag, raw if eq else "true")
            elif eq:
                store(flag, raw)
            elif i < len(argv):
                store(flag, argv[i])
                i += 1
            else:
                raise FlagError(f"flag needs an argument: --{name}")
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                ch = arg[j]
                flag = by_short.get(ch)
                if flag is None:
                    raise FlagError(f"unknown shorthand flag: '{ch}' in {arg}")
                j += 1
                if flag.kind == "bool":
                    if j < len(arg) and arg[j] == "=":
                        store(flag, arg[j + 1 :])
                        break
                    store(flag, "true")
                    continue
                if j < len(arg):
                    store(flag, arg[j + 1 :] if arg[j] == "=" else arg[j:])
                elif i < len(argv):
                    store(flag, argv[i])
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: '{ch}' in {arg}")
                break
        else:
            args.append(arg)
            if not interspersed:
                args.extend(argv[i:])
                break
    return values, args
