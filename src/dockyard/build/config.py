"""Image config values as moby's builder writes them (pure, both worlds): the commit
comments that become ``created_by``, exposed ports, stop signals, health check durations.
"""

from __future__ import annotations

import copy
import re
import signal as _signal
from typing import Any

from dockyard.errors import InvalidParameter

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SHELL",
    "check_signal",
    "go_duration",
    "go_quote_list",
    "healthcheck_comment",
    "parse_duration",
    "parse_ports",
    "probe",
    "set_env",
]

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNITS["h"] = 3600 * 10**9
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def probe(config: dict[str, Any], cmd: list[str]) -> dict[str, Any]:
    """The container config moby commits as ``container_config`` (and compares for the
    cache): the stage's config with ``Cmd`` replaced."""
    out = copy.deepcopy(config)
    out["Cmd"] = cmd
    return out


def set_env(env: list[str], key: str, value: str) -> list[str]:
    """Replace ``key`` in a ``K=V`` list or append it, as ENV does."""
    out = [e for e in env if e.partition("=")[0] != key]
    if len(out) == len(env):
        return [*env, f"{key}={value}"]
    return [f"{key}={value}" if e.partition("=")[0] == key else e for e in env]


def go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a []string: ``["a" "b c"]``."""
    return "[" + " ".join(_go_quote(i) for i in items) + "]"


def _go_quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
    out.append('"')
    return "".join(out)


def parse_duration(text: str, flag: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``0``) in nanoseconds."""
    if text in ("0", ""):
        return 0
    pos = 0
    total = 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if not match:
            raise InvalidParameter(f'time: invalid duration "{text}" (in --{flag})')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    value = int(total)
    if 0 < value < 1_000_000:
        raise InvalidParameter(f"Interval {flag} cannot be less than 1ms")
    return value


def go_duration(ns: int) -> str:
    """Go's Duration.String() for whole numbers of ms and up (what a Dockerfile can say)."""
    if ns == 0:
        return "0s"
    parts = []
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    if hours:
        parts.append(f"{hours}h")
    if hours or minutes:
        parts.append(f"{minutes}m")
    seconds = ns / 10**9
    if seconds == int(seconds):
        parts.append(f"{int(seconds)}s")
    elif not parts and ns < 10**9:
        parts.append(f"{ns / 10**6:g}ms")
    else:
        parts.append(f"{seconds:g}s")
    return "".join(parts)


def healthcheck_comment(health: dict[str, Any]) -> str:
    """moby's ``fmt.Sprintf("HEALTHCHECK %q", runConfig.Healthcheck)``."""
    retries = int(health.get("Retries") or 0)
    return (
        "HEALTHCHECK &{"
        + go_quote_list(list(health.get("Test") or []))
        + f' "{go_duration(int(health.get("Interval") or 0))}"'
        + f' "{go_duration(int(health.get("Timeout") or 0))}"'
        + f' "{go_duration(int(health.get("StartPeriod") or 0))}"'
        + f" '\\x{retries:02x}'"
        + "}"
    )


def parse_ports(specs: list[str]) -> list[str]:
    """EXPOSE arguments to ``ExposedPorts`` keys (``80/tcp``; ranges expanded)."""
    out: list[str] = []
    for spec in specs:
        port, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid proto: {proto}")
        if ":" in port:
            raise InvalidParameter(
                f"EXPOSE {spec}: a host port cannot be given in a Dockerfile; publish it "
                "with docker run -p"
            )
        low, _, high = port.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise InvalidParameter(f"Invalid containerPort: {port}") from None
        if not (0 < first <= 65535 and 0 < last <= 65535) or last < first:
            raise InvalidParameter(f"Invalid containerPort: {port}")
        out.extend(f"{p}/{proto}" for p in range(first, last + 1))
    return out


def check_signal(value: str) -> str:
    """STOPSIGNAL's argument, checked as moby's signal.ParseSignal."""
    text = value.upper()
    if text.isdigit():
        if 0 < int(text) < 65:
            return value
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        if hasattr(_signal, name) or re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", name):
            return value
    raise InvalidParameter(f"Invalid signal: {value}")
