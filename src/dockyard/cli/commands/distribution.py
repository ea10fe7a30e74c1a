"""``docker pull`` and ``docker push`` (docker/cli ``cli/command/image/{pull,push}.go``), and
the pull that ``run``/``create`` make when the image is missing (``container/create.go``).

Each sends the registry's stored credentials as ``X-Registry-Auth`` and draws the daemon's
JSON progress stream with ``cli/progress.py``: bars on a terminal, plain lines otherwise.  An
``errorDetail`` in the stream is printed bare (no "Error response from daemon"), exit 1.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import CommandError, command
from dockyard.cli.flags import Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from dockyard.cli.reference import Named

    T = TypeVar("T")


def parse_reference(text: str) -> Named:
    """``ParseNormalizedNamed`` with the parser's message as the command's error."""
    from dockyard.cli.reference import BadReference, parse_normalized

    try:
        return parse_normalized(text)
    except BadReference as exc:
        raise CommandError(str(exc)) from None


def registry_auth(cli, domain: str, strict: bool = False) -> str:  # type: ignore[no-untyped-def]
    """The ``X-Registry-Auth`` value for a registry (``e30=`` when nothing is stored).

    pull, push and search go on without the helper's answer when it fails (docker/cli
    ``ResolveAuthConfig`` drops the error); run's pull stops (``RetrieveAuthTokenFromImage``).
    """
    from dockyard.cli import credentials

    try:
        auth = credentials.get(cli.config_file, credentials.key_for_domain(domain))
    except credentials.CredentialsError as exc:
        if strict:
            raise CommandError(str(exc)) from None
        auth = exc.partial
    return credentials.encode_header(auth)


def login_prior_to(cli, action: str, domain: str) -> str:  # type: ignore[no-untyped-def]
    """docker/cli ``RegistryAuthenticationPrivilegedFunc``: after a 401, ask for credentials
    and answer the header to retry with.  Only on a terminal: docker would wait forever on a
    closed stdin, dockyard gives the daemon's error instead (the caller's to raise)."""
    from dockyard.cli import credentials
    from dockyard.cli.commands.login import prompt_credentials

    sys.stdout.write(f"\nLogin prior to {action}:\n")
    key = credentials.key_for_domain(domain)
    try:
        stored = credentials.get(cli.config_file, key)
    except credentials.CredentialsError as exc:
        sys.stderr.write(f"Unable to retrieve stored credentials for {key}, error: {exc}.\n")
        stored = {}
    user, password = prompt_credentials("", "", stored.get("username", ""))
    return credentials.encode_header({"username": user, "password": password, "serveraddress": key})


def with_login(  # type: ignore[no-untyped-def]
    cli, header: str, retry: tuple[str, str] | None, send: Callable[[str], T]
) -> T:
    """``send(header)``; after a 401 and on a terminal, once more with the credentials
    ``login_prior_to`` asks for.  ``retry`` = (action, registry domain), None for no retry
    (run's pull, as docker's ``RetrieveAuthTokenFromImage`` path has none)."""
    from dockyard.client.errors import APIError

    try:
        return send(header)
    except APIError as exc:
        if exc.status != 401 or retry is None or not os.isatty(0):
            raise
        return send(login_prior_to(cli, *retry))


def show_stream(  # type: ignore[no-untyped-def]
    cli,
    method: str,
    path: str,
    params,
    header: str,
    fd: int | None,
    retry: tuple[str, str] | None = None,
) -> None:
    """POST a progress request and draw its stream on ``fd`` (1 or 2), or nowhere (None).
    ``retry`` = (action, registry domain): on a 401, log in on the terminal and try again."""
    from dockyard.cli.progress import StreamError, display, terminal_width

    out = {1: sys.stdout, 2: sys.stderr}.get(fd) if fd is not None else None
    terminal = fd is not None and os.isatty(fd)
    width = terminal_width(fd) if terminal and fd is not None else 200
    if out is not None:
        out.flush()
    response = with_login(
        cli,
        header,
        retry,
        lambda auth: cli.client.raw(method, path, params, None, {"X-Registry-Auth": auth}),
    )
    try:
        display(_json_lines(response), out, terminal, width)
    except StreamError as exc:
        raise CommandError(str(exc)) from None
    finally:
        response.close()


def _json_lines(response):  # type: ignore[no-untyped-def]
    from dockyard.client import jsonfast as json

    for line in response.iter_lines():
        yield json.loads(line)


def _target(text: str, opts) -> tuple[Named, bool]:  # type: ignore[no-untyped-def]
    """pull's and push's reference and whether it means every tag (``-a``): a name alone
    gains ``latest`` (said unless ``-q``), a tag with ``-a`` is refused (docker/cli's
    ``RunPull``/``RunPush`` share these words)."""
    ref = parse_reference(text)
    every = bool(opts["all_tags"])
    if every and not ref.name_only:
        raise CommandError("tag can't be used with --all-tags/-a")
    if not every and ref.name_only:
        ref = ref.with_default_tag()
        if not opts["quiet"]:
            sys.stdout.write("Using default tag: latest\n")
    return ref, every


def pull_image(cli, ref: Named, platform: str, fd: int | None) -> None:  # type: ignore[no-untyped-def]
    """run/create's pull (``ImageCreate``): ``fromImage`` is the full name, ``tag`` the tag
    or the digest."""
    params = {"fromImage": ref.name, "tag": ref.api_tag(), "platform": platform.lower() or None}
    header = registry_auth(cli, ref.domain, strict=True)
    show_stream(cli, "POST", "/images/create", params, header, fd)


@command(
    "[OPTIONS] NAME[:TAG|@DIGEST]",
    "Download an image from a registry",
    [
        Flag("all-tags", "a", help="Download all tagged images in the repository"),
        Flag("disable-content-trust", "", "bool", default=True, help="Skip image verification"),
        Flag(
            "platform",
            "",
            "str",
            default="",
            help="Set platform if server is multi-platform capable",
        ),
        Flag("quiet", "q", help="Suppress verbose output"),
    ],
    args=(1, 1),
)
def pull(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    ref, every = _target(args[0], opts)
    platform = opts["platform"] or os.environ.get("DOCKER_DEFAULT_PLATFORM", "")
    params = {
        "fromImage": ref.name,
        "tag": None if every else ref.api_tag(),
        "platform": platform.lower() or None,
    }
    fd = None if opts["quiet"] else 1
    header = registry_auth(cli, ref.domain)
    show_stream(cli, "POST", "/images/create", params, header, fd, ("pull", ref.domain))
    sys.stdout.write(f"{ref}\n")
    return 0


@command(
    "[OPTIONS] NAME[:TAG]",
    "Upload an image to a registry",
    [
        Flag("all-tags", "a", help="Push all tags of an image to the repository"),
        Flag("disable-content-trust", "", "bool", default=True, help="Skip image signing"),
        Flag(
            "platform",
            "",
            "str",
            default="",
            help="Push a platform-specific manifest as a single-platform image to the registry",
        ),
        Flag("quiet", "q", help="Suppress verbose output"),
    ],
    args=(1, 1),
)
def push(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote_name

    if opts["platform"]:
        # The flag's API version is checked before anything runs; the platform query
        # parameter came with API 1.46 and this client speaks 1.41.
        raise CommandError(
            '"--platform" requires API version 1.46, but the Docker daemon API version is 1.41'
        )
    ref, every = _target(args[0], opts)
    if ref.digest:
        raise CommandError("cannot push a digest reference")
    params = {"tag": None if every else ref.tag}
    path = f"/images/{quote_name(ref.familiar_name)}/push"
    header = registry_auth(cli, ref.domain)
    show_stream(
        cli, "POST", path, params, header, None if opts["quiet"] else 1, ("push", ref.domain)
    )
    if opts["quiet"]:
        sys.stdout.write(f"{ref}\n")
    return 0
