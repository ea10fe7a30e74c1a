"""Image distribution: the registry client (pull, push, login, search against any
Docker Registry HTTP API V2 / OCI Distribution registry) and ``registry/``, dockyard's own
registry server.  It may use ``images``, ``content``, ``layers`` and ``runtime``; it must not
import ``api`` or ``daemon`` (routes call into it, never the other way)."""
