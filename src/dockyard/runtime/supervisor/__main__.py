"""``python -m dockyard.runtime.supervisor ROOT [--handover STATE]``: run the supervisor on
ROOT/supervisor.sock (``--handover``: the previous code re-executed us, see handover.py).

Started by the daemon in a new session so that it outlives dockyardd (live restore)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    handover_state = None
    if len(argv) == 3 and argv[1] == "--handover":
        handover_state = argv[2]
    elif len(argv) != 1:
        sys.stderr.write("usage: dockyard-shim ROOT [--handover STATE]\n")
        return 2
    root = os.path.abspath(argv[0])
    os.makedirs(root, mode=0o700, exist_ok=True)
    from dockyard.runtime.supervisor.launch import launch
    from dockyard.runtime.supervisor.server import Supervisor

    Supervisor(root, launch).serve(os.path.join(root, "supervisor.sock"), handover_state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
