"""Which registries the daemon talks to and how (pure logic, both worlds).

dockerd's registry options, from daemon.json (and flags):

- ``registry-mirrors``: mirrors of Docker Hub, tried in order before Hub itself;
- ``insecure-registries``: ``host:port`` names or CIDRs reached over TLS without verification,
  falling back to plain HTTP (moby registry/config.go); loopback (``127.0.0.0/8``) is always
  insecure, as in Docker;
- ``max-concurrent-downloads`` (3), ``max-concurrent-uploads`` (5), ``max-download-attempts``
  (5);

and, beyond Docker, ``registry-mirrors-by-host``: ``{"host:port": ["https://mirror", ...]}``,
mirrors for any registry, tried in order before it.  TLS material follows Docker's
``certs.d/<host:port>/`` layout (``*.crt`` CAs, ``*.cert``/``*.key`` client pairs) under the
daemon's configuration directory.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dockyard.errors import InvalidParameter

__all__ = ["HUB_DOMAIN", "HUB_ENDPOINT", "Endpoint", "RegistryConfig"]

HUB_DOMAIN = "docker.io"
HUB_ENDPOINT = "registry-1.docker.io"
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One place to reach a registry: ``https://host`` or ``http://host``.

    ``mirror`` endpoints are skipped on any error (the next one is tried); ``insecure`` ones
    skip certificate checks and may fall back to plain HTTP."""

    host: str
    scheme: str
    insecure: bool
    mirror: bool = False

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


def _int_option(data: dict[str, Any], key: str, default: int, minimum: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidParameter(f"invalid value for {key}: {value!r} (an integer >= {minimum})")
    return value


def _mirror(url: object) -> str:
    """moby ValidateMirror: an http(s) URL without path beyond '/', normalised to end in '/'."""
    if not isinstance(url, str):
        raise InvalidParameter(f"invalid mirror: {url!r} is not a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidParameter(f"invalid mirror: unsupported scheme {parts.scheme!r} in {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidParameter(f"invalid mirror: path, query or fragment in {url!r}")
    return f"{parts.scheme}://{parts.netloc}/"


@dataclass(slots=True)
class RegistryConfig:
    mirrors: list[str] = field(default_factory=list)
    mirrors_by_host: dict[str, list[str]] = field(default_factory=dict)
    insecure_hosts: list[str] = field(default_factory=list)
    insecure_cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(
        default_factory=lambda: [_LOOPBACK]
    )
    certs_dir: str = "/etc/dockyard/certs.d"
    max_downloads: int = 3
    max_uploads: int = 5
    max_attempts: int = 5

    @classmethod
    def from_daemon_json(cls, data: dict[str, Any], certs_dir: str) -> RegistryConfig:
        """Validate the registry keys of daemon.json; ``InvalidParameter`` names the bad one."""
        config = cls(certs_dir=certs_dir)
        config.mirrors = [_mirror(m) for m in data.get("registry-mirrors") or []]
        by_host = data.get("registry-mirrors-by-host") or {}
        if not isinstance(by_host, dict):
            raise InvalidParameter("invalid registry-mirrors-by-host: a JSON object is expected")
        for host, urls in by_host.items():
            if not isinstance(urls, list):
                raise InvalidParameter(f"invalid registry-mirrors-by-host[{host!r}]: not a list")
            key = HUB_DOMAIN if host in ("index.docker.io", HUB_ENDPOINT) else host
            config.mirrors_by_host[key] = [_mirror(u) for u in urls]
        for entry in data.get("insecure-registries") or []:
            if not isinstance(entry, str) or not entry:
                raise InvalidParameter(f"invalid insecure-registries entry: {entry!r}")
            if "://" in entry:
                raise InvalidParameter(
                    f"insecure registry {entry} should not contain '://'"
                )  # moby's message
            try:
                net = ipaddress.ip_network(entry, strict=False) if "/" in entry else None
            except ValueError:
                net = None
            if net is not None:
                if net not in config.insecure_cidrs:
                    config.insecure_cidrs.append(net)
            elif entry not in config.insecure_hosts:
                config.insecure_hosts.append(entry)
        config.max_downloads = _int_option(data, "max-concurrent-downloads", 3, 1)
        config.max_uploads = _int_option(data, "max-concurrent-uploads", 5, 1)
        config.max_attempts = _int_option(data, "max-download-attempts", 5, 1)
        return config

    # ---- lookups -------------------------------------------------------------------------
    def is_insecure(self, host: str) -> bool:
        """moby isSecureIndex, inverted: listed by name, or an address inside a CIDR."""
        if host in self.insecure_hosts:
            return True
        name = host
        if name.startswith("["):
            name = name[1 : name.find("]")]
        elif name.count(":") == 1:
            name = name.rsplit(":", 1)[0]
        try:
            addresses = [ipaddress.ip_address(name)]
        except ValueError:
            try:
                infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                return False
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        return any(addr in net for addr in addresses for net in self.insecure_cidrs)

    def endpoints(self, domain: str) -> list[Endpoint]:
        """Where to look for ``domain``'s repositories, in order: mirrors, then itself."""
        out: list[Endpoint] = []
        mirrors = list(self.mirrors_by_host.get(domain, []))
        if domain == HUB_DOMAIN:
            mirrors = self.mirrors + [m for m in mirrors if m not in self.mirrors]
        for url in mirrors:
            parts = urlsplit(url)
            insecure = self.is_insecure(parts.netloc)
            out.append(Endpoint(parts.netloc, parts.scheme, insecure, mirror=True))
        host = HUB_ENDPOINT if domain == HUB_DOMAIN else domain
        insecure = domain != HUB_DOMAIN and self.is_insecure(host)
        out.append(Endpoint(host, "https", insecure))
        if insecure:
            out.append(Endpoint(host, "http", insecure))
        return out

    def info(self) -> dict[str, Any]:
        """``RegistryConfig`` as ``docker info`` shows it (moby registry.ServiceConfig)."""
        index_configs: dict[str, Any] = {
            HUB_DOMAIN: {
                "Name": HUB_DOMAIN,
                "Mirrors": list(self.mirrors),
                "Secure": True,
                "Official": True,
            }
        }
        for host in self.insecure_hosts:
            index_configs[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
        for host, mirrors in self.mirrors_by_host.items():
            if host == HUB_DOMAIN:
                continue
            entry = index_configs.setdefault(
                host,
                {
                    "Name": host,
                    "Mirrors": [],
                    "Secure": not self.is_insecure(host),
                    "Official": False,
                },
            )
            entry["Mirrors"] = list(mirrors)
        return {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": [str(n) for n in self.insecure_cidrs],
            "IndexConfigs": index_configs,
            "Mirrors": list(self.mirrors),
        }
