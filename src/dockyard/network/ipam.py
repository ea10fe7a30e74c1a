"""IP address management (pure logic, either world): subnets, address pools, allocation.

What moby's libnetwork ``ipam`` and ``ipamutils`` do for local-scope networks, without I/O:

- ``parse_subnet``/``parse_address``/``validate`` check user input (``--subnet``,
  ``--gateway``, ``--ip-range``) with Docker's messages;
- ``parse_pools`` reads daemon.json's ``default-address-pools``; ``DEFAULT_POOLS`` is
  dockerd's default list, whose first subnet (172.17.0.0/16) is the default bridge's;
- ``next_subnet`` picks the first pool subnet that overlaps nothing in use (the caller
  passes every subnet in use: other networks' and, if it wants, the host's routes);
- ``Allocator`` hands out the addresses of one subnet: lowest free first (local
  networks do not allocate serially in Docker, so a freed address is reused), IPv4
  network and broadcast addresses and the gateway reserved, dynamic allocation limited to
  ``ip_range``.  It persists as a JSON-able dict.

IPv6 works throughout: nothing enumerates a subnet's addresses, allocation walks up from
the start of the range past the (few) allocated addresses.

Errors and their statuses follow moby (``libnetwork/ipamapi/contract.go``,
``api/types/network/ipam.go``): malformed input is ``InvalidParameter``; an overlapping
pool and an address already taken are ``Forbidden`` (moby's ``types.ForbiddenErrorf``); an
exhausted network is ``Unavailable`` (moby's ``types.UnavailableErrorf``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from dockyard.errors import Forbidden, InvalidParameter, Unavailable

__all__ = [
    "DEFAULT_POOLS",
    "Address",
    "Allocator",
    "Network",
    "Pool",
    "check_free",
    "mac_address_ipv6",
    "next_subnet",
    "parse_address",
    "parse_pools",
    "parse_subnet",
    "validate",
]

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class Pool:
    """One ``default-address-pools`` entry: ``base`` split into subnets of prefix ``size``."""

    base: Network
    size: int

    def to_dict(self) -> dict[str, str | int]:
        return {"base": str(self.base), "size": self.size}


# dockerd's defaults (libnetwork/ipamutils): 172.17-172.31 as /16s, then 192.168/16 as /20s.
DEFAULT_POOLS: tuple[Pool, ...] = tuple(
    [Pool(IPv4Network(f"172.{n}.0.0/16"), 16) for n in range(17, 32)]
    + [Pool(IPv4Network("192.168.0.0/16"), 20)]
)


def parse_subnet(text: str) -> Network:
    """A CIDR subnet with no host bits set (``--subnet``, ``--ip-range``, a pool base)."""
    try:
        prefix = ipaddress.ip_interface(text.strip())
    except ValueError as exc:
        raise InvalidParameter(f"invalid subnet {text}: invalid CIDR block notation") from exc
    if "/" not in text:
        raise InvalidParameter(f"invalid subnet {text}: invalid CIDR block notation")
    if prefix.network.network_address != prefix.ip:
        raise InvalidParameter(f"invalid subnet {text}: it should be {prefix.network}")
    return prefix.network


def parse_address(text: str) -> Address:
    """One IP address (``--gateway``, ``--ip``)."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise InvalidParameter(f"invalid address {text}") from exc


def _family(version: int) -> str:
    return "IPv4" if version == 4 else "IPv6"


def validate(subnet: str, gateway: str = "", ip_range: str = "") -> None:
    """Check one IPAM config entry as ``docker network create`` does (moby ValidateIPAM)."""
    net = parse_subnet(subnet)
    if ip_range:
        try:
            rng = parse_subnet(ip_range)
        except InvalidParameter as exc:
            raise InvalidParameter(str(exc).replace("invalid subnet", "invalid ip-range")) from exc
        if rng.version != net.version:
            raise InvalidParameter(
                f"invalid ip-range {ip_range}: parent subnet is an {_family(net.version)} block"
            )
        if rng.prefixlen < net.prefixlen:
            raise InvalidParameter(
                f"invalid ip-range {ip_range}: CIDR block is bigger than its parent subnet {net}"
            )
        if not rng.subnet_of(net):  # type: ignore[arg-type]
            raise InvalidParameter(
                f"invalid ip-range {ip_range}: parent subnet {net} doesn't contain ip-range"
            )
    if gateway:
        _check_in(net, gateway, "gateway")


