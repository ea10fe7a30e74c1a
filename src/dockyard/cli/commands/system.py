"""``version``, ``info``, ``system df``, ``events`` and the untyped ``inspect`` (CLI world)."""

from __future__ import annotations

import sys

from dockyard.cli.command import CommandError, command
from dockyard.cli.flags import Flag

CLIENT_VERSION = "0.1.0"
API_VERSION = "1.41"


def _client_info() -> dict[str, object]:
    return {
        "Platform": {"Name": "dockyard"},
        "Version": CLIENT_VERSION,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + sys.version.split()[0],
        "Os": "linux",
        "Arch": "amd64",
        "BuildTime": "",
        "Context": "default",
    }


@command(
    "[OPTIONS]",
    "Show the Docker version information",
    [Flag("format", "f", "str", help="Format output using a custom template")],
    args=(0, 0),
)
def version(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    fmt = opts["format"]
    data: dict[str, object] = {"Client": _client_info(), "Server": None}
    # The server is asked only when the output needs it (``{{.Client.Version}}`` does not).
    if not fmt or "Server" in fmt or fmt.strip() in ("json", "{{json .}}"):
        data["Server"] = cli.client.json("GET", "/version")
    if fmt:
        # Templates name Go struct fields (``.Server.APIVersion``), JSON keys differ.
        for part in (data["Client"], data["Server"]):
            if isinstance(part, dict) and "ApiVersion" in part:
                part["APIVersion"] = part["ApiVersion"]
        from dockyard.cli.render import inspect_output

        sys.stdout.write(inspect_output([data], fmt))
        return 0
    c, s = data["Client"], data["Server"]
    out = [
        "Client:",
        f" Version:           {c['Version']}",
        f" API version:       {c['ApiVersion']}",
        f" Go version:        {c['GoVersion']}",
        f" Git commit:        {c['GitCommit']}",
        f" Built:             {c['BuildTime']}",
        f" OS/Arch:           {c['Os']}/{c['Arch']}",
        f" Context:           {c['Context']}",
        "",
        f"Server: {s.get('Platform', {}).get('Name', '')}",
    ]
    for comp in s.get("Components") or []:
        d = comp.get("Details") or {}
        out.append(f" {comp['Name']}:")
        out.append(f"  Version:          {comp['Version']}")
        if comp["Name"] == "Engine":
            out.append(
                f"  API version:      {s['ApiVersion']} (minimum version {s['MinAPIVersion']})"
            )
            out.append(f"  Go version:       {s['GoVersion']}")
            out.append(f"  Git commit:       {s['GitCommit']}")
            out.append(f"  Built:            {s['BuildTime']}")
            out.append(f"  OS/Arch:          {s['Os']}/{s['Arch']}")
            out.append(f"  Experimental:     {d.get('Experimental', 'false')}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


@command(
    "[OPTIONS]",
    "Display system-wide information",
    [Flag("format", "f", "str", help="Format output using a custom template")],
    args=(0, 0),
)
def info(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.units import bytes_size

    data = cli.client.json("GET", "/info")
    if opts["format"]:
        from dockyard.cli.render import inspect_output

        sys.stdout.write(inspect_output([data], opts["format"]))
        return 0
    c = _client_info()
    out = [
        "Client:",
        f" Version:    {c['Version']}",
        f" Context:    {c['Context']}",
        f" Debug Mode: {'true' if cli.options['debug'] else 'false'}",
        "",
        "Server:",
        f" Containers: {data['Containers']}",
        f"  Running: {data['ContainersRunning']}",
        f"  Paused: {data['ContainersPaused']}",
        f"  Stopped: {data['ContainersStopped']}",
        f" Images: {data['Images']}",
        f" Server Version: {data['ServerVersion']}",
        f" Storage Driver: {data['Driver']}",
    ]
    out += [f"  {k}: {v}" for k, v in data.get("DriverStatus") or []]
    plugins = data.get("Plugins") or {}
    out += [
        f" Logging Driver: {data['LoggingDriver']}",
        f" Cgroup Driver: {data['CgroupDriver']}",
        f" Cgroup Version: {data['CgroupVersion']}",
        " Plugins:",
        f"  Volume: {' '.join(plugins.get('Volume') or [])}",
        f"  Network: {' '.join(plugins.get('Network') or [])}",
        f"  Log: {' '.join(plugins.get('Log') or [])}",
        f" Swarm: {data['Swarm']['LocalNodeState']}",
        f" Runtimes: {' '.join(sorted(data.get('Runtimes') or {}))}",
        f" Default Runtime: {data['DefaultRuntime']}",
        f" Init Binary: {data['InitBinary']}",
        *_security_options(data.get("SecurityOptions") or []),
        f" Kernel Version: {data['KernelVersion']}",
        f" Operating System: {data['OperatingSystem']}",
        f" OSType: {data['OSType']}",
        f" Architecture: {data['Architecture']}",
        f" CPUs: {data['NCPU']}",
        f" Total Memory: {bytes_size(data['MemTotal'])}",
        f" Name: {data['Name']}",
        f" ID: {data['ID']}",
        f" Docker Root Dir: {data['DockerRootDir']}",
        f" Debug Mode: {'true' if data['Debug'] else 'false'}",
        f" Experimental: {'true' if data['ExperimentalBuild'] else 'false'}",
        " Insecure Registries:",
        *[f"  {r}" for r in data["RegistryConfig"]["InsecureRegistryCIDRs"]],
        f" Live Restore Enabled: {'true' if data['LiveRestoreEnabled'] else 'false'}",
    ]
    sys.stdout.write("\n".join(out) + "\n\n")
    for warning in data.get("Warnings") or []:
        sys.stderr.write(warning + "\n")
    return 0


def _security_options(options: list[str]) -> list[str]:
    """``name=seccomp,profile=builtin`` → docker info's "Security Options" block."""
    if not options:
        return []
    out = [" Security Options:"]
    for option in options:
        fields = dict(kv.partition("=")[::2] for kv in option.split(","))
        out.append("  " + fields.pop("name", option))
        if "profile" in fields:
            out.append(f"   Profile: {fields['profile']}")
    return out


@command(
    "[OPTIONS]",
    "Show docker disk usage",
    [
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag("verbose", "v", help="Show detailed information on space usage"),
    ],
    args=(0, 0),
)
def df(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.render import Context, format_rows
    from dockyard.cli.units import human_size

    data = cli.client.json("GET", "/system/df")
    images = data.get("Images") or []
    image_size = sum(i["Size"] for i in images)
    active_images = [i for i in images if i.get("Containers", 0) > 0]
    image_reclaim = image_size - sum(i["Size"] for i in active_images)
    containers = data.get("Containers") or []
    volumes = data.get("Volumes") or []
    cache = data.get("BuildCache") or []

    def reclaim(amount: int, total: int) -> str:
        if total <= 0:
            return human_size(amount)
        return f"{human_size(amount)} ({int(amount * 100 / total)}%)"

    class Row(Context):
        FIELDS = ("Type", "TotalCount", "Active", "Size", "Reclaimable")
        go_type = "*formatter.diskUsageImagesContext"

        def __init__(self, *values: str) -> None:
            self.values = dict(zip(self.FIELDS, values))

        def __getitem__(self, key: str) -> object:
            return self.values[key]

    vol_size = sum((v.get("UsageData") or {}).get("Size", 0) for v in volumes)
    rows = [
        Row(
            "Images",
            str(len(images)),
            str(len(active_images)),
            human_size(image_size),
            reclaim(image_reclaim, image_size),
        ),
        Row(
            "Containers",
            str(len(containers)),
            str(sum(1 for c in containers if c.get("State") == "running")),
            human_size(sum(c.get("SizeRw", 0) for c in containers)),
            human_size(sum(c.get("SizeRw", 0) for c in containers if c.get("State") != "running")),
        ),
        Row("Local Volumes", str(len(volumes)), "0", human_size(vol_size), human_size(vol_size)),
        Row("Build Cache", str(len(cache)), "0", human_size(0), human_size(0)),
    ]
    fmt = (
        opts["format"]
        or "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    )
    labels = {
        "Type": "TYPE",
        "TotalCount": "TOTAL",
        "Active": "ACTIVE",
        "Size": "SIZE",
        "Reclaimable": "RECLAIMABLE",
    }
    sys.stdout.write(format_rows(rows, fmt, labels))
    return 0


def _event_line(event: dict) -> str:  # type: ignore[type-arg]
    import time as _time

    ns = event.get("timeNano") or event.get("time", 0) * 1_000_000_000
    stamp = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.localtime(ns // 1_000_000_000))
    zone = _time.strftime("%z", _time.localtime(ns // 1_000_000_000))
    zone = "Z" if zone == "+0000" else f"{zone[:3]}:{zone[3:]}"
    stamp += f".{ns % 1_000_000_000:09d}{zone}"
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = f"{stamp} {event.get('Type')} {event.get('Action')} {actor.get('ID', '')}"
    if attrs:
        line += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")"
    return line


def _parse_time_arg(value: str) -> str:
    """The CLI turns ``10m``/RFC 3339/unix into unix seconds itself (as docker's does)."""
    import time as _time

    if not value:
        return value
    try:
        float(value)
        return value
    except ValueError:
        pass
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ns", "us", "ms", "s", "m", "h"):
        number = value[: -len(suffix)]
        if value.endswith(suffix):
            try:
                return f"{_time.time() - float(number) * units[suffix]:.9f}"
            except ValueError:
                continue
    import datetime

    try:
        return str(int(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()))
    except ValueError:
        raise CommandError(f'Error: invalid value for timestamp: "{value}"') from None


@command(
    "[OPTIONS]",
    "Get real time events from the server",
    [
        Flag("filter", "f", "list", help="Filter output based on conditions provided"),
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag("since", "", "str", default="", help="Show all events created since timestamp"),
        Flag("until", "", "str", default="", help="Stream events until this timestamp"),
    ],
    args=(0, 0),
)
def events(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import jsonfast as json

    filters: dict[str, dict[str, bool]] = {}
    for item in opts["filter"]:
        key, eq, value = item.partition("=")
        if not eq:
            raise CommandError("Error: bad format of filter (expected name=value)")
        filters.setdefault(key, {})[value] = True
    params = {
        "since": _parse_time_arg(opts["since"]) or None,
        "until": _parse_time_arg(opts["until"]) or None,
        "filters": json.dumps(filters) if filters else None,
    }
    tmpl = None
    if opts["format"]:
        from dockyard.cli import template

        tmpl = template.compile(opts["format"])
    for event in cli.client.stream_json("GET", "/events", params):
        line = tmpl.render(event) if tmpl else _event_line(event)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


@command(
    "[OPTIONS] NAME|ID [NAME|ID...]",
    "Return low-level information on Docker objects",
    [
        Flag("format", "f", "str", help="Format output using a custom template"),
        Flag("size", "s", help="Display total file sizes if the type is container"),
        Flag("type", "", "str", default="", help="Return JSON for specified type"),
    ],
    args=(1, None),
)
def inspect(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.render import inspect_output
    from dockyard.client import quote_name
    from dockyard.client.errors import APIError

    kinds = {
        "container": "/containers/{}/json",
        "image": "/images/{}/json",
        "network": "/networks/{}",
        "volume": "/volumes/{}",
    }
    if opts["type"] and opts["type"] not in kinds:
        raise CommandError(f'"{opts["type"]}" is not a valid value for --type')
    order = [opts["type"]] if opts["type"] else list(kinds)
    found, code = [], 0
    for name in args:
        for kind in order:
            try:
                found.append(cli.client.json("GET", kinds[kind].format(quote_name(name))))
                break
            except APIError as exc:
                if not exc.not_found:
                    raise
        else:
            sys.stderr.write(f"Error: No such object: {name}\n")
            code = 1
    sys.stdout.write(inspect_output(found, opts["format"]))
    return code
