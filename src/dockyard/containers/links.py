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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from dockyard.containers.netview import mode_of
from dockyard.errors import Internal, InvalidParameter, NotFound

if TYPE_CHECKING:
    from dockyard.containers.record import Container

__all__ = [
    "env",
    "full_name",
    "hosts_entries",
    "hosts_names",
    "parse",
    "register",
    "replace_or_append",
    "spec",
    "start_env",
]


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


def register(
    parent: str,
    hc: dict[str, Any],
    get: Callable[[str], Container],
    taken: set[str],
) -> dict[str, str]:
    """A new container's ``HostConfig.Links`` → its link records ("/parent/alias" → target
    id).  As moby does: a missing target is a 400; a link whose name is ``taken`` (by a
    container or another link) is skipped; on a user-defined network HostConfig's links
    are ignored (the endpoint's count there)."""
    specs = hc.get("Links")
    if not specs:
        return {}
    if not isinstance(specs, list):
        raise InvalidParameter("HostConfig.Links must be an array of strings")
    mode = mode_of(hc)
    if mode == "host" or mode.startswith("container:"):
        kind = "host type networking" if mode == "host" else "container type network"
        raise InvalidParameter(
            f"conflicting options: {kind} can't be used with links. "
            "This would result in undefined behavior"
        )
    if mode not in ("bridge", "none"):
        return {}
    made: dict[str, str] = {}
    for item in specs:
        name, alias = parse(item)
        if not name:
            raise InvalidParameter('could not get container for : invalid name or ID supplied: ""')
        try:
            target = get(name)
        except NotFound as exc:
            raise InvalidParameter(f"could not get container for {name}: {exc.message}") from exc
        full = full_name(parent, alias)
        if full in taken or full in made or full == parent:
            continue  # moby logs "name is reserved" and goes on without this link
        made[full] = target.id
    return made


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


def start_env(c: Container, children: list[tuple[str, Container]]) -> list[str]:
    """Check ``c``'s links as moby does before a start or an exec (plain errors, so 500s)
    and return the variables its links on the default bridge give it."""
    requested = c.net.get("requested") or {}
    for cfg in requested.values():
        for item in cfg.get("Links") or []:
            parse(item)  # moby fails the endpoint's join on a malformed one
    if "bridge" not in requested:
        return []
    for _, child in children:
        if "bridge" not in (child.net.get("requested") or {}):
            raise Internal(
                f"Cannot link to {child.name}, as it does not belong to the default network"
            )
    out: list[str] = []
    for link_name, child in children:
        if not child.state.Running:
            raise Internal(f"Cannot link to a non running container: {child.name} AS {link_name}")
        ep = (child.net.get("networks") or {}).get("bridge") or {}
        out += env(
            link_name,
            ep.get("IPAddress") or "",
            child.config.get("Env") or [],
            child.config.get("ExposedPorts") or {},
        )
    return out


def hosts_entries(children: list[tuple[str, Container]]) -> list[tuple[str, str]]:
    """The parent's /etc/hosts records (names, address) for its running linked targets."""
    out: list[tuple[str, str]] = []
    for link_name, child in children:
        ep = (child.net.get("networks") or {}).get("bridge") or {}
        names = hosts_names(link_name, child.name, child.config.get("Hostname") or child.id[:12])
        out += [(names, ep[k]) for k in ("IPAddress", "GlobalIPv6Address") if ep.get(k)]
    return out


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
