"""``run``, ``create``, ``start``, ``attach`` and ``exec``: the commands that build a create
body or hijack a stream (docker/cli ``cli/command/container/{run,create,start,attach,exec}.go``
and ``opts.go``).  Request sequences follow ENGINE-API.md §3 exactly."""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import CommandError, command
from dockyard.cli.commands.create_opts import (
    _CREATE_FLAGS,
    RUN_FLAGS,
    UsageError,
    _read_kv_file,
    create_body,
)
from dockyard.cli.flags import Flag

PROG = "dockyard"


def _create(cli, opts: dict, body: dict) -> str:  # type: ignore[no-untyped-def,type-arg]
    """POST /containers/create, pulling the image first as docker/cli ``createContainer``
    does: always with ``--pull always``; on any 404 with ``--pull missing`` (the default) if
    the image is a name, not an id.  The pull's progress goes to stderr (stdout is for the
    container id), nowhere with ``-q``."""
    from dockyard.cli.commands.distribution import pull_image
    from dockyard.cli.reference import BadReference, parse_any
    from dockyard.client.errors import APIError

    image = body["Image"]
    params = {"name": opts["name"] or None, "platform": opts["platform"] or None}
    if opts["pull"] not in ("missing", "never", "always"):
        raise UsageError(
            f'invalid pull option: \'{opts["pull"]}\': must be one of "always", "missing" or "never"'
        )
    try:
        named = parse_any(image)
    except BadReference as exc:
        raise CommandError(str(exc)) from None
    named = named.with_default_tag() if named is not None else None
    progress_fd = None if opts["quiet"] else 2
    if opts["pull"] == "always":
        pull_image(cli, _pull_ref(image), opts["platform"], progress_fd)
    try:
        result = cli.client.json("POST", "/containers/create", params, body)
    except APIError as exc:
        if not (exc.not_found and named is not None and opts["pull"] == "missing"):
            raise
        if not opts["quiet"]:
            sys.stderr.write(f"Unable to find image '{named.familiar()}' locally\n")
            sys.stderr.flush()
        pull_image(cli, named, opts["platform"], progress_fd)
        result = cli.client.json("POST", "/containers/create", params, body)
    for warning in result.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {warning}\n")
    if opts["cidfile"]:
        with open(opts["cidfile"], "w") as f:
            f.write(result["Id"])
    return result["Id"]


def _pull_ref(image: str):  # type: ignore[no-untyped-def]
    """``ImageCreate``'s parse of the image as given (an id is refused with Go's message)."""
    from dockyard.cli.commands.distribution import parse_reference

    return parse_reference(image).with_default_tag()


def _report(name: str, message: str) -> None:
    """docker's ``reportError``: ``docker: <msg>`` plus the help hint."""
    sys.stderr.write(f"{PROG}: {message}\n\nRun '{PROG} {name} --help' for more information\n")


def _start_error_code(message: str) -> int:
    if any(
        s in message
        for s in (
            "executable file not found",
            "no such file or directory",
            "system cannot find the file specified",
        )
    ):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


class _Waiter:
    """``POST /containers/{id}/wait?condition=...``: headers now, status later."""

    def __init__(self, cli, cid: str, condition: str | None) -> None:  # type: ignore[no-untyped-def]
        self.response = cli.client.raw(
            "POST", f"/containers/{cid}/wait", {"condition": condition} if condition else None
        )

    def status(self) -> int:
        from dockyard.client import jsonfast as json

        try:
            body = json.loads(self.response.read())
        except Exception:
            sys.stderr.write("error waiting for container: unexpected EOF\n")
            return 125
        finally:
            self.response.close()
        if body.get("Error"):
            sys.stderr.write(f"Error waiting for container: {body['Error'].get('Message')}\n")
            return 125
        return int(body.get("StatusCode", 0))

    def close(self) -> None:
        self.response.close()


_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def _proxy_signals(cli, cid: str) -> None:  # type: ignore[no-untyped-def]
    """ForwardAllSignals: signals the CLI receives become ``POST .../kill?signal=``."""
    import signal

    def forward(signum, frame) -> None:  # type: ignore[no-untyped-def]
        name = signal.Signals(signum).name[3:]
        try:
            cli.client.raw("POST", f"/containers/{cid}/kill", {"signal": name}).close()
        except Exception:
            return

    for name in _FORWARDED:
        signal.signal(getattr(signal, name), forward)


def _monitor_tty(cli, path: str) -> None:  # type: ignore[no-untyped-def]
    from dockyard.cli.stream import resize

    if not os.isatty(1):
        return
    resize(cli.client, path)
    import signal

    signal.signal(signal.SIGWINCH, lambda *_: resize(cli.client, path))