def _check_in(net: Network, text: str, what: str) -> Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidParameter(f"invalid {what} {text}: invalid address") from exc
    if addr.version != net.version:
        raise InvalidParameter(
            f"invalid {what} {text}: parent subnet is an {_family(net.version)} block"
        )
    if addr not in net:
        raise InvalidParameter(
            f"invalid {what} {text}: parent subnet {net} doesn't contain this address"
        )
    return addr


def parse_pools(spec: Sequence[Mapping[str, object]] | None) -> list[Pool]:
    """daemon.json ``default-address-pools`` (``[{"base": CIDR, "size": N}]``); None → defaults."""
    if spec is None:
        return list(DEFAULT_POOLS)
    pools: list[Pool] = []
    for entry in spec:
        base, size = entry.get("base"), entry.get("size")
        try:
            net = ipaddress.ip_network(str(base), strict=False)
        except ValueError as exc:
            raise InvalidParameter(f'invalid base pool "{base}": {exc}') from exc
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or not (net.prefixlen <= size <= net.max_prefixlen)
        ):
            raise InvalidParameter(f"invalid pools size: {size}")
        pools.append(Pool(net, size))
    return pools


def check_free(subnet: Network, used: Iterable[Network]) -> None:
    """Raise ``Forbidden`` when ``subnet`` overlaps one in use (user-chosen ``--subnet``)."""
    for other in used:
        if other.version == subnet.version and subnet.overlaps(other):  # type: ignore[arg-type]
            raise Forbidden(
                "invalid pool request: Pool overlaps with other one on this address space"
            )


def next_subnet(pools: Sequence[Pool], used: Iterable[Network], version: int = 4) -> Network:
    """The first subnet of the pools (in order) of IP ``version`` that overlaps no ``used`` one.

    Skips past each overlapping subnet instead of enumerating, so an IPv6 pool split into
    2^56 /64s costs as much as a small one.
    """
    taken = sorted((u for u in used if u.version == version), key=lambda n: int(n.network_address))
    for pool in pools:
        if pool.base.version != version:
            continue
        step = 1 << (pool.base.max_prefixlen - pool.size)
        start, end = int(pool.base.network_address), int(pool.base.broadcast_address)
        while start + step - 1 <= end:
            last = start + step - 1
            blocker = next(
                (
                    u
                    for u in taken
                    if int(u.network_address) <= last and int(u.broadcast_address) >= start
                ),
                None,
            )
            if blocker is None:
                return ipaddress.ip_network((start, pool.size))
            # next aligned candidate after the blocker's (or this candidate's) end
            past = max(int(blocker.broadcast_address), last) + 1
            start = (past + step - 1) // step * step
    raise InvalidParameter("all predefined address pools have been fully subnetted")


# dockerd derives the default bridge's IPv6 addresses from the MAC when the subnet leaves
# room for it (moby daemon_unix.go initBridgeDriver: ``deferIPv6Alloc = ones <= 80``).
MAC_DERIVED_MAX_PREFIX = 80


def mac_address_ipv6(subnet: Network, mac: str) -> IPv6Address:
    """The address dockerd gives a container on the default bridge: the subnet's prefix with
    the 48-bit MAC as the last six bytes (moby libnetwork bridge ``CreateEndpoint``), e.g.
    ``fd00::/64`` + ``02:42:ac:11:00:02`` -> ``fd00::242:ac11:2``."""
    if subnet.version != 6 or subnet.prefixlen > MAC_DERIVED_MAX_PREFIX:
        raise InvalidParameter(
            f"Cannot self generate an IPv6 address on network {subnet}: At least 48 host bits "
            "are needed."
        )
    try:
        raw = bytes(int(b, 16) for b in mac.split(":"))
    except ValueError:
        raw = b""
    if len(raw) != 6:
        raise InvalidParameter(f"invalid MAC address {mac!r}")
    return IPv6Address(int(subnet.network_address) | int.from_bytes(raw, "big"))


