"""``dockyard-runtime exec [flags] <id> [--] CMD [ARG...]`` or ``exec --process FILE <id>``:
run a process in a running container; waits and returns its status unless ``-d``.

Unset process fields come from the container's config.json (user, capabilities, env, cwd,
rlimits), as runc does; ``--env`` adds to the environment, ``-u uid[:gid]`` and ``--cwd``
override."""

from __future__ import annotations

import msgspec

from dockyard.errors import InvalidParameter
from dockyard.runtime import native
from dockyard.runtime.cli import console
from dockyard.runtime.cli._args import parse
from dockyard.runtime.cli.create import write_pid_file
from dockyard.runtime.spec import Process, User
from dockyard.runtime.state import Store

__all__ = ["detaches", "main"]


def _process(store: Store, container_id: str, args: list[str], opts) -> Process:
    path = opts.get("process")
    if path:
        with open(path, "rb") as f:
            return msgspec.json.decode(f.read(), type=Process)
    if not args:
        raise InvalidParameter("exec: give the command to run, or --process FILE")
    base = native.load_bundle(native.state(store, container_id).bundle).process
    assert base is not None
    env = list(base.env or ()) + opts.values.get("env", [])
    user = base.user
    if opts.get("user"):
        uid, _, gid = (opts.get("user") or "").partition(":")
        user = User(uid=int(uid), gid=int(gid or 0))
    return msgspec.structs.replace(
        base, args=args, env=env, user=user, cwd=opts.get("cwd", base.cwd) or base.cwd
    )


_VALUED = {
    "--process": "process",
    "-p": "process",
    "--env": "env",
    "-e": "env",
    "--cwd": "cwd",
    "--user": "user",
    "-u": "user",
    "--pid-file": "pid-file",
    "--console-socket": "console-socket",
    "--process-label": "label",
    "--apparmor": "apparmor",
}
_BOOLEAN = {
    "-d": "detach",
    "--detach": "detach",
    "-t": "tty",
    "--tty": "tty",
    "--no-new-privs": "no-new-privs",
}


def detaches(argv: list[str]) -> bool:
    """``exec -d``: the process outlives this command (see ``server``)."""
    try:
        return "detach" in parse(argv, _VALUED, _BOOLEAN, stop_at_positional=1).flags
    except InvalidParameter:
        return False


def main(store: Store, argv: list[str]) -> int:
    opts = parse(argv, _VALUED, _BOOLEAN, stop_at_positional=1)
    if not opts.positionals:
        raise InvalidParameter('"exec" requires the container id')
    container_id, command = opts.positionals[0], opts.positionals[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    proc = _process(store, container_id, command, opts)
    if "tty" in opts.flags:
        proc = msgspec.structs.replace(proc, terminal=True)
    detach = "detach" in opts.flags
    with console.Console(opts.get("console-socket"), foreground=not detach) as terminal:
        pid = native.exec_process(
            store, container_id, proc, console_fd=terminal.fd, console=terminal.factory
        )
    write_pid_file(opts.get("pid-file"), pid)
    if detach:
        return 0
    return terminal.wait(pid)
