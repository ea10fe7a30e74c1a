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
    bundle = args.get("bundle", ".") or "."
    detach = "detach" in args.flags
    relay: console.Relay | None = None
    console_fd = None
    if args.get("console-socket"):
        console_fd = console.connect(args.get("console-socket") or "")

    def foreground_terminal() -> int:
        """Asked only when config.json wants a terminal: ours to copy, as runc's."""
        nonlocal relay
        relay = console.Relay()
        return relay.child_fd

    try:
        state = native.run(store, container_id, bundle, console_fd=console_fd,
                           console=None if detach or console_fd is not None else foreground_terminal)
    except BaseException:
        if relay is not None:
            relay.close()
        raise
    finally:
        if console_fd is not None and relay is None:
            os.close(console_fd)
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
        if relay is not None:
            status = relay.copy(relay.receive(), pid)
        else:
            _, status = os.waitpid(pid, 0)
    finally:
        native.delete(store, container_id, force=True)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
