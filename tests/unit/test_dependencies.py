"""Every pinned runtime dependency is imported by the code: a pin nothing uses (``rich``
was one, while the CLI draws progress with its own port of moby's jsonmessage) costs an
install and an audit for nothing."""

from __future__ import annotations

import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# distribution name -> import name, where they differ
IMPORT_NAMES = {"pyjwt": "jwt"}


def _runtime_pins() -> list[str]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return [re.split(r"[=<>!~\[; ]", d, maxsplit=1)[0].lower() for d in deps]


def _imported_modules() -> set[str]:
    found: set[str] = set()
    pattern = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
    for dirpath, _, files in os.walk(os.path.join(ROOT, "src", "dockyard")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    found |= set(pattern.findall(f.read()))
    return found


def test_every_runtime_dependency_is_imported():
    imported = _imported_modules()
    unused = [p for p in _runtime_pins() if IMPORT_NAMES.get(p, p) not in imported]
    assert unused == []
