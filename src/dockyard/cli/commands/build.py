"""``dockyard build`` (CLI world): the context as a tar, ``.dockerignore`` applied here as
the docker CLI does, sent to ``POST /build``; the legacy builder's stream printed.

The Dockerfile and ``.dockerignore`` always travel (the daemon reads them even when they
are ignored, then drops them); a Dockerfile outside the context travels under a private
name, as docker's CLI sends it.  A failing RUN makes the command exit with that RUN's code.
``--secret`` contents travel in dockyardd's own ``X-Dockyard-Build-Secrets`` header (the
legacy API has no BuildKit session), for ``RUN --mount=type=secret``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tarfile
import tempfile
from typing import IO

from dockyard.cli.command import CommandError, command
from dockyard.cli.commands.create_opts import UsageError, _ram, create_flags, parse_ulimits
from dockyard.cli.flags import Flag

__all__ = ["build"]


def _ignore_patterns(context: str, dockerfile_rel: str | None) -> list[str]:
    from dockyard.dockerignore import read_patterns

    candidates = [".dockerignore"]
    if dockerfile_rel:
        candidates.insert(0, dockerfile_rel + ".dockerignore")
    for name in candidates:
        path = os.path.join(context, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                return read_patterns(f.read())
    return []


def _add(tf: tarfile.TarFile, path: str, arcname: str) -> None:
    info = tf.gettarinfo(path, arcname=arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isreg():
        with open(path, "rb") as f:
            tf.addfile(info, f)
    else:
        tf.addfile(info)


def context_tar(
    context: str, dockerfile_rel: str | None, extra: list[tuple[str, bytes]]
) -> IO[bytes]:
    """The context directory as an uncompressed tar in a temp file, ignored paths left out."""
    from dockyard.dockerignore import Matcher

    matcher = Matcher(_ignore_patterns(context, dockerfile_rel))
    always = {".dockerignore", dockerfile_rel or "Dockerfile"}
    if dockerfile_rel:
        always.add(dockerfile_rel + ".dockerignore")
    out = tempfile.TemporaryFile()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for top, dirs, files in os.walk(context):
            dirs.sort()
            rel_top = os.path.relpath(top, context)
            kept = []
            for name in dirs:
                rel = name if rel_top == "." else f"{rel_top}/{name}"
                full = os.path.join(top, name)
                ignored = matcher.ignored(rel)
                if ignored and not matcher.may_include_below(rel):
                    continue
                if not ignored:
                    _add(tf, full, rel)
                if os.path.islink(full):
                    continue
                kept.append(name)
            dirs[:] = kept
            for name in sorted(files):
                rel = name if rel_top == "." else f"{rel_top}/{name}"
                if matcher.ignored(rel) and rel not in always:
                    continue
                _add(tf, os.path.join(top, name), rel)
        for name, data in extra:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            import io

            tf.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def _stdin_context() -> tuple[IO[bytes], str]:
    data = sys.stdin.buffer.read()
    out = tempfile.TemporaryFile()
    if len(data) >= 512 and _is_tar_or_compressed(data):
        out.write(data)
        out.seek(0)
        return out, ""
    # A bare Dockerfile on stdin: a context holding only it (docker build - < Dockerfile).
    import io

    with tarfile.open(fileobj=out, mode="w") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        info.mode = 0o600
        tf.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out, "Dockerfile"


def _is_tar_or_compressed(data: bytes) -> bool:
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00":
        return True
    try:
        tarfile.TarInfo.frombuf(data[:512], "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    return True


def _size(n: int) -> str:
    from dockyard.cli.units import human_size

    return human_size(n, 4)


def _build_args(items: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if eq:
            out[key] = value
        else:
            out[key] = os.environ.get(key)  # docker: a bare name takes the environment's value
    return out


SECRETS_HEADER = "X-Dockyard-Build-Secrets"  # dockyardd's own: see api/routes/build.py
SECRET_MAX_BYTES = 500 * 1024  # BuildKit's limit for one secret, which dockyardd keeps


def _secret(spec: str) -> tuple[str, bytes]:
    """One ``--secret`` value as buildx reads it: ``id=X,src=FILE`` (also ``source=``),
    ``id=X,env=VAR``, ``type=file|env``; ``id=X`` alone takes the environment variable X,
    else the file X."""
    import csv

    fields: dict[str, str] = {}
    for item in next(csv.reader([spec]), []):
        key, eq, value = item.partition("=")
        if not eq:
            raise CommandError(f"invalid secret {spec!r}: field '{item}' must be a key=value pair")
        key = key.strip().lower()
        if key not in ("type", "id", "src", "source", "env"):
            raise CommandError(f"invalid secret {spec!r}: unexpected key '{key}'")
        fields["src" if key == "source" else key] = value
    kind = fields.get("type", "")
    if kind not in ("", "file", "env"):
        raise CommandError(f"invalid secret {spec!r}: unsupported secret type {kind!r}")
    src, env = fields.get("src", ""), fields.get("env", "")
    if kind == "env" and not env:
        env, src = src, ""
    ident = fields.get("id", "") or os.path.basename(src) or env
    if not ident:
        raise CommandError(f"invalid secret {spec!r}: it needs an id")
    if not src and not env:
        if kind != "file" and ident in os.environ:
            env = ident
        else:
            src = ident
    if env:
        if env not in os.environ:
            raise CommandError(
                f"failed to read secret {ident}: environment variable {env} is not set"
            )
        value = os.environ[env].encode()
    else:
        try:
            with open(src, "rb") as f:
                value = f.read(SECRET_MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(
                f"failed to read secret {ident} from {src}: {exc.strerror or exc}"
            ) from None
    if len(value) > SECRET_MAX_BYTES:
        raise CommandError(
            f"secret {ident} is over {SECRET_MAX_BYTES} bytes (500 KiB), the largest a build takes"
        )
    return ident, value


def _secrets_header(specs: list[str]) -> str:
    """``X-Dockyard-Build-Secrets``: base64 of ``{"id": base64(content)}``, or ""."""
    import base64

    table = {}
    for spec in specs:
        ident, value = _secret(spec)
        table[ident] = base64.b64encode(value).decode("ascii")
    if not table:
        return ""
    return base64.b64encode(json.dumps(table).encode()).decode("ascii")


def _registry_config(cli) -> str:  # type: ignore[no-untyped-def]
    """``X-Registry-Config`` as the docker CLI sends it (``GetAllCredentials``): every
    stored registry's credentials by key, for the pulls of FROM images not present."""
    from dockyard.cli import credentials
    from dockyard.cli.configfile import AUTH_FIELDS, go_json

    cfg = cli.config_file
    out = {}
    for key in sorted(set(cfg.auths) | set(cfg.cred_helpers)):
        try:
            auth = credentials.get(cfg, key)
        except credentials.CredentialsError as exc:
            auth = exc.partial
        fields = {f: auth[f] for f in AUTH_FIELDS if auth.get(f)}
        if fields:
            out[key] = fields
    import base64

    return base64.urlsafe_b64encode(go_json(out).encode()).decode()


