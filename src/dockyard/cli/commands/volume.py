"""``docker volume`` commands: create, ls, inspect, rm, prune.

Also the small parsers the ``network`` commands share (docker/cli ``opts``: ``--label``,
``-o k=v`` maps, string-slice flags, natural sort order), kept pure for the unit tests.
"""

from __future__ import annotations

import sys

from dockyard.cli.command import CommandError, command, filters_param
from dockyard.cli.flags import Flag
from dockyard.cli.render import Context, format_rows

# -- pure helpers (docker/cli opts) ---------------------------------------------------------


def natural_key(text: str) -> list[tuple[int, int, int]]:
    """Sort key for ``sortorder.NaturalLess`` (fvbommel/sortorder, used by ``ls``): digit runs
    compare as numbers and sort before other bytes; equal numbers with fewer leading zeros
    first; otherwise bytewise."""
    data = text.encode("utf-8")
    key: list[tuple[int, int, int]] = []
    i = 0
    while i < len(data):
        if 48 <= data[i] <= 57:
            zeros = 0
            while i < len(data) and data[i] == 48:
                zeros += 1
                i += 1
            start = i
            while i < len(data) and 48 <= data[i] <= 57:
                i += 1
            digits = data[start:i]
            key.append((0, int(digits) if digits else 0, zeros))
        else:
            key.append((1, data[i], 0))
            i += 1
    return key


def check_labels(values: list[str]) -> str | None:
    """``opts.ValidateLabel`` over ``--label`` values: the first bad value's flag error, or None."""
    for value in values:
        if not value.partition("=")[0].strip():
            return f'invalid argument "{value}" for "--label" flag: invalid label \'{value}\': empty name'
    return None


def kv_map(values: list[str]) -> dict[str, str]:
    """``opts.ConvertKVStringsToMap`` / ``MapOpts``: ``k=v`` (split at the first ``=``), a bare
    ``k`` maps to ``""``; later values win.  Sorted, as Go's encoder writes maps."""
    out: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return dict(sorted(out.items()))


def split_slice(values: list[str]) -> list[str]:
    """pflag ``StringSlice``: each occurrence is one CSV record (``--alias a,b``)."""
    out: list[str] = []
    for value in values:
        if '"' in value:
            import csv

            for record in csv.reader([value]):
                out.extend(record)
        elif value:
            out.extend(value.split(","))
    return out


def flag_error(name: str, message: str) -> int:
    """A flag value docker's pflag rejects while parsing: its text, exit 125."""
    sys.stderr.write(f"{message}\nSee 'dockyard {name} --help'.\n")
    return 125


def api_version() -> str:
    from dockyard.client import API_PREFIX

    return API_PREFIX.removeprefix("/v")


def version_at_least(have: str, want: str) -> bool:
    return tuple(int(p) for p in have.split(".")) >= tuple(int(p) for p in want.split("."))


