"""Container runtime (synchronous world): OCI spec, the native runtime, cgroups, the
supervisor (``dockyard-shim``) and the runc-compatible ``dockyard-runtime`` command.
It must not import ``api``, ``daemon``, ``containers`` or ``network`` (lint-imports).

``linux.py`` is the kernel seam (ctypes wrappers); this package re-exports nothing and stays
cheap to import.
"""

__all__: list[str] = []
