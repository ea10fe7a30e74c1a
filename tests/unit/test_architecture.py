"""ARCHITECTURE.md stays a true map: every Engine API route is in its endpoint index with
the file and handler that serve it, and every package is in its package table."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import dockyard
import dockyard.api.routes

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _routes() -> list[tuple[str, str, str, str]]:
    out = []
    for info in pkgutil.iter_modules(dockyard.api.routes.__path__):
        module = importlib.import_module(f"dockyard.api.routes.{info.name}")
        for method, path, handler in module.routes.table:
            shown = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)  # {name:.+} reads {name}
            out.append((method, shown, f"api/routes/{info.name}.py", handler.__name__))
    return out


def test_every_endpoint_is_indexed_with_its_file_and_handler() -> None:
    rows = [line for line in DOC.splitlines() if line.startswith("| `")]
    missing = []
    for method, path, file, handler in _routes():
        endpoint = f"`{method} {path}`"
        if not any(
            endpoint in row and f"`{file}`" in row and re.search(rf"\b{handler}\b", row)
            for row in rows
        ):
            missing.append(f"| {endpoint} | `{file}` (`{handler}`) | ... |")
    assert not missing, "add to ARCHITECTURE.md's endpoint index:\n" + "\n".join(missing)


def test_every_package_is_in_the_package_table() -> None:
    root = Path(dockyard.__file__).parent
    packages = sorted(p.parent.name for p in root.glob("*/__init__.py"))
    assert "containers" in packages
    missing = [name for name in packages if f"| `{name}/` |" not in DOC]
    assert not missing, f"add to ARCHITECTURE.md's package table: {missing}"


def test_no_module_is_over_700_lines() -> None:
    """A module past 700 lines holds more than one job (issue 16): split it by what a
    reader looks for, as containers/ was."""
    root = Path(dockyard.__file__).parent
    long = {
        str(p.relative_to(root)): n
        for p in root.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 700
    }
    assert not long, f"split these modules: {long}"