class Allocator:
    """The addresses of one network's subnet: who holds what, and the next one to give.

    ``gateway`` defaults to the first host address and is never handed out; IPv4's network
    and broadcast addresses are reserved (for prefixes up to /30).  ``allocate`` gives the
    lowest free address of ``ip_range`` (the whole subnet by default); ``allocate_static``
    accepts any free address of the subnet, inside ``ip_range`` or not, as Docker does
    (``--ip-range`` bounds only dynamic allocation).  Not thread-safe: the caller serialises.
    """

    __slots__ = ("_allocated", "_first", "_last", "gateway", "id", "ip_range", "name", "subnet")

    def __init__(
        self,
        subnet: Network | str,
        gateway: Address | str | None = None,
        ip_range: Network | str | None = None,
        allocated: Iterable[Address | str] = (),
        name: str = "",
        id: str = "",
    ) -> None:
        self.subnet: Network = parse_subnet(subnet) if isinstance(subnet, str) else subnet
        self.name, self.id = name, id
        if isinstance(ip_range, str):
            validate(str(self.subnet), ip_range=ip_range)
            ip_range = parse_subnet(ip_range)
        self.ip_range: Network | None = ip_range
        self._first, self._last = self._host_bounds(self.subnet)
        if gateway is None or gateway == "":
            self.gateway: Address = ipaddress.ip_address(self._first)
        else:
            self.gateway = _check_in(self.subnet, str(gateway), "gateway")
        self._allocated: set[Address] = set()
        for addr in allocated:
            self._allocated.add(ipaddress.ip_address(addr))

    @staticmethod
    def _host_bounds(net: Network) -> tuple[int, int]:
        first, last = int(net.network_address), int(net.broadcast_address)
        if net.version == 4 and net.prefixlen <= 30:
            return first + 1, last - 1
        if net.version == 6 and net.prefixlen <= 126:
            return first + 1, last  # the subnet-router anycast address is reserved
        return first, last

    @property
    def allocated(self) -> frozenset[Address]:
        """Addresses handed out (the gateway is not among them)."""
        return frozenset(self._allocated)

    def _taken(self, addr: Address) -> bool:
        return addr in self._allocated or addr == self.gateway

    def allocate(self) -> Address:
        """The lowest free address of the range; ``Unavailable`` when there is none."""
        rng = self.ip_range or self.subnet
        lo = max(int(rng.network_address), self._first)
        hi = min(int(rng.broadcast_address), self._last)
        # Only allocated addresses (and the gateway) can block: walk past them in order.
        blockers = sorted(int(a) for a in self._allocated | {self.gateway} if lo <= int(a) <= hi)
        candidate = lo
        for b in blockers:
            if b > candidate:
                break
            candidate = b + 1
        if candidate > hi:
            label = f"{self.name} ({self.id})" if self.name or self.id else str(self.subnet)
            raise Unavailable(
                f"no available {_family(self.subnet.version)} addresses on this network's "
                f"address pools: {label}"
            )
        addr = ipaddress.ip_address(candidate)
        self._allocated.add(addr)
        return addr

    def allocate_static(self, ip: Address | str) -> Address:
        """Claim ``ip`` (``--ip``): ``InvalidParameter`` outside the subnet, ``Forbidden`` if taken."""
        addr = parse_address(ip) if isinstance(ip, str) else ip
        if addr.version != self.subnet.version or addr not in self.subnet:
            raise InvalidParameter(
                f"Invalid address {addr}: It does not belong to any of this network's subnets"
            )
        if self._taken(addr) or not (self._first <= int(addr) <= self._last):
            raise Forbidden("Address already in use")
        self._allocated.add(addr)
        return addr

    def release(self, ip: Address | str) -> None:
        """Give ``ip`` back; releasing a free address is a no-op (release is idempotent)."""
        self._allocated.discard(ipaddress.ip_address(ip))

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record (Docker's IPAM config keys plus the allocated addresses)."""
        return {
            "Subnet": str(self.subnet),
            "Gateway": str(self.gateway),
            "IPRange": str(self.ip_range) if self.ip_range else "",
            "Allocated": [str(a) for a in sorted(self._allocated, key=int)],
            "Name": self.name,
            "ID": self.id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Allocator:
        """The inverse of ``to_dict``."""
        allocated = data.get("Allocated") or []
        if not isinstance(allocated, list):
            raise InvalidParameter(f"corrupt IPAM record: Allocated is {allocated!r}")
        return cls(
            str(data["Subnet"]),
            gateway=str(data.get("Gateway") or "") or None,
            ip_range=str(data.get("IPRange") or "") or None,
            allocated=[str(a) for a in allocated],
            name=str(data.get("Name") or ""),
            id=str(data.get("ID") or ""),
        )
