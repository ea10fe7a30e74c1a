"""Docker's legacy container links (pure logic over container records).

On the default bridge, ``--link name:alias`` gives the linking container (the parent) the
target's (the child's) address in ``/etc/hosts`` and a set of ``ALIAS_*`` environment
variables, and gives the target one more name, ``/parent/alias``, listed by ``docker ps``
and accepted wherever a container name is.  A parent keeps its links in
``Container.links`` (full link name → target id), so they survive daemon restarts and
follow a rename of either side.  On user-defined networks a link is only an endpoint-scoped
DNS alias (``EndpointSettings.Links``, kept verbatim as moby keeps it): see
``networking.py``.

The exact strings follow moby 20.10: ``opts.ParseLink``, ``daemon/links/links.go``
(including its port-range grouping, which joins contiguous numbers whatever their
protocol) and ``daemon/container_operations.go`` (the hosts entry).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any

from dockyard.errors import Internal

__all__ = ["env", "full_name", "hosts_names", "parse", "replace_or_append", "spec"]


def parse(value: str) -> tuple[str, str]:
    """``name:alias`` (or ``name``, or the stored ``/name:/parent/alias``) → (name, alias).

    moby answers a malformed spec with a plain error, so a 500."""
    if not isinstance(value, str):
        raise Internal(f"bad format for links: {value!r}")
    if value == "":
        raise Internal("empty string specified for links")
    parts = value.split(":")
    if len(parts) > 2:
        raise Internal(f"bad format for links: {value}")
    if len(parts) == 1:
        return value, value
    if parts[0].startswith("/"):  # the form inspect shows: /target:/parent/alias
        return parts[0][1:], posixpath.basename(parts[1])
    return parts[0], parts[1]


def full_name(parent_name: str, alias: str) -> str:
    """The target's extra name, ``/parent/alias`` (Go's path.Join: cleaned)."""
    return posixpath.normpath(posixpath.join(parent_name, alias))


def spec(link_name: str, target_name: str) -> str:
    """One ``HostConfig.Links`` entry as inspect shows it: ``/target:/parent/alias``."""
    return f"{target_name}:{link_name}"


def hosts_names(link_name: str, target_name: str, target_hostname: str) -> str:
    """The names of the target's line in the parent's /etc/hosts: the alias, the target's
    hostname and, when it differs from the alias, its name."""
    alias = posixpath.basename(link_name)
    names = f"{alias} {target_hostname}"
    if alias != target_name.lstrip("/"):
        names += f" {target_name.lstrip('/')}"
    return names


def _port_key(port: str) -> tuple[int, int, str]:
    number, _, proto = port.partition("/")
    proto = proto or "tcp"
    return int(number), 0 if proto == "tcp" else 1, proto


def _contiguous_end(ports: list[tuple[int, str]], index: int) -> int:
    """moby's nextContiguous: the last index of a run of consecutive numbers from ``index``
    (protocols are not compared, as in moby)."""
    value = ports[index][0]
    for i in range(index + 1, len(ports)):
        if ports[i][0] > value + 1:
            return i - 1
        value += 1
    return len(ports) - 1


def env(
    link_name: str, child_ip: str, child_env: Iterable[str], exposed: Iterable[str]
) -> list[str]:
    """The variables a link gives the parent, in moby's order (duplicates included: the
    runtime keeps the first position and the last value, as runc does)."""
    alias = posixpath.basename(link_name).upper().replace("-", "_")
    sorted_ports = sorted(exposed, key=_port_key)
    ports = [(_port_key(p)[0], _port_key(p)[2]) for p in sorted_ports]
    out: list[str] = []
    if ports:
        number, proto = ports[0]
        out.append(f"{alias}_PORT={proto}://{child_ip}:{number}")
    i = 0
    while i < len(ports):
        j = _contiguous_end(ports, i)
        if j > i + 1:
            number, proto = ports[i]
            end_number, end_proto = ports[j]
            prefix = f"{alias}_PORT_{number}_{proto.upper()}"
            end_prefix = f"{alias}_PORT_{number}_{end_proto.upper()}"
            out += [
                f"{prefix}_START={proto}://{child_ip}:{number}",
                f"{prefix}_ADDR={child_ip}",
                f"{prefix}_PROTO={proto}",
                f"{prefix}_PORT_START={number}",
                f"{end_prefix}_END={end_proto}://{child_ip}:{end_number}",
                f"{end_prefix}_PORT_END={end_number}",
            ]
            i = j + 1
        else:
            i += 1
    for number, proto in ports:
        prefix = f"{alias}_PORT_{number}_{proto.upper()}"
        out += [
            f"{prefix}={proto}://{child_ip}:{number}",
            f"{prefix}_ADDR={child_ip}",
            f"{prefix}_PORT={number}",
            f"{prefix}_PROTO={proto}",
        ]
    out.append(f"{alias}_NAME={link_name}")
    for item in child_env:
        key, eq, value = item.partition("=")
        if not eq or key in ("HOME", "PATH"):  # moby: build-time noise, not the target's own
            continue
        out.append(f"{alias}_ENV_{key}={value}")
    return out


def replace_or_append(defaults: list[str], overrides: Iterable[Any]) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: an override replaces the last default of its key in
    place or is appended; a bare ``KEY`` (no ``=``) unsets it."""
    out = list(defaults)
    where = {item.partition("=")[0]: i for i, item in enumerate(out)}
    for value in overrides:
        value = str(value)
        key, eq, _ = value.partition("=")
        if not eq:
            if key in where:
                out[where[key]] = ""
            continue
        if key in where:
            out[where[key]] = value
        else:
            where[key] = len(out)
            out.append(value)
    return [item for item in out if item != ""]
