"""A container's published ports (``-p``, ``-P``): one proxy and one set of DNAT rules per
host address, recorded in ``Container.net`` so teardown and restore find them again.

Mixed into ``networking.Networking``, which owns ``networks`` (the network service) and
``_proxies`` (container id -> its running proxies).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from dockyard.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.containers.record import Container
    from dockyard.network.service import NetworkService

__all__ = ["PortPublishing"]


class PortPublishing:
    networks: NetworkService
    _proxies: dict[str, list[Any]]

    def _bindings(self, c: Container) -> list[tuple[str, str, str, int, str]]:
        """(key "80/tcp", proto, host ip, host port (0 = any), container port)."""
        out = []
        bindings = dict(c.host_config.get("PortBindings") or {})
        if c.host_config.get("PublishAllPorts"):
            for key in c.config.get("ExposedPorts") or {}:
                bindings.setdefault(key, [{"HostIp": "", "HostPort": ""}])
        for key, entries in bindings.items():
            port, _, proto = key.partition("/")
            proto = proto or "tcp"
            for b in entries or []:
                host_port = (b or {}).get("HostPort") or ""
                low = host_port.split("-")[0]
                if low and not low.isdigit():
                    raise InvalidParameter(f"invalid host port: {host_port}")
                out.append(
                    (
                        f"{port}/{proto}",
                        proto,
                        (b or {}).get("HostIp") or "",
                        int(low or 0),
                        port,
                    )
                )
        return out

    async def _publish(self, c: Container) -> None:
        ports: dict[str, Any] = {k: None for k in c.config.get("ExposedPorts") or {}}
        bindings = self._bindings(c)
        if not bindings:
            c.net["ports"] = ports
            return
        primary = next(iter(c.net["networks"].values()), None)
        if primary is None or not primary.get("IPAddress"):
            raise InvalidParameter("published ports need a bridge network with IPv4")
        n = self.networks.get(primary["NetworkID"])
        for key, proto, wanted_ip, port, cport in bindings:
            # "" is 0.0.0.0 and, as dockerd 20.10, also :: (one port number for both)
            for host_ip, cip in self.networks.port_targets(
                wanted_ip, primary["IPAddress"], primary.get("GlobalIPv6Address") or ""
            ):
                port = await self._publish_one(c, n, primary, proto, host_ip, port, cip, cport)
                ports.setdefault(key, None)
                ports[key] = (ports[key] or []) + [{"HostIp": host_ip, "HostPort": str(port)}]
        c.net["ports"] = ports

    async def _publish_one(
        self,
        c: Container,
        n: Any,
        primary: dict[str, Any],
        proto: str,
        host_ip: str,
        host_port: int,
        cip: str,
        cport: str,
    ) -> int:
        """One host address's proxy and rules; the port it got (the kernel's choice for 0)."""
        from dockyard.network import iptables

        proxy = await self._start_proxy(
            proto,
            host_ip,
            host_port,
            cip,
            int(cport),
            endpoint=f"{c.name.lstrip('/')} ({primary['EndpointID']})",
        )
        self._proxies.setdefault(c.id, []).append(proxy)
        if self.networks.firewalled(host_ip, cip):
            await asyncio.to_thread(
                iptables.publish,
                self.networks.prefix,
                proto,
                host_ip,
                proxy.port,
                cip,
                int(cport),
                n.bridge,
                self.networks.userland_proxy,
            )
        c.net.setdefault("_published", []).append(
            [proto, host_ip, proxy.port, cip, int(cport), n.bridge]
        )
        return int(proxy.port)

    @property
    def _proxy_dir(self) -> str:
        return os.path.join(self.networks.exec_root, "proxy")

    async def _start_proxy(
        self,
        proto: str,
        host_ip: str,
        port: int,
        cip: str,
        cport: int,
        endpoint: str = "",
        adopt: bool = False,
    ) -> Any:
        """Userland proxy on: a helper process that outlives the daemon (adopted again at
        restore).  Off: the kernel carries everything (loopback too); the daemon only holds
        the port, as dockerd does, and a restart takes it again."""
        from dockyard.network import proxyproc
        from dockyard.network.proxy import start_proxy

        if self.networks.userland_proxy:
            return await proxyproc.start(
                self._proxy_dir, proto, host_ip, port, cip, cport, endpoint=endpoint, adopt=adopt
            )
        return await start_proxy(proto, host_ip, port, cip, cport, endpoint=endpoint)
