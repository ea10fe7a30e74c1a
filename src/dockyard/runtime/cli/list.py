"""``dockyard-runtime list [-f table|json] [-q]``: containers under the state root."""

from __future__ import annotations

import sys

import msgspec

from dockyard.runtime import native
from dockyard.runtime.cli._args import parse
from dockyard.runtime.state import Store

__all__ = ["main"]


def main(store: Store, argv: list[str]) -> int:
    args = parse(argv, {"-f": "format", "--format": "format"}, {"-q": "quiet", "--quiet": "quiet"})
    reports = native.list_states(store)
    if "quiet" in args.flags:
        sys.stdout.write("".join(r.id + "\n" for r in reports))
    elif args.get("format") == "json":
        sys.stdout.write(msgspec.json.encode(reports).decode() + "\n")
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [
            (r.id, str(r.pid), r.status, r.bundle, r.created, r.owner or "root") for r in reports
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
            sys.stdout.write("   ".join(cells) + "   " + row[5] + "\n")
    return 0
