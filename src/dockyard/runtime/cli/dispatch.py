"""``dockyard-runtime``'s verbs (synchronous): global flags as runc's (``--root``, ``--log``,
``--log-format``, ``--debug``, ``--systemd-cgroup`` accepted so containerd and Docker can
drive it), then a verb; each verb lives in its own module, imported only when used.

Shared by the command (``main.py``) and the resident server's workers (``server.py``), so
neither imports the other.
"""

from __future__ import annotations

import importlib
import os
import sys

from dockyard.runtime.cli._args import Parsed, parse

__all__ = ["VERBS", "run", "split"]

VERBS = ("create", "delete", "exec", "kill", "list", "run", "spec", "start", "state")
_USAGE = f"usage: dockyard-runtime [--root DIR] {{{','.join(VERBS)}}} [args...]\n"


def _log_error(log_path: str | None, log_format: str, message: str) -> None:
    sys.stderr.write(f"dockyard-runtime: {message}\n")
    if log_path:
        import json
        import time

        if log_format == "json":
            line = json.dumps({"level": "error", "msg": message, "time": time.time()})
        else:
            line = f"level=error msg={json.dumps(message)}"
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


_GLOBAL_VALUED = {
    "--root": "root",
    "--log": "log",
    "--log-format": "log-format",
    "--criu": "criu",
    "--rootless": "rootless",
}
_GLOBAL_BOOLEAN = {
    "--debug": "debug",
    "--systemd-cgroup": "systemd-cgroup",
    "-h": "help",
    "--help": "help",
    "-v": "version",
    "--version": "version",
}


def split(args: list[str]) -> tuple[Parsed, str, list[str]]:
    """Global flags, the verb (``""`` when there is none) and the verb's own arguments."""
    parsed = parse(args, _GLOBAL_VALUED, _GLOBAL_BOOLEAN, stop_at_positional=1)
    if not parsed.positionals:
        return parsed, "", []
    verb = parsed.positionals[0]
    return parsed, "list" if verb == "ps" else verb, parsed.positionals[1:]


def run(args: list[str]) -> int:
    """Run one verb with its global flags, as the command does; errors become exit codes."""
    from dockyard.errors import DockyardError
    from dockyard.runtime.state import DEFAULT_ROOT, Store

    log_path, log_format = None, "text"
    try:
        parsed, verb, rest = split(args)
        log_path = parsed.get("log")
        log_format = parsed.get("log-format", "text") or "text"
        if "version" in parsed.flags:
            from dockyard import __version__
            from dockyard.runtime.spec import OCI_VERSION

            sys.stdout.write(f"dockyard-runtime version {__version__}\nspec: {OCI_VERSION}\n")
            return 0
        if not verb or "help" in parsed.flags:
            sys.stderr.write(_USAGE)
            return 0 if "help" in parsed.flags else 2
        if verb not in VERBS:
            sys.stderr.write(f"dockyard-runtime: unknown command {verb!r}\n{_USAGE}")
            return 2
        module = importlib.import_module(f"dockyard.runtime.cli.{verb}")
        store = Store(os.path.abspath(parsed.get("root", DEFAULT_ROOT) or DEFAULT_ROOT))
        return int(module.main(store, rest))
    except DockyardError as exc:
        _log_error(log_path, log_format, exc.message)
        return 1
    except OSError as exc:
        _log_error(log_path, log_format, str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
