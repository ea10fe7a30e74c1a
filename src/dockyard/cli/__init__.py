"""The ``dockyard`` command line (CLI world: synchronous, must start fast).

Parses arguments, calls ``dockyard.client``, renders output byte-for-byte like the docker
CLI 28: ``template`` (Go templates for ``--format``), ``table`` (tabwriter), ``units``
(go-units sizes and durations).  Heavy imports belong inside functions.
"""
