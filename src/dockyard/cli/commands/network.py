"""``docker network`` commands: create, ls, inspect, rm, prune, connect, disconnect."""

from __future__ import annotations

import sys

from dockyard.cli.command import CommandError, command, filters_param
from dockyard.cli.commands.volume import (
    check_labels,
    confirm,
    flag_error,
    inspect_each,
    kv_map,
    natural_key,
    split_slice,
)
from dockyard.cli.flags import Flag
from dockyard.cli.render import Context, format_rows

_UNSET = ""  # default of a bool flag whose "changed" state matters (--ipv4, --ipv6)


# -- pure helpers ---------------------------------------------------------------------------


def go_time_string(stamp: str) -> str:
    """An RFC 3339 time as Go's ``time.Time.String()`` prints it once decoded from JSON:
    ``2026-11-23 15:26:57.682465523 +0000 UTC`` (fraction without trailing zeros)."""
    if not stamp:
        return "0001-01-01 00:00:00 +0000 UTC"
    date, _, rest = stamp.partition("T")
    if rest.endswith("Z"):
        clock, zone = rest[:-1], "+0000 UTC"
    else:
        cut = max(rest.rfind("+"), rest.rfind("-"))
        clock, offset = rest[:cut], rest[cut:].replace(":", "")
        zone = f"{offset} {offset}"
    whole, _, frac = clock.partition(".")
    frac = frac.rstrip("0")
    return f"{date} {whole}{'.' + frac if frac else ''} {zone}"


def _ip(text: str):  # type: ignore[no-untyped-def]
    """``net.ParseIP``: an address or None (v4-mapped v6 addresses count as v4, as in Go)."""
    import ipaddress

    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _parse_cidr(text: str):  # type: ignore[no-untyped-def]
    """``net.ParseCIDR``: the address part, or Go's error."""
    import ipaddress

    try:
        if "/" not in text:
            raise ValueError(text)
        addr = ipaddress.ip_interface(text).ip
    except ValueError:
        raise CommandError(f"invalid CIDR address: {text}") from None
    return getattr(addr, "ipv4_mapped", None) or addr


def subnet_matches(subnet: str, data: str) -> bool:
    """docker/cli ``subnetMatches``: does ``subnet`` (CIDR) contain the address of ``data``
    (an address, or a CIDR whose address part is used)?  Raises CommandError as Go does."""
    import ipaddress

    try:
        net = ipaddress.ip_interface(subnet).network if "/" in subnet else None
    except ValueError:
        net = None
    if net is None:
        raise CommandError(f"invalid subnet: invalid CIDR address: {subnet}")
    if "/" in data:
        addr = _parse_cidr(data)
    else:
        addr = _ip(data)
    return addr is not None and addr.version == net.version and addr in net


def ipam_config(
    subnets: list[str], ip_ranges: list[str], gateways: list[str], aux: dict[str, str]
) -> list[dict[str, object]]:
    """docker/cli ``createIPAMConfig`` (28.2): one pool per subnet with its range, gateway and
    auxiliary addresses, with the CLI's own checks and error texts."""
    if len(subnets) < len(ip_ranges) or len(subnets) < len(gateways):
        raise CommandError("every ip-range or gateway must have a corresponding subnet")
    pools: dict[str, dict[str, object]] = {}
    for s in subnets:
        for k in pools:
            if subnet_matches(s, k) or subnet_matches(k, s):
                raise CommandError("multiple overlapping subnet configuration is not supported")
        pools[s] = {"Subnet": s}
    for what, key, values in (("range", "IPRange", ip_ranges), ("gateway", "Gateway", gateways)):
        for value in values:
            if key == "IPRange":
                _parse_cidr(value)  # docker parses a range as CIDR first
            match = False
            for s in subnets:
                if not subnet_matches(s, value):
                    continue
                if key in pools[s]:
                    if key == "IPRange":
                        raise CommandError(
                            f"cannot configure multiple ranges ({value}, {pools[s][key]}) "
                            f"on the same subnet ({s})"
                        )
                    raise CommandError(
                        f"cannot configure multiple gateways ({value}, {pools[s][key]}) "
                        f"for the same subnet ({s})"
                    )
                pools[s][key] = value
                match = True
            if not match:
                raise CommandError(f"no matching subnet for {what} {value}")
    for name, addr in aux.items():
        match = False
        for s in subnets:
            if subnet_matches(s, addr):
                pools[s].setdefault("AuxiliaryAddresses", {})[name] = addr  # type: ignore[index]
                match = True
        if not match:
            raise CommandError(f"no matching subnet for aux-address {addr}")
    return list(pools.values())


# -- commands -------------------------------------------------------------------------------


