"""Daemon configuration: dockerd's flags and daemon.json, merged as dockerd merges them.

Pure logic.  Unknown daemon.json keys are an error, and so is a key given both as a flag and
in the file (moby daemon/config: ``getConflictFreeConfiguration``), with dockerd's messages.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "ConfigError", "load", "parse_args"]

DEFAULT_SOCKET = "unix:///run/dockyard.sock"


class ConfigError(Exception):
    """The flags or daemon.json are wrong; the message says which key and why."""


@dataclass(slots=True)
class Config:
    hosts: list[str] = field(default_factory=list)
    data_root: str = "/var/lib/dockyard"
    exec_root: str = "/run/dockyard"
    pidfile: str = "/run/dockyard.pid"
    config_file: str = "/etc/dockyard/daemon.json"
    log_level: str = "info"
    debug: bool = False
    storage_driver: str | None = None
    group: str = "docker"
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str = ""
    tlscert: str = ""
    tlskey: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # keys later issues will use
    runtimes: Any = None  # containers.runtimes.Runtimes, from "runtimes"/"default-runtime"
    security_options: list[str] = field(default_factory=lambda: ["name=seccomp,profile=builtin"])
    registry: Any = None  # distribution.RegistryConfig, from the registry keys


# daemon.json key -> Config attribute, for keys that are also flags.
_FLAG_KEYS = {
    "hosts": "hosts",
    "data-root": "data_root",
    "exec-root": "exec_root",
    "pidfile": "pidfile",
    "log-level": "log_level",
    "debug": "debug",
    "storage-driver": "storage_driver",
    "group": "group",
    "tls": "tls",
    "tlsverify": "tlsverify",
    "tlscacert": "tlscacert",
    "tlscert": "tlscert",
    "tlskey": "tlskey",
}
# Keys dockerd accepts that dockyard reads in later features; kept in ``extra``.
_OTHER_KEYS = {
    "log-driver",
    "log-opts",
    "default-address-pools",
    "bip",
    "fixed-cidr",
    "fixed-cidr-v6",
    "live-restore",
    "userland-proxy",
    "iptables",
    "ip6tables",
    "ip-forward",
    "ip-masq",
    "dns",
    "dns-search",
    "dns-opts",
    "runtimes",
    "default-runtime",
    "labels",
    "registry-mirrors",
    "registry-mirrors-by-host",
    "insecure-registries",
    "max-download-attempts",
    "features",
    "experimental",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "mtu",
    "default-ulimits",
    "cgroup-parent",
    "exec-opts",
    "storage-opts",
    "default-shm-size",
    "init",
    "icc",
    "ipv6",
    "bridge",
    "shutdown-timeout",
    "default-cgroupns-mode",
    "seccomp-profile",
    "no-new-privileges",
    "userland-proxy-path",
    "log-format",
    "containerd",
    "builder",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dockyardd", description="A Docker-compatible container engine daemon"
    )
    p.add_argument(
        "-H",
        "--host",
        action="append",
        dest="hosts",
        default=None,
        help="daemon socket(s) to listen on: unix://PATH, tcp://HOST:PORT, fd://",
    )
    p.add_argument(
        "--data-root", dest="data_root", help="root of persistent state (default /var/lib/dockyard)"
    )
    p.add_argument(
        "--exec-root", dest="exec_root", help="root of runtime state (default /run/dockyard)"
    )
    p.add_argument("-p", "--pidfile", dest="pidfile", help="path of the pid file")
    p.add_argument("--config-file", dest="config_file", default=None, help="daemon.json path")
    p.add_argument(
        "-l", "--log-level", dest="log_level", choices=["debug", "info", "warn", "error", "fatal"]
    )
    p.add_argument("-D", "--debug", dest="debug", action="store_true", default=None)
    p.add_argument("-s", "--storage-driver", dest="storage_driver", choices=["overlay2", "vfs"])
    p.add_argument("-G", "--group", dest="group", help="group owning the unix socket")
    p.add_argument("--tls", dest="tls", action="store_true", default=None)
    p.add_argument("--tlsverify", dest="tlsverify", action="store_true", default=None)
    p.add_argument("--tlscacert", dest="tlscacert")
    p.add_argument("--tlscert", dest="tlscert")
    p.add_argument("--tlskey", dest="tlskey")
    p.add_argument(
        "--add-runtime",
        dest="add_runtime",
        action="append",
        default=None,
        metavar="NAME=PATH",
        help="an OCI runtime containers may ask for with --runtime NAME",
    )
    p.add_argument(
        "--default-runtime", dest="default_runtime", help="runtime of containers that name none"
    )
    p.add_argument(
        "--seccomp-profile",
        dest="seccomp_profile",
        help='default seccomp profile of containers: a JSON file, "unconfined" or "builtin"',
    )
    p.add_argument(
        "--no-new-privileges",
        dest="no_new_privileges",
        action="store_true",
        default=None,
        help="set no-new-privileges on every new container",
    )
    p.add_argument(
        "--registry-mirror",
        dest="registry_mirrors",
        action="append",
        default=None,
        help="preferred Docker Hub mirror (repeatable)",
    )
    p.add_argument(
        "--insecure-registry",
        dest="insecure_registries",
        action="append",
        default=None,
        help="registry host:port or CIDR reached without TLS verification (repeatable)",
    )
    p.add_argument("--max-concurrent-downloads", dest="max_concurrent_downloads", type=int)
    p.add_argument("--max-concurrent-uploads", dest="max_concurrent_uploads", type=int)
    p.add_argument("--max-download-attempts", dest="max_download_attempts", type=int)
    for flag, what in (
        ("ipv6", "give the default bridge network IPv6 (needs --fixed-cidr-v6)"),
        ("ip6tables", "program ip6tables rules for IPv6 networks (needs --experimental)"),
        ("experimental", "enable experimental features"),
    ):
        # dockerd's boolean flags take an optional value: --ipv6, --ipv6=true, --ipv6=false
        p.add_argument(
            f"--{flag}", dest=flag, nargs="?", const=True, default=None, type=_boolean, help=what
        )
    p.add_argument(
        "--fixed-cidr-v6", dest="fixed_cidr_v6", help="IPv6 subnet of the default bridge network"
    )
    p.add_argument(
        "--userland-proxy",
        dest="userland_proxy",
        nargs="?",
        const=True,
        type=_boolean,
        metavar="BOOL",
        help="serve published ports from a helper process (default true); false: kernel NAT only",
    )
    p.add_argument("-v", "--version", action="store_true", help="print version and exit")
    return p


def _flag_text(value: Any) -> str:
    """A flag's value as dockerd prints it (Go's ``true``, not Python's ``True``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _boolean(text: str) -> bool:
    """A Go ``strconv.ParseBool`` value, as dockerd's boolean flags accept."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise argparse.ArgumentTypeError(f"parse error on {text!r}: invalid syntax")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parser().parse_args(argv)


def _read_file(path: str, explicit: bool) -> dict[str, Any]:
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(
                f"unable to configure the daemon: open {path}: no such file or directory"
            )
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ConfigError(
            f"unable to configure the daemon: {path} is not valid JSON: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"unable to configure the daemon: {path} must hold a JSON object")
    unknown = sorted(k for k in data if k not in _FLAG_KEYS and k not in _OTHER_KEYS)
    if unknown:
        raise ConfigError(
            "the following directives don't match any configuration option: " + ", ".join(unknown)
        )
    return data


def _runtime_flags(args: argparse.Namespace, extra: dict[str, Any]) -> None:
    """--add-runtime/--default-runtime into the daemon.json keys, refusing both at once."""
    added = getattr(args, "add_runtime", None)
    if added:
        if "runtimes" in extra:
            raise ConfigError(
                "the following directives are specified both as a flag and in the "
                "configuration file: runtimes"
            )
        table: dict[str, Any] = {}
        for item in added:
            name, eq, path = item.partition("=")
            if not eq or not name or not path:
                raise ConfigError(f"invalid --add-runtime {item!r}: NAME=PATH is expected")
            table[name] = {"path": path}
        extra["runtimes"] = table
    default = getattr(args, "default_runtime", None)
    if default:
        if "default-runtime" in extra:
            raise ConfigError(
                "the following directives are specified both as a flag and in the "
                f"configuration file: default-runtime: (from flag: {default}, "
                f"from file: {extra['default-runtime']})"
            )
        extra["default-runtime"] = default


def _security_flags(args: argparse.Namespace, extra: dict[str, Any]) -> None:
    """--seccomp-profile/--no-new-privileges into their daemon.json keys (not both)."""
    for key, attr, kind in (
        ("seccomp-profile", "seccomp_profile", str),
        ("no-new-privileges", "no_new_privileges", bool),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            if key in extra:
                raise ConfigError(
                    "the following directives are specified both as a flag and in the "
                    f"configuration file: {key}: (from flag: {_flag_text(value)}, "
                    f"from file: {extra[key]})"
                )
            extra[key] = value
        if key in extra and not isinstance(extra[key], kind):
            raise ConfigError(f"invalid value for {key}: {extra[key]!r} is not a {kind.__name__}")


def _merge_flags(
    args: argparse.Namespace, extra: dict[str, Any], table: tuple[tuple[str, str], ...]
) -> None:
    """Flags into their daemon.json keys (``table``: key, argparse attribute), refusing a
    key given both ways, as dockerd merges them."""
    for key, attr in table:
        value = getattr(args, attr, None)
        if value is None:
            continue
        if key in extra:
            raise ConfigError(
                "the following directives are specified both as a flag and in the "
                f"configuration file: {key}: (from flag: {_flag_text(value)}, "
                f"from file: {extra[key]})"
            )
        extra[key] = value


_REGISTRY_FLAGS = (
    ("registry-mirrors", "registry_mirrors"),
    ("insecure-registries", "insecure_registries"),
    ("max-concurrent-downloads", "max_concurrent_downloads"),
    ("max-concurrent-uploads", "max_concurrent_uploads"),
    ("max-download-attempts", "max_download_attempts"),
)
_IPV6_FLAGS = (
    ("userland-proxy", "userland_proxy"),
    ("ipv6", "ipv6"),
    ("fixed-cidr-v6", "fixed_cidr_v6"),
    ("ip6tables", "ip6tables"),
    ("experimental", "experimental"),
)


def _ipv6_flags(args: argparse.Namespace, extra: dict[str, Any]) -> None:
    """--ipv6/--fixed-cidr-v6/--ip6tables/--experimental/--userland-proxy into their
    daemon.json keys (not both; a key must have its type: a string "false" would read as
    true), then dockerd's start-up checks (moby daemon/config, daemon_unix.go)."""
    _merge_flags(args, extra, _IPV6_FLAGS)
    for key, _ in _IPV6_FLAGS:
        kind = str if key == "fixed-cidr-v6" else bool
        if key in extra and not isinstance(extra[key], kind):
            raise ConfigError(f"invalid value for {key}: {extra[key]!r} is not a {kind.__name__}")
    if extra.get("ip6tables") and not extra.get("experimental"):
        raise ConfigError("ip6tables rules are only available if experimental features are enabled")
    cidr = extra.get("fixed-cidr-v6") or ""
    if cidr:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            net = None
        if net is None or net.version != 6 or "/" not in cidr:
            raise ConfigError(f"invalid fixed-cidr-v6 {cidr!r}: an IPv6 CIDR is expected")
    if extra.get("ipv6") and not cidr:
        raise ConfigError(
            "Error initializing network controller: IPv6 is enabled for the default bridge, "
            "but no subnet is configured. Specify an IPv6 subnet using --fixed-cidr-v6"
        )


