"""``docker container`` commands that do not hijack a stream: ps, stop, kill, restart,
pause, unpause, wait, rm, logs, top, inspect, rename, prune, port, diff, export
(docker/cli ``cli/command/container``).  ``cp`` lives in ``cp.py``, ``update`` and
``stats`` in ``resources.py``; run, create, start, attach and exec in ``run.py``."""

from __future__ import annotations

import sys

from dockyard.cli.command import CommandError, command, filters_param, save_stream
from dockyard.cli.flags import Flag
from dockyard.cli.render import Context, format_rows


def _short(cid: str) -> str:
    return cid.removeprefix("sha256:")[:12]


def _ellipsis(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _join_host_port(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def displayable_ports(ports: list[dict]) -> str:  # type: ignore[type-arg]
    """docker/cli ``formatter.DisplayablePorts``: ranges grouped, host mappings last."""
    ports = sorted(
        ports,
        key=lambda p: (
            p.get("PrivatePort", 0),
            p.get("IP", ""),
            p.get("PublicPort", 0),
            p.get("Type", ""),
        ),
    )
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []

    def form(key: str, first: int, last: int) -> str:
        ip, _, kind = key.rpartition("/")
        group = str(first) if first == last else f"{first}-{last}"
        if ip:
            group = f"{ip}:{group}->{group}"
        return f"{group}/{kind}"

    for port in ports:
        current, key = port.get("PrivatePort", 0), port.get("Type", "")
        if port.get("IP"):
            if port.get("PublicPort", 0) != current:
                mappings.append(
                    f"{_join_host_port(port['IP'], port.get('PublicPort', 0))}->{current}/{key}"
                )
                continue
            key = f"{port['IP']}/{key}"
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            order.append(key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(form(key, group[0], group[1]))
        groups[key] = [current, current]
    result += [form(k, *groups[k]) for k in order]
    return ", ".join(result + mappings)


class ContainerRow(Context):
    FIELDS = (
        "ID",
        "Image",
        "Command",
        "CreatedAt",
        "RunningFor",
        "Ports",
        "State",
        "Status",
        "Size",
        "Names",
        "Labels",
        "Mounts",
        "Networks",
        "LocalVolumes",
        "Platform",
    )
    go_type = "*formatter.ContainerContext"

    def __init__(self, c: dict, trunc: bool) -> None:  # type: ignore[type-arg]
        self.c, self.trunc = c, trunc

    def ID(self) -> str:
        return _short(self.c["Id"]) if self.trunc else self.c["Id"]

    def Names(self) -> str:
        names = [n.removeprefix("/") for n in self.c.get("Names") or []]
        if self.trunc:
            names = [n for n in names if "/" not in n][:1] or names
        return ",".join(names)

    def Image(self) -> str:
        image = self.c.get("Image") or ""
        if not image:
            return "<no image>"
        if self.trunc:
            if _short(self.c.get("ImageID", "")) == _short(image):
                return _short(image)
            return image.partition("@")[0]
        return image

    def Command(self) -> str:
        from dockyard.cli._gofmt import go_quote

        cmd = self.c.get("Command") or ""
        return go_quote(_ellipsis(cmd, 20) if self.trunc else cmd)

    def CreatedAt(self) -> str:
        from dockyard.cli.commands.image import _created_at

        return _created_at(self.c.get("Created", 0))

    def RunningFor(self) -> str:
        from dockyard.cli.units import time_ago

        return time_ago(self.c.get("Created", 0))

    def Ports(self) -> str:
        return displayable_ports(self.c.get("Ports") or [])

    def State(self) -> str:
        return self.c.get("State", "")

    def Status(self) -> str:
        return self.c.get("Status", "")

    def Size(self) -> str:
        from dockyard.cli.units import human_size

        srw, sv = self.c.get("SizeRw", 0) or 0, self.c.get("SizeRootFs", 0) or 0
        return f"{human_size(srw)} (virtual {human_size(sv)})" if sv > 0 else human_size(srw)

    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted((self.c.get("Labels") or {}).items()))

    def Mounts(self) -> str:
        names = []
        for m in self.c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source", "")
            names.append(_ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    def Networks(self) -> str:
        return ",".join(sorted((self.c.get("NetworkSettings") or {}).get("Networks") or {}))

    def Platform(self) -> object:
        return (self.c.get("ImageManifestDescriptor") or {}).get("platform")

    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))


PS_LABELS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Platform": "PLATFORM",
}