class NetworkRow(Context):
    FIELDS = ("CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope")
    go_type = "*network.networkContext"

    def __init__(self, n: dict, trunc: bool) -> None:  # type: ignore[type-arg]
        self.n, self.trunc = n, trunc

    def ID(self) -> str:
        nid = self.n.get("Id", "")
        return nid[:12] if self.trunc else nid

    def Name(self) -> str:
        return self.n.get("Name", "")

    def Driver(self) -> str:
        return self.n.get("Driver", "")

    def Scope(self) -> str:
        return self.n.get("Scope", "")

    def IPv4(self) -> str:
        return "true" if self.n.get("EnableIPv4") else "false"

    def IPv6(self) -> str:
        return "true" if self.n.get("EnableIPv6") else "false"

    def Internal(self) -> str:
        return "true" if self.n.get("Internal") else "false"

    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted((self.n.get("Labels") or {}).items()))

    def CreatedAt(self) -> str:
        return go_time_string(self.n.get("Created", ""))


NETWORK_LABELS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


@command(
    "[OPTIONS] NETWORK",
    "Create a network",
    [
        Flag("attachable", help="Enable manual container attachment"),
        Flag(
            "aux-address",
            "",
            "list",
            help="Auxiliary IPv4 or IPv6 addresses used by Network driver",
        ),
        Flag(
            "config-from",
            "",
            "str",
            default="",
            help="The network from which to copy the configuration",
        ),
        Flag("config-only", help="Create a configuration only network"),
        Flag("driver", "d", "str", default="bridge", help="Driver to manage the Network"),
        Flag("gateway", "", "list", help="IPv4 or IPv6 Gateway for the master subnet"),
        Flag("ingress", help="Create swarm routing-mesh network"),
        Flag("internal", help="Restrict external access to the network"),
        Flag("ip-range", "", "list", help="Allocate container ip from a sub-range"),
        Flag("ipam-driver", "", "str", default="default", help="IP Address Management Driver"),
        Flag("ipam-opt", "", "list", help="Set IPAM driver specific options"),
        Flag("ipv4", "", "bool", default=_UNSET, help="Enable or disable IPv4 address assignment"),
        Flag("ipv6", "", "bool", default=_UNSET, help="Enable or disable IPv6 address assignment"),
        Flag("label", "", "list", help="Set metadata on a network"),
        Flag("opt", "o", "list", help="Set driver specific options"),
        Flag("scope", "", "str", default="", help="Control the network's scope"),
        Flag("subnet", "", "list", help="Subnet in CIDR format that represents a network segment"),
    ],
    args=(1, 1),
)
def create(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    bad = check_labels(opts["label"])
    if bad:
        return flag_error("network create", bad)
    pools = ipam_config(
        split_slice(opts["subnet"]),
        split_slice(opts["ip_range"]),
        split_slice(opts["gateway"]),
        kv_map(opts["aux_address"]),
    )
    body: dict[str, object] = {"Driver": opts["driver"], "Scope": opts["scope"]}
    if opts["ipv4"] is not _UNSET:
        body["EnableIPv4"] = opts["ipv4"]
    if opts["ipv6"] is not _UNSET:
        body["EnableIPv6"] = opts["ipv6"]
    body.update(
        {
            "IPAM": {
                "Driver": opts["ipam_driver"],
                "Options": kv_map(opts["ipam_opt"]),
                "Config": pools,
            },
            "Internal": opts["internal"],
            "Attachable": opts["attachable"],
            "Ingress": opts["ingress"],
            "ConfigOnly": opts["config_only"],
            "ConfigFrom": {"Network": opts["config_from"]} if opts["config_from"] else None,
            "Options": kv_map(opts["opt"]),
            "Labels": kv_map(opts["label"]),
            "Name": args[0],
            "CheckDuplicate": True,  # the docker CLI sets it for API versions before 1.44
        }
    )
    result = cli.client.json("POST", "/networks/create", body=body)
    sys.stdout.write(f"{result['Id']}\n")
    return 0


@command(
    "[OPTIONS]",
    "List networks",
    [
        Flag("filter", "f", "list", help='Provide filter values (e.g. "driver=bridge")'),
        Flag("format", "", "str", help="Format output using a custom template"),
        Flag("no-trunc", help="Do not truncate the output"),
        Flag("quiet", "q", help="Only display network IDs"),
    ],
    args=(0, 0),
)
def ls(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    networks = cli.client.json("GET", "/networks", {"filters": filters_param(opts["filter"])}) or []
    networks.sort(key=lambda n: natural_key(n.get("Name", "")))
    fmt = opts["format"] or "table"
    if fmt == "table":
        fmt = "{{.ID}}" if opts["quiet"] else "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    elif fmt == "raw":
        fmt = (
            "network_id: {{.ID}}"
            if opts["quiet"]
            else "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n"
        )
    rows = [NetworkRow(n, not opts["no_trunc"]) for n in networks]
    sys.stdout.write(format_rows(rows, fmt, NETWORK_LABELS))
    return 0


@command(
    "[OPTIONS] NETWORK [NETWORK...]",
    "Display detailed information on one or more networks",
    [
        Flag("format", "f", "str", help="Format output using a custom template"),
        Flag("verbose", "v", help="Verbose output for diagnostics"),
    ],
    args=(1, None),
)
def inspect(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    path = "/networks/{}?verbose=true" if opts["verbose"] else "/networks/{}"
    return inspect_each(cli, path, args, opts["format"])


@command(
    "NETWORK [NETWORK...]",
    "Remove one or more networks",
    [
        Flag("force", "f", help="Do not error if the network does not exist"),
    ],
    args=(1, None),
)
def rm(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote
    from dockyard.client.errors import APIError

    status = 0
    for name in args:
        try:
            info = cli.client.json("GET", f"/networks/{quote(name)}")
        except APIError:
            info = None
        if (
            info
            and info.get("Ingress")
            and not confirm(
                "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm "
                "run the same docker engine version. Otherwise, removal may not be effective and "
                "functionality of newly create ingress networks will be impaired."
            )
        ):
            continue
        try:
            cli.client.raw("DELETE", f"/networks/{quote(name)}").close()
        except APIError as exc:
            if opts["force"] and exc.not_found:
                continue
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            status = 1
            continue
        sys.stdout.write(f"{name}\n")
    if status:
        # docker returns a cli.StatusError, whose Status its main prints
        raise CommandError(f"exit status {status}", status)
    return 0


@command(
    "[OPTIONS]",
    "Remove all unused networks",
    [
        Flag("filter", "", "list", help='Provide filter values (e.g. "until=<timestamp>")'),
        Flag("force", "f", help="Do not prompt for confirmation"),
    ],
    args=(0, 0),
)
def prune(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    if not opts["force"] and not confirm(
        "WARNING! This will remove all custom networks not used by at least one container."
    ):
        return 0
    result = (
        cli.client.json("POST", "/networks/prune", {"filters": filters_param(opts["filter"])}) or {}
    )
    deleted = result.get("NetworksDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Networks:\n" + "".join(d + "\n" for d in deleted) + "\n")
    return 0


@command(
    "[OPTIONS] NETWORK CONTAINER",
    "Connect a container to a network",
    [
        Flag("alias", "", "list", help="Add network-scoped alias for the container"),
        Flag("driver-opt", "", "list", help="driver options for the network"),
        Flag(
            "gw-priority",
            "",
            "int",
            default=0,
            help="Highest gw-priority provides the default gateway. Accepts positive and negative values.",
        ),
        Flag("ip", "", "str", default="", help='IPv4 address (e.g., "172.30.100.104")'),
        Flag("ip6", "", "str", default="", help='IPv6 address (e.g., "2001:db8::33")'),
        Flag("link", "", "list", help="Add link to another container"),
        Flag("link-local-ip", "", "list", help="Add a link-local address for the container"),
    ],
    args=(2, 2),
)
def connect(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote

    for link in opts["link"]:
        reason = (
            "empty string specified for links"
            if not link
            else f"bad format for links: {link}"
            if link.count(":") > 1
            else ""
        )
        if reason:
            return flag_error(
                "network connect", f'invalid argument "{link}" for "--link" flag: {reason}'
            )
    driver_opts: dict[str, str] = {}
    for item in split_slice(opts["driver_opt"]):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CommandError("invalid key/value pair format in driver options")
        driver_opts[key.strip()] = value.strip()
    ipam: dict[str, object] = {}
    if opts["ip"]:
        ipam["IPv4Address"] = opts["ip"]
    if opts["ip6"]:
        ipam["IPv6Address"] = opts["ip6"]
    link_local = split_slice(opts["link_local_ip"])
    if link_local:
        ipam["LinkLocalIPs"] = link_local
    endpoint = {
        "IPAMConfig": ipam,
        "Links": opts["link"] or None,
        "Aliases": split_slice(opts["alias"]),
        "MacAddress": "",
        "DriverOpts": dict(sorted(driver_opts.items())),
        "GwPriority": opts["gw_priority"],
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }
    cli.client.json(
        "POST",
        f"/networks/{quote(args[0])}/connect",
        body={"Container": args[1], "EndpointConfig": endpoint},
    )
    return 0


@command(
    "[OPTIONS] NETWORK CONTAINER",
    "Disconnect a container from a network",
    [
        Flag("force", "f", help="Force the container to disconnect from a network"),
    ],
    args=(2, 2),
)
def disconnect(cli, opts, args) -> int:  # type: ignore[no-untyped-def]
    from dockyard.client import quote

    cli.client.json(
        "POST",
        f"/networks/{quote(args[0])}/disconnect",
        body={"Container": args[1], "Force": opts["force"]},
    )
    return 0
