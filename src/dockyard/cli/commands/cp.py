"""``docker cp``: tar over ``GET``/``HEAD``/``PUT /containers/{id}/archive`` (docker/cli
``cli/command/container/cp.go``, moby ``pkg/archive/copy.go`` rules, simplified).

``X-Docker-Container-Path-Stat`` is base64 JSON ``{name,size,mode,mtime,linkTarget}``
whose ``mode`` is a Go ``os.FileMode`` (directory = 1<<31)."""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import CommandError, command
from dockyard.cli.flags import Flag

_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27


def _split(arg: str) -> tuple[str, str]:
    """``container:path`` or a local path (absolute or starting with ``.`` is always local)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    name, _, path = arg.partition(":")
    return name, path


def _stat(header: str | None) -> dict:  # type: ignore[type-arg]
    import base64

    from dockyard.client import jsonfast as json

    if not header:
        return {}
    return json.loads(base64.b64decode(header))  # type: ignore[return-value]


def _copy_from(
    cli,
    name: str,
    src: str,
    dest: str,
    quiet: bool,  # type: ignore[no-untyped-def]
    rebase: str | None = None,
) -> int:
    import tarfile

    response = cli.client.raw("GET", f"/containers/{name}/archive", {"path": src})
    try:
        if dest == "-":
            for chunk in response.iter_chunks():
                sys.stdout.buffer.write(chunk)
            return 0
        stat = _stat(response.headers.get("x-docker-container-path-stat"))
        src_is_dir = bool(stat.get("mode", 0) & _GO_DIR)
        root = stat.get("name") or os.path.basename(src.rstrip("/")) or "/"
        contents_only = src.endswith("/.")
        if os.path.isdir(dest):
            target_dir, rename = dest, (rebase if not contents_only else "")
        else:
            if os.path.exists(dest) and src_is_dir:
                raise CommandError(f'cannot copy a directory to a file: "{dest}"')
            if dest.endswith("/") and not src_is_dir:
                raise CommandError(f'destination directory "{dest}" does not exist')
            parent = os.path.dirname(dest.rstrip("/")) or "."
            if not os.path.isdir(parent):
                raise CommandError(f"lstat {parent}: no such file or directory")
            target_dir, rename = parent, os.path.basename(dest.rstrip("/"))
            if contents_only:
                os.makedirs(dest, exist_ok=True)
                target_dir, rename = dest, ""

        class Body:
            def __init__(self) -> None:
                self.it, self.buf = response.iter_chunks(), b""

            def read(self, n: int = -1) -> bytes:
                while n < 0 or len(self.buf) < n:
                    try:
                        self.buf += next(self.it)
                    except StopIteration:
                        break
                out, self.buf = (self.buf, b"") if n < 0 else (self.buf[:n], self.buf[n:])
                return out

        with tarfile.open(fileobj=Body(), mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                first, sep, rest = member.name.partition("/")
                if rename is not None and first in (root, "."):
                    if rename == "":
                        if not rest:
                            continue
                        member.name = rest
                    else:
                        member.name = rename + sep + rest
                tar.extract(member, target_dir, filter="tar")
        return 0
    finally:
        response.close()


def _copy_to(
    cli,
    src: str,
    name: str,
    dest: str,
    copy_uid_gid: bool = False,  # type: ignore[no-untyped-def]
    rebase: str | None = None,
) -> int:
    import tarfile
    import tempfile

    from dockyard.client.errors import APIError

    headers = {"Content-Type": "text/plain"}
    if src == "-":
        params = {"noOverwriteDirNonDir": "true", "path": dest}
        if copy_uid_gid:
            params["copyUIDGID"] = "true"
        cli.client.raw(
            "PUT", f"/containers/{name}/archive", params, sys.stdin.buffer, headers
        ).close()
        return 0
    if not os.path.lexists(src):
        raise CommandError(f"lstat {src}: no such file or directory")
    try:
        response = cli.client.raw("HEAD", f"/containers/{name}/archive", {"path": dest})
        response.close()
        stat = _stat(response.headers.get("x-docker-container-path-stat"))
    except APIError as exc:
        if not exc.not_found:
            raise
        stat = None
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    contents_only = src.endswith("/.")
    if stat is not None and stat.get("mode", 0) & _GO_DIR:
        upload_dir, arcname = (
            dest,
            (None if contents_only else rebase or os.path.basename(src.rstrip("/"))),
        )
    else:
        if stat is not None and src_is_dir:
            raise CommandError(f'cannot copy a directory to a file: "{dest}"')
        if stat is None and dest.endswith("/") and not src_is_dir:
            raise CommandError(f'destination "{name}:{dest}" must be a directory')
        upload_dir = os.path.dirname(dest.rstrip("/")) or "/"
        arcname = os.path.basename(dest.rstrip("/"))
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w") as tar:
            if arcname is None:
                for entry in sorted(os.listdir(src)):
                    tar.add(os.path.join(src, entry), arcname=entry)
            else:
                tar.add(src, arcname=arcname)
        spool.seek(0)
        params = {"noOverwriteDirNonDir": "true", "path": upload_dir}
        if copy_uid_gid:
            params["copyUIDGID"] = "true"
        cli.client.raw("PUT", f"/containers/{name}/archive", params, spool, headers).close()
    return 0


@command(
    "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    "Copy files/folders between a container and the local filesystem",
    [
        Flag("archive", "a", help="Archive mode (copy all uid/gid information)"),
        Flag("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
        Flag("quiet", "q", help="Suppress progress output during copy"),
    ],
    args=(2, 2),
)
def cp(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    (src_name, src), (dest_name, dest) = _split(args[0]), _split(args[1])
    if src_name and dest_name:
        raise CommandError("copying between containers is not supported")
    if not src_name and not dest_name:
        raise CommandError("must specify at least one container source")
    if not src or not dest:
        raise CommandError("filesystem path cannot be empty")
    if src_name:
        rebase = None
        if opts["follow_link"]:
            src, rebase = _follow_in_container(cli, src_name, src)
        return _copy_from(cli, src_name, src, dest, opts["quiet"], rebase)
    if opts["follow_link"] and os.path.islink(src):
        # -L copies what the link points at, under the link's own name (docker cli's GetRebaseName).
        return _copy_to(
            cli,
            os.path.realpath(src),
            dest_name,
            dest,
            opts["archive"],
            os.path.basename(src.rstrip("/")),
        )
    return _copy_to(cli, src, dest_name, dest, opts["archive"])


def _follow_in_container(cli, name: str, src: str) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    """The link target of ``src`` when it is a symlink in the container, and the name to
    give it; ``src`` unchanged otherwise (the GET then fails with the daemon's message)."""
    import posixpath

    from dockyard.client.errors import APIError

    try:
        response = cli.client.raw("HEAD", f"/containers/{name}/archive", {"path": src})
        response.close()
    except APIError:
        return src, None
    stat = _stat(response.headers.get("x-docker-container-path-stat"))
    if not stat.get("mode", 0) & _GO_SYMLINK or not stat.get("linkTarget"):
        return src, None
    target = stat["linkTarget"]
    if not target.startswith("/"):
        target = posixpath.join(posixpath.dirname(src.rstrip("/")), target)
    return target, posixpath.basename(src.rstrip("/"))
