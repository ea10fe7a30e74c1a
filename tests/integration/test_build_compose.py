"""docker-compose 1.29 (the Python one, which builds through ``POST /build``) builds and
runs against dockyardd.  It is installed from the package index into a venv of the test's
own (never the shared one): PyYAML 5.4 needs Cython < 3 to build, and compose 1.29 calls
docker-py's ``kwargs_from_env(ssl_version=)``, which docker-py 7 removed, and docker-py 6
cannot use requests 2.32 ("Not supported URL scheme http+docker")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

_STEPS = (
    ["cython<3", "wheel", "setuptools"],
    ["--no-build-isolation", "pyyaml==5.4.1"],
    ["docker-compose==1.29.2", "docker==6.1.3", "requests<2.32"],
)


@pytest.fixture(scope="module")
def compose():
    """Debian's docker-compose 1.29.2 (install.sh --test installs it), else the same release
    from the package index into a venv of the test's own."""
    system = shutil.which("docker-compose")
    if system:
        yield system
        return
    venv = tempfile.mkdtemp(prefix="dy-compose-venv-")
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
        pip = [os.path.join(venv, "bin", "pip"), "install", "-q"]
        for step in _STEPS:
            result = subprocess.run([*pip, *step], capture_output=True, timeout=600)
            if result.returncode != 0:
                pytest.fail(f"pip install {step} failed:\n{result.stderr.decode()[-2000:]}")
        yield os.path.join(venv, "bin", "docker-compose")
    finally:
        shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.parametrize("cli_build", ["0", "1"])
def test_docker_compose_build_and_up(compose, daemon, cli_build):
    """``COMPOSE_DOCKER_CLI_BUILD=0``: compose posts the build itself (docker-py);
    ``=1`` (its default): it runs ``docker build``."""
    project = tempfile.mkdtemp(prefix="dy-compose-")
    env = dict(
        daemon.env,
        COMPOSE_PROJECT_NAME="dybuild",
        DOCKER_BUILDKIT="0",
        COMPOSE_DOCKER_CLI_BUILD=cli_build,
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [compose, *args], cwd=project, env=env, capture_output=True, timeout=300
        )

    try:
        with open(os.path.join(project, "docker-compose.yml"), "w") as f:
            f.write(
                "version: '3.8'\n"
                "services:\n"
                "  app:\n"
                "    build:\n"
                "      context: ./app\n"
                "      args:\n"
                "        WHO: compose\n"
                "      labels:\n"
                "        dy.compose: built\n"
                "    image: dy-compose-app:1\n"
                "    command: cat /hello\n"
            )
        os.makedirs(os.path.join(project, "app"))
        with open(os.path.join(project, "app", "Dockerfile"), "w") as f:
            f.write('FROM busybox\nARG WHO\nCOPY msg /msg\nRUN echo "$(cat /msg) $WHO" > /hello\n')
        with open(os.path.join(project, "app", "msg"), "w") as f:
            f.write("hello from\n")
        built = run("build")
        assert built.returncode == 0, built.stderr.decode() + built.stdout.decode()
        assert b"Successfully tagged dy-compose-app:1" in built.stdout + built.stderr
        # Only the docker CLI prints the legacy builder's deprecation notice.
        assert (b"DEPRECATED" in built.stderr) == (cli_build == "1")
        labels = daemon.cli(
            "image", "inspect", "-f", '{{index .Config.Labels "dy.compose"}}', "dy-compose-app:1"
        )
        assert labels.stdout == b"built\n"
        again = run("build")
        assert again.returncode == 0
        assert (again.stdout + again.stderr).count(b"Using cache") == 4
        up = run("up", "--no-color")
        assert up.returncode == 0, up.stderr.decode()
        assert b"hello from compose" in up.stdout
    finally:
        run("down", "--rmi", "local")
        daemon.cli("rmi", "-f", "dy-compose-app:1")
        shutil.rmtree(project, ignore_errors=True)