def _status_line(message: dict) -> str:  # type: ignore[type-arg]
    """A pull's message as docker's jsonmessage prints it off a terminal: ``id: status``,
    and nothing for the ones that carry byte counts (bars are for terminals)."""
    detail = message.get("progressDetail") or {}
    if detail.get("current") or detail.get("total"):
        return ""
    ident = message.get("id")
    return f"{ident}: {message['status']}\n" if ident else f"{message['status']}\n"


def _view(progress: str, quiet: bool):  # type: ignore[no-untyped-def]
    """The live step display for ``--progress=tty`` (``auto`` on a terminal), else None:
    plain lines, as the legacy builder prints them."""
    if quiet or progress == "plain" or (progress == "auto" and not sys.stdout.isatty()):
        return None
    from dockyard.cli.buildview import StepView  # lazily: start-up stays cheap

    return StepView(sys.stdout)


def _resources(opts: dict[str, object]) -> list[tuple[str, object]]:
    """The RUN steps' limits, as the docker CLI sends them (only those set)."""
    swap = str(opts["memory_swap"])
    try:
        params: list[tuple[str, object]] = [
            ("shmsize", _ram(str(opts["shm_size"]))),
            ("memory", _ram(str(opts["memory"]))),
            ("memswap", -1 if swap == "-1" else _ram(swap)),
            ("cpushares", opts["cpu_shares"]),
            ("cpusetcpus", opts["cpuset_cpus"]),
            ("cpuperiod", opts["cpu_period"]),
            ("cpuquota", opts["cpu_quota"]),
            ("cgroupparent", opts["cgroup_parent"]),
        ]
        ulimits = parse_ulimits(list(opts["ulimit"]))  # type: ignore[call-overload]
    except UsageError as exc:
        raise CommandError(str(exc)) from None
    out = [(k, str(v)) for k, v in params if v]
    if ulimits:
        out.append(("ulimits", json.dumps(ulimits)))
    return out


