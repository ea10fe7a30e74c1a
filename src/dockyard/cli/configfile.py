"""``~/.docker/config.json``, read and written as docker CLI 28 does (CLI world).

Where: ``--config DIR``, else ``$DOCKER_CONFIG``, else ``~/.docker``.  Reading decodes each
``auths.<key>.auth`` (base64 ``user:password``) as docker/cli ``configfile.LoadFromReader``.
Writing is docker/cli ``ConfigFile.Save``: Go's ``json.MarshalIndent(cfg, "", "\\t")`` of
the known keys in the struct's order, empty ones left out (``auths`` always there), map keys
sorted, ``<``/``>``/``&`` escaped, no final newline; written to a temporary file in the same
directory (mode 0600, or the old file's mode), then renamed over the old one, so readers never
see half a file.  Unlike docker, keys it does not know are kept (after the known ones):
another tool's settings are not ours to drop.  A file that does not parse is never written
over (docker would replace it with what little it understood).
"""

from __future__ import annotations

import os

__all__ = ["ConfigError", "ConfigFile", "config_dir", "load"]

# docker/cli configfile.ConfigFile json tags, in field order (28.2: experimental last).
_KNOWN_KEYS = (
    "auths",
    "HttpHeaders",
    "psFormat",
    "imagesFormat",
    "networksFormat",
    "pluginsFormat",
    "volumesFormat",
    "statsFormat",
    "detachKeys",
    "credsStore",
    "credHelpers",
    "serviceInspectFormat",
    "servicesFormat",
    "tasksFormat",
    "secretFormat",
    "configFormat",
    "nodesFormat",
    "pruneFilters",
    "proxies",
    "currentContext",
    "cliPluginsExtraDirs",
    "plugins",
    "aliases",
    "features",
    "experimental",
)
# types.AuthConfig json tags, in field order; username/password/serveraddress are never saved.
AUTH_FIELDS = (
    "username",
    "password",
    "auth",
    "email",
    "serveraddress",
    "identitytoken",
    "registrytoken",
)
_PROXY_FIELDS = ("httpProxy", "httpsProxy", "noProxy", "ftpProxy", "allProxy")


class ConfigError(Exception):
    """The config file cannot be read or written; ``str()`` says which file and why."""


def config_dir(option: str = "") -> str:
    """The CLI's config directory (``--config``, ``DOCKER_CONFIG``, ``~/.docker``)."""
    return (
        option
        or os.environ.get("DOCKER_CONFIG")
        or os.path.join(os.path.expanduser("~"), ".docker")
    )


def _decode_auth(text: str) -> tuple[str, str]:
    import binascii

    try:
        decoded = binascii.a2b_base64(text.encode("ascii"), strict_mode=True).decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise ConfigError(f"illegal base64 data in auth: {exc}") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise ConfigError("Invalid auth configuration file")
    return user, password.strip("\x00")


def encode_auth(user: str, password: str) -> str:
    """``encodeAuth``: base64 of ``user:password``, empty when both are."""
    import binascii

    if not user and not password:
        return ""
    return binascii.b2a_base64(f"{user}:{password}".encode(), newline=False).decode("ascii")


def go_json(value: object, indent: str | None = None) -> str:
    """Go ``encoding/json`` text for plain values: HTML characters escaped, UTF-8 kept."""
    import json

    separators = (",", ": ") if indent is not None else (",", ":")
    text = json.dumps(value, indent=indent, ensure_ascii=False, separators=separators)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


class ConfigFile:
    """The parsed file: ``auths`` maps a registry key to its decoded AuthConfig fields
    (``username``, ``password``, ``serveraddress`` filled in, ``auth`` cleared)."""

    def __init__(self, filename: str, data: dict | None = None, broken: str = "") -> None:  # type: ignore[type-arg]
        self.filename = filename
        self.data: dict = data or {}  # type: ignore[type-arg]
        self.broken = broken
        self.auths: dict[str, dict[str, str]] = {}
        raw_auths = self.data.get("auths")
        for key, entry in (raw_auths if isinstance(raw_auths, dict) else {}).items():
            entry = {k: v for k, v in (entry or {}).items() if k in AUTH_FIELDS and v}
            if entry.get("auth"):
                entry["username"], entry["password"] = _decode_auth(entry["auth"])
            entry.pop("auth", None)
            entry["serveraddress"] = key
            self.auths[key] = entry

    @property
    def creds_store(self) -> str:
        return str(self.data.get("credsStore") or "")

    @property
    def cred_helpers(self) -> dict[str, str]:
        helpers = self.data.get("credHelpers")
        return helpers if isinstance(helpers, dict) else {}

    def _document(self) -> dict:  # type: ignore[type-arg]
        auths = {}
        for key in sorted(self.auths):
            entry = dict(self.auths[key])
            entry["auth"] = encode_auth(entry.get("username", ""), entry.get("password", ""))
            auths[key] = {
                f: entry[f]
                for f in AUTH_FIELDS
                if entry.get(f) and f not in ("username", "password", "serveraddress")
            }
        doc: dict = {"auths": auths}  # type: ignore[type-arg]
        for key in _KNOWN_KEYS[1:]:
            value = self.data.get(key)
            if key == "HttpHeaders" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k.lower() != "user-agent"}
            if key == "proxies" and isinstance(value, dict):
                value = {
                    name: {f: p[f] for f in _PROXY_FIELDS if p.get(f)}
                    for name, p in value.items()
                    if isinstance(p, dict)
                }
            if value:
                doc[key] = _sorted_maps(value)
        for key, value in self.data.items():
            if key not in _KNOWN_KEYS:
                doc[key] = value
        return doc

    def save(self) -> None:
        """``ConfigFile.Save``: atomic replace, keeping an existing file's mode."""
        if self.broken:
            raise ConfigError(
                f"not overwriting {self.filename}, which could not be parsed ({self.broken}): "
                "fix or remove it"
            )
        import tempfile

        directory = os.path.dirname(self.filename) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        target = os.path.realpath(self.filename)
        fd, temp = tempfile.mkstemp(prefix=os.path.basename(self.filename), dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(go_json(self._document(), indent="\t"))
                f.flush()
                os.fsync(f.fileno())
            try:
                st = os.stat(target)
                os.chmod(temp, st.st_mode & 0o7777)
                os.chown(temp, st.st_uid, st.st_gid)
            except OSError:
                pass
            os.rename(temp, target)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise


def _sorted_maps(value: object) -> object:
    if isinstance(value, dict):
        return {k: _sorted_maps(value[k]) for k in sorted(value)}
    return value


def load(directory: str) -> ConfigFile:
    """Read ``config.json`` under ``directory``; a missing file is an empty config.  A file that
    does not parse gives an empty config (and a warning on stderr, as docker prints it)."""
    import sys

    from dockyard.client import jsonfast as json

    filename = os.path.join(directory, "config.json")
    try:
        with open(filename, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return ConfigFile(filename)
    except OSError as exc:
        sys.stderr.write(f"WARNING: Error loading config file: {filename}: {exc.strerror}\n")
        return ConfigFile(filename, broken=str(exc.strerror))
    try:
        data = json.loads(raw) if raw.strip() else {}
        if not isinstance(data, dict):
            raise ValueError("the document is not a JSON object")
        return ConfigFile(filename, data)
    except (ValueError, ConfigError) as exc:
        sys.stderr.write(f"WARNING: Error parsing config file ({filename}): {exc}\n")
        return ConfigFile(filename, broken=str(exc))
