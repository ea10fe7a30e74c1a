"""``dockyard-runtime create [-b BUNDLE] [--pid-file F] <id>``: set up, wait for ``start``."""

from __future__ import annotations

import os

from dockyard.errors import InvalidParameter
from dockyard.runtime import native
from dockyard.runtime.cli import console
from dockyard.runtime.cli._args import Parsed, parse
from dockyard.runtime.state import Store

__all__ = ["CREATE_BOOLEAN", "CREATE_VALUED", "main", "one_id", "write_pid_file"]

CREATE_VALUED = {
    "-b": "bundle",
    "--bundle": "bundle",
    "--pid-file": "pid-file",
    "--console-socket": "console-socket",
    "--preserve-fds": "preserve-fds",
}
CREATE_BOOLEAN = {"--no-pivot": "no-pivot", "--no-new-keyring": "no-new-keyring"}


def one_id(args: Parsed, verb: str) -> str:
    if len(args.positionals) != 1:
        raise InvalidParameter(f'"{verb}" requires exactly 1 argument: the container id')
    return args.positionals[0]


def write_pid_file(path: str | None, pid: int) -> None:
    if path:
        from dockyard.fsutil import atomic_write

        atomic_write(path, str(pid).encode(), 0o644)


def main(store: Store, argv: list[str]) -> int:
    args = parse(argv, CREATE_VALUED, CREATE_BOOLEAN)
    container_id = one_id(args, "create")
    socket_path = args.get("console-socket")
    console_fd = console.connect(socket_path) if socket_path else None
    try:
        state = native.create(
            store, container_id, args.get("bundle", ".") or ".", console_fd=console_fd
        )
    finally:
        if console_fd is not None:
            os.close(console_fd)
    write_pid_file(args.get("pid-file"), state.pid)
    return 0
