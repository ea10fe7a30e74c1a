"""Docker-style NAT, isolation and port publishing (blocking world; ``iptables -w`` processes).

The rules are moby's (``libnetwork/drivers/bridge/setup_ip_tables_linux.go``,
``port_mapping_linux.go``; v28 layout) but live in chains dockyard owns, named from a
``prefix`` (``DOCKYARD`` by default, a random one in tests), so that ``teardown`` can
remove everything without touching anyone else's rules and two engines never collide:

    nat     PREROUTING  -m addrtype --dst-type LOCAL -j P
            OUTPUT      -m addrtype --dst-type LOCAL [! -d 127.0.0.0/8] -j P
            POSTROUTING -j P-POSTROUTING
            P               per network: -i BR -j RETURN (userland proxy on: no DNAT from
                            the bridge); per port: DNAT to the container
            P-POSTROUTING   per network: MASQUERADE of the subnet leaving by another
                            interface; hairpin MASQUERADE per port (and of local sources
                            when the userland proxy is off)
    filter  FORWARD     -j P-FORWARD (first)
            P-FORWARD       -j P-ISOLATION-STAGE-1, then per network: established ACCEPT,
                            -o BR -j P, -i BR ! -o BR ACCEPT, -i BR -o BR ACCEPT|DROP (icc)
            P               per port: ACCEPT to the container; per network (last): DROP
                            of anything else reaching the bridge from outside
            P-ISOLATION-STAGE-1/2  bridge-to-bridge traffic between dockyard networks
                            is dropped; --internal networks drop all that leaves or enters
                            from outside their subnet

``userland_proxy`` follows dockerd's ``userland-proxy`` (default true).  When false,
``setup`` lets the OUTPUT jump catch 127.0.0.0/8 too, ``add_network`` sets
``net.ipv4.conf.<bridge>.route_localnet = 1`` (so a DNATed 127.0.0.1 may leave on the
bridge) and masquerades local sources, and DNAT also applies to traffic from the bridge
(containers reach published ports through the host; needs ``bridge.attach(hairpin=True)``).

Every call is idempotent (``-C`` before ``-A``/``-I``, delete while ``-C`` matches), so the
daemon can replay them at restart.  IPv4 rules go through ``iptables``, IPv6 through
``ip6tables``, chosen from the addresses given: the same layout, ``::1/128`` for loopback
(dockerd 20.10 programs them only with its experimental ``ip6tables`` option, and so does
the network service).  Failures raise ``Internal``.
"""

from __future__ import annotations

import ipaddress
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.errors import Internal, InvalidParameter

__all__ = [
    "DEFAULT_PREFIX",
    "Rule",
    "add_network",
    "installed",
    "loopback_guard",
    "network_rules",
    "port_rules",
    "publish",
    "remove_network",
    "setup",
    "teardown",
    "unpublish",
]

