"""Linux bridge and veth plumbing over netlink (blocking world; pyroute2, never ``ip``).

The data path of Docker's bridge driver (moby ``libnetwork/drivers/bridge``):
one Linux bridge per network holding the gateway address(es); per container a veth pair,
the host end enslaved to the bridge, the other end created directly inside the container's
network namespace as ``eth0`` with its MAC, addresses and default route(s).

Host settings ``ensure_bridge`` makes (what dockerd makes too; documented because they are
global):
- ``net.ipv4.ip_forward = 1`` so containers reach beyond the bridge (and
  ``net.ipv6.conf.all.forwarding = 1`` when the bridge has an IPv6 gateway and
  ``forwarding`` is asked; note the kernel then ignores router advertisements on hosts
  that configure IPv6 by SLAAC);
- ``net.bridge.bridge-nf-call-iptables`` / ``-ip6tables = 1`` when br_netfilter is
  present, so traffic between containers on one bridge crosses iptables' FORWARD chain
  (needed for ``icc=false`` and for DNAT of published ports between containers); when
  the module is absent this is skipped, not an error.

Every function is idempotent as restarts need it: ensure/delete/detach of what already
is (or is not) there succeeds.  Netlink failures become ``dockyard.errors`` (``Conflict``
when a name is taken, ``NotFound`` for a missing bridge, ``Internal`` otherwise).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.errors import Conflict, Internal, NotFound
from dockyard.network import netns

if TYPE_CHECKING:
    from pyroute2 import IPRoute

__all__ = [
    "Interface",
    "attach",
    "delete_bridge",
    "detach",
    "ensure_bridge",
    "interfaces",
    "isolate_ipv6",
    "mac_for",
    "sync_loopback_ipv6",
    "veth_name",
]

_EEXIST, _ENODEV = 17, 19
_IFA_F_NODAD = 0x02  # the gateway is ours alone: skip duplicate detection (no "tentative")
_AF_INET6 = 10
_BRIDGE_MODE_HAIRPIN = 1
# dockerd gives every IPv6 bridge this link-local address too (moby libnetwork bridge
# ``setupBridgeIPv6``), so it is the same well-known next hop on every network.
BRIDGE_LINK_LOCAL = ("fe80::1", 64)


@dataclass(frozen=True, slots=True)
class Interface:
    """A link as seen in one namespace; ``addresses`` are CIDRs (``10.0.0.2/24``)."""

    name: str
    index: int
    mac: str
    mtu: int
    up: bool
    addresses: tuple[str, ...]


def veth_name() -> str:
    """A fresh host-side veth name like Docker's: ``veth`` + 7 hex digits (11 < IFNAMSIZ)."""
    return "veth" + secrets.token_hex(4)[:7]


def mac_for(ip: str | None) -> str:
    """Docker's container MAC: ``02:42`` and the four bytes of the IPv4 address.

    Locally administered and unicast (bit 1 of the first byte set, bit 0 clear); random
    after ``02:42`` when there is no IPv4 address.
    """
    if ip:
        addr = ipaddress.ip_address(ip)
        if addr.version == 4:
            tail = addr.packed
        else:
            tail = secrets.token_bytes(4)
    else:
        tail = secrets.token_bytes(4)
    return ":".join(f"{b:02x}" for b in b"\x02\x42" + tail)


@contextmanager
def _rtnl() -> Iterator[IPRoute]:
    from pyroute2 import IPRoute  # heavy; only network set-up needs it

    with IPRoute(groups=0) as ipr:
        yield ipr


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _kind(ipr: IPRoute, index: int) -> str | None:
    kind = ipr.get_links(index)[0].get(("linkinfo", "kind"))
    return kind if isinstance(kind, str) else None


def _errno(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _netlink_errors() -> type[Exception]:
    from pyroute2 import NetlinkError

    return NetlinkError


def _sysctl(key: str, value: str) -> bool:
    """Write /proc/sys/<key> unless it already holds ``value``; False if it does not exist."""
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, encoding="ascii") as f:
            if f.read().strip() == value:
                return True
        with open(path, "w", encoding="ascii") as f:
            f.write(value)
    except FileNotFoundError:
        return False
    return True


def _split(cidr: str) -> tuple[str, int, int]:
    iface = ipaddress.ip_interface(cidr)
    return str(iface.ip), iface.network.prefixlen, iface.version