def confirm(warning: str) -> bool:
    """docker's ``PromptForConfirmation``: the question on stdout, ``y``/``yes`` accepts."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def inspect_each(
    cli,
    path: str,
    names: list[str],
    fmt: str | None,  # type: ignore[no-untyped-def]
    go_type: str = "",
) -> int:
    """docker's ``inspect.Inspect``: every object found is printed, every failure is reported
    on stderr as the daemon said it, and any failure makes the exit status 1.  ``go_type``
    names the typed struct docker executes templates on first (its field errors name it)."""
    from dockyard.cli.render import inspect_output
    from dockyard.cli.template import TemplateError
    from dockyard.client import quote
    from dockyard.client.errors import APIError

    found, errors = [], []
    for name in names:
        try:
            found.append(cli.client.json("GET", path.format(quote(name))))
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}\n")
    if fmt == "json":
        # docker 28 marshals the whole list, compact (not one indented object per line)
        from dockyard.cli._gofmt import go_json

        sys.stdout.write(go_json(found, escape_html=True) + "\n")
    elif fmt and not found:
        sys.stdout.write("\n")
    else:
        try:
            sys.stdout.write(inspect_output(found, fmt))
        except TemplateError as exc:
            message = str(exc)
            if go_type:
                message = _typed_field_error(message, go_type)
            sys.stdout.write("\n")
            errors.insert(0, f"template parsing error: {message}\n")
    sys.stderr.write("".join(errors))
    return 1 if errors else 0


def _typed_field_error(message: str, go_type: str) -> str:
    """A missing top-level field as Go reports it on a struct rather than on a map."""
    head, sep, tail = message.partition(': map has no entry for key "')
    field = tail[:-1] if tail.endswith('"') else ""
    if sep and field and head.endswith(f"at <.{field}>"):
        return f"{head}: can't evaluate field {field} in type {go_type}"
    return message


# -- commands -------------------------------------------------------------------------------


class VolumeRow(Context):
    FIELDS = (
        "Availability",
        "Driver",
        "Group",
        "Labels",
        "Links",
        "Mountpoint",
        "Name",
        "Scope",
        "Size",
        "Status",
    )
    go_type = "*formatter.volumeContext"

    def __init__(self, v: dict) -> None:  # type: ignore[type-arg]
        self.v = v

    def Name(self) -> str:
        return self.v.get("Name", "")

    def Driver(self) -> str:
        return self.v.get("Driver", "")

    def Scope(self) -> str:
        return self.v.get("Scope", "")

    def Mountpoint(self) -> str:
        return self.v.get("Mountpoint", "")

    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted((self.v.get("Labels") or {}).items()))

    def Links(self) -> str:
        usage = self.v.get("UsageData")
        return "N/A" if usage is None else str(usage.get("RefCount", 0))

    def Size(self) -> str:
        from dockyard.cli.units import human_size

        usage = self.v.get("UsageData")
        return "N/A" if usage is None else human_size(usage.get("Size", 0))

    def Group(self) -> str:
        cluster = self.v.get("ClusterVolume")
        return "N/A" if cluster is None else ((cluster.get("Spec") or {}).get("Group") or "")

    def Availability(self) -> str:
        cluster = self.v.get("ClusterVolume")
        return "N/A" if cluster is None else ((cluster.get("Spec") or {}).get("Availability") or "")

    def Status(self) -> str:
        cluster = self.v.get("ClusterVolume")
        if cluster is None:
            return "N/A"
        if not (cluster.get("Info") or {}).get("VolumeID"):
            return "pending creation"
        nodes = len(cluster.get("PublishStatus") or [])
        return (
            "created"
            if nodes == 0
            else "in use (1 node)"
            if nodes == 1
            else f"in use ({nodes} nodes)"
        )


VOLUME_LABELS = {
    "Name": "VOLUME NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Group": "GROUP",
    "Availability": "AVAILABILITY",
    "Status": "STATUS",
    "ID": "ID",
}


@command(
    "[OPTIONS] [VOLUME]",
    "Create a volume",
    [
        Flag("driver", "d", "str", default="local", help="Specify volume driver name"),
        Flag("label", "", "list", help="Set metadata for a volume"),
        Flag("name", "", "str", default="", help="Specify volume name"),
        Flag("opt", "o", "list", help="Set driver specific options"),
    ],
    args=(0, 1),
)
def create(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    bad = check_labels(opts["label"])
    if bad:
        return flag_error("volume create", bad)
    name = opts["name"]
    if args:
        if name:
            raise CommandError(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
            )
        name = args[0]
    body: dict[str, object] = {"Driver": opts["driver"]}
    driver_opts = kv_map(opts["opt"])
    if driver_opts:
        body["DriverOpts"] = driver_opts
    labels = kv_map(opts["label"])
    if labels:
        body["Labels"] = labels
    if name:
        body["Name"] = name
    volume = cli.client.json("POST", "/volumes/create", body=body)
    sys.stdout.write(f"{volume['Name']}\n")
    return 0


@command(
    "[OPTIONS]",
    "List volumes",
    [
        Flag("filter", "f", "list", help='Provide filter values (e.g. "dangling=true")'),
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag("quiet", "q", help="Only display volume names"),
    ],
    args=(0, 0),
)
def ls(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    result = cli.client.json("GET", "/volumes", {"filters": filters_param(opts["filter"])}) or {}
    volumes = sorted(result.get("Volumes") or [], key=lambda v: natural_key(v.get("Name", "")))
    fmt = opts["format"] or "table"
    if fmt == "table":
        fmt = "{{.Name}}" if opts["quiet"] else "table {{.Driver}}\t{{.Name}}"
    elif fmt == "raw":
        fmt = "name: {{.Name}}" if opts["quiet"] else "name: {{.Name}}\ndriver: {{.Driver}}\n"
    sys.stdout.write(format_rows([VolumeRow(v) for v in volumes], fmt, VOLUME_LABELS))
    for warning in result.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    return 0


@command(
    "[OPTIONS] VOLUME [VOLUME...]",
    "Display detailed information on one or more volumes",
    [Flag("format", "f", "str", help="Format output using a custom template")],
    args=(1, None),
)
def inspect(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    return inspect_each(cli, "/volumes/{}", args, opts["format"], "volume.Volume")


@command(
    "[OPTIONS] VOLUME [VOLUME...]",
    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
    [
        Flag("force", "f", help="Force the removal of one or more volumes"),
    ],
    args=(1, None),
)
def rm(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote
    from dockyard.client.errors import APIError

    errors = []
    params = {"force": "1" if opts["force"] else None}
    for name in args:
        try:
            cli.client.raw("DELETE", f"/volumes/{quote(name)}", params).close()
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        sys.stdout.write(f"{name}\n")
    if errors:
        raise CommandError("\n".join(errors))
    return 0


@command(
    "[OPTIONS]",
    "Remove unused local volumes",
    [
        Flag("all", "a", help="Remove all unused volumes, not just anonymous ones"),
        Flag("filter", "", "list", help='Provide filter values (e.g. "label=<label>")'),
        Flag("force", "f", help="Do not prompt for confirmation"),
    ],
    args=(0, 0),
)
def prune(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.units import human_size

    version = api_version()
    filters = list(opts["filter"])
    if version_at_least(version, "1.42"):
        warning = (
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        )
        if opts["all"]:
            if any(f.partition("=")[0] == "all" for f in filters):
                raise CommandError(
                    "conflicting options: cannot specify both --all and --filter all=1"
                )
            filters.append("all=true")
            warning = (
                "WARNING! This will remove all local volumes not used by at least one container."
            )
    else:
        # The docker CLI refuses flags newer than the daemon's API (the flag's "version"
        # annotation); before 1.42 a prune removes named volumes too, so says "all".
        if opts["all"]:
            raise CommandError(
                f'"--all" requires API version 1.42, but the Docker daemon API version is {version}'
            )
        warning = "WARNING! This will remove all local volumes not used by at least one container."
    if not opts["force"] and not confirm(warning):
        return 0
    result = cli.client.json("POST", "/volumes/prune", {"filters": filters_param(filters)}) or {}
    deleted = result.get("VolumesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Volumes:\n" + "".join(d + "\n" for d in deleted) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed', 0))}\n")
    return 0