# CLI 28's `attach` and `exec` end with the escape proxy's error (run and start -a do not).
_DETACHED = "read escape sequence"


def _attach_session(
    cli,
    cid: str,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,  # type: ignore[no-untyped-def]
    detach_keys: str,
):
    from dockyard.cli.stream import Session, open_hijack

    params = [("stderr", "1")] if stderr else []
    if stdin:
        params.append(("stdin", "1"))
    if stdout:
        params.append(("stdout", "1"))
    params.append(("stream", "1"))
    if detach_keys:
        params.insert(0, ("detachKeys", detach_keys))
    response = open_hijack(cli.client, f"/containers/{cid}/attach", params)
    session = Session(response, tty, stdin, err_to_out=tty, detach_keys=detach_keys)
    session.begin()
    return session


def _split_image(args: list[str]) -> tuple[str, list[str]]:
    return args[0], args[1:]


@command(
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create and run a new container from an image",
    RUN_FLAGS,
    args=(1, None),
    interspersed=False,
)
def run(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client.errors import APIError

    detach = bool(opts["detach"])
    if detach and opts["attach"]:
        raise CommandError("conflicting options: cannot specify both --attach and --detach")
    image, cmd = _split_image(args)
    try:
        body = create_body(opts, image, cmd, detach)
    except UsageError as exc:
        _report("run", str(exc))
        return 125
    if not detach and body["AttachStdin"] and body["Tty"] and not os.isatty(0):
        sys.stderr.write("the input device is not a TTY\n")
        return 1
    try:
        cid = _create(cli, opts, body)
    except UsageError as exc:
        _report("run", str(exc))
        return 125
    except CommandError as exc:
        _report("run", str(exc))
        return _start_error_code(str(exc))  # docker's toStatusError covers create's errors too
    except APIError as exc:
        _report("run", f"Error response from daemon: {exc.message}")
        return _start_error_code(exc.message)
    tty = bool(body["Tty"])
    if opts["sig_proxy"] and not tty:
        _proxy_signals(cli, cid)
    attached = body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"]
    if not body["AttachStdout"] and not body["AttachStderr"]:
        sys.stdout.write(cid + "\n")
        sys.stdout.flush()
    session = None
    if attached:
        session = _attach_session(
            cli,
            cid,
            body["AttachStdin"],
            body["AttachStdout"],
            body["AttachStderr"],
            tty,
            opts["detach_keys"],
        )
    waiter = _Waiter(cli, cid, "removed" if opts["rm"] else "next-exit")
    try:
        cli.client.raw("POST", f"/containers/{cid}/start").close()
    except APIError as exc:
        if session:
            session.close()
        _report("run", f"Error response from daemon: {exc.message}")
        if opts["rm"]:
            waiter.status()
        waiter.close()
        return _start_error_code(exc.message)
    if session is None:
        waiter.close()  # detached: the CLI just drops the wait connection
        return 0
    if tty:
        _monitor_tty(cli, f"/containers/{cid}/resize")
    if session.wait() == "detached":
        waiter.close()
        return 0
    session.close()
    if not body["AttachStdout"] and not body["AttachStderr"]:
        waiter.close()
        return 0
    return waiter.status()


@command(
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create a new container",
    _CREATE_FLAGS,
    args=(1, None),
    interspersed=False,
)
def create(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    image, cmd = _split_image(args)
    try:
        body = create_body(opts, image, cmd, False)
        cid = _create(cli, opts, body)
    except UsageError as exc:
        _report("create", str(exc))
        return 125
    sys.stdout.write(cid + "\n")
    return 0


@command(
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Start one or more stopped containers",
    [
        Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
        Flag("interactive", "i", help="Attach container's STDIN"),
        Flag(
            "detach-keys",
            "",
            "str",
            default="",
            help="Override the key sequence for detaching a container",
        ),
    ],
    args=(1, None),
)
def start(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client.errors import APIError

    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            raise CommandError("you cannot start and attach multiple containers at once")
        info = cli.client.json("GET", f"/containers/{args[0]}/json")
        cid, tty = info["Id"], bool(info["Config"].get("Tty"))
        if not tty:
            _proxy_signals(cli, cid)
        stdin = bool(opts["interactive"] and info["Config"].get("OpenStdin"))
        session = _attach_session(cli, cid, stdin, True, True, tty, opts["detach_keys"])
        auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
        waiter = _Waiter(cli, cid, "removed" if auto_remove else "next-exit")
        try:
            cli.client.raw("POST", f"/containers/{cid}/start").close()
        except APIError:
            session.close()
            if auto_remove:
                waiter.status()
            waiter.close()
            raise
        if tty:
            _monitor_tty(cli, f"/containers/{cid}/resize")
        if session.wait() == "detached":
            waiter.close()
            return 0
        session.close()
        return waiter.status()
    failed = []
    for name in args:
        try:
            cli.client.raw("POST", f"/containers/{name}/start").close()
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            failed.append(name)
            continue
        sys.stdout.write(name + "\n")
    if failed:
        raise CommandError(f"Error: failed to start containers: {', '.join(failed)}")
    return 0


@command(
    "[OPTIONS] CONTAINER",
    "Attach local standard input, output, and error streams to a running container",
    [
        Flag(
            "detach-keys",
            "",
            "str",
            default="",
            help="Override the key sequence for detaching a container",
        ),
        Flag("no-stdin", "", help="Do not attach STDIN"),
        Flag(
            "sig-proxy", "", "bool", default=True, help="Proxy all received signals to the process"
        ),
    ],
    args=(1, 1),
)
def attach(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    info = cli.client.json("GET", f"/containers/{args[0]}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CommandError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CommandError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CommandError("You cannot attach to a restarting container, wait until it is running")
    cid, tty = info["Id"], bool(info["Config"].get("Tty"))
    stdin = bool(info["Config"].get("OpenStdin")) and not opts["no_stdin"]
    if stdin and tty and not os.isatty(0):
        raise CommandError("the input device is not a TTY")
    if opts["sig_proxy"] and not tty:
        _proxy_signals(cli, cid)
    session = _attach_session(cli, cid, stdin, True, True, tty, opts["detach_keys"])
    if tty:
        _monitor_tty(cli, f"/containers/{cid}/resize")
    if session.wait() == "detached":
        raise CommandError(_DETACHED)
    session.close()
    # docker inspects the exit code once the stream ends
    info = cli.client.json("GET", f"/containers/{cid}/json")
    code = (info.get("State") or {}).get("ExitCode", 0)
    return int(code or 0)


@command(
    "[OPTIONS] CONTAINER COMMAND [ARG...]",
    "Execute a command in a running container",
    [
        Flag("detach", "d", help="Detached mode: run command in the background"),
        Flag(
            "detach-keys",
            "",
            "str",
            default="",
            help="Override the key sequence for detaching a container",
        ),
        Flag("env", "e", "list", help="Set environment variables"),
        Flag("env-file", "", "list", help="Read in a file of environment variables"),
        Flag("interactive", "i", help="Keep STDIN open even if not attached"),
        Flag("privileged", "", help="Give extended privileges to the command"),
        Flag("tty", "t", help="Allocate a pseudo-TTY"),
        Flag(
            "user",
            "u",
            "str",
            default="",
            help='Username or UID (format: "<name|uid>[:<group|gid>]")',
        ),
        Flag("workdir", "w", "str", default="", help="Working directory inside the container"),
    ],
    args=(2, None),
    interspersed=False,
)
def exec_(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.stream import Session, open_hijack
    from dockyard.client import jsonfast as json

    name, cmd = args[0], args[1:]
    detach, tty, stdin = bool(opts["detach"]), bool(opts["tty"]), bool(opts["interactive"])
    try:
        env = [line for path in opts["env_file"] for line in _read_kv_file(path, True)]
    except UsageError as exc:
        raise CommandError(str(exc)) from None
    env += [e if "=" in e or e not in os.environ else f"{e}={os.environ[e]}" for e in opts["env"]]
    if not detach and stdin and tty and not os.isatty(0):
        raise CommandError("the input device is not a TTY")
    cli.client.json("GET", f"/containers/{name}/json")
    body = {
        "User": opts["user"],
        "Privileged": bool(opts["privileged"]),
        "Tty": tty,
        "AttachStdin": stdin and not detach,
        "AttachStderr": not detach,
        "AttachStdout": not detach,
        "Detach": detach,
        "DetachKeys": opts["detach_keys"],
        "Env": env or None,
        "WorkingDir": opts["workdir"],
        "Cmd": cmd,
    }
    exec_id = cli.client.json("POST", f"/containers/{name}/exec", None, body)["Id"]
    if detach:
        cli.client.json("POST", f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": tty})
        return 0
    payload = json.dumps({"Detach": False, "Tty": tty}).encode()
    response = open_hijack(cli.client, f"/exec/{exec_id}/start", None, payload, "application/json")
    session = Session(response, tty, stdin, err_to_out=tty, detach_keys=opts["detach_keys"])
    session.begin()
    if tty:
        _monitor_tty(cli, f"/exec/{exec_id}/resize")
    if session.wait() == "detached":
        raise CommandError(_DETACHED)
    session.close()
    result = cli.client.json("GET", f"/exec/{exec_id}/json")
    return int(result.get("ExitCode") or 0)
