"""``dockyard-runtime run [-b BUNDLE] [-d] <id>``: create + start; waits and exits with the
container's status (128+N when killed by signal N), forwarding signals meanwhile, then
deletes it, as ``runc run`` does."""

from __future__ import annotations

import os
import signal

from dockyard.errors import InvalidParameter
from dockyard.runtime import native
from dockyard.runtime.cli import console
from dockyard.runtime.cli._args import parse
from dockyard.runtime.cli.create import CREATE_BOOLEAN, CREATE_VALUED, one_id, write_pid_file
from dockyard.runtime.state import Store

__all__ = ["detaches", "main"]

_FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)


_BOOLEAN = {**CREATE_BOOLEAN, "-d": "detach", "--detach": "detach"}


def detaches(argv: list[str]) -> bool:
    """``run -d``: the container outlives this command (see ``server``)."""
    try:
        return "detach" in parse(argv, CREATE_VALUED, _BOOLEAN).flags
    except InvalidParameter:
        return False


def main(store: Store, argv: list[str]) -> int:
    args = parse(argv, CREATE_VALUED, _BOOLEAN)
    container_id = one_id(args, "run")
    detach = "detach" in args.flags
    with console.Console(args.get("console-socket"), foreground=not detach) as terminal:
        state = native.run(
            store,
            container_id,
            args.get("bundle", ".") or ".",
            console_fd=terminal.fd,
            console=terminal.factory,
        )
    write_pid_file(args.get("pid-file"), state.pid)
    if detach:
        return 0
    pid = state.pid

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    try:
        return terminal.wait(pid)
    finally:
        native.delete(store, container_id, force=True)
