"""The OCI runtimes a container may ask for with ``--runtime`` (pure logic).

``dockyard`` is the native runtime, forked inside the supervisor; every other name is an
OCI command-line runtime (runc, crun, youki…) the supervisor runs in the foreground.  As
dockerd: ``runc`` is there when it is installed, daemon.json ``runtimes`` adds
``{"name": {"path": ..., "runtimeArgs": [...]}}`` and ``--add-runtime name=path``,
``default-runtime``/``--default-runtime`` picks the one used when a container names none.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

__all__ = ["NATIVE", "Runtime", "RuntimeConfigError", "Runtimes"]

NATIVE = "dockyard"
# Names dockerd 20.10 lists for its own runc; compose files and tools send them.
_RUNC_ALIASES = ("runc", "io.containerd.runc.v2")


class RuntimeConfigError(ValueError):
    """daemon.json or the flags name a runtime badly; the message says which."""


@dataclass(frozen=True, slots=True)
class Runtime:
    name: str
    path: str = ""  # empty for the native runtime
    args: tuple[str, ...] = ()

    @property
    def native(self) -> bool:
        return self.name == NATIVE

    @property
    def state_dir(self) -> str:
        """Its state root under the exec root (runc keeps the one it had before runtimes
        were configurable, so running containers are found again)."""
        if self.native:
            return "runtime"
        return "runc" if self.name in _RUNC_ALIASES else f"oci/{self.name}"

    def info(self) -> dict[str, Any]:
        """As ``/info`` ``Runtimes`` shows it."""
        out: dict[str, Any] = {"path": self.path or "dockyard-runtime"}
        if self.args:
            out["runtimeArgs"] = list(self.args)
        return out


class Runtimes:
    def __init__(self, table: dict[str, Runtime], default: str) -> None:
        self.table = table
        self.default = default

    @classmethod
    def from_config(cls, extra: dict[str, Any]) -> Runtimes:
        table: dict[str, Runtime] = {NATIVE: Runtime(NATIVE)}
        runc = shutil.which("runc")
        if runc:
            for name in _RUNC_ALIASES:
                table[name] = Runtime(name, runc)
        declared = extra.get("runtimes") or {}
        if not isinstance(declared, dict):
            raise RuntimeConfigError(
                'invalid value for runtimes: a JSON object of name: {"path": ...} is expected'
            )
        for name, entry in declared.items():
            if name == NATIVE:
                raise RuntimeConfigError(f"runtime name '{NATIVE}' is reserved")
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("path"), str)
                or not entry["path"]
            ):
                raise RuntimeConfigError(
                    f'runtime {name}: a "path" to the runtime\'s binary is required'
                )
            args = entry.get("runtimeArgs") or []
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                raise RuntimeConfigError(f"runtime {name}: runtimeArgs must be a list of strings")
            unknown = set(entry) - {"path", "runtimeArgs"}
            if unknown:
                raise RuntimeConfigError(
                    f"runtime {name}: unsupported keys {sorted(unknown)} (only path and runtimeArgs)"
                )
            table[name] = Runtime(name, entry["path"], tuple(args))
        default = extra.get("default-runtime") or NATIVE
        if not isinstance(default, str) or default not in table:
            raise RuntimeConfigError(
                f"default runtime {default} does not exist: "
                f"known runtimes are {', '.join(sorted(table))}"
            )
        return cls(table, default)

    def resolve(self, name: str | None) -> Runtime:
        """The runtime a create asks for; ``KeyError`` names an unknown one."""
        return self.table[name or self.default]

    def info(self) -> dict[str, Any]:
        return {name: rt.info() for name, rt in sorted(self.table.items())}
