"""Registry configuration: a JSON file overlaid by command-line flags (pure logic).

File keys are the flags' long names with dashes (``"max-blob-size"``), so one vocabulary
serves both; flags win.  Example::

    {
      "addr": "127.0.0.1:5000", "root": "/var/lib/dockyard-registry",
      "tls-cert": "cert.pem", "tls-key": "key.pem", "tls-client-ca": "ca.pem",
      "htpasswd": "/etc/dockyard/htpasswd",
      "token": {"realm": "https://reg.example/token", "service": "reg.example",
                "issuer": "dockyard", "keys": ["issuer-pub.pem"],
                "signing-key": "issuer-key.pem",
                "rules": [{"user": "*", "repository": "public/*", "actions": ["pull"]},
                          {"user": "alice", "repository": "*", "actions": ["pull", "push", "delete"]}]},
      "gc-interval": 3600, "gc-grace": 3600, "upload-ttl": 86400,
      "proxy": [{"prefix": "hub", "url": "https://registry-1.docker.io",
                 "username": "me", "password": "...", "ttl": 300},
                {"prefix": "quay", "url": "https://quay.io"}]
    }

A proxy ``prefix`` is the local namespace of an upstream: ``hub/library/busybox`` here is
``library/busybox`` there.  An empty prefix caches every repository (a Docker Hub mirror for
dockerd's ``registry-mirrors``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields

import msgspec

from dockyard.distribution.registry.upstream import UpstreamConfig
from dockyard.errors import InvalidParameter

__all__ = ["Config", "Rule", "TokenConfig", "is_loopback", "load", "split_addr"]


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may do what on which repositories (``*`` globs, as fnmatch)."""

    user: str
    repository: str
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """Docker token auth: verify tokens from ``issuer`` (``keys``: PEM public keys or
    certificates); with ``signing_key``, also issue them at ``/token`` under ``rules``."""

    realm: str
    service: str
    issuer: str
    keys: tuple[str, ...] = ()
    signing_key: str = ""
    rules: tuple[Rule, ...] = ()
    expiry: int = 300


@dataclass(frozen=True, slots=True)
class Config:
    addr: str = "127.0.0.1:5000"
    root: str = "/var/lib/dockyard-registry"
    insecure_listen: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    htpasswd: str = ""
    token: TokenConfig | None = None
    max_blob_size: int = 0  # bytes; 0 = no limit
    max_manifest_size: int = 4 << 20
    upload_ttl: float = 86400.0  # an idle upload session is removed after this
    gc_interval: float = 0.0  # seconds between online GCs; 0 = never
    gc_grace: float = 3600.0  # a blob used this recently is never collected
    delete_untagged: bool = False
    workers: int = 0  # 0 = one per CPU core
    access_log: str = "-"  # "-" = stderr (JSON lines); "" = off
    metrics: bool = True
    proxy: tuple[UpstreamConfig, ...] = ()  # pull-through cache upstreams


def split_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) as a pair; ``InvalidParameter`` if malformed."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidParameter(f"invalid address {addr!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    """True for a host that only local processes can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(raw: object) -> TokenConfig:
    if not isinstance(raw, dict):
        raise InvalidParameter("config: token must be an object")
    try:
        rules = tuple(
            Rule(str(r.get("user", "*")), str(r["repository"]), tuple(r.get("actions", [])))
            for r in raw.get("rules", [])
        )
        return TokenConfig(
            realm=str(raw["realm"]),
            service=str(raw.get("service", "dockyard-registry")),
            issuer=str(raw.get("issuer", "dockyard-registry")),
            keys=tuple(raw.get("keys", [])),
            signing_key=str(raw.get("signing-key", "")),
            rules=rules,
            expiry=int(raw.get("expiry", 300)),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidParameter(f"config: invalid token section: {exc}") from exc


def _proxy(raw: object) -> tuple[UpstreamConfig, ...]:
    if not isinstance(raw, list):
        raise InvalidParameter("config: proxy must be a list of upstreams")
    out = []
    try:
        for entry in raw:
            out.append(
                UpstreamConfig(
                    prefix=str(entry.get("prefix", "")).strip("/"),
                    url=str(entry["url"]),
                    username=str(entry.get("username", "")),
                    password=str(entry.get("password", "")),
                    ttl=float(entry.get("ttl", 300)),
                    tls_verify=bool(entry.get("tls-verify", True)),
                )
            )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidParameter(f"config: invalid proxy upstream: {exc}") from exc
    return tuple(out)


def load(path: str | None, flags: dict[str, object]) -> Config:
    """The configuration from ``path`` (JSON) overlaid with the non-None ``flags``."""
    values: dict[str, object] = {}
    if path:
        try:
            with open(path, "rb") as f:
                raw = msgspec.json.decode(f.read())
        except (OSError, msgspec.DecodeError) as exc:
            raise InvalidParameter(f"cannot read registry config {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise InvalidParameter(f"registry config {path} must be a JSON object")
        known = {f.name for f in fields(Config)}
        for key, value in raw.items():
            attr = key.replace("-", "_")
            if attr not in known:
                raise InvalidParameter(f"registry config {path}: unknown key {key!r}")
            values[attr] = value
    values.update({k.replace("-", "_"): v for k, v in flags.items() if v is not None})
    if values.get("proxy"):
        values["proxy"] = _proxy(values["proxy"])
    if "token" in values and values["token"] is not None:
        values["token"] = _token(values["token"])
    try:
        return Config(**values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise InvalidParameter(f"invalid registry configuration: {exc}") from exc
