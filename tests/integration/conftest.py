"""Session fixtures: one real dockyardd (private data root, exec root and socket), the
busybox image made locally, docker CLI / dockyard CLI / docker-py pointed at it, and a
reference dockerd started only by the tests that need it.  Everything is torn down even
when tests fail."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from engines import Engine, make_busybox, start_dockerd, start_dockyardd


@pytest.fixture(scope="session")
def workdir():
    # Short paths: unix socket paths are limited to 107 bytes.
    path = tempfile.mkdtemp(prefix="dyt-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def daemon(workdir) -> Engine:
    engine = start_dockyardd(os.path.join(workdir, "dy"))
    try:
        make_busybox(engine)
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def dockerd(workdir) -> Engine:
    if not shutil.which("dockerd"):
        pytest.fail("dockerd (Debian's docker.io) is not installed: run ./install.sh --test")
    engine = start_dockerd(os.path.join(workdir, "ref"))
    try:
        make_busybox(engine)
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def docker(daemon):
    """Run the official docker CLI against dockyardd."""
    return daemon.cli


@pytest.fixture
def dockyard(daemon):
    """Run the dockyard CLI against dockyardd."""

    def run(*args, **kw):
        return daemon.cli(*args, program=[sys.executable, "-m", "dockyard.cli.main"], **kw)

    return run


@pytest.fixture
def api(daemon):
    import docker as docker_py

    client = docker_py.DockerClient(base_url=daemon.host, version="auto", timeout=60)
    yield client
    client.close()


# ---- the dockyard CLI against the docker CLI, on the reference dockerd and on dockyardd ----
@pytest.fixture(scope="module", params=["dockerd", "dockyardd"])
def engine(request):
    """Every CLI comparison runs against the reference dockerd (is the CLI right?) and
    dockyardd (is the daemon right?)."""
    return request.getfixturevalue("dockerd" if request.param == "dockerd" else "daemon")


@pytest.fixture
def ref(engine):
    """The official docker CLI."""
    return engine.cli


@pytest.fixture
def dy_cli(engine):
    """The dockyard CLI."""

    def run(*args, **kw):
        return engine.cli(*args, program=[sys.executable, "-m", "dockyard.cli.main"], **kw)

    return run


@pytest.fixture
def ctx():
    """An empty build context directory, removed after the test."""
    path = tempfile.mkdtemp(prefix="dy-build-ctx-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake():
    """A scriptable in-process registry (``regpeers.FakeRegistry``), stopped after the test."""
    from regpeers import FakeRegistry

    reg = FakeRegistry()
    try:
        yield reg
    finally:
        reg.stop()