@command(
    "[OPTIONS]",
    "List containers",
    [
        Flag("all", "a", help="Show all containers (default shows just running)"),
        Flag("filter", "f", "list", help="Filter output based on conditions provided"),
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag(
            "last",
            "n",
            "int",
            default=-1,
            help="Show n last created containers (includes all states)",
        ),
        Flag("latest", "l", help="Show the latest created container (includes all states)"),
        Flag("no-trunc", help="Don't truncate output"),
        Flag("quiet", "q", help="Only display container IDs"),
        Flag("size", "s", help="Display total file sizes"),
    ],
    args=(0, 0),
)
def ps(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    fmt = opts["format"]
    if opts["quiet"]:
        fmt = "{{.ID}}"
    elif not fmt or fmt == "table":
        fmt = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
        if opts["size"]:
            fmt += "\t{{.Size}}"
    limit = 1 if opts["latest"] else opts["last"]
    size = opts["size"] or (not opts["quiet"] and ".Size" in fmt)
    params = {
        "all": "1" if opts["all"] else None,
        "limit": str(limit) if limit not in (-1, 0) else None,
        "size": "1" if size else None,
        "filters": filters_param(opts["filter"]),
    }
    containers = cli.client.json("GET", "/containers/json", params)
    rows = [ContainerRow(c, not opts["no_trunc"]) for c in containers]
    sys.stdout.write(format_rows(rows, fmt, PS_LABELS))
    return 0


def _parallel(names: list[str], action) -> dict[int, Exception]:  # type: ignore[no-untyped-def]
    """docker's parallelOperation: ``action(name)`` for every name at once; the
    daemon's errors by argument index."""
    from dockyard.client.errors import APIError

    errors: dict[int, Exception] = {}

    def one(i: int, name: str) -> None:
        try:
            action(name)
        except APIError as exc:
            errors[i] = exc

    if len(names) == 1:
        one(0, names[0])
    else:
        import threading

        threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(names)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return errors


def _each(names: list[str], action) -> int:  # type: ignore[no-untyped-def]
    """Print each success in argument order, then every error joined (exit 1 if any)."""
    errors = _parallel(names, action)
    for i, name in enumerate(names):
        if i not in errors:
            sys.stdout.write(name + "\n")
    if errors:
        raise CommandError(
            "\n".join(
                f"Error response from daemon: {errors[i].message}"  # type: ignore[attr-defined]
                for i in sorted(errors)
            )
        )
    return 0


def _post(cli, path: str, params=None):  # type: ignore[no-untyped-def]
    def action(name: str) -> None:
        cli.client.raw("POST", path.format(name), params).close()

    return action


@command(
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Stop one or more running containers",
    [
        Flag("signal", "s", "str", default="", help="Signal to send to the container"),
        Flag("time", "t", "int", help="Seconds to wait before killing the container"),
    ],
    args=(1, None),
)
def stop(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    params = {"signal": opts["signal"] or None, "t": opts["time"]}
    return _each(args, _post(cli, "/containers/{}/stop", params))


@command(
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Restart one or more containers",
    [
        Flag("signal", "s", "str", default="", help="Signal to send to the container"),
        Flag("time", "t", "int", help="Seconds to wait before killing the container"),
    ],
    args=(1, None),
)
def restart(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    params = {"signal": opts["signal"] or None, "t": opts["time"]}
    return _each(args, _post(cli, "/containers/{}/restart", params))


@command(
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Kill one or more running containers",
    [
        Flag("signal", "s", "str", default="", help="Signal to send to the container"),
    ],
    args=(1, None),
)
def kill(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    return _each(args, _post(cli, "/containers/{}/kill", {"signal": opts["signal"] or None}))


@command(
    "CONTAINER [CONTAINER...]", "Pause all processes within one or more containers", args=(1, None)
)
def pause(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    return _each(args, _post(cli, "/containers/{}/pause"))


@command(
    "CONTAINER [CONTAINER...]",
    "Unpause all processes within one or more containers",
    args=(1, None),
)
def unpause(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    return _each(args, _post(cli, "/containers/{}/unpause"))


@command(
    "CONTAINER [CONTAINER...]",
    "Block until one or more containers stop, then print their exit codes",
    args=(1, None),
)
def wait(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client.errors import APIError

    errors = []
    for name in args:
        try:
            result = cli.client.json("POST", f"/containers/{name}/wait")
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        sys.stdout.write(f"{result.get('StatusCode', 0)}\n")
        sys.stdout.flush()
    if errors:
        raise CommandError("\n".join(errors))
    return 0


@command(
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Remove one or more containers",
    [
        Flag("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
        Flag("link", "l", help="Remove the specified link"),
        Flag("volumes", "v", help="Remove anonymous volumes associated with the container"),
    ],
    args=(1, None),
)
def rm(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    params = {
        "force": "1" if opts["force"] else None,
        "link": "1" if opts["link"] else None,
        "v": "1" if opts["volumes"] else None,
    }

    def action(name: str) -> None:
        cli.client.raw("DELETE", f"/containers/{name.strip('/')}", params).close()

    errors = _parallel(args, action)
    failed = []
    for i, name in enumerate(args):
        exc = errors.get(i)
        if exc is None:
            sys.stdout.write(name + "\n")
        elif opts["force"] and exc.not_found:  # type: ignore[attr-defined]
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")  # type: ignore[attr-defined]
        else:
            failed.append(f"Error response from daemon: {exc.message}")  # type: ignore[attr-defined]
    if failed:
        raise CommandError("\n".join(failed))
    return 0


@command(
    "[OPTIONS] CONTAINER",
    "Fetch the logs of a container",
    [
        Flag("details", "", help="Show extra details provided to logs"),
        Flag("follow", "f", help="Follow log output"),
        Flag("since", "", "str", default="", help="Show logs since timestamp or relative"),
        Flag(
            "tail",
            "n",
            "str",
            default="all",
            help="Number of lines to show from the end of the logs",
        ),
        Flag("timestamps", "t", help="Show timestamps"),
        Flag("until", "", "str", default="", help="Show logs before a timestamp or relative"),
    ],
    args=(1, 1),
)
def logs(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.commands.system import _parse_time_arg
    from dockyard.cli.stream import _write_all, demux

    info = cli.client.json("GET", f"/containers/{args[0]}/json")
    params = [
        ("details", "1" if opts["details"] else None),
        ("follow", "1" if opts["follow"] else None),
        ("since", _parse_time_arg(opts["since"]) or None),
        ("stderr", "1"),
        ("stdout", "1"),
        ("tail", opts["tail"] or None),
        ("timestamps", "1" if opts["timestamps"] else None),
        ("until", _parse_time_arg(opts["until"]) or None),
    ]
    response = cli.client.raw("GET", f"/containers/{info['Id']}/logs", params)
    sys.stdout.flush()
    try:
        if (info.get("Config") or {}).get("Tty"):
            for chunk in response.iter_chunks():
                _write_all(1, chunk)
        else:
            demux(response.iter_chunks(), 1, 2)
    finally:
        response.close()
    return 0


@command(
    "CONTAINER [ps OPTIONS]",
    "Display the running processes of a container",
    args=(1, None),
    interspersed=False,
)
def top(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    params = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    result = cli.client.json("GET", f"/containers/{args[0]}/top", params)
    rows = [result.get("Titles") or []] + (result.get("Processes") or [])
    widths = [max(20, max(len(r[i]) for r in rows if i < len(r)) + 3) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        out.append("".join(cells) + "\n")
    sys.stdout.write("".join(out))
    return 0


@command(
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Display detailed information on one or more containers",
    [
        Flag("format", "f", "str", help="Format output using a custom template"),
        Flag("size", "s", help="Display total file sizes"),
    ],
    args=(1, None),
)
def inspect(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.render import inspect_output
    from dockyard.client.errors import APIError

    found, code = [], 0
    params = {"size": "1"} if opts["size"] else None
    for name in args:
        try:
            found.append(cli.client.json("GET", f"/containers/{name}/json", params))
        except APIError as exc:
            if not exc.not_found:
                raise
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            code = 1
    sys.stdout.write(inspect_output(found, opts["format"]))
    return code


@command("CONTAINER NEW_NAME", "Rename a container", args=(2, 2))
def rename(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client.errors import APIError

    old, new = args[0].strip(), args[1].strip()
    if not old or not new:
        raise CommandError("Error: Neither old nor new names may be empty")
    try:
        cli.client.raw("POST", f"/containers/{old}/rename", {"name": new}).close()
    except APIError as exc:
        sys.stderr.write(f"Error response from daemon: {exc.message}\n")
        raise CommandError(f"Error: failed to rename container named {old}") from None
    return 0


@command(
    "[OPTIONS]",
    "Remove all stopped containers",
    [
        Flag("filter", "", "list", help='Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", help="Do not prompt for confirmation"),
    ],
    args=(0, 0),
)
def prune(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.units import human_size

    if not opts["force"]:
        sys.stdout.write(
            "WARNING! This will remove all stopped containers.\n"
            "Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    result = cli.client.json(
        "POST", "/containers/prune", {"filters": filters_param(opts["filter"])}
    )
    deleted = result.get("ContainersDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed', 0))}\n")
    return 0


@command(
    "CONTAINER [PRIVATE_PORT[/PROTO]]",
    "List port mappings or a specific mapping for the container",
    args=(1, 2),
)
def port(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    info = cli.client.json("GET", f"/containers/{args[0]}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    out = []
    if len(args) == 2:
        num, _, proto = args[1].partition("/")
        if not num or num.strip("0123456789"):
            raise CommandError(
                f'Error: invalid port ({num}): strconv.ParseUint: parsing "{num}": invalid syntax'
            )
        if int(num) > 65535:
            raise CommandError(
                f'Error: invalid port ({num}): strconv.ParseUint: parsing "{num}": value out of range'
            )
        frontends = ports.get(f"{num}/{proto or 'tcp'}") or []
        if not frontends:
            raise CommandError(f"Error: No public port '{args[1]}' published for {args[0]}")
        out = [_join_host_port(f.get("HostIp", ""), f.get("HostPort", "")) for f in frontends]
    else:
        for key, frontends in ports.items():
            for f in frontends or []:
                out.append(
                    f"{key} -> {_join_host_port(f.get('HostIp', ''), f.get('HostPort', ''))}"
                )

    def natural(s: str) -> list:  # type: ignore[type-arg]
        parts, num = [], ""
        for ch in s:
            if ch.isdigit():
                num += ch
                continue
            if num:
                parts.append((0, int(num), ""))
                num = ""
            parts.append((1, 0, ch))
        if num:
            parts.append((0, int(num), ""))
        return parts

    if out:
        sys.stdout.write("\n".join(sorted(out, key=natural)) + "\n")
    return 0


@command(
    "CONTAINER", "Inspect changes to files or directories on a container's filesystem", args=(1, 1)
)
def diff(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    changes = cli.client.json("GET", f"/containers/{args[0]}/changes") or []
    sys.stdout.write(
        "".join(
            f"{'CAD'[c['Kind']] if c['Kind'] in (0, 1, 2) else '?'} {c['Path']}\n" for c in changes
        )
    )
    return 0


@command(
    "[OPTIONS] CONTAINER",
    "Export a container's filesystem as a tar archive",
    [Flag("output", "o", "str", default="", help="Write to a file, instead of STDOUT")],
    args=(1, 1),
)
def export(cli, opts, args) -> int:  # type: ignore[no-untyped-def]

    if not opts["output"] and sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    save_stream(cli.client.raw("GET", f"/containers/{args[0]}/export"), opts["output"])
    return 0
