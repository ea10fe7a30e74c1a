"""Networks as the Engine API sees them (asyncio world): the predefined ``bridge``, ``host``
and ``none``, user-defined bridge networks, and each running container's endpoints.

Records live in the metadata store; which addresses are taken is rebuilt at start-up
from the running containers' endpoints (``restore``), so the two can never disagree
after a crash.  Kernel work (bridges, veths, iptables, namespaces) runs in threads
through ``bridge``, ``iptables`` and ``netns``; the embedded DNS server and the userland
proxies run on the daemon's loop and are made again for running containers at restart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound
from dockyard.events import EventBus
from dockyard.filters import labels_match, labels_match_none, parse_time, parse_until
from dockyard.network import ipam
from dockyard.network.store import Network, Store

__all__ = ["LIST_FILTERS", "PRUNE_FILTERS", "NetworkService"]

log = logging.getLogger("dockyard.network")

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("until", "label", "label!")
PREDEFINED = ("bridge", "host", "none")
_CREATE_FIELDS = {
    "Name",
    "CheckDuplicate",
    "Driver",
    "Scope",
    "Internal",
    "Attachable",
    "Ingress",
    "ConfigOnly",
    "ConfigFrom",
    "IPAM",
    "EnableIPv6",
    "EnableIPv4",
    "Options",
    "Labels",
}
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"
MTU_OPT = "com.docker.network.driver.mtu"
ICC_OPT = "com.docker.network.bridge.enable_icc"
MASQ_OPT = "com.docker.network.bridge.enable_ip_masquerade"


def _now() -> str:
    ns = time.time_ns()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
        + f".{ns % 1_000_000_000:09d}Z"
    )


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidParameter(f"{what} must be an object of strings")
    return dict(value)


def _host_routes() -> list[ipam.Network]:
    """Subnets the host already routes (a new network must not shadow them)."""
    out: list[ipam.Network] = []
    try:
        with open("/proc/net/route", encoding="ascii") as f:
            next(f)
            for line in f:
                fields = line.split()
                dest, mask = int(fields[1], 16), int(fields[7], 16)
                if dest == 0:
                    continue
                addr = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
                prefix = bin(mask).count("1")
                out.append(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
    except (OSError, ValueError, StopIteration):
        pass
    return out


def _v6_listenable() -> bool:
    """Whether this host can listen on IPv6 (moby netutils.IsV6Listenable: not when the
    kernel was booted with ipv6.disable=1); dockerd then publishes no ``::`` ports."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class NetworkService:
    """Network records, IPAM and the kernel plumbing of endpoints."""

    def __init__(
        self, store: Store, events: EventBus, extra: dict[str, Any], exec_root: str
    ) -> None:
        self.store = store
        self.events = events
        self.exec_root = exec_root
        self.netns_dir = os.path.join(exec_root, "netns")
        default_bridge = str(extra.get("bridge") or "dockyard0")
        self.default_bridge = default_bridge
        # dockyard's own iptables chains; a test daemon with its own bridge name gets its own
        self.prefix = "DOCKYARD" if default_bridge == "dockyard0" else default_bridge.upper()[:10]
        self.userland_proxy = extra.get("userland-proxy", True) is not False
        self.use_iptables = extra.get("iptables", True) is not False
        self.icc = extra.get("icc", True) is not False
        self.ip_masq = extra.get("ip-masq", True) is not False
        self.mtu = int(extra.get("mtu") or 1500)
        self.bip = str(extra.get("bip") or "")
        self.fixed_cidr = str(extra.get("fixed-cidr") or "")
        # dockerd's ipv6/fixed-cidr-v6 (the default bridge only) and ip6tables (experimental
        # in 20.10; config.load refuses it without "experimental")
        self.ipv6 = extra.get("ipv6") is True
        self.fixed_cidr_v6 = str(extra.get("fixed-cidr-v6") or "")
        self.use_ip6tables = self.use_iptables and extra.get("ip6tables") is True
        self.v6_listenable = _v6_listenable()
        self.pools = ipam.parse_pools(extra.get("default-address-pools"))
        self.dns = [str(d) for d in extra.get("dns") or []]
        self.dns_search = [str(d) for d in extra.get("dns-search") or []]
        self.dns_opts = [str(d) for d in extra.get("dns-opts") or []]
        self.endpoints: Callable[[], list[tuple[str, str, dict[str, Any]]]] = lambda: []
        self._allocators: dict[str, list[ipam.Allocator]] = {}
        self._records: dict[str, Network] = {n.id: n for n in store.all()}
        self._lock = asyncio.Lock()

    # ---- lookups ---------------------------------------------------------------------------
    def get(self, name: str) -> Network:
        if not isinstance(name, str) or not name:
            raise NotFound("network  not found")
        if name in self._records:
            return self._records[name]
        for n in self._records.values():
            if n.name == name:
                return n
        matches = [n for n in self._records.values() if n.id.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(
                f"network {name} is ambiguous ({len(matches)} matches found based on ID prefix)"
            )
        raise NotFound(f"network {name} not found")

    def _event(self, action: str, n: Network, **extra: str) -> None:
        self.events.publish("network", action, n.id, {"name": n.name, "type": n.driver, **extra})

    def _users(self, n: Network) -> list[tuple[str, str, dict[str, Any]]]:
        return [e for e in self.endpoints() if e[2].get("NetworkID") == n.id]

    # ---- start-up --------------------------------------------------------------------------
    async def start(self) -> None:
        """Predefined networks, bridges and firewall rules (idempotent: also after a crash)."""
        names = {n.name for n in self._records.values()}
        if "bridge" not in names:
            await self._create_default_bridge()
        else:
            await self._update_default_ipv6()
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in names:
                n = Network(
                    id=secrets.token_hex(32),
                    name=name,
                    driver=driver,
                    created=_now(),
                    predefined=True,
                )
                self.store.save(n)
                self._records[n.id] = n
        if self.use_iptables:
            from dockyard.network import iptables

            versions = (4, 6) if self.use_ip6tables else (4,)
            await asyncio.to_thread(iptables.setup, self.prefix, self.userland_proxy, versions)
            if not self.use_ip6tables and await asyncio.to_thread(
                iptables.installed, self.prefix, 6
            ):  # a previous start had ip6tables: its rules go
                await asyncio.to_thread(iptables.teardown, self.prefix, (6,))
        for n in self._records.values():
            if n.driver == "bridge":
                self._allocators[n.id] = [_allocator(c) for c in n.ipam]
                await asyncio.to_thread(self._program, n)

    async def _create_default_bridge(self) -> None:
        if self.bip:
            iface = ipaddress.ip_interface(self.bip)
            subnet, gateway = iface.network, str(iface.ip)
        else:
            used = [
                ipaddress.ip_network(c["Subnet"]) for n in self._records.values() for c in n.ipam
            ]
            subnet = ipam.next_subnet(self.pools, used + _host_routes())
            gateway = ""
        alloc = ipam.Allocator(subnet, gateway or None, self.fixed_cidr or None, name="bridge")
        n = Network(
            enable_ipv6=self.ipv6,
            id=secrets.token_hex(32),
            name="bridge",
            driver="bridge",
            created=_now(),
            bridge=self.default_bridge,
            predefined=True,
            ipam=[_config(alloc), *self._default_ipv6_config("")],
            options={
                "com.docker.network.bridge.default_bridge": "true",
                ICC_OPT: str(self.icc).lower(),
                MASQ_OPT: str(self.ip_masq).lower(),
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                BRIDGE_NAME_OPT: self.default_bridge,
                MTU_OPT: str(self.mtu),
            },
        )
        self.store.save(n)
        self._records[n.id] = n

    def _default_ipv6_config(self, held: str) -> list[dict[str, Any]]:
        """The default bridge's IPv6 IPAM entry: ``fixed-cidr-v6`` is the whole pool (moby
        daemon_unix.go ``initBridgeDriver``: PreferredPool, no sub-pool).  Its gateway is the
        first host, but dockerd lists it only when the bridge already held it at start-up
        (``held``, an address of the bridge), so a fresh start shows the subnet alone."""
        if not self.ipv6:
            return []
        # host bits are dropped, as dockerd's net.ParseCIDR does (config.load checked it)
        subnet = ipaddress.ip_network(self.fixed_cidr_v6, strict=False)
        gateway = held if held and ipaddress.ip_address(held) in subnet else ""
        return [{"Subnet": str(subnet), "Gateway": gateway, "IPRange": ""}]

    async def _update_default_ipv6(self) -> None:
        """Follow ``ipv6``/``fixed-cidr-v6`` changed since the last start, as dockerd, which
        makes the default bridge network afresh at every start; IPv6 addresses that running
        containers hold in a subnet no longer configured are not served any more."""
        from dockyard.network import bridge

        n = next(r for r in self._records.values() if r.name == "bridge")
        links = await asyncio.to_thread(bridge.interfaces) if self.ipv6 else []
        held = next(
            (
                a.split("/")[0]
                for link in links
                if link.name == n.bridge
                for a in link.addresses
                if ipaddress.ip_interface(a).version == 6
                and not ipaddress.ip_interface(a).is_link_local
            ),
            "",
        )
        v4 = [c for c in n.ipam if ipaddress.ip_network(c["Subnet"]).version == 4]
        ipam_configs = v4 + self._default_ipv6_config(held)
        if ipam_configs != n.ipam or n.enable_ipv6 != self.ipv6:
            n.ipam, n.enable_ipv6 = ipam_configs, self.ipv6
            self.store.save(n)

    def _program(self, n: Network) -> None:
        """The bridge and its rules (blocking)."""
        from dockyard.network import bridge, iptables

        gateways = [
            f"{_allocator(c).gateway}/{net.prefixlen}"
            for c in n.ipam
            if (net := ipaddress.ip_network(c["Subnet"])).version == 4 or n.enable_ipv6
        ]
        bridge.ensure_bridge(n.bridge, gateways, int(n.options.get(MTU_OPT) or self.mtu))
        for args in self._firewall_args(n):
            iptables.add_network(*args)

    def _unprogram(self, n: Network) -> None:
        from dockyard.network import bridge, iptables

        for args in self._firewall_args(n):
            iptables.remove_network(*args)
        bridge.delete_bridge(n.bridge)

    def _firewall_args(self, n: Network) -> list[tuple[Any, ...]]:
        """``iptables.add_network``/``remove_network`` arguments, one per IPv4 subnet and,
        with ``ip6tables`` on, one per IPv6 subnet of an IPv6 network (dockerd 20.10 mirrors
        every rule, masquerade included, only then)."""
        if not self.use_iptables:
            return []
        return [
            (
                self.prefix,
                n.bridge,
                c["Subnet"],
                n.internal,
                n.options.get(ICC_OPT, "true") != "false",
                n.options.get(MASQ_OPT, "true") != "false",
                self.userland_proxy,
            )
            for c in n.ipam
            if ipaddress.ip_network(c["Subnet"]).version == 4
            or (n.enable_ipv6 and self.use_ip6tables)
        ]

    def port_targets(self, host_ip: str, ipv4: str, ipv6: str) -> list[tuple[str, str]]:
        """(host address, container address) pairs serving one ``-p`` binding, as moby 20.10's
        bridge ``allocatePortsInternal``: no host IP means 0.0.0.0 and also ``::`` (when the
        host can listen on IPv6); an IPv6 host address goes to the container's IPv6 address,
        or to its IPv4 one through the userland proxy, and is skipped when neither fits."""
        out: list[tuple[str, str]] = []
        version = ipaddress.ip_address(host_ip).version if host_ip else 0
        if version in (0, 4):
            out.append((host_ip or "0.0.0.0", ipv4))
        if version == 6 or (version == 0 and self.v6_listenable):
            target = ipv6 or (ipv4 if self.userland_proxy else "")
            if target:
                out.append((host_ip or "::", target))
        return out

    def firewalled(self, host_ip: str, container_ip: str) -> bool:
        """Whether a published port ``host_ip`` -> ``container_ip`` gets iptables rules: same
        family (the userland proxy alone carries ``::`` to an IPv4-only container) and that
        family's firewall on."""
        version = ipaddress.ip_address(container_ip).version
        if host_ip and ipaddress.ip_address(host_ip).version != version:
            return False
        return self.use_iptables and (version == 4 or self.use_ip6tables)

    def restore_allocations(self) -> None:
        """Addresses held by running containers (called once containers are loaded)."""
        for _cid, _name, ep in self.endpoints():
            for alloc in self._allocators.get(ep.get("NetworkID", ""), []):
                for key in ("IPAddress", "GlobalIPv6Address"):
                    ip = ep.get(key)
                    if ip and ipaddress.ip_address(ip) in alloc.subnet:
                        try:
                            alloc.allocate_static(ip)
                        except Exception:
                            pass

    # ---- API: networks ---------------------------------------------------------------------
    def view(self, n: Network, with_containers: bool = True) -> dict[str, Any]:
        containers: dict[str, Any] = {}
        if with_containers:
            for cid, cname, ep in self._users(n):
                containers[cid] = {
                    "Name": cname.lstrip("/"),
                    "EndpointID": ep.get("EndpointID", ""),
                    "MacAddress": ep.get("MacAddress", ""),
                    "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}"
                    if ep.get("IPAddress")
                    else "",
                    "IPv6Address": f"{ep['GlobalIPv6Address']}/{ep['GlobalIPv6PrefixLen']}"
                    if ep.get("GlobalIPv6Address")
                    else "",
                }
        configs = [
            {
                k: v
                for k, v in (
                    ("Subnet", c["Subnet"]),
                    ("IPRange", c.get("IPRange") or ""),
                    ("Gateway", c["Gateway"]),
                    ("AuxiliaryAddresses", c.get("AuxiliaryAddresses") or {}),
                )
                if v
            }
            for c in n.ipam
        ]
        return {
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv4": n.driver == "bridge",
            "EnableIPv6": n.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": n.ipam_options or None, "Config": configs},
            "Internal": n.internal,
            "Attachable": n.attachable,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers,
            "Options": n.options,
            "Labels": n.labels,
        }

    def inspect(self, name: str) -> dict[str, Any]:
        return self.view(self.get(name))

    def list(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        out = []
        for n in sorted(self._records.values(), key=lambda x: x.created):
            if "name" in filters and not any(f in n.name for f in filters["name"]):
                continue
            if "id" in filters and not any(n.id.startswith(f) for f in filters["id"]):
                continue
            if "driver" in filters and n.driver not in filters["driver"]:
                continue
            if "scope" in filters and "local" not in filters["scope"]:
                continue
            if "type" in filters:
                bad = [t for t in filters["type"] if t not in ("builtin", "custom")]
                if bad:
                    raise InvalidParameter(f"invalid filter: 'type'='{bad[0]}'")
                if ("builtin" if n.predefined else "custom") not in filters["type"]:
                    continue
            if not labels_match(n.labels, filters.get("label", [])):
                continue
            if "dangling" in filters:
                dangling = filters["dangling"][-1].lower() in ("1", "true")
                if dangling != (not n.predefined and not self._users(n)):
                    continue
            out.append(self.view(n, with_containers=False))
        return out

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - _CREATE_FIELDS
        if unknown:
            raise InvalidParameter(
                f"unknown field {sorted(unknown)[0]!r} in the network create request"
            )
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidParameter(
                "network name must not be empty" if not name else "Name must be a string"
            )
        if name in PREDEFINED:
            raise Forbidden(f"operation is not permitted on predefined {name} network ")
        driver = body.get("Driver") or "bridge"
        if driver != "bridge":
            if driver in ("host", "null"):
                raise Forbidden(f'only one instance of "{driver}" network is allowed')
            raise NotFound(f'plugin "{driver}" not found')
        if body.get("ConfigOnly") or body.get("ConfigFrom") or body.get("Ingress"):
            raise InvalidParameter("config-only, config-from and ingress networks need swarm mode")
        options = _strings(body.get("Options"), "Options")
        labels = _strings(body.get("Labels"), "Labels")
        ipam_body = body.get("IPAM") or {}
        if not isinstance(ipam_body, dict):
            raise InvalidParameter("IPAM must be an object")
        if (ipam_body.get("Driver") or "default") != "default":
            raise NotFound(f'plugin "{ipam_body["Driver"]}" not found')
        configs = ipam_body.get("Config") or []
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise InvalidParameter("IPAM.Config must be an array of objects")
        enable_ipv6 = bool(body.get("EnableIPv6"))
        if any(
            not isinstance(body.get(k, False), bool)
            for k in ("Internal", "Attachable", "EnableIPv6")
        ):
            raise InvalidParameter("Internal, Attachable and EnableIPv6 must be booleans")
        async with self._lock:
            if any(n.name == name for n in self._records.values()):
                raise Conflict(f"network with name {name} already exists")
            nid = secrets.token_hex(32)
            used = [
                ipaddress.ip_network(c["Subnet"]) for n in self._records.values() for c in n.ipam
            ]
            allocators: list[ipam.Allocator] = []
            auxiliary: dict[int, dict[str, str]] = {}
            for c in configs:
                subnet = c.get("Subnet") or ""
                if not subnet:
                    raise InvalidParameter(
                        "IPAM config needs a Subnet (--subnet) when a gateway or range is given"
                    )
                ipam.validate(subnet, c.get("Gateway") or "", c.get("IPRange") or "")
                net = ipam.parse_subnet(subnet)
                # An IPv6 pool without EnableIPv6 is kept (dockerd 20.10 accepts it at API
                # 1.41) but hands out no addresses: ``allocate`` skips it.
                ipam.check_free(net, used)
                used.append(net)
                alloc = ipam.Allocator(
                    net, c.get("Gateway") or None, c.get("IPRange") or None, name=name, id=nid
                )
                aux = _strings(c.get("AuxiliaryAddresses"), "IPAM.Config.AuxiliaryAddresses")
                for host, ip in aux.items():
                    try:
                        alloc.allocate_static(ip)
                    except (InvalidParameter, Forbidden):
                        raise InvalidParameter(
                            f"invalid auxiliary address {host}={ip}: it must be a free address "
                            f"of {subnet}"
                        ) from None
                allocators.append(alloc)
                auxiliary[id(alloc)] = aux
            if not any(a.subnet.version == 4 for a in allocators):
                net = ipam.next_subnet(self.pools, used + _host_routes())
                allocators.insert(0, ipam.Allocator(net, name=name, id=nid))
            if enable_ipv6 and not any(a.subnet.version == 6 for a in allocators):
                raise InvalidParameter(
                    "--ipv6 needs an IPv6 --subnet: dockyard has no default IPv6 pool"
                )
            bridge_name = options.get(BRIDGE_NAME_OPT) or f"br-{nid[:12]}"
            if len(bridge_name) > 15:
                raise InvalidParameter(f"bridge name {bridge_name!r} is longer than 15 characters")
            if any(n.bridge == bridge_name for n in self._records.values()):
                raise Conflict(f"bridge name {bridge_name} is already used by another network")
            n = Network(
                id=nid,
                name=name,
                driver="bridge",
                created=_now(),
                bridge=bridge_name,
                internal=bool(body.get("Internal")),
                attachable=bool(body.get("Attachable")),
                enable_ipv6=enable_ipv6,
                ipam=[_config(a, auxiliary.get(id(a))) for a in allocators],
                ipam_options=_strings(ipam_body.get("Options"), "IPAM.Options"),
                options=options,
                labels=labels,
            )
            try:
                await asyncio.to_thread(self._program, n)
            except BaseException:
                await asyncio.to_thread(self._unprogram, n)
                raise
            try:
                self.store.save(n)
            except sqlite3.IntegrityError as exc:
                await asyncio.to_thread(self._unprogram, n)
                raise Conflict(f"network with name {name} already exists") from exc
            except BaseException:
                # Not recorded (a full disk): no bridge or rule may outlive the failure.
                await asyncio.to_thread(self._unprogram, n)
                raise
            self._records[n.id] = n
            self._allocators[n.id] = allocators
        self._event("create", n)
        return {"Id": n.id, "Warning": ""}

    async def remove(self, name: str) -> None:
        n = self.get(name)
        if n.predefined:
            raise Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
        users = self._users(n)
        if users:
            names = ", ".join(
                f'(name:"{cname.lstrip("/")}" id:"{cid[:12]}")' for cid, cname, _ in users
            )
            # 403 as moby (libnetwork's ActiveEndpointsError is Forbidden); the wording is
            # newer moby's, which names the containers
            raise Forbidden(
                f"error while removing network: network {n.name} has active endpoints {names}"
            )
        async with self._lock:
            await asyncio.to_thread(self._unprogram, n)
            self.store.delete(n.id)
            self._records.pop(n.id, None)
            self._allocators.pop(n.id, None)
        self._event("destroy", n)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted = []
        until = parse_until(filters["until"][-1]) if "until" in filters else None
        for n in list(self._records.values()):
            if n.predefined or self._users(n):
                continue
            if not labels_match(n.labels, filters.get("label", [])):
                continue
            if not labels_match_none(n.labels, filters.get("label!", [])):
                continue
            if until is not None and parse_time(n.created) >= until:
                continue
            try:
                await self.remove(n.id)
            except (Conflict, Forbidden):
                continue
            deleted.append(n.name)
        if deleted:
            self.events.publish("network", "prune", "", {})
        return {"NetworksDeleted": deleted or None}

    # ---- endpoints -------------------------------------------------------------------------
    def allocate(
        self, n: Network, ipam_config: dict[str, Any] | None, mac: str | None = None
    ) -> tuple[list[str], list[str]]:
        """Addresses (CIDRs) and gateways for a new endpoint on ``n``.

        On the default bridge an IPv6 subnet of /80 or wider gives the address made from the
        endpoint's MAC (``mac``, else Docker's ``02:42`` + IPv4 one), as dockerd does."""
        addresses, gateways = [], []
        wanted = {
            4: (ipam_config or {}).get("IPv4Address") or "",
            6: (ipam_config or {}).get("IPv6Address") or "",
        }
        done: list[tuple[ipam.Allocator, ipam.Address]] = []
        try:
            for alloc in self._allocators.get(n.id, []):
                if alloc.subnet.version == 6 and not n.enable_ipv6:
                    continue
                static = wanted[alloc.subnet.version]
                if (
                    not static
                    and alloc.subnet.version == 6
                    and n.name == "bridge"
                    and n.predefined
                    and alloc.subnet.prefixlen <= ipam.MAC_DERIVED_MAX_PREFIX
                ):
                    from dockyard.network.bridge import mac_for

                    v4 = next((str(a) for _, a in done if a.version == 4), None)
                    static = str(ipam.mac_address_ipv6(alloc.subnet, mac or mac_for(v4)))
                ip = alloc.allocate_static(static) if static else alloc.allocate()
                done.append((alloc, ip))
                addresses.append(f"{ip}/{alloc.subnet.prefixlen}")
                gateways.append(str(alloc.gateway))
        except BaseException:
            for alloc, ip in done:
                alloc.release(ip)
            raise
        for version, static in wanted.items():
            if static and not any(
                a.subnet.version == version for a in self._allocators.get(n.id, [])
            ):
                raise InvalidParameter(
                    f"invalid address {static}: network {n.name} has no IPv{version} subnet"
                )
        return addresses, gateways

    def release(self, n: Network, addresses: list[str]) -> None:
        for alloc in self._allocators.get(n.id, []):
            for a in addresses:
                ip = ipaddress.ip_interface(a).ip
                if ip in alloc.subnet:
                    alloc.release(ip)


def _config(a: ipam.Allocator, auxiliary: dict[str, str] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Subnet": str(a.subnet),
        "Gateway": str(a.gateway),
        "IPRange": str(a.ip_range or ""),
    }
    if auxiliary:
        config["AuxiliaryAddresses"] = dict(auxiliary)
    return config


def _allocator(config: dict[str, Any]) -> ipam.Allocator:
    """A stored IPAM config's allocator, its auxiliary addresses reserved (never handed out,
    as moby's IPAM keeps them)."""
    alloc = ipam.Allocator.from_dict(config)
    for ip in (config.get("AuxiliaryAddresses") or {}).values():
        alloc.allocate_static(ip)
    return alloc
