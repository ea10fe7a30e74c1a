"""Container networking (blocking world): the building blocks of the bridge driver.

- ``ipam``      pure address management: subnet validation, default address pools,
                per-network address allocation (no I/O);
- ``netns``     persistent network namespaces as bind-mounted files, and running code
                inside one on a dedicated thread (the daemon's own netns never changes);
- ``bridge``    Linux bridge and veth plumbing through netlink (pyroute2);
- ``iptables``  Docker-style NAT, isolation and port publishing in dockyard's own chains.

They are libraries with synchronous APIs; the daemon calls them through
``asyncio.to_thread``.  They mirror moby's libnetwork ``drivers/bridge`` and ``ipam``.
"""

__all__: list[str] = []
