"""How a container's network looks from the API (pure views over ``Container.net``): the
``NetworkSettings`` of inspect and the ``Ports`` of the container list, as moby shows them.
The live plumbing is in ``networking.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dockyard.errors import NotFound

if TYPE_CHECKING:
    from dockyard.containers.record import Container

__all__ = ["endpoint_view", "mode_of", "ports_summary", "settings"]


def mode_of(c_or_hc: Any) -> str:
    """The network mode, ``default`` spelled ``bridge`` as moby does."""
    hc = c_or_hc if isinstance(c_or_hc, dict) else c_or_hc.host_config
    mode = hc.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def endpoint_view(ep: dict[str, Any]) -> dict[str, Any]:
    """An endpoint without dockyard's private ``_`` keys."""
    return {k: v for k, v in ep.items() if not k.startswith("_")}


def settings(c: Container, network_id: Callable[[str], str]) -> dict[str, Any]:
    """``NetworkSettings`` of container inspect, as moby shows it."""
    net = c.net or {}
    if c.state.Running:
        networks = {name: endpoint_view(ep) for name, ep in (net.get("networks") or {}).items()}
    else:  # what it will join: moby shows the configured endpoints without addresses
        networks = {
            name: _unattached(name, cfg, network_id)
            for name, cfg in (net.get("requested") or {}).items()
        }
    mode = mode_of(c)
    if mode in ("host", "none") and not networks:
        networks = {mode: _unattached(mode, {}, network_id, c.state.Running)}
    default = networks.get("bridge") or {}
    ports = net.get("ports") if c.state.Running else {}
    return {
        "Bridge": "",
        "SandboxID": c.id if net.get("sandbox") else "",
        "SandboxKey": net.get("sandbox") or "",
        "Ports": ports or {},
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": default.get("EndpointID", ""),
        "Gateway": default.get("Gateway", ""),
        "GlobalIPv6Address": default.get("GlobalIPv6Address", ""),
        "GlobalIPv6PrefixLen": default.get("GlobalIPv6PrefixLen", 0),
        "IPAddress": default.get("IPAddress", ""),
        "IPPrefixLen": default.get("IPPrefixLen", 0),
        "IPv6Gateway": default.get("IPv6Gateway", ""),
        "MacAddress": default.get("MacAddress", ""),
        "Networks": networks,
    }


def _unattached(
    name: str, cfg: dict[str, Any], network_id: Callable[[str], str], attached: bool = False
) -> dict[str, Any]:
    nid = ""  # moby shows a NetworkID only once the endpoint exists
    if attached:
        try:
            nid = network_id(name)
        except NotFound:
            pass
    return {
        "IPAMConfig": cfg.get("IPAMConfig"),
        "Links": cfg.get("Links"),
        "Aliases": cfg.get("Aliases"),
        "MacAddress": cfg.get("MacAddress") or "",
        "DriverOpts": None,
        "GwPriority": 0,
        "NetworkID": nid,
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


def ports_summary(c: Container) -> list[dict[str, Any]]:
    """``Ports`` in the container list, as moby gives it."""
    out: list[dict[str, Any]] = []
    if not c.state.Running:
        return out
    for key, binds in ((c.net or {}).get("ports") or {}).items():
        port, _, proto = key.partition("/")
        if not binds:
            out.append({"PrivatePort": int(port), "Type": proto})
            continue
        for b in binds:
            out.append(
                {
                    "IP": b["HostIp"],
                    "PrivatePort": int(port),
                    "PublicPort": int(b["HostPort"]),
                    "Type": proto,
                }
            )
    return out
