"""``docker image`` commands: ls, inspect, history, tag, rm, import, save, load, prune."""

from __future__ import annotations

import sys

from dockyard.cli.command import CommandError, command, filters_param, save_stream
from dockyard.cli.flags import Flag
from dockyard.cli.render import Context, format_rows


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _created_at(unix: int) -> str:
    import time

    t = time.localtime(unix)
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", t)


class ImageRow(Context):
    FIELDS = (
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    )
    go_type = "*formatter.imageContext"

    def __init__(self, image: dict, repo: str, tag: str, digest: str, trunc: bool) -> None:  # type: ignore[type-arg]
        self.image, self.repo, self.tag, self.digest, self.trunc = image, repo, tag, digest, trunc

    def ID(self) -> str:
        return _short(self.image["Id"]) if self.trunc else self.image["Id"]

    def Repository(self) -> str:
        return self.repo

    def Tag(self) -> str:
        return self.tag

    def Digest(self) -> str:
        return self.digest

    def CreatedSince(self) -> str:
        from dockyard.cli.units import time_ago

        return time_ago(self.image["Created"])

    def CreatedAt(self) -> str:
        return _created_at(self.image["Created"])

    def Size(self) -> str:
        from dockyard.cli.units import human_size

        return human_size(self.image["Size"])

    def VirtualSize(self) -> str:
        return self.Size()

    def SharedSize(self) -> str:
        from dockyard.cli.units import human_size

        shared = self.image.get("SharedSize", -1)
        return "N/A" if shared == -1 else human_size(shared)

    def UniqueSize(self) -> str:
        from dockyard.cli.units import human_size

        shared = self.image.get("SharedSize", -1)
        return "N/A" if shared == -1 else human_size(self.image["Size"] - shared)

    def Containers(self) -> str:
        count = self.image.get("Containers", -1)
        return "N/A" if count == -1 else str(count)


def _image_rows(images: list[dict], trunc: bool, digests: bool) -> list[ImageRow]:  # type: ignore[type-arg]
    """One row per repository:tag, as docker/cli's imageFormat does."""
    rows = []
    for image in images:
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        repo_digests = [d for d in image.get("RepoDigests") or [] if d != "<none>@<none>"]
        by_repo: dict[str, str] = {}
        for d in repo_digests:
            repo, _, digest = d.rpartition("@")
            by_repo[repo] = digest
        if not tags:
            if repo_digests:
                for repo, digest in by_repo.items():
                    rows.append(ImageRow(image, repo, "<none>", digest, trunc))
            else:
                rows.append(ImageRow(image, "<none>", "<none>", "<none>", trunc))
            continue
        for name in tags:
            repo, _, tag = name.rpartition(":")
            rows.append(ImageRow(image, repo, tag, by_repo.get(repo, "<none>"), trunc))
    return rows


IMAGE_LABELS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
    "Containers": "CONTAINERS",
}


