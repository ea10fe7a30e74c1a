"""dockyard: a Docker-compatible container engine (daemon, CLI, Engine API).

Owns the utility modules every layer may use (errors, events, db, filters, fsutil, ...);
they must not import any package.  ARCHITECTURE.md has the map and the layering rules.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
