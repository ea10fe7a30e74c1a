"""Containers (asyncio world): records and their state machine, logs, attach, exec, health,
restart policies, cp/archive, commit, and each container's network and mounts.

It may use ``images``, ``storage``, ``volumes``, ``network`` and ``runtime`` (through the
supervisor); it must not import ``api`` or ``daemon``.  ``service.py`` is the entry point.
"""
