"""``docker login`` and ``docker logout`` (docker/cli ``cli/command/registry/{login,logout}.go``
as of 28.2): the daemon checks the credentials (``POST /auth``), the CLI keeps them
(``cli/credentials.py``).  A failed login changes nothing on disk.
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.command import CommandError, command
from dockyard.cli.flags import Flag

_STORED_NOTE = "\n Info -> To login with a different account, run 'docker logout' followed by 'docker login'\n\n\n"


def _read_line(prompt: str, echo: bool = True) -> str:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    saved = None
    if not echo:
        import termios

        saved = termios.tcgetattr(0)
        quiet = termios.tcgetattr(0)
        quiet[3] &= ~termios.ECHO
        termios.tcsetattr(0, termios.TCSANOW, quiet)
    try:
        line = sys.stdin.readline()
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSANOW, saved)
    return line.rstrip("\n").rstrip("\r").strip()


def prompt_credentials(user: str, password: str, default_user: str) -> tuple[str, str]:
    """``PromptUserForCredentials`` (stdin is a terminal here)."""
    user = user.strip()
    if not user:
        default_user = default_user.strip()
        user = _read_line(f"Username ({default_user}): " if default_user else "Username: ")
        user = user or default_user
        if not user:
            raise CommandError("error: username is required")
    if not password.strip():
        password = _read_line("Password: ", echo=False)
        sys.stdout.write("\n")
        if not password:
            raise CommandError("error: password is required")
    return user, password


def _authenticate(cli, auth: dict[str, str]) -> dict:  # type: ignore[no-untyped-def,type-arg]
    from dockyard.cli.configfile import AUTH_FIELDS

    body = {k: auth[k] for k in AUTH_FIELDS if auth.get(k)}
    return cli.client.json("POST", "/auth", None, body) or {}


def _keep(cli, auth: dict[str, str], answer: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    from dockyard.cli import credentials

    if answer.get("IdentityToken"):
        auth = {k: v for k, v in auth.items() if k != "password"}
        auth["identitytoken"] = answer["IdentityToken"]
    try:
        credentials.store(cli.config_file, auth)
    except credentials.CredentialsError as exc:
        raise CommandError(f"Error saving credentials: {exc}") from None


@command(
    "[OPTIONS] [SERVER]",
    "Authenticate to a registry",
    [
        Flag("password", "p", "str", default="", help="Password or Personal Access Token (PAT)"),
        Flag(
            "password-stdin", "", help="Take the Password or Personal Access Token (PAT) from stdin"
        ),
        Flag("username", "u", "str", default="", help="Username"),
    ],
    args=(0, 1),
)
def login(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli import credentials
    from dockyard.client.errors import APIError

    user, password = opts["username"], opts["password"]
    if password and opts["password_stdin"]:
        raise CommandError(
            "conflicting options: cannot specify both --password and --password-stdin"
        )
    if password:
        sys.stderr.write(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        )
    if opts["password_stdin"]:
        if not user:
            raise CommandError("the --password-stdin option requires --username to be set")
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    server = args[0] if args and args[0] != "docker.io" else credentials.INDEX_SERVER
    if server != credentials.INDEX_SERVER:
        server = credentials.convert_to_hostname(server)
    stored: dict[str, str] = {}
    if not user and not password:
        try:
            stored = credentials.get(cli.config_file, server)
        except credentials.CredentialsError:
            pass  # as docker: a failing helper only means asking for credentials
    if stored.get("username") and stored.get("password"):
        sys.stderr.write(
            f"Authenticating with existing credentials... [Username: {stored['username']}]\n"
            + _STORED_NOTE
        )
        auth = {
            "username": stored["username"],
            "password": stored["password"],
            "serveraddress": server,
        }
        if stored.get("registrytoken"):
            auth["registrytoken"] = stored["registrytoken"]
        try:
            answer = _authenticate(cli, auth)
        except APIError as exc:
            if exc.status == 401:
                sys.stderr.write("Stored credentials invalid or expired\n")
            else:
                sys.stderr.write(
                    f"Login did not succeed, error: Error response from daemon: {exc.message}\n"
                )
        else:
            _keep(cli, auth, answer)
            sys.stdout.write(f"{answer.get('Status', '')}\n")
            return 0
    if (not user or not password) and not os.isatty(0):
        raise CommandError("Error: Cannot perform an interactive login from a non TTY device")
    user, password = prompt_credentials(user, password, stored.get("username", ""))
    auth = {"username": user, "password": password, "serveraddress": server}
    answer = _authenticate(cli, auth)
    _keep(cli, auth, answer)
    if answer.get("Status"):
        sys.stdout.write(f"{answer['Status']}\n")
    return 0


@command(
    "[SERVER]",
    "Log out from a registry",
    args=(0, 1),
)
def logout(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.cli import credentials

    server = args[0] if args else credentials.INDEX_SERVER
    keys = [server]
    shown = server
    if args:
        shown = credentials.convert_to_hostname(server)
        keys += [shown, f"http://{shown}", f"https://{shown}"]
    sys.stdout.write(f"Removing login credentials for {shown}\n")
    errors: dict[str, str] = {}
    for key in keys:
        try:
            credentials.erase(cli.config_file, key)
        except credentials.CredentialsError as exc:
            errors[key] = str(exc)
    # docker/cli compares a map of failures with the list of keys, and "host" is in that
    # list twice when given plainly: then the warning never shows.  Kept for identical output.
    if len(errors) == len(keys):
        sys.stderr.write("WARNING: could not erase credentials:\n")
        for key, message in errors.items():
            sys.stderr.write(f"{key}: {message}\n")
    return 0
