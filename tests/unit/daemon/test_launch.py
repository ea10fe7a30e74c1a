"""dockyardd's launcher: the daemon runs on jemalloc when it is installed (and not when
asked not to), and what it starts gets the environment it was started with."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dockyard.daemon import launch

JEMALLOC = next((p for p in launch.JEMALLOC_PATHS if os.path.exists(p)), None)


def test_allocator_env_preloads_jemalloc_once_and_keeps_what_was_set():
    if JEMALLOC is None:
        pytest.skip("libjemalloc2 is not installed (install.sh installs it)")
    env = launch.allocator_env({"PATH": "/bin", "LD_PRELOAD": "/lib/other.so"})
    assert env is not None
    assert env["LD_PRELOAD"] == f"{JEMALLOC} /lib/other.so"
    assert env["PYTHONMALLOC"] == "malloc" and env["MALLOC_CONF"] == launch.MALLOC_CONF
    assert launch.allocator_env(env) is None  # already switched: no second exec
    assert launch.allocator_env({"DOCKYARD_ALLOCATOR": "system"}) is None


def test_restore_gives_children_the_original_environment(monkeypatch):
    environ = dict(os.environ, LD_PRELOAD="/lib/other.so")
    environ.pop("PYTHONMALLOC", None)
    switched = launch.allocator_env(environ) if JEMALLOC else None
    if switched is None:
        pytest.skip("libjemalloc2 is not installed (install.sh installs it)")
    monkeypatch.setattr(os, "environ", switched)
    launch._restore(switched)  # type: ignore[arg-type]
    assert switched["LD_PRELOAD"] == "/lib/other.so"
    assert "PYTHONMALLOC" not in switched and "MALLOC_CONF" not in switched
    assert not any(k.startswith("DOCKYARD_ALLOCATOR_SAVED_") for k in switched)


def test_launcher_runs_the_daemon():
    """``python -m dockyard.daemon.launch`` executes itself again and reaches the daemon's
    own argument handling (the running daemon's mappings are checked in
    tests/integration/test_daemon.py)."""
    real = subprocess.run(
        [sys.executable, "-m", "dockyard.daemon.launch", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert real.returncode == 0 and real.stdout.startswith("dockyardd version"), real.stderr


def test_jemalloc_takes_every_setting_and_the_override_replaces_them():
    """A setting jemalloc does not know is only a warning on stderr, and the daemon would
    silently run without it: check each is taken, and that ``DOCKYARD_MALLOC_CONF`` wins."""
    assert JEMALLOC is not None, "libjemalloc2 is missing: install.sh installs it"
    read = (
        "import ctypes; v = ctypes.c_uint(0); n = ctypes.c_size_t(4); "
        "assert ctypes.CDLL(None).mallctl(b'opt.tcache_nslots_small_max', "
        "ctypes.byref(v), ctypes.byref(n), None, 0) == 0; print(v.value)"
    )

    def run(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env = launch.allocator_env(environ)
        assert env is not None
        return subprocess.run(
            [sys.executable, "-c", read], env=env, capture_output=True, text=True, check=True
        )

    default = run(dict(os.environ))
    assert "<jemalloc>" not in default.stderr, default.stderr
    assert default.stdout.strip() == "16"
    custom = run(dict(os.environ, DOCKYARD_MALLOC_CONF="tcache_nslots_small_max:32"))
    assert custom.stdout.strip() == "32" and "<jemalloc>" not in custom.stderr
