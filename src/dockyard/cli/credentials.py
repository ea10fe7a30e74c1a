"""Registry credentials as docker CLI 28 keeps them, and the ``X-Registry-Auth`` header
(CLI world).

A registry's credentials live under a *key*: ``https://index.docker.io/v1/`` for Docker Hub,
otherwise the registry's ``host[:port]``.  Where they live depends on config.json:
``credHelpers[key]``, else ``credsStore``, names a helper program ``docker-credential-<name>``
(docker-credential-helpers protocol: ``get``/``erase`` read the key on stdin, ``store`` reads
``{"ServerURL","Username","Secret"}``; ``get`` answers the same object, an identity token
travelling as user ``<token>``); with no helper they sit in config.json itself (the *file
store*).  docker/cli ``cli/config/credentials/{file_store,native_store}.go`` and
docker-credential-helpers ``client/client.go`` are the reference for every message here.

The header is base64url (with padding) of Go's JSON of the AuthConfig, empty fields left out:
``e30=`` (``{}``) when nothing is stored.
"""

from __future__ import annotations

import sys

from dockyard.cli.configfile import AUTH_FIELDS, ConfigError, ConfigFile, go_json

__all__ = [
    "INDEX_SERVER",
    "CredentialsError",
    "convert_to_hostname",
    "encode_header",
    "erase",
    "get",
    "key_for_domain",
    "store",
]

INDEX_SERVER = "https://index.docker.io/v1/"
_TOKEN_USER = "<token>"
_NOT_FOUND = "credentials not found in native keychain"
_MISSING_URL = "no credentials server URL"
_MISSING_USER = "no credentials username"
UNENCRYPTED_WARNING = (
    "\nWARNING! Your credentials are stored unencrypted in '{}'.\n"
    "Configure a credential helper to remove this warning. See\n"
    "https://docs.docker.com/go/credential-store/\n\n"
)


class CredentialsError(Exception):
    """A credential helper failed, or config.json could not be written.  ``partial`` is what
    config.json alone holds for the key (docker's ``ResolveAuthConfig`` goes on with it)."""

    def __init__(self, message: str, partial: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.partial = partial or {}


def key_for_domain(domain: str) -> str:
    """``getAuthConfigKey``: Docker Hub's credentials are stored under its v1 index URL."""
    return INDEX_SERVER if domain in ("docker.io", "index.docker.io") else domain


def convert_to_hostname(address: str) -> str:
    """``ConvertToHostname``: ``https://host:5000/v2/`` -> ``host:5000``."""
    if "://" in address:
        address = address.split("://", 1)[1]
    return address.split("/", 1)[0]


def _helper(cfg: ConfigFile, key: str) -> str:
    return cfg.cred_helpers.get(key, "") if key in cfg.cred_helpers else cfg.creds_store


def _run_helper(name: str, action: str, data: bytes) -> tuple[int | str, bytes]:
    """Run ``docker-credential-<name> <action>``: (exit status or exec error, stdout)."""
    import subprocess

    program = f"docker-credential-{name}"
    try:
        done = subprocess.run(
            [program, action], input=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return f'exec: "{program}": executable file not found in $PATH', b""
    except OSError as exc:
        return f"fork/exec {program}: {exc.strerror}", b""
    return done.returncode, done.stdout


def _helper_error(action: str, status: int | str, out: bytes) -> CredentialsError:
    text = out.decode("utf-8", "replace").strip()
    if text in (_MISSING_URL, _MISSING_USER):
        return CredentialsError(text)
    err = status if isinstance(status, str) else f"exit status {status}"
    return CredentialsError(f"error {action} credentials - err: {err}, out: `{text}`")


def get(cfg: ConfigFile, key: str) -> dict[str, str]:
    """The AuthConfig stored for ``key`` (``{}`` when none).  ``CredentialsError`` when a
    helper fails for another reason than "not found"."""
    entry = dict(cfg.auths.get(key) or {})
    if not entry:
        for stored, value in cfg.auths.items():  # legacy keys: "https://host/v1/"
            if convert_to_hostname(stored) == key:
                entry = dict(value)
                break
    helper = _helper(cfg, key)
    if not helper:
        return entry
    status, out = _run_helper(helper, "get", key.encode())
    if status != 0:
        if out.decode("utf-8", "replace").strip() == _NOT_FOUND:
            for field in ("username", "password", "identitytoken"):
                entry.pop(field, None)
            entry.pop("serveraddress", None)
            return entry
        error = _helper_error("getting", status, out)
        error.partial = entry
        raise error
    from dockyard.client import jsonfast as json

    try:
        creds = json.loads(out)
    except ValueError as exc:
        raise CredentialsError(str(exc), entry) from None
    for field in ("username", "password", "identitytoken"):
        entry.pop(field, None)
    if creds.get("Username") == _TOKEN_USER:  # type: ignore[union-attr]
        entry["identitytoken"] = creds.get("Secret") or ""  # type: ignore[union-attr]
    else:
        entry["username"] = creds.get("Username") or ""  # type: ignore[union-attr]
        entry["password"] = creds.get("Secret") or ""  # type: ignore[union-attr]
    entry["serveraddress"] = key
    return {k: v for k, v in entry.items() if v}


def _save(cfg: ConfigFile) -> None:
    try:
        cfg.save()
    except (OSError, ConfigError) as exc:
        raise CredentialsError(str(exc)) from exc


def store(cfg: ConfigFile, auth: dict[str, str]) -> None:
    """Keep ``auth`` under ``auth["serveraddress"]``: in the helper if one is configured
    (config.json then keeps only an empty entry, or the e-mail), else in config.json, with
    docker's warning when a password lands there in clear."""
    key = auth["serveraddress"]
    helper = _helper(cfg, key)
    if helper:
        creds = {
            "ServerURL": key,
            "Username": auth.get("username", ""),
            "Secret": auth.get("password", ""),
        }
        if auth.get("identitytoken"):
            creds["Username"], creds["Secret"] = _TOKEN_USER, auth["identitytoken"]
        status, out = _run_helper(helper, "store", (go_json(creds) + "\n").encode())
        if status != 0:
            raise _helper_error("storing", status, out)
        auth = {k: v for k, v in auth.items() if k not in ("username", "password", "identitytoken")}
    entry = {k: auth[k] for k in AUTH_FIELDS if auth.get(k)}
    if cfg.auths.get(key) == entry:
        return  # unchanged: docker does not rewrite the file (nor warn)
    cfg.auths[key] = entry
    _save(cfg)
    if not helper and entry.get("password"):
        sys.stderr.write(UNENCRYPTED_WARNING.format(cfg.filename))


def erase(cfg: ConfigFile, key: str) -> None:
    """Forget ``key``: in its helper (if any), then in config.json (saved only if it held it)."""
    helper = _helper(cfg, key)
    if helper:
        status, out = _run_helper(helper, "erase", key.encode())
        if status != 0:
            raise _helper_error("erasing", status, out)
    if key in cfg.auths:
        del cfg.auths[key]
        _save(cfg)


def encode_header(auth: dict[str, str]) -> str:
    """``X-Registry-Auth``: base64url of the AuthConfig's JSON (``e30=`` for none)."""
    import binascii

    body = go_json({k: auth[k] for k in AUTH_FIELDS if auth.get(k)})
    encoded = binascii.b2a_base64(body.encode(), newline=False).decode("ascii")
    return encoded.replace("+", "-").replace("/", "_")
