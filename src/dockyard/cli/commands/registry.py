"""``dockyard registry serve|gc``: run dockyard's registry server (CLI world).

The CLI is only an API client and must not import daemon-side code, so this command does
not run the registry in its own process image: it replaces itself (``exec``) with
``python -m dockyard.distribution.registry.main`` and the same arguments, which then owns
the terminal, signals and exit status, as a foreground service should.
"""

from __future__ import annotations

import os
import sys

__all__ = ["registry"]

_MODULE = "dockyard.distribution.registry.main"


class _Registry:
    """The ``registry`` command: every argument goes to the registry's own parser."""

    short = "Run an OCI registry (serve, gc)"

    def invoke(self, cli: object, name: str, args: list[str]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execv(sys.executable, [sys.executable, "-m", _MODULE, *args])
        except OSError as exc:
            sys.stderr.write(f"dockyard registry: cannot start {sys.executable}: {exc}\n")
            return 1
        return 0  # not reached: execv replaced this process


registry = _Registry()