def _registry_config(config: Config) -> Any:
    from dockyard.distribution.config import RegistryConfig
    from dockyard.errors import InvalidParameter

    certs_dir = os.path.join(os.path.dirname(os.path.abspath(config.config_file)), "certs.d")
    try:
        return RegistryConfig.from_daemon_json(config.extra, certs_dir)
    except InvalidParameter as exc:
        raise ConfigError(f"unable to configure the daemon: {exc.message}") from None


def load(args: argparse.Namespace) -> Config:
    """Merge flags over daemon.json over defaults, refusing keys given twice."""
    config = Config()
    explicit = args.config_file is not None
    config.config_file = args.config_file or config.config_file
    data = _read_file(config.config_file, explicit)
    conflicts = []
    for key, attr in _FLAG_KEYS.items():
        flag_value = getattr(args, attr, None)
        if key in data and flag_value is not None:
            conflicts.append(f"{key}: (from flag: {flag_value}, from file: {data[key]})")
        value = flag_value if flag_value is not None else data.get(key)
        if value is None:
            continue
        expected = type(getattr(config, attr)) if getattr(config, attr) is not None else str
        if key == "hosts":
            if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
                raise ConfigError(
                    "invalid value for hosts in daemon.json: a list of strings is expected"
                )
        elif not isinstance(value, expected):
            raise ConfigError(f"invalid value for {key}: {value!r} is not a {expected.__name__}")
        setattr(config, attr, value)
    if conflicts:
        raise ConfigError(
            "the following directives are specified both as a flag and in the configuration "
            "file: " + ", ".join(conflicts)
        )
    config.extra = {k: v for k, v in data.items() if k in _OTHER_KEYS}
    _runtime_flags(args, config.extra)
    _security_flags(args, config.extra)
    _merge_flags(args, config.extra, _REGISTRY_FLAGS)
    _ipv6_flags(args, config.extra)
    config.registry = _registry_config(config)
    from dockyard.containers.runtimes import RuntimeConfigError, Runtimes

    try:
        config.runtimes = Runtimes.from_config(config.extra)
    except RuntimeConfigError as exc:
        raise ConfigError(f"unable to configure the daemon: {exc}") from None
    if config.tlsverify:
        config.tls = True
    if not config.hosts:
        config.hosts = [DEFAULT_SOCKET]
    if config.debug:
        config.log_level = "debug"
    if config.storage_driver not in (None, "overlay2", "vfs"):
        raise ConfigError(f"unknown storage driver {config.storage_driver!r}: use overlay2 or vfs")
    return config