@command(
    "[OPTIONS] PATH | URL | -",
    "Build an image from a Dockerfile",
    [
        Flag("tag", "t", "list", help="Name and optionally a tag in the 'name:tag' format"),
        Flag(
            "file",
            "f",
            "str",
            default="",
            help="Name of the Dockerfile (Default is 'PATH/Dockerfile')",
        ),
        Flag("build-arg", "", "list", help="Set build-time variables"),
        Flag("target", "", "str", default="", help="Set the target build stage to build"),
        Flag("no-cache", "", help="Do not use cache when building the image"),
        Flag("no-cache-filter", "", "list", help="Do not cache specified stages"),
        Flag(
            "explain-cache",
            "",
            help="Say for each step whether it used the cache, and why it did not",
        ),
        Flag("pull", "", help="Always attempt to pull a newer version of the image"),
        Flag("label", "", "list", help="Set metadata for an image"),
        Flag("quiet", "q", help="Suppress the build output and print image ID on success"),
        Flag("iidfile", "", "str", default="", help="Write the image ID to the file"),
        Flag(
            "network",
            "",
            "str",
            default="default",
            help="Set the networking mode for the RUN instructions during build",
        ),
        Flag("add-host", "", "list", help="Add a custom host-to-IP mapping (host:ip)"),
        *create_flags("shm-size", "memory", "memory-swap", "cpu-shares", "cpuset-cpus"),
        Flag("cpu-period", "", "int", default=0, help="Limit the CPU CFS period"),
        Flag("cpu-quota", "", "int", default=0, help="Limit the CPU CFS quota"),
        *create_flags("ulimit", "cgroup-parent"),
        Flag("cache-from", "", "list", help="Images to consider as cache sources"),
        Flag(
            "rm", "", default=True, help="Remove intermediate containers after a successful build"
        ),
        Flag("force-rm", "", help="Always remove intermediate containers"),
        Flag(
            "platform",
            "",
            "str",
            default="",
            help="Set platform if server is multi-platform capable",
        ),
        Flag(
            "progress",
            "",
            "str",
            default="auto",
            help="Set type of progress output (auto, plain, tty, quiet); auto is tty on a terminal",
        ),
        Flag(
            "secret",
            "",
            "list",
            help="Secret to expose to the build (id=ID,src=FILE or id=ID,env=VAR)",
        ),
    ],
    args=(1, 1),
)
def build(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    secrets_header = _secrets_header(opts["secret"])
    resources = _resources(opts)
    if opts["progress"] not in ("auto", "plain", "quiet", "tty"):
        raise CommandError(
            f'invalid --progress value "{opts["progress"]}": use auto, plain, tty or quiet'
        )
    quiet = opts["quiet"] or opts["progress"] == "quiet"
    path = args[0]
    dockerfile = opts["file"]
    extra: list[tuple[str, bytes]] = []
    if path == "-":
        if dockerfile == "-":
            raise CommandError(
                "invalid argument: can't use stdin for both build context and dockerfile"
            )
        body, found = _stdin_context()
        dockerfile = dockerfile or found
    elif "://" in path or path.startswith("git@"):
        raise CommandError(
            f"unable to prepare context: {path}: remote contexts are not supported; "
            "clone or download it and build the directory"
        )
    else:
        if not os.path.isdir(path):
            raise CommandError(f'unable to prepare context: path "{path}" not found')
        rel = None
        if dockerfile == "-":
            rel = ".dockerfile." + secrets.token_hex(10)
            extra.append((rel, sys.stdin.buffer.read()))
        elif dockerfile:
            full = os.path.abspath(dockerfile)
            inside = os.path.relpath(full, os.path.abspath(path))
            if inside.startswith(".."):
                if not os.path.isfile(full):
                    raise CommandError(
                        f"unable to prepare context: the Dockerfile ({dockerfile}) cannot be found"
                    )
                rel = ".dockerfile." + secrets.token_hex(10)
                with open(full, "rb") as f:
                    extra.append((rel, f.read()))
            else:
                rel = inside
        else:
            rel = "Dockerfile"
        dockerfile = rel
        body = context_tar(path, rel, extra)
    size = os.fstat(body.fileno()).st_size
    if not quiet:
        sys.stdout.write(f"Sending build context to Docker daemon  {_size(size)}\n")
        sys.stdout.flush()
    params: list[tuple[str, object]] = [("t", t) for t in opts["tag"]]
    params += [
        ("dockerfile", dockerfile or "Dockerfile"),
        ("buildargs", json.dumps(_build_args(opts["build_arg"]))),
        ("labels", json.dumps(dict(item.partition("=")[::2] for item in opts["label"]))),
        ("target", opts["target"] or None),
        ("nocache", "1" if opts["no_cache"] else None),
        ("nocachefilter", ",".join(opts["no_cache_filter"]) or None),
        ("explaincache", "1" if opts["explain_cache"] else None),
        ("pull", "1" if opts["pull"] else None),
        ("q", "1" if quiet else None),
        ("rm", "1" if opts["rm"] else "0"),
        ("forcerm", "1" if opts["force_rm"] else None),
        ("networkmode", opts["network"]),
        ("extrahosts", ",".join(opts["add_host"]) or None),
        ("cachefrom", json.dumps(opts["cache_from"]) if opts["cache_from"] else None),
        ("platform", opts["platform"] or None),
        *resources,
    ]
    params = [(k, v) for k, v in params if v is not None]
    headers = {"Content-Type": "application/x-tar", "X-Registry-Config": _registry_config(cli)}
    if secrets_header:
        headers[SECRETS_HEADER] = secrets_header
    view = _view(opts["progress"], quiet)
    image_id = ""
    with body:
        try:
            for message in cli.client.stream_json("POST", "/build", params, body, headers):
                if "errorDetail" in message or "error" in message:
                    detail = message.get("errorDetail") or {}
                    if view is not None:
                        view.fail()
                        view.close()
                        view = None
                    sys.stdout.flush()
                    sys.stderr.write((message.get("error") or detail.get("message", "")) + "\n")
                    return int(detail.get("code") or 1)
                if "aux" in message and isinstance(message["aux"], dict):
                    image_id = message["aux"].get("ID", image_id)
                if "stream" in message:
                    if view is not None:
                        view.feed(message["stream"])
                    else:
                        sys.stdout.write(message["stream"])
                        sys.stdout.flush()
                elif "status" in message:  # a pull's progress (FROM an image not here)
                    if view is not None:
                        view.status(message)
                    else:
                        sys.stdout.write(_status_line(message))
                        sys.stdout.flush()
        finally:
            if view is not None:
                view.close()
    if opts["iidfile"] and image_id:
        with open(opts["iidfile"], "w", encoding="ascii") as f:
            f.write(image_id)
    return 0


@command(
    "[OPTIONS]",
    "Remove build cache",
    [
        Flag("all", "a", help="Remove all unused build cache, not just dangling ones"),
        Flag("filter", "", "list", help="Provide filter values (e.g. 'until=24h')"),
        Flag("force", "f", help="Do not prompt for confirmation"),
        Flag("keep-storage", "", "str", default="", help="Amount of disk space to keep for cache"),
    ],
    args=(0, 0),
)
def prune(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli.command import filters_param
    from dockyard.cli.units import ram_in_bytes

    if not opts["force"]:
        sys.stdout.write(
            "WARNING! This will remove all dangling build cache. Are you sure you want to "
            "continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    params: list[tuple[str, object]] = []
    if opts["all"]:
        params.append(("all", "1"))
    filters = filters_param(opts["filter"])
    if filters:
        params.append(("filters", filters))
    if opts["keep_storage"]:
        params.append(("keep-storage", str(ram_in_bytes(opts["keep_storage"]))))
    result = cli.client.json("POST", "/build/prune", params) or {}
    deleted = result.get("CachesDeleted") or []
    if deleted:
        sys.stdout.write("Deleted build cache objects:\n")
        for item in deleted:
            sys.stdout.write(item + "\n")
        sys.stdout.write("\n")
    sys.stdout.write(f"Total reclaimed space: {_size(int(result.get('SpaceReclaimed') or 0))}\n")
    return 0
