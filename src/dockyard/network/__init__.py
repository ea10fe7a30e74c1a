"""Networks (blocking building blocks and the asyncio ``service``): IPAM, bridge and veth,
iptables NAT and publishing, netns, embedded DNS, port proxy, network records.  It must not
import ``containers`` (containers' endpoints live in ``containers/networking.py``) or ``api``.

- ``ipam``      pure address management: subnet validation, default address pools,
                per-network address allocation (no I/O);
- ``netns``     persistent network namespaces as bind-mounted files, and running code
                inside one on a dedicated thread (the daemon's own netns never changes);
- ``bridge``    Linux bridge and veth plumbing through netlink (pyroute2);
- ``iptables``  Docker-style NAT, isolation and port publishing in dockyard's own chains.

The blocking parts are libraries the service calls through ``asyncio.to_thread``; they
mirror moby's libnetwork ``drivers/bridge`` and ``ipam``.
"""

__all__: list[str] = []
