"""``dockyard-runtime`` command line (synchronous world): ``main.py`` dispatches to one
module per OCI verb (runc's layout); each parses, calls one ``runtime.native`` function and
prints.  Entry point: ``dockyard.runtime.cli.main:main``."""

__all__: list[str] = []
