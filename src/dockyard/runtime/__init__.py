"""Container runtime (synchronous world): OCI spec, native runtime, supervisor.

Only the kernel seam ``dockyard.runtime.linux`` exists so far; storage, network and volumes
import it directly (it is the floor of the dependency graph), so this package re-exports
nothing and stays cheap to import.
"""

__all__: list[str] = []