DEFAULT_PREFIX = "DOCKYARD"
_LOOPBACK = {4: "127.0.0.0/8", 6: "::1/128"}
_PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: ``insert`` puts it first in its chain (else it is appended)."""

    table: str
    chain: str
    args: tuple[str, ...]
    insert: bool = False


def _tool(version: int) -> str:
    return "iptables" if version == 4 else "ip6tables"


def _run(version: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [_tool(version), "-w", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise Internal(f"{cmd[0]} is not installed: install iptables") from exc
    if check and proc.returncode != 0:
        raise Internal(f"{shlex.join(cmd)}: {proc.stderr.strip()}")
    return proc


def _exists(version: int, rule: Rule) -> bool:
    return (
        _run(version, "-t", rule.table, "-C", rule.chain, *rule.args, check=False).returncode == 0
    )


def _ensure(version: int, rule: Rule) -> None:
    if _exists(version, rule):
        return
    where = ["-I", rule.chain, "1"] if rule.insert else ["-A", rule.chain]
    _run(version, "-t", rule.table, *where, *rule.args)


def _delete(version: int, rule: Rule) -> None:
    while _exists(version, rule):  # duplicates too, e.g. left by a crash mid-setup
        _run(version, "-t", rule.table, "-D", rule.chain, *rule.args)


def _chains(prefix: str) -> dict[str, list[str]]:
    return {
        "nat": [prefix, f"{prefix}-POSTROUTING"],
        "filter": [
            prefix,
            f"{prefix}-FORWARD",
            f"{prefix}-ISOLATION-STAGE-1",
            f"{prefix}-ISOLATION-STAGE-2",
        ],
    }


def _jumps(prefix: str, version: int, userland_proxy: bool) -> list[Rule]:
    output = ["-m", "addrtype", "--dst-type", "LOCAL"]
    if userland_proxy:
        output += ["!", "-d", _LOOPBACK[version]]
    return [
        Rule("nat", "PREROUTING", ("-m", "addrtype", "--dst-type", "LOCAL", "-j", prefix)),
        Rule("nat", "OUTPUT", (*output, "-j", prefix)),
        Rule("nat", "POSTROUTING", ("-j", f"{prefix}-POSTROUTING")),
        Rule("filter", "FORWARD", ("-j", f"{prefix}-FORWARD"), insert=True),
        Rule("filter", f"{prefix}-FORWARD", ("-j", f"{prefix}-ISOLATION-STAGE-1"), insert=True),
    ]


def setup(
    prefix: str = DEFAULT_PREFIX, userland_proxy: bool = True, versions: Sequence[int] = (4,)
) -> None:
    """Create the chains and the jumps to them (for each IP version in ``versions``)."""
    for version in versions:
        for table, chains in _chains(prefix).items():
            for chain in chains:
                if _run(version, "-t", table, "-n", "-L", chain, check=False).returncode != 0:
                    _run(version, "-t", table, "-N", chain)
        # a restart may flip userland-proxy: drop the other OUTPUT jump first
        _delete(version, _jumps(prefix, version, not userland_proxy)[1])
        for rule in _jumps(prefix, version, userland_proxy):
            _ensure(version, rule)


def installed(prefix: str = DEFAULT_PREFIX, version: int = 4) -> bool:
    """Whether ``setup`` made this prefix's chains for ``version`` (one cheap listing, so a
    daemon can skip ``teardown`` of what was never there); False when the tool is missing."""
    try:
        listing = _run(version, "-t", "filter", "-n", "-L", f"{prefix}-FORWARD", check=False)
    except Internal:
        return False
    return listing.returncode == 0


def teardown(prefix: str = DEFAULT_PREFIX, versions: Sequence[int] = (4, 6)) -> None:
    """Remove every rule and chain ``setup``/``add_network``/``publish`` made with ``prefix``.

    Jumps are found by listing the built-in chains, so none is left whatever flags made
    them.  A version whose tool is missing is skipped.
    """
    ours = {c for chains in _chains(prefix).values() for c in chains}
    builtin = {"nat": ("PREROUTING", "OUTPUT", "POSTROUTING"), "filter": ("FORWARD",)}
    for version in versions:
        try:
            listing = _run(version, "-t", "filter", "-n", "-L", "FORWARD", check=False)
        except Internal:
            continue
        if listing.returncode != 0:
            continue
        for table, chains in builtin.items():
            for chain in chains:
                for line in _run(version, "-t", table, "-S", chain).stdout.splitlines():
                    words = shlex.split(line)
                    if (
                        words[:1] == ["-A"]
                        and "-j" in words
                        and words[words.index("-j") + 1] in ours
                    ):
                        _run(version, "-t", table, "-D", *words[1:], check=False)
        for table, chains in _chains(prefix).items():
            for chain in chains:
                _run(version, "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(version, "-t", table, "-X", chain, check=False)
        if version == 4:
            _remove_loopback_guards(prefix)


def network_rules(
    prefix: str,
    bridge: str,
    subnet: str,
    internal: bool = False,
    icc: bool = True,
    masquerade: bool = True,
    userland_proxy: bool = True,
) -> list[Rule]:
    """The rules of one bridge network, in the order ``add_network`` applies them."""
    net = str(ipaddress.ip_network(subnet))
    iso1, iso2 = f"{prefix}-ISOLATION-STAGE-1", f"{prefix}-ISOLATION-STAGE-2"
    fwd = f"{prefix}-FORWARD"
    icc_rule = Rule("filter", fwd, ("-i", bridge, "-o", bridge, "-j", "ACCEPT" if icc else "DROP"))
    if internal:
        return [
            Rule("filter", iso1, ("-i", bridge, "!", "-d", net, "-j", "DROP"), insert=True),
            Rule("filter", iso1, ("!", "-s", net, "-o", bridge, "-j", "DROP"), insert=True),
            icc_rule,
        ]
    rules: list[Rule] = []
    if masquerade:
        rules.append(
            Rule("nat", f"{prefix}-POSTROUTING", ("-s", net, "!", "-o", bridge, "-j", "MASQUERADE"))
        )
    if userland_proxy:
        rules.append(Rule("nat", prefix, ("-i", bridge, "-j", "RETURN"), insert=True))
    else:
        rules.append(
            Rule(
                "nat",
                f"{prefix}-POSTROUTING",
                ("-m", "addrtype", "--src-type", "LOCAL", "-o", bridge, "-j", "MASQUERADE"),
            )
        )
    rules += [
        Rule("filter", iso1, ("-i", bridge, "!", "-o", bridge, "-j", iso2), insert=True),
        Rule("filter", iso2, ("-o", bridge, "-j", "DROP"), insert=True),
        Rule(
            "filter",
            fwd,
            ("-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"),
        ),
        Rule("filter", fwd, ("-o", bridge, "-j", prefix)),
        Rule("filter", fwd, ("-i", bridge, "!", "-o", bridge, "-j", "ACCEPT")),
        icc_rule,
        # after the per-port ACCEPTs (inserted first): unpublished ports stay unreachable
        # from other hosts that route to the subnet (moby v28's default-drop)
        Rule("filter", prefix, ("!", "-i", bridge, "-o", bridge, "-j", "DROP")),
    ]
    return rules


def add_network(
    prefix: str,
    bridge: str,
    subnet: str,
    internal: bool = False,
    icc: bool = True,
    masquerade: bool = True,
    userland_proxy: bool = True,
) -> None:
    """Program one bridge network (after ``setup`` and ``bridge.ensure_bridge``)."""
    version = ipaddress.ip_network(subnet).version
    if not userland_proxy and version == 4 and not internal:
        _ensure(4, loopback_guard(prefix, bridge))  # before the sysctl opens the door
        _write_sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")
    for rule in network_rules(prefix, bridge, subnet, internal, icc, masquerade, userland_proxy):
        _ensure(version, rule)


def remove_network(
    prefix: str,
    bridge: str,
    subnet: str,
    internal: bool = False,
    icc: bool = True,
    masquerade: bool = True,
    userland_proxy: bool = True,
) -> None:
    """Undo ``add_network`` (same arguments); rules already gone are fine."""
    version = ipaddress.ip_network(subnet).version
    for rule in network_rules(prefix, bridge, subnet, internal, icc, masquerade, userland_proxy):
        _delete(version, rule)
    if not userland_proxy and version == 4 and not internal:
        _delete(4, loopback_guard(prefix, bridge))


def port_rules(
    prefix: str,
    proto: str,
    host_ip: str,
    host_port: int,
    container_ip: str,
    container_port: int,
    bridge: str,
    userland_proxy: bool = True,
) -> list[Rule]:
    """The rules publishing one port (``-p [host_ip:]host_port:container_port/proto``)."""
    if proto not in _PROTOS:
        raise InvalidParameter(f"invalid proto '{proto}'")
    cip = ipaddress.ip_address(container_ip)
    host = ipaddress.ip_address(host_ip) if host_ip else None
    if host is not None and host.version != cip.version:
        raise InvalidParameter(
            f"host IP {host_ip} and container IP {container_ip} differ in family"
        )
    full = f"{cip}/{cip.max_prefixlen}"
    dest = f"{cip}:{container_port}" if cip.version == 4 else f"[{cip}]:{container_port}"
    match = ["-p", proto]
    if host is not None and not host.is_unspecified:
        match += ["-d", f"{host}/{host.max_prefixlen}"]
    match += ["--dport", str(host_port)]
    if userland_proxy:  # the proxy serves containers; DNAT only what comes from outside
        match = ["!", "-i", bridge, *match]
    cport = ("-p", proto, "-m", proto, "--dport", str(container_port))
    return [
        Rule("nat", prefix, (*match, "-j", "DNAT", "--to-destination", dest)),
        Rule(
            "filter",
            prefix,
            ("-d", full, "!", "-i", bridge, "-o", bridge, *cport, "-j", "ACCEPT"),
            insert=True,
        ),
        Rule("nat", f"{prefix}-POSTROUTING", ("-s", full, "-d", full, *cport, "-j", "MASQUERADE")),
    ]


def publish(
    prefix: str,
    proto: str,
    host_ip: str,
    host_port: int,
    container_ip: str,
    container_port: int,
    bridge: str,
    userland_proxy: bool = True,
) -> None:
    """DNAT ``host_ip:host_port`` (any local address when empty/0.0.0.0/::) to the container."""
    version = ipaddress.ip_address(container_ip).version
    for rule in port_rules(
        prefix, proto, host_ip, host_port, container_ip, container_port, bridge, userland_proxy
    ):
        _ensure(version, rule)


def unpublish(
    prefix: str,
    proto: str,
    host_ip: str,
    host_port: int,
    container_ip: str,
    container_port: int,
    bridge: str,
    userland_proxy: bool = True,
) -> None:
    """Undo ``publish`` (same arguments); rules already gone are fine."""
    version = ipaddress.ip_address(container_ip).version
    for rule in port_rules(
        prefix, proto, host_ip, host_port, container_ip, container_port, bridge, userland_proxy
    ):
        _delete(version, rule)


def loopback_guard(prefix: str, bridge: str) -> Rule:
    """The rule that keeps ``route_localnet`` on a bridge from opening the host's loopback.

    With the userland proxy off, ``route_localnet=1`` lets DNATed 127.0.0.1 traffic leave by
    the bridge, but it also makes the host accept packets arriving from the bridge addressed
    to 127.0.0.0/8: a container could reach services listening on the host's loopback only
    (CVE-2020-8558; kube-proxy's KUBE-FIREWALL and moby's raw-PREROUTING loopback rules drop
    them).  The drop is in raw PREROUTING, before routing and NAT.  The host's own
    connections to a published 127.0.0.1 port are not affected: they leave by the bridge
    masqueraded, so the container's replies are addressed to the bridge's address.
    """
    return Rule(
        "raw",
        "PREROUTING",
        (
            "-i", bridge, "-d", _LOOPBACK[4],
            "-m", "comment", "--comment", f"{prefix} loopback guard",
            "-j", "DROP",
        ),
    )  # fmt: skip


def _remove_loopback_guards(prefix: str) -> None:
    """``teardown``'s part for ``loopback_guard`` (built-in chain: found by its comment)."""
    listing = _run(4, "-t", "raw", "-S", "PREROUTING", check=False)
    for line in listing.stdout.splitlines():
        words = shlex.split(line)
        if words[:1] == ["-A"] and f"{prefix} loopback guard" in words:
            _run(4, "-t", "raw", "-D", *words[1:], check=False)


def _write_sysctl(key: str, value: str) -> None:
    try:
        with open(f"/proc/sys/{key}", "w", encoding="ascii") as f:
            f.write(value)
    except OSError as exc:
        raise Internal(f"setting {key.replace('/', '.')}={value}: {exc}") from exc
