"""``dockyard-runtime``: a runc-compatible command over ``runtime.native`` (synchronous).

The verbs and their global flags are in ``dispatch.py``; ``__server__`` starts or stops the
resident server (``server.py``) that the compiled client hands calls to.  Both are imported
only when used, to keep start-up short.
"""

from __future__ import annotations

import sys

from dockyard.runtime.cli.dispatch import VERBS, run, split

__all__ = ["VERBS", "main", "split"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["__server__"]:
        from dockyard.runtime.cli.server import command

        return command(args[1:])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
