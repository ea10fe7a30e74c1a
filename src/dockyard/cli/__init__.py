"""The ``dockyard`` command line (CLI world: synchronous, must start fast).
It must not import daemon-side code: it speaks the Engine API through ``dockyard.client``
only (lint-imports checks it).  Heavy imports belong inside functions.

Renders output byte-for-byte like the docker CLI 28: ``template`` (Go templates for
``--format``), ``table`` (tabwriter), ``units`` (go-units sizes and durations).
"""