@command(
    "[OPTIONS] [REPOSITORY[:TAG]]",
    "List images",
    [
        Flag("all", "a", help="Show all images (default hides intermediate images)"),
        Flag("digests", help="Show digests"),
        Flag("filter", "f", "list", help="Filter output based on conditions provided"),
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag("no-trunc", help="Don't truncate output"),
        Flag("quiet", "q", help="Only show image IDs"),
    ],
    args=(0, 1),
)
def ls(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    filters = list(opts["filter"])
    if args:
        filters.append(f"reference={args[0]}")
    params = {"all": "1" if opts["all"] else None, "filters": filters_param(filters)}
    images = cli.client.json("GET", "/images/json", params)
    rows = _image_rows(images, not opts["no_trunc"], opts["digests"])
    if opts["quiet"]:
        fmt = "{{.ID}}"
    elif opts["format"]:
        fmt = opts["format"]
    elif opts["digests"]:
        fmt = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    else:
        fmt = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    sys.stdout.write(format_rows(rows, fmt, IMAGE_LABELS))
    return 0


@command(
    "[OPTIONS] IMAGE [IMAGE...]",
    "Display detailed information on one or more images",
    [Flag("format", "f", "str", help="Format output using a custom template")],
    args=(1, None),
)
def inspect(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.render import inspect_output
    from dockyard.client import quote_name
    from dockyard.client.errors import APIError

    found, code = [], 0
    for name in args:
        try:
            found.append(cli.client.json("GET", f"/images/{quote_name(name)}/json"))
        except APIError as exc:
            if not exc.not_found:
                raise
            sys.stderr.write(f"Error: No such image: {name}\n")
            code = 1
    sys.stdout.write(inspect_output(found, opts["format"]))
    return code


class HistoryRow(Context):
    FIELDS = ("ID", "CreatedSince", "CreatedAt", "CreatedBy", "Size", "Comment")
    go_type = "*formatter.historyContext"

    def __init__(self, entry: dict, trunc: bool, human: bool) -> None:  # type: ignore[type-arg]
        self.e, self.trunc, self.human = entry, trunc, human

    def ID(self) -> str:
        i = self.e["Id"]
        return _short(i) if self.trunc and i != "<missing>" else i

    def CreatedSince(self) -> str:
        from dockyard.cli.units import time_ago

        return time_ago(self.e["Created"]) if self.human else _created_at(self.e["Created"])

    def CreatedAt(self) -> str:
        return _created_at(self.e["Created"])

    def CreatedBy(self) -> str:
        text = self.e.get("CreatedBy", "").replace("\t", " ")
        if self.trunc and len(text) > 45:
            return text[:44] + "…"
        return text

    def Size(self) -> str:
        from dockyard.cli.units import human_size

        return human_size(self.e["Size"]) if self.human else str(self.e["Size"])

    def Comment(self) -> str:
        return self.e.get("Comment", "")


@command(
    "[OPTIONS] IMAGE",
    "Show the history of an image",
    [
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag(
            "human",
            "H",
            "bool",
            default=True,
            help="Print sizes and dates in human readable format",
        ),
        Flag("no-trunc", help="Don't truncate output"),
        Flag("quiet", "q", help="Only show image IDs"),
    ],
    args=(1, 1),
)
def history(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote_name

    entries = cli.client.json("GET", f"/images/{quote_name(args[0])}/history")
    rows = [HistoryRow(e, not opts["no_trunc"], opts["human"]) for e in entries]
    if opts["quiet"]:
        fmt = "{{.ID}}"
    else:
        fmt = (
            opts["format"]
            or "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        )
    labels = {
        "ID": "IMAGE",
        "CreatedSince": "CREATED",
        "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY",
        "Size": "SIZE",
        "Comment": "COMMENT",
    }
    sys.stdout.write(format_rows(rows, fmt, labels))
    return 0


def _split_repo_tag(name: str) -> tuple[str, str]:
    slash = name.rfind("/")
    colon = name.rfind(":")
    if "@" in name or colon <= slash:
        return name, ""
    return name[:colon], name[colon + 1 :]


@command(
    "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    args=(2, 2),
)
def tag(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote_name

    repo, tag_ = _split_repo_tag(args[1])
    cli.client.json(
        "POST", f"/images/{quote_name(args[0])}/tag", {"repo": repo, "tag": tag_ or None}
    )
    return 0


@command(
    "[OPTIONS] IMAGE [IMAGE...]",
    "Remove one or more images",
    [
        Flag("force", "f", help="Force removal of the image"),
        Flag("no-prune", help="Do not delete untagged parents"),
    ],
    args=(1, None),
)
def rm(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote_name
    from dockyard.client.errors import APIError

    code = 0
    params = {"force": "1" if opts["force"] else None, "noprune": "1" if opts["no_prune"] else None}
    for name in args:
        try:
            result = cli.client.json("DELETE", f"/images/{quote_name(name)}", params)
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            code = 1
            continue
        for item in result or []:
            for key in ("Untagged", "Deleted"):
                if key in item:
                    sys.stdout.write(f"{key}: {item[key]}\n")
    return code


@command(
    "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    "Import the contents from a tarball to create a filesystem image",
    [
        Flag("change", "c", "list", help="Apply Dockerfile instruction to the created image"),
        Flag("message", "m", "str", default="", help="Set commit message for imported image"),
        Flag(
            "platform",
            "",
            "str",
            default="",
            help="Set platform if server is multi-platform capable",
        ),
    ],
    args=(1, 2),
)
def import_(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    source = args[0]
    params: list[tuple[str, str]] = [("fromSrc", "-")]
    params += [("changes", c) for c in opts["change"]]
    if opts["message"]:
        params.append(("message", opts["message"]))
    if len(args) == 2:
        params.append(("repo", args[1]))
    if opts["platform"]:
        params.append(("platform", opts["platform"]))
    if source == "-":
        body = sys.stdin.buffer
    elif "://" in source:
        raise CommandError(
            "Error: importing from a URL is not supported by dockyard; download it and pass the file"
        )
    else:
        try:
            body = open(source, "rb")
        except OSError as exc:
            raise CommandError(
                f"open {source}: {exc.strerror.lower() if exc.strerror else exc}"
            ) from None
    headers = {"Content-Type": "application/x-tar"}
    for line in cli.client.stream_json("POST", "/images/create", params, body, headers):
        if "error" in line:
            raise CommandError(line["error"])
        sys.stdout.write(f"{line.get('status', '')}\n")
    return 0


@command(
    "[OPTIONS] IMAGE [IMAGE...]",
    "Save one or more images to a tar archive (streamed to STDOUT by default)",
    [Flag("output", "o", "str", default="", help="Write to a file, instead of STDOUT")],
    args=(1, None),
)
def save(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    if not opts["output"] and sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    save_stream(cli.client.raw("GET", "/images/get", [("names", n) for n in args]), opts["output"])
    return 0


@command(
    "[OPTIONS]",
    "Load an image from a tar archive or STDIN",
    [
        Flag("input", "i", "str", default="", help="Read from tar archive file, instead of STDIN"),
        Flag("quiet", "q", help="Suppress the load output"),
    ],
    args=(0, 0),
)
def load(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    if opts["input"]:
        try:
            body = open(opts["input"], "rb")
        except OSError as exc:
            raise CommandError(
                f"open {opts['input']}: {(exc.strerror or str(exc)).lower()}"
            ) from None
    else:
        if sys.stdin.isatty():
            raise CommandError("requested load from stdin, but stdin is empty")
        body = sys.stdin.buffer
    params = {"quiet": "1" if opts["quiet"] or not sys.stdout.isatty() else None}
    headers = {"Content-Type": "application/x-tar"}
    for line in cli.client.stream_json("POST", "/images/load", params, body, headers):
        if "error" in line:
            raise CommandError(line["error"])
        if "stream" in line:
            sys.stdout.write(line["stream"])
    return 0


@command(
    "[OPTIONS]",
    "Remove unused images",
    [
        Flag("all", "a", help="Remove all unused images, not just dangling ones"),
        Flag("filter", "", "list", help='Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", help="Do not prompt for confirmation"),
    ],
    args=(0, 0),
)
def prune(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.units import human_size

    if not opts["force"]:
        warning = (
            "WARNING! This will remove all images without at least one container associated to them."
            if opts["all"]
            else "WARNING! This will remove all dangling images."
        )
        sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    filters = list(opts["filter"]) + [f"dangling={'false' if opts['all'] else 'true'}"]
    result = cli.client.json("POST", "/images/prune", {"filters": filters_param(filters)})
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Images:\n")
        for item in deleted:
            for key in ("Untagged", "Deleted"):
                if key in item:
                    sys.stdout.write(f"{key.lower()}: {item[key]}\n")
        sys.stdout.write("\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed', 0))}\n")
    return 0
