"""``python -m dockyard.runtime.supervisor ROOT``: run the supervisor on ROOT/supervisor.sock.

Started by the daemon in a new session so that it outlives dockyardd (live restore)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: dockyard-shim ROOT\n")
        return 2
    root = os.path.abspath(argv[0])
    os.makedirs(root, mode=0o700, exist_ok=True)
    from dockyard.runtime.supervisor.launch import launch
    from dockyard.runtime.supervisor.server import Supervisor

    Supervisor(root, launch).serve(os.path.join(root, "supervisor.sock"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
