"""``dockyard-runtime`` command line (synchronous world): ``main.py`` dispatches (through
``dispatch.py``) to one module per OCI verb (runc's layout), each calling ``runtime.native``;
``server.py`` is its resident fast path.  It must not import the daemon's packages.
Entry point: ``dockyard.runtime.cli.main:main``."""

__all__: list[str] = []