def ensure_bridge(
    name: str, gateway_cidrs: Sequence[str], mtu: int = 1500, forwarding: bool = True
) -> None:
    """Create (or fix up) bridge ``name``: up, ``mtu``, exactly these global gateway addresses.

    ``gateway_cidrs`` are the bridge's own addresses with the subnets' prefix lengths
    (``["172.18.0.1/16", "fd00:1::1/64"]``), plus ``fe80::1/64`` when one is IPv6; other
    addresses are removed, except the kernel's own link-local ones.  Also makes the host settings listed in the module doc (IPv4
    forwarding only when ``forwarding``).  ``Conflict`` if ``name`` is not a bridge.
    """
    NetlinkError = _netlink_errors()
    wanted = {_split(c)[:2] for c in gateway_cidrs}
    has_v6 = any(_split(c)[2] == 6 for c in gateway_cidrs)
    if has_v6:
        wanted.add(BRIDGE_LINK_LOCAL)
    try:
        with _rtnl() as ipr:
            idx = _index(ipr, name)
            if idx is None:
                try:
                    ipr.link("add", ifname=name, kind="bridge")
                except NetlinkError as exc:
                    if _errno(exc) != _EEXIST:
                        raise
                idx = _index(ipr, name)
                if idx is None:
                    raise Internal(f"bridge {name} vanished while being created")
            elif _kind(ipr, idx) != "bridge":
                raise Conflict(f"{name} exists and is not a bridge: choose another bridge name")
            if has_v6:
                _sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "0")
            ipr.link("set", index=idx, mtu=mtu, state="up")
            present = set()
            for msg in ipr.get_addr(index=idx):
                key = (str(ipaddress.ip_address(msg.get("IFA_ADDRESS"))), msg["prefixlen"])
                if key in wanted:
                    present.add(key)
                elif key == BRIDGE_LINK_LOCAL or not ipaddress.ip_address(key[0]).is_link_local:
                    ipr.addr("del", index=idx, address=key[0], prefixlen=key[1])
            for address, prefixlen in sorted(wanted - present):
                ipr.addr(
                    "add", index=idx, address=address, prefixlen=prefixlen, IFA_FLAGS=_IFA_F_NODAD
                )
    except NetlinkError as exc:
        raise Internal(f"setting up bridge {name}: {exc}") from exc
    if forwarding:
        _sysctl("net.ipv4.ip_forward", "1")
        if has_v6:
            _sysctl("net.ipv6.conf.all.forwarding", "1")
    _sysctl("net.bridge.bridge-nf-call-iptables", "1")
    _sysctl("net.bridge.bridge-nf-call-ip6tables", "1")


def delete_bridge(name: str) -> None:
    """Delete bridge ``name`` (its veths are only unenslaved); a missing bridge is fine.

    ``Conflict`` if ``name`` is some other kind of link: it is never deleted.
    """
    _delete_link(name, "bridge")


def _delete_link(name: str, kind: str) -> None:
    """Delete link ``name`` if it is of ``kind``; gone already is fine, another kind a Conflict."""
    NetlinkError = _netlink_errors()
    try:
        with _rtnl() as ipr:
            idx = _index(ipr, name)
            if idx is not None:
                if _kind(ipr, idx) != kind:
                    raise Conflict(f"{name} is not a {kind}: not deleting it")
                ipr.link("del", index=idx)
    except NetlinkError as exc:
        if _errno(exc) != _ENODEV:
            raise Internal(f"deleting {kind} {name}: {exc}") from exc


def attach(
    netns_path: str,
    bridge: str,
    host_ifname: str,
    ifname: str = "eth0",
    addresses: Sequence[str] = (),
    gateways: Sequence[str] = (),
    mac: str | None = None,
    mtu: int = 1500,
    default_route: bool = True,
    hairpin: bool = False,
) -> str:
    """Connect the namespace at ``netns_path`` to ``bridge``; return the MAC it got.

    Makes a veth pair whose peer is born inside the namespace as ``ifname`` (no rename, no
    name clash on the host), enslaves ``host_ifname`` to the bridge, then inside: MAC
    (``mac`` or ``mac_for`` the first IPv4 address), ``addresses`` (CIDRs), up, and a
    default route via each of ``gateways`` when ``default_route`` (Docker sets it on
    ``--internal`` networks too; the firewall is what isolates them).  ``hairpin`` turns
    on hairpin mode on the bridge port, which Docker does when the userland proxy is off so
    a container can reach itself through a published port.  On failure nothing is left.
    """
    NetlinkError = _netlink_errors()
    ipv4 = next((a.split("/")[0] for a in addresses if _split(a)[2] == 4), None)
    mac = mac or mac_for(ipv4)
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _rtnl() as ipr:
            br = _index(ipr, bridge)
            if br is None:
                raise NotFound(f"bridge {bridge} not found")
            try:
                ipr.link(
                    "add",
                    ifname=host_ifname,
                    kind="veth",
                    mtu=mtu,
                    peer={"ifname": ifname, "net_ns_fd": fd, "address": mac, "mtu": mtu},
                )
            except NetlinkError as exc:
                if _errno(exc) == _EEXIST:
                    raise Conflict(
                        f"cannot create {host_ifname} (host) / {ifname} (in {netns_path}): "
                        "an interface of that name exists"
                    ) from exc
                raise
            try:
                host = _index(ipr, host_ifname)
                ipr.link("set", index=host, master=br, state="up")
                if hairpin:
                    ipr.brport("set", index=host, mode=_BRIDGE_MODE_HAIRPIN)
                netns.run(
                    netns_path,
                    lambda: _configure_inside(ifname, addresses, gateways, default_route),
                )
            except BaseException:
                detach(host_ifname)
                raise
    except NetlinkError as exc:
        raise Internal(f"attaching {netns_path} to bridge {bridge}: {exc}") from exc
    finally:
        os.close(fd)
    return mac


