"""One CLI command: its usage, flags and argument count, and the error handling shared by
all commands (CLI world)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

from dockyard.cli.flags import Flag, FlagError, parse

__all__ = ["Command", "CommandError", "command"]


class CommandError(Exception):
    """A failure the command explains itself; printed as ``Error: ...`` (exit 1)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Command:
    def __init__(
        self,
        func: Callable,
        usage: str,
        short: str,
        flags: list[Flag],
        min_args: int,
        max_args: int | None,
        interspersed: bool,
    ) -> None:
        self.func = func
        self.usage = usage
        self.short = short
        self.flags = flags + [Flag("help", help="Print usage")]
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed

    def help(self, name: str) -> str:
        lines = [f"\nUsage:  dockyard {name} {self.usage}\n", f"\n{self.short}\n"]
        if self.flags:
            lines.append("\nOptions:\n")
            for flag in self.flags:
                short = f"-{flag.short}, " if flag.short else "    "
                value = "" if flag.kind == "bool" else f" {flag.metavar}"
                lines.append(f"  {short}--{flag.long}{value:<12} {flag.help}\n")
        return "".join(lines)

    def _arg_error(self, name: str) -> str:
        """docker/cli ``cli/required.go`` as of 28.2, its quirks included: ``RequiresMinArgs``
        ends in "See ...", ``RequiresMaxArgs`` in "SRun ..." (sic), the others in "Run ..."."""
        lo, hi = self.min_args, self.max_args

        def n(count: int) -> str:
            return f"{count} argument{'s' if count != 1 else ''}"

        tail = "Run"
        if hi == 0:
            need = "accepts no arguments"
        elif hi == lo:
            need = f"requires {n(lo)}"
        elif hi is None:
            need, tail = f"requires at least {n(lo)}", "See"
        elif lo == 0:
            need, tail = f"requires at most {n(hi)}", "SRun"
        else:
            need = f"requires at least {lo} and at most {n(hi)}"
        return (
            f"dockyard: 'dockyard {name}' {need}\n\nUsage:  dockyard {name} {self.usage}\n\n"
            f"{tail} 'dockyard {name} --help' for more information\n"
        )

    def invoke(self, cli: object, name: str, argv: list[str]) -> int:
        from dockyard.client.errors import APIError
        from dockyard.client.http import ConnectError

        try:
            opts, args = parse(self.flags, argv, self.interspersed)
        except FlagError as exc:
            sys.stderr.write(f"{exc}\nSee 'dockyard {name} --help'.\n")
            return 125
        if opts.pop("help"):
            sys.stdout.write(self.help(name))
            return 0
        if len(args) < self.min_args or (self.max_args is not None and len(args) > self.max_args):
            sys.stderr.write(self._arg_error(name))
            return 1
        try:
            return self.func(cli, opts, args) or 0
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            return 1
        except ConnectError:
            host = cli.host  # type: ignore[attr-defined]
            sys.stderr.write(
                f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?\n"
                "(dockyard: start it with `dockyardd`, or point -H / DOCKER_HOST at its socket)\n"
            )
            return 1
        except CommandError as exc:
            sys.stderr.write(f"{exc}\n")
            return exc.code


def command(
    usage: str,
    short: str,
    flags: list[Flag] | None = None,
    args: tuple[int, int | None] = (0, None),
    interspersed: bool = True,
) -> Callable[[Callable], Command]:
    def deco(func: Callable) -> Command:
        return Command(func, usage, short, flags or [], args[0], args[1], interspersed)

    return deco


def filters_param(items: list[str]) -> str | None:
    """``--filter k=v`` flags as the ``filters`` query value (the CLI 28 map form)."""
    from dockyard.client import jsonfast as json

    out: dict[str, dict[str, bool]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise CommandError("Error: bad format of filter (expected name=value)")
        out.setdefault(key, {})[value] = True
    return json.dumps(out) if out else None


def save_stream(response: object, output: str) -> None:
    """A streamed tar (save, export) to ``-o FILE`` (complete or not at all) or stdout;
    callers refuse a terminal stdout before they send the request."""
    import os

    tmp = output + ".tmp-dockyard" if output else None
    target = open(tmp, "wb") if tmp else None
    try:
        out = target or sys.stdout.buffer
        for chunk in response.iter_chunks():  # type: ignore[attr-defined]
            out.write(chunk)
        if target is not None:
            target.close()
            os.rename(tmp, output)  # type: ignore[arg-type]
            target = None
    finally:
        response.close()  # type: ignore[attr-defined]
        if target is not None:
            target.close()
            os.unlink(tmp)  # type: ignore[arg-type]
