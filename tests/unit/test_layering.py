"""The layering contracts of pyproject.toml's [tool.importlinter] hold on this tree, and
break when a module imports upwards (so ``lint-imports`` in scripts/run-tests has teeth)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--config", str(REPO / "pyproject.toml")],
        cwd=src.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(
        REPO / "src" / "dockyard", src / "dockyard", ignore=shutil.ignore_patterns("__pycache__")
    )
    return src


def test_contracts_hold_on_the_tree() -> None:
    result = _lint(REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward", "contract", "message"),
    [
        (
            "runtime/linux.py",
            "dockyard.api.keys",
            "runtime/ knows nothing of the API",
            "dockyard.runtime is not allowed to import dockyard.api",
        ),
        (
            "storage/base.py",
            "dockyard.containers.record",
            "daemon -> api -> services",
            "dockyard.storage is not allowed to import dockyard.containers",
        ),
        (
            "cli/units.py",
            "dockyard.images.reference",
            "cli/ and client/ speak the Engine API only",
            "dockyard.cli is not allowed to import dockyard.images",
        ),
        (
            "distribution/__init__.py",
            "dockyard.api.query",
            "distribution/ and build/ are called by routes",
            "dockyard.distribution is not allowed to import dockyard.api",
        ),
    ],
)
def test_an_upward_import_breaks_a_contract(
    tmp_path: Path, module: str, upward: str, contract: str, message: str
) -> None:
    src = _copy(tmp_path)
    with open(src / "dockyard" / module, "a", encoding="utf-8") as f:
        f.write(f"\nimport {upward}  # noqa: F401, E402\n")
    result = _lint(src)
    assert result.returncode == 1, result.stdout + result.stderr
    assert contract in result.stdout
    assert message in result.stdout


def test_a_new_package_must_be_placed_in_a_layer(tmp_path: Path) -> None:
    src = _copy(tmp_path)
    (src / "dockyard" / "newpkg").mkdir()
    (src / "dockyard" / "newpkg" / "__init__.py").write_text('"""Unplaced."""\n')
    result = _lint(src)
    assert result.returncode == 1
    assert "not listed as layers" in result.stdout and "dockyard.newpkg" in result.stdout