def _configure_inside(
    ifname: str, addresses: Sequence[str], gateways: Sequence[str], default_route: bool
) -> None:
    if any(_split(cidr)[2] == 6 for cidr in addresses):  # see isolate_ipv6
        _sysctl(f"net.ipv6.conf.{ifname}.disable_ipv6", "0")
        _sysctl("net.ipv6.conf.lo.disable_ipv6", "0")
    with _rtnl() as ipr:
        idx = _index(ipr, ifname)
        for cidr in addresses:
            address, prefixlen, version = _split(cidr)
            # IPv6: the address is the IPAM's, unique by construction; DAD would only delay
            # it ("tentative") past the container's start.
            flags = _IFA_F_NODAD if version == 6 else 0
            ipr.addr("add", index=idx, address=address, prefixlen=prefixlen, IFA_FLAGS=flags)
        ipr.link("set", index=idx, state="up")
        if default_route:
            # The route names the interface: a link-local gateway (fe80::/10) is reachable
            # only through one, and the kernel refuses it (EINVAL) without.
            for gw in gateways:
                if ipaddress.ip_address(gw).version == 4:
                    ipr.route("add", dst="0.0.0.0/0", gateway=gw, oif=idx)
                else:
                    ipr.route("add", dst="::/0", gateway=gw, oif=idx, family=_AF_INET6)


def isolate_ipv6(netns_path: str) -> None:
    """IPv6 off in a new container namespace until an interface gets an IPv6 address.

    moby 20.10 (libnetwork osl ``NewSandbox``) writes ``all.disable_ipv6=1`` in every
    container namespace it makes (which also sets ``default`` and ``lo``), then enables
    IPv6 per interface that has an IPv6 address, and on ``lo`` while one does
    (``checkLoV6``): containers on IPv4-only networks have no ``::1`` and no ``fe80::``.
    A kernel without IPv6 has nothing to turn off.
    """
    netns.run(netns_path, lambda: _sysctl("net.ipv6.conf.all.disable_ipv6", "1"))


def sync_loopback_ipv6(netns_path: str) -> None:
    """After an interface left the namespace: ``lo`` keeps IPv6 only while another interface
    has it (moby ``checkLoV6``)."""

    def sync() -> None:
        base = "/proc/sys/net/ipv6/conf"
        try:
            names = [n for n in os.listdir(base) if n not in ("all", "default", "lo")]
        except FileNotFoundError:
            return
        enabled = False
        for name in names:
            try:
                with open(f"{base}/{name}/disable_ipv6", encoding="ascii") as f:
                    enabled = enabled or f.read().strip() == "0"
            except OSError:
                continue  # gone meanwhile
        _sysctl("net.ipv6.conf.lo.disable_ipv6", "0" if enabled else "1")

    netns.run(netns_path, sync)


def detach(host_ifname: str) -> None:
    """Delete the veth pair by its host end (the namespace end goes with it); idempotent.

    ``Conflict`` if ``host_ifname`` is not a veth: it is never deleted.
    """
    _delete_link(host_ifname, "veth")


def interfaces(netns_path: str | None = None) -> list[Interface]:
    """The links of the namespace at ``netns_path`` (the caller's own when None)."""

    def read() -> list[Interface]:
        with _rtnl() as ipr:
            addrs: dict[int, list[str]] = {}
            for msg in ipr.get_addr():
                addrs.setdefault(msg["index"], []).append(
                    f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}"
                )
            return [
                Interface(
                    name=link.get("IFLA_IFNAME"),
                    index=link["index"],
                    mac=link.get("IFLA_ADDRESS") or "",
                    mtu=link.get("IFLA_MTU") or 0,
                    up=bool(link["flags"] & 1),  # IFF_UP
                    addresses=tuple(addrs.get(link["index"], [])),
                )
                for link in ipr.get_links()
            ]

    return read() if netns_path is None else netns.run(netns_path, read)
