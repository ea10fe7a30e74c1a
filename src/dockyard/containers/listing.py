"""``GET /containers/json``: the summary shape and the list filters (pure logic)."""

from __future__ import annotations

import time
from typing import Any

from dockyard.containers.mounts import inspect_view
from dockyard.containers.record import Container
from dockyard.errors import InvalidParameter
from dockyard.filters import labels_match
from dockyard.humanize import human_duration

__all__ = ["lists_stopped", "matches", "status_text", "summary"]


def _since(rfc: str) -> float:
    import datetime

    text = rfc.rstrip("Z")
    main, _, frac = text.partition(".")
    try:
        base = datetime.datetime.fromisoformat(main).replace(tzinfo=datetime.UTC).timestamp()
    except ValueError:
        return time.time()
    return base + (float("0." + frac) if frac else 0.0)


def status_text(c: Container) -> str:
    st = c.state
    if st.Running:
        text = f"Up {human_duration(time.time() - _since(st.StartedAt))}"
        if st.Paused:
            return text + " (Paused)"
        if st.Health and st.Health.get("Status"):
            status = st.Health["Status"]
            return text + (" (health: starting)" if status == "starting" else f" ({status})")
        return text
    if st.Restarting:
        return (
            f"Restarting ({st.ExitCode}) {human_duration(time.time() - _since(st.FinishedAt))} ago"
        )
    if st.Status == "removing":
        return "Removal In Progress"
    if c.has_been_started or st.FinishedAt != "0001-01-01T00:00:00Z":
        return f"Exited ({st.ExitCode}) {human_duration(time.time() - _since(st.FinishedAt))} ago"
    return "Created"


def summary(
    c: Container, volumes: Any = None, net: Any = None, link_names: list[str] | None = None
) -> dict[str, Any]:
    """One entry of the container list; ``link_names`` are the "/parent/alias" names legacy
    links give ``c``, listed with its own in name order as moby lists them."""
    command = " ".join([c.path, *c.args])  # moby joins without quoting; the CLI quotes
    return {
        "Id": c.id,
        "Names": sorted([c.name, *(link_names or [])]),
        "Image": c.image_name,
        "ImageID": c.image_id,
        "Command": command,
        "Created": c.created_ns // 1_000_000_000,
        "Ports": net.ports_summary(c) if net is not None else [],
        "Labels": c.config.get("Labels") or {},
        "State": c.state.Status,
        "Status": status_text(c),
        "HostConfig": {
            "NetworkMode": c.host_config.get("NetworkMode") or "default",
            # API 1.46+ (the route drops it for older clients); omitted when empty
            **({"Annotations": a} if (a := c.host_config.get("Annotations")) else {}),
        },
        "NetworkSettings": {"Networks": _list_endpoints(net.view(c)) if net is not None else {}},
        "Mounts": inspect_view(c, volumes),
    }


def _list_endpoints(view: dict[str, Any]) -> dict[str, Any]:
    # moby's list reads a snapshot that keeps no aliases: Aliases is always null there
    return {name: {**ep, "Aliases": None} for name, ep in view["Networks"].items()}


def matches(
    c: Container, filters: dict[str, list[str]], service: Any, include_stopped: bool
) -> bool:
    if not include_stopped and not c.state.Running:
        return False
    if (ids := filters.get("id")) and not any(c.id.startswith(i) for i in ids):
        return False
    if (wanted := filters.get("name")) and not any(
        w.lstrip("/") in c.name.lstrip("/") for w in wanted
    ):
        return False
    if (statuses := filters.get("status")) and c.state.Status not in statuses:
        return False
    exited = filters.get("exited")
    if exited and (
        c.state.Running or not c.has_been_started or str(c.state.ExitCode) not in exited
    ):
        return False
    if not labels_match(c.config.get("Labels") or {}, filters.get("label", [])):
        return False
    if ancestors := filters.get("ancestor"):
        ok = False
        for a in ancestors:
            try:
                ok = ok or service.images.resolve(a) == c.image_id
            except Exception:  # an unknown image simply matches nothing
                pass
        if not ok:
            return False
    for key, later in (("before", False), ("since", True)):
        for ref in filters.get(key, []):
            other = service.get(ref)
            if later and c.created_ns <= other.created_ns:
                return False
            if not later and c.created_ns >= other.created_ns:
                return False
    if wanted := filters.get("health"):
        status = (c.state.Health or {}).get("Status") if c.state.Health else "none"
        if status not in wanted:
            return False
    for wanted in filters.get("volume", []):
        # moby: a volume name or a mount destination
        if not any(
            p.destination == wanted
            or (p.type == "volume" and p.source == wanted)
            or (p.type == "bind" and p.source == wanted)
            for p in c.mounts
        ):
            return False
    if (wanted := filters.get("network")) and not _on_network(c, wanted, service):
        return False
    if filters.get("publish") or filters.get("expose"):
        return _has_port(c, filters, service)
    return True


def lists_stopped(all_: bool, limit: int | None, filters: dict[str, list[str]]) -> bool:
    """Whether stopped containers are listed: moby (daemon/list.go) lists them only with
    ``all``, a positive ``limit`` or a ``status`` filter; any other filter alone (label,
    exited, since, before…) lists running containers only."""
    return all_ or (limit is not None and limit > 0) or bool(filters.get("status"))


def _on_network(c: Container, wanted: list[str], service: Any) -> bool:
    """moby: a network name, or a prefix of the network's ID."""
    networks = service.net.view(c)["Networks"] if service.net is not None else {}
    return any(
        w in networks or any((ep.get("NetworkID") or "").startswith(w) for ep in networks.values())
        for w in wanted
    )


def _port_keys(values: list[str]) -> set[str]:
    """``80``, ``80/udp``, ``8000-8002/tcp`` → ``{"80/tcp", …}`` (nat.ParsePortRange)."""
    keys = set()
    for value in values:
        ports, _, proto = value.partition("/")
        start, _, end = ports.partition("-")
        try:
            first, last = int(start), int(end or start)
        except ValueError:
            raise InvalidParameter(f"invalid port filter: {value}") from None
        keys.update(f"{p}/{proto or 'tcp'}" for p in range(first, last + 1))
    return keys


def _has_port(c: Container, filters: dict[str, list[str]], service: Any) -> bool:
    published = _port_keys(filters.get("publish", []))
    exposed = _port_keys(filters.get("expose", []))
    ports = service.net.ports_summary(c) if service.net is not None else []
    return any(
        f"{p.get('PublicPort', 0)}/{p['Type']}" in published
        or f"{p['PrivatePort']}/{p['Type']}" in exposed
        for p in ports
    )
