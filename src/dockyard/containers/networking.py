"""A container's network through its life (asyncio world, kernel work in threads).

At start: a network namespace pinned at ``<exec-root>/netns/<id>`` (the spec joins it by
path), one veth per network (``eth0``, ``eth1``…) with addresses from IPAM, published
ports (iptables DNAT plus the userland proxy), ``/etc/hosts``, ``/etc/hostname`` and
``/etc/resolv.conf`` written beside the container's log and bind-mounted, and on
user-defined networks the embedded DNS server at 127.0.0.11.  At exit all of it is undone
and the addresses go back.  The namespace, veths and iptables rules outlive a daemon
crash; ``restore`` makes the DNS server and the proxies again for running containers.

What is running lives in ``Container.net``: ``requested`` (network name → endpoint
config, kept across restarts), ``networks`` (moby's EndpointSettings plus private
``_veth``), ``ports`` (moby's ``NetworkSettings.Ports``) and ``sandbox``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any

from dockyard.containers import links, netview
from dockyard.containers.netview import mode_of
from dockyard.containers.ports import PortPublishing
from dockyard.errors import Conflict, Forbidden, Internal, InvalidParameter, NotFound
from dockyard.runtime.spec.mounts import Mount

if TYPE_CHECKING:
    from dockyard.containers.record import Container
    from dockyard.containers.service import ContainerService
    from dockyard.network.service import NetworkService

__all__ = ["Networking"]

log = logging.getLogger("dockyard.network")


class Networking(PortPublishing):
    """The container service's network side; one per daemon (published ports: the
    ``PortPublishing`` mixin, ``ports.py``)."""

    def __init__(self, containers: ContainerService, networks: NetworkService) -> None:
        self.containers = containers
        self.networks = networks
        self._dns: dict[str, Any] = {}  # container id → DNSServer
        self._proxies: dict[str, list[Any]] = {}
        from dockyard.network.dns import Resolver

        self.resolver = Resolver(self._lookup, self._reverse)
        networks.endpoints = self._endpoints

    # ---- who is where ----------------------------------------------------------------------
    def _endpoints(self) -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for c in self.containers._records.values():
            for ep in (c.net.get("networks") or {}).values():
                out.append((c.id, c.name, ep))
        return out

    def _lookup(self, key: str, name: str) -> list[str]:
        me = self.containers._records.get(key)
        if me is None:
            return []
        # per network: the name asked for, or the target a link alias of this container's
        # endpoint there stands for (libnetwork resolves those for the linker only)
        wanted: dict[str, str] = {}
        name = name.lower()
        for n, ep in (me.net.get("networks") or {}).items():
            if n == "bridge":
                continue
            wanted[ep["NetworkID"]] = name
            for item in ep.get("Links") or []:
                try:
                    target, alias = links.parse(item)
                except Internal:
                    continue
                if alias.lower() == name:
                    wanted[ep["NetworkID"]] = target.lower()
        found: list[str] = []
        for c in self.containers._records.values():
            for net_name, ep in (c.net.get("networks") or {}).items():
                if ep.get("NetworkID") not in wanted or not ep.get("IPAddress"):
                    continue
                names = {c.name.lstrip("/").lower(), c.id[:12]}
                names.update(a.lower() for a in ep.get("Aliases") or [])
                names.update(f"{n}.{net_name.lower()}" for n in list(names))
                if wanted[ep["NetworkID"]] in names:
                    found.append(ep["IPAddress"])
                    if ep.get("GlobalIPv6Address"):
                        found.append(ep["GlobalIPv6Address"])
        return found

    def _reverse(self, key: str, ip: str) -> list[str]:
        for c in self.containers._records.values():
            for net_name, ep in (c.net.get("networks") or {}).items():
                if ip in (ep.get("IPAddress"), ep.get("GlobalIPv6Address")):
                    return [f"{c.name.lstrip('/')}.{net_name}"]
        return []

    # ---- create ----------------------------------------------------------------------------
    def validate(
        self, hc: dict[str, Any], config: dict[str, Any], networking: Any
    ) -> dict[str, Any]:
        """The requested networks of a new container ({name: endpoint config}); 400s early."""
        from dockyard.network import etcfiles

        etcfiles.validate_dns(hc.get("Dns") or [])  # bad values are a 400 now, not at start
        etcfiles.parse_extra_hosts(hc.get("ExtraHosts") or [], self._host_gateway())
        mode = mode_of(hc)
        endpoints = (
            (networking or {}).get("EndpointsConfig") or {} if isinstance(networking, dict) else {}
        )
        if not isinstance(endpoints, dict):
            raise InvalidParameter("NetworkingConfig.EndpointsConfig must be an object")
        if mode in ("host", "none") or mode.startswith("container:"):
            # host and none ignore published ports, as moby does; a joined namespace refuses them
            if mode.startswith("container:"):
                if (hc.get("PortBindings") and any(hc["PortBindings"].values())) or hc.get(
                    "PublishAllPorts"
                ):
                    raise InvalidParameter(
                        "conflicting options: port publishing and the container type network mode"
                    )
                target = mode.split(":", 1)[1]
                try:
                    self.containers.get(target)
                except NotFound as exc:
                    raise InvalidParameter(f"--network container:{target}: {exc.message}") from exc
            return {}
        try:
            n = self.networks.get(mode)
        except NotFound as exc:
            # 400, not moby's 404: the docker CLI answers a 404 from create by pulling the image
            raise InvalidParameter(exc.message) from exc
        if n.driver == "host" or n.driver == "null":
            return {}
        requested: dict[str, Any] = {}
        for name in endpoints:
            try:
                other = self.networks.get("bridge" if name == "default" else name)
            except NotFound as exc:
                raise InvalidParameter(exc.message) from exc
            if other.id != n.id:
                raise InvalidParameter(
                    "Container cannot be connected to network endpoints other than "
                    f"the one in NetworkMode ({mode}) at create; connect it later"
                )
        ep = (
            endpoints.get(mode)
            or endpoints.get(n.name)
            or endpoints.get(n.id)
            or endpoints.get("default")
            or {}
        )
        if config.get("MacAddress") and isinstance(ep, dict) and not ep.get("MacAddress"):
            ep = {**ep, "MacAddress": config["MacAddress"]}  # --mac-address below API 1.44
        requested[n.name] = self._endpoint_config(n, ep)
        return requested

    def _endpoint_config(self, n: Any, ep: Any) -> dict[str, Any]:
        if not isinstance(ep, dict):
            raise InvalidParameter("an EndpointsConfig entry must be an object")
        ipam_cfg = ep.get("IPAMConfig") or {}
        if not isinstance(ipam_cfg, dict):
            raise InvalidParameter("IPAMConfig must be an object")
        aliases = ep.get("Aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise InvalidParameter("Aliases must be an array of strings")
        user_ips = any(ipam_cfg.get(k) for k in ("IPv4Address", "IPv6Address", "LinkLocalIPs"))
        if n.name == "bridge" and (aliases or user_ips):  # moby hasUserDefinedIPAddress
            raise InvalidParameter(
                "network-scoped aliases are supported only for containers in user defined networks"
                if aliases
                else "user specified IP address is supported on user defined networks only"
            )
        for key in ("IPv4Address", "IPv6Address"):
            if ipam_cfg.get(key):
                try:
                    ip = ipaddress.ip_address(ipam_cfg[key])
                except ValueError:
                    raise InvalidParameter(f"invalid IP address: {ipam_cfg[key]}") from None
                if not any(ip in ipaddress.ip_network(c["Subnet"]) for c in n.ipam):
                    raise InvalidParameter(
                        f"Invalid address {ip}: It does not belong to any of this network's subnets"
                    )
        link_local = ipam_cfg.get("LinkLocalIPs") or []
        if not isinstance(link_local, list) or not all(isinstance(a, str) for a in link_local):
            raise InvalidParameter("IPAMConfig.LinkLocalIPs must be an array of strings")
        for text in link_local:
            try:
                ipaddress.ip_address(text)
            except ValueError:
                raise InvalidParameter(f"invalid link-local IP address: {text}") from None
        mac = ep.get("MacAddress") or ""
        if mac:
            _check_mac(mac)
        ep_links = ep.get("Links") or []
        if not isinstance(ep_links, list) or not all(isinstance(x, str) for x in ep_links):
            raise InvalidParameter("Links must be an array of strings")
        return {
            "Links": list(ep_links) or None,
            "IPAMConfig": {
                k: v
                for k, v in ipam_cfg.items()
                if k in ("IPv4Address", "IPv6Address", "LinkLocalIPs") and v
            }
            or None,
            "Aliases": list(aliases) or None,
            "MacAddress": mac,
        }

    # ---- start / exit ----------------------------------------------------------------------
    async def setup(self, c: Container, etc_dir: str) -> tuple[str | None, list[Mount]]:
        """Everything a starting container's network needs; returns the netns path to join
        (None: the host's) and the bind mounts of its /etc files."""
        from dockyard.network import etcfiles

        mode = mode_of(c)
        hostname = c.config.get("Hostname") or c.id[:12]
        host_resolv = _host_resolv()
        if mode.startswith("container:"):
            other = self.containers.get(mode.split(":", 1)[1])
            if not other.state.Running:
                raise Conflict(
                    f"cannot join network namespace of a non running container: {other.id}"
                )
            c.net = {
                "sandbox": other.net.get("sandbox") or f"/proc/{other.state.Pid}/ns/net",
                "joined": other.id,
                "requested": c.net.get("requested") or {},
            }
            files = os.path.join(self.containers.data_root, "containers", other.id)
            mounts = [
                _etc_mount(os.path.join(files, name), dest)
                for name, dest in (
                    ("hosts", "/etc/hosts"),
                    ("resolv.conf", "/etc/resolv.conf"),
                    ("hostname", "/etc/hostname"),
                )
                if os.path.exists(os.path.join(files, name))
            ]
            return c.net["sandbox"], mounts
        extra_hosts = etcfiles.parse_extra_hosts(
            c.host_config.get("ExtraHosts") or [], self._host_gateway()
        )
        dns_kw = self._dns_kw(c)
        if mode == "host":
            try:
                with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
                    hosts = f.read()
            except OSError:
                hosts = etcfiles.build_hosts(hostname)
            hosts += "".join(f"{ip}\t{h}\n" for h, ip in extra_hosts)
            rc = etcfiles.build_resolv_conf(host_resolv, internal_dns=False, **dns_kw)
            paths = await asyncio.to_thread(
                etcfiles.write_etc_files,
                etc_dir,
                hosts=hosts,
                hostname=etcfiles.build_hostname(hostname),
                resolv_conf=rc.content,
            )
            c.net = {"requested": {}, "networks": {}, "ports": {}}
            return None, _etc_mounts(paths)
        sandbox = os.path.join(self.networks.netns_dir, c.id)
        await _off_loop(_fresh_netns, sandbox)
        c.net = {
            "sandbox": sandbox,
            "requested": c.net.get("requested") or {},
            "networks": {},
            "ports": {},
        }
        try:
            addresses: list[str] = []
            for i, (name, ep_cfg) in enumerate(list(c.net["requested"].items())):
                addresses += await self._attach(c, name, ep_cfg, i)
                if name in c.net["networks"]:  # moby: the endpoint joins at start
                    self.networks._event("connect", self.networks.get(name), container=c.id)
            if mode != "none":
                await self._publish(c)
            user_net = any(n != "bridge" for n in c.net["networks"])
            hosts = self._hosts(c, addresses, extra_hosts)
            rc = etcfiles.build_resolv_conf(host_resolv, internal_dns=user_net, **dns_kw)
            paths = await asyncio.to_thread(
                etcfiles.write_etc_files,
                etc_dir,
                hosts=hosts,
                hostname=etcfiles.build_hostname(hostname),
                resolv_conf=rc.content,
            )
            c.net["dns"] = (
                {"upstreams": list(rc.upstreams), "ndots_set": rc.ndots_set} if user_net else None
            )
            await self._serve(c)
        except BaseException:
            await self.teardown(c)
            raise
        await asyncio.to_thread(self._update_parents, c)
        return sandbox, _etc_mounts(paths)

    # ---- legacy links (containers/links.py) ------------------------------------------------
    def link_env(self, c: Container) -> list[str]:
        """Check ``c``'s links before it starts or execs; the variables they give it."""
        return links.start_env(c, self.containers.children(c))

    def _hosts(self, c: Container, addresses: list[str], extra_hosts: list[tuple[str, str]]) -> str:
        """/etc/hosts: the --add-host records, then the linked containers on the default
        bridge (``alias hostname [name]``), then the container's own addresses."""
        from dockyard.network import etcfiles

        on_bridge = "bridge" in (c.net.get("networks") or {})
        linked = links.hosts_entries(self.containers.children(c)) if on_bridge else []
        return etcfiles.build_hosts(
            c.config.get("Hostname") or c.id[:12],
            c.config.get("Domainname") or "",
            [a.split("/")[0] for a in addresses],
            [*extra_hosts, *linked],
        )

    async def refresh_hosts(self, c: Container) -> None:
        """Write a running container's /etc/hosts again (a link of it went away)."""
        from dockyard.network import etcfiles

        extra_hosts = etcfiles.parse_extra_hosts(
            c.host_config.get("ExtraHosts") or [], self._host_gateway()
        )
        addresses = [
            a for ep in (c.net.get("networks") or {}).values() for a in ep.get("_addresses") or []
        ]
        content = self._hosts(c, addresses, extra_hosts)
        path = os.path.join(os.path.dirname(c.log_path), "hosts")
        try:
            await asyncio.to_thread(etcfiles.rewrite_in_place, path, content)
        except OSError as exc:
            log.warning("hosts file of %s: %s", c.id[:12], exc)

    def _update_parents(self, c: Container) -> None:
        """``c`` started with a new address: the running containers linking to it on the
        default bridge see it in their /etc/hosts (libnetwork's parent update)."""
        from dockyard.network import etcfiles

        ep = (c.net.get("networks") or {}).get("bridge") or {}
        if not ep.get("IPAddress"):
            return
        for link_name, parent in self.containers.parents(c):
            if not parent.state.Running or "bridge" not in (parent.net.get("networks") or {}):
                continue
            path = os.path.join(os.path.dirname(parent.log_path), "hosts")
            try:
                etcfiles.update_hosts(path, ep["IPAddress"], os.path.basename(link_name))
            except OSError as exc:
                log.warning("hosts file of %s: %s", parent.id[:12], exc)

    async def _attach(
        self, c: Container, name: str, ep_cfg: dict[str, Any], index: int
    ) -> list[str]:
        from dockyard.network import bridge

        n = self.networks.get(name)
        if n.driver != "bridge":
            return []
        addresses, gateways = self.networks.allocate(
            n, ep_cfg.get("IPAMConfig"), ep_cfg.get("MacAddress") or None
        )
        veth = bridge.veth_name()
        ifname = f"eth{index}"
        try:
            mac = await _off_loop(
                bridge.attach,
                c.net["sandbox"],
                n.bridge,
                veth,
                ifname,
                addresses,
                gateways if index == 0 else [],
                ep_cfg.get("MacAddress") or None,
                int(n.options.get("com.docker.network.driver.mtu") or self.networks.mtu),
                index == 0,
                not self.networks.userland_proxy,
            )
        except BaseException:
            self.networks.release(n, addresses)
            raise
        v4 = next((a for a in addresses if ipaddress.ip_interface(a).version == 4), "")
        v6 = next((a for a in addresses if ipaddress.ip_interface(a).version == 6), "")
        gw4 = next((g for g in gateways if ipaddress.ip_address(g).version == 4), "")
        gw6 = next((g for g in gateways if ipaddress.ip_address(g).version == 6), "")
        aliases = list(ep_cfg.get("Aliases") or [])
        shown = list(aliases)
        if n.name != "bridge" and c.id[:12] not in shown:
            shown.append(c.id[:12])  # moby adds the short ID on user-defined networks
        c.net["networks"][n.name] = {
            "IPAMConfig": ep_cfg.get("IPAMConfig"),
            "Links": ep_cfg.get("Links"),
            "Aliases": shown or None,
            "MacAddress": mac,
            "DriverOpts": None,
            "GwPriority": 0,
            "NetworkID": n.id,
            "EndpointID": secrets.token_hex(32),
            "Gateway": gw4,
            "IPAddress": v4.split("/")[0] if v4 else "",
            "IPPrefixLen": int(v4.split("/")[1]) if v4 else 0,
            "IPv6Gateway": gw6,
            "GlobalIPv6Address": v6.split("/")[0] if v6 else "",
            "GlobalIPv6PrefixLen": int(v6.split("/")[1]) if v6 else 0,
            "DNSNames": None if n.name == "bridge" else [c.name.lstrip("/"), *aliases, c.id[:12]],
            "_veth": veth,
            "_addresses": addresses,
            "_ifname": ifname,
        }
        return addresses

    def _dns_kw(self, c: Container) -> dict[str, Any]:
        return dict(
            dns=c.host_config.get("Dns") or self.networks.dns,
            dns_search=c.host_config.get("DnsSearch") or self.networks.dns_search,
            dns_options=c.host_config.get("DnsOptions") or self.networks.dns_opts,
        )

    async def _start_embedded_dns(self, c: Container) -> None:
        """A running container without the embedded DNS server (it started on the default
        bridge) joined a user network: serve it now and point its resolv.conf at it, the
        host's servers kept upstream, as libnetwork does on the join.  A resolv.conf changed
        inside the container is left as it is (libnetwork checks its hash the same way)."""
        from dockyard.network import etcfiles

        host_resolv = _host_resolv()
        dns_kw = self._dns_kw(c)
        plain = etcfiles.build_resolv_conf(host_resolv, internal_dns=False, **dns_kw)
        internal = etcfiles.build_resolv_conf(host_resolv, internal_dns=True, **dns_kw)
        path = os.path.join(os.path.dirname(c.log_path), "resolv.conf")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                current = f.read()
            if current == plain.content:
                await asyncio.to_thread(etcfiles.rewrite_in_place, path, internal.content)
            else:
                log.info("resolv.conf of %s was changed inside: left as it is", c.id[:12])
        except OSError as exc:
            log.warning("resolv.conf of %s: %s", c.id[:12], exc)
        c.net["dns"] = {"upstreams": list(internal.upstreams), "ndots_set": internal.ndots_set}
        await self._serve(c)

    async def _serve(self, c: Container) -> None:
        dns = c.net.get("dns")
        if not dns or not c.net.get("sandbox"):
            return
        self._dns[c.id] = await self.resolver.serve_in_netns(
            c.net["sandbox"], c.id, upstreams=dns["upstreams"], ndots_set=dns["ndots_set"]
        )

    async def teardown(self, c: Container) -> None:
        """Undo ``setup`` (also for a container that died while the daemon was away)."""
        from dockyard.network import bridge, iptables, netns, proxyproc

        server = self._dns.pop(c.id, None)
        if server is not None:
            server.close()
        for proxy in self._proxies.pop(c.id, []):
            try:
                await proxy.close()
            except Exception:
                pass
        net = c.net or {}
        for proto, host_ip, port, cip, cport, br in net.get("_published") or []:
            await proxyproc.stop(self._proxy_dir, proto, host_ip, port)  # a previous daemon's
            if self.networks.firewalled(host_ip, cip):
                await asyncio.to_thread(
                    iptables.unpublish,
                    self.networks.prefix,
                    proto,
                    host_ip,
                    port,
                    cip,
                    cport,
                    br,
                    self.networks.userland_proxy,
                )
        for ep in (net.get("networks") or {}).values():
            await _off_loop(bridge.detach, ep.get("_veth") or "")
            try:
                n = self.networks.get(ep["NetworkID"])
            except NotFound:
                continue
            self.networks.release(n, ep.get("_addresses") or [])
            self.networks._event("disconnect", n, container=c.id)  # moby: and leaves at exit
        sandbox = net.get("sandbox")
        if sandbox and not net.get("joined"):
            await _off_loop(netns.remove, sandbox)
        c.net = {"requested": net.get("requested") or {}}

    async def restore(self, c: Container) -> None:
        """A container that kept running while the daemon was away: serve it again."""
        from dockyard.network import iptables

        try:
            await self._serve(c)
        except Exception as exc:
            log.warning("embedded DNS for %s: %s", c.id[:12], exc)
        for proto, host_ip, port, cip, cport, br in (c.net or {}).get("_published") or []:
            try:
                self._proxies.setdefault(c.id, []).append(
                    await self._start_proxy(proto, host_ip, port, cip, cport, adopt=True)
                )
                if self.networks.firewalled(host_ip, cip):
                    await asyncio.to_thread(
                        iptables.publish,
                        self.networks.prefix,
                        proto,
                        host_ip,
                        port,
                        cip,
                        cport,
                        br,
                        self.networks.userland_proxy,
                    )
            except Exception as exc:
                log.warning("port %s:%s of %s: %s", host_ip, port, c.id[:12], exc)

    def _host_gateway(self) -> list[str]:
        try:
            n = self.networks.get("bridge")
            return [c["Gateway"] for c in n.ipam][:1]
        except NotFound:
            return []

    # ---- connect / disconnect --------------------------------------------------------------
    async def connect(self, c: Container, name: str, ep: Any) -> None:
        n = self.networks.get(name)
        mode = mode_of(c)
        if mode in ("host", "none") or mode.startswith("container:") or n.driver != "bridge":
            raise Forbidden(
                "container sharing network namespace with another container or host cannot "
                "be connected to any other network"
                if n.driver == "bridge"
                else "container cannot be disconnected from host network or connected to host network"
            )
        requested = c.net.setdefault("requested", {})
        if n.name in requested:
            raise Forbidden(  # moby: libnetwork's a Forbidden error
                f"endpoint with name {c.name.lstrip('/')} already exists in network {n.name}"
            )
        cfg = self._endpoint_config(n, ep or {})
        if not cfg["MacAddress"] and c.config.get("MacAddress") and mode_of(c) == n.name:
            # moby applies Config.MacAddress (--mac-address) to the NetworkMode network's
            # endpoint, also when it is connected again (docker-compose reconnects)
            cfg["MacAddress"] = c.config["MacAddress"]
        if c.state.Running:
            for item in cfg["Links"] or []:
                links.parse(item)  # moby's join fails on a malformed link (a plain error)
            index = len(c.net.get("networks") or {})
            await self._attach(c, n.name, cfg, index)
            if c.net.get("dns") is None and n.name != "bridge":
                await self._start_embedded_dns(c)
        requested[n.name] = cfg
        self.networks._event("connect", n, container=c.id)

    async def disconnect(self, c: Container, name: str, force: bool) -> None:
        from dockyard.network import bridge

        n = self.networks.get(name)
        requested = c.net.get("requested") or {}
        if n.name not in requested:
            # dockerd answers this with a plain error (500), forced or not
            raise Internal(f"container {c.id} is not connected to network {n.name}")
        ep = (c.net.get("networks") or {}).pop(n.name, None)
        if ep is not None:
            await _off_loop(bridge.detach, ep.get("_veth") or "")
            self.networks.release(n, ep.get("_addresses") or [])
            if c.net.get("sandbox"):
                await _off_loop(bridge.sync_loopback_ipv6, c.net["sandbox"])
        del requested[n.name]
        self.networks._event("disconnect", n, container=c.id)

    # ---- inspect ---------------------------------------------------------------------------
    def view(self, c: Container) -> dict[str, Any]:
        return netview.settings(c, lambda name: self.networks.get(name).id)

    def ports_summary(self, c: Container) -> list[dict[str, Any]]:
        return netview.ports_summary(c)


def _host_resolv() -> str:
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


async def _off_loop(fn: Any, *args: Any) -> Any:
    """Run kernel plumbing (pyroute2, namespaces) on a thread of its own, not the loop's
    shared executor: pyroute2 keeps per-thread state that must not leak between calls."""
    import concurrent.futures
    import threading

    done: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        try:
            done.set_result(fn(*args))
        except BaseException as exc:
            done.set_exception(exc)

    threading.Thread(target=target, name="dockyard-net", daemon=True).start()
    return await asyncio.wrap_future(done)


def _fresh_netns(path: str) -> None:
    from dockyard.network import bridge, netns

    if netns.exists(path):
        netns.remove(path)
    netns.create(path)
    bridge.isolate_ipv6(path)


def _etc_mount(source: str, dest: str) -> Mount:
    return Mount(destination=dest, type="bind", source=source, options=["rbind", "rprivate"])


def _etc_mounts(paths: dict[str, str]) -> list[Mount]:
    return [
        _etc_mount(paths["hosts"], "/etc/hosts"),
        _etc_mount(paths["resolv.conf"], "/etc/resolv.conf"),
        _etc_mount(paths["hostname"], "/etc/hostname"),
    ]


def _check_mac(mac: str) -> None:
    parts = mac.split(":")
    if len(parts) != 6 or not all(
        len(p) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in p) for p in parts
    ):
        raise InvalidParameter(f"invalid MAC address: {mac}")
