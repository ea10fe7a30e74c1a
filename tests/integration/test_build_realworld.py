"""Real-world shaped Dockerfiles (``tests/integration/dockerfiles/``, each says which
pattern it follows) built with the official docker CLI (legacy builder) on Debian's dockerd
and on dockyardd, compared file by file, config field by field and step by step, then run
on both as a user would; the BuildKit-era one (heredocs, cache mounts: the legacy builder
has neither) is built on dockyardd only and checked for its exact result."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
from test_build import (  # noqa: F401
    _remove_new_images,
    build,
    config,
    filesystem,
    history,
    same_build,
    steps,
)

PROJECTS = os.path.join(os.path.dirname(__file__), "dockerfiles")


def _context(ctx: str, project: str, decoys: dict[str, str] | None = None) -> str:
    """A copy of the project with modes set as a checkout would leave them (git keeps only
    the executable bit), plus files its .dockerignore must keep out, which git cannot hold
    (``.git``, ``__pycache__``)."""
    root = os.path.join(ctx, project)
    shutil.copytree(os.path.join(PROJECTS, project), root)
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o755 if name.endswith(".sh") else 0o644)
    for name, data in (decoys or {}).items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(data)
    return root


def _run(engine, *args: str) -> str:
    out = engine.cli("run", "--rm", *args, check=True)
    return out.stdout.decode()


def test_python_web_service(dockerd, daemon, ctx):
    root = _context(
        ctx,
        "python-web",
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            ".env": "SECRET=1\n",
            "app/__pycache__/views.cpython-311.pyc": "bytecode",
            "tests/test_views.py": "def test(): pass\n",
            "NOTES.md": "not shipped\n",
        },
    )
    tag = "dy-rw-python-web:1"
    same_build(dockerd, daemon, root, tag, "--build-arg", "APP_HOME=/srv/web")
    outputs = [_run(engine, tag) for engine in (dockerd, daemon)]
    assert outputs[0] == outputs[1] == "serve on port 8000 as app in /srv/web: flask gunicorn \n"
    listing = _run(daemon, "--entrypoint", "ls", tag, "-A", "/srv/web")
    # what .dockerignore kept out is not there (.dockerignore itself is in the context)
    assert listing.split() == [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "app",
        "entrypoint.sh",
        "requirements.txt",
        "vendor",
    ]
    for engine in (dockerd, daemon):
        engine.cli("rmi", tag)


def test_static_site_multistage(dockerd, daemon, ctx):
    """The same image as dockerd's; the one difference is by design: the legacy builder
    runs every stage, dockyardd skips the test stage the target does not need (as
    BuildKit does), so its step list is dockerd's without that stage's two steps."""
    root = _context(ctx, "static-site", {"node_modules/x/index.js": "x", "dist/stale.html": ""})
    tag = "dy-rw-static-site:1"
    theirs, mine = build(dockerd, root, "-t", tag), build(daemon, root, "-t", tag)
    assert theirs.returncode == 0, theirs.stderr.decode()
    assert mine.returncode == 0, mine.stderr.decode() + mine.stdout.decode()
    skipped = [" : FROM build AS test", " : RUN grep -q "]
    expected = [
        line.split(" : ", 1)[1]
        for line in steps(theirs.stdout)
        if not any(part in line for part in skipped)
    ]
    assert [line.split(" : ", 1)[1] for line in steps(mine.stdout)] == expected
    assert steps(mine.stdout)[0].startswith(f"Step 1/{len(expected)} :")
    assert config(daemon, tag) == config(dockerd, tag)
    assert filesystem(daemon, tag) == filesystem(dockerd, tag)
    assert history(daemon, tag)[:-1] == history(dockerd, tag)[:-1]
    page = (
        "<html><head><title>Home</title></head>\n"
        "<body><h1>Home</h1><p>Welcome to the site.</p></body></html>\n"
    )
    for engine in (dockerd, daemon):
        assert _run(engine, tag, "cat", "/var/www/html/index.html") == page
        assert _run(engine, tag, "cat", "/var/www/html/pages.txt") == (
            "about.html\nindex.html\npages.txt\n"  # (the shell makes pages.txt before ls runs)
        )
        engine.cli("rmi", tag)
    # CI's way into the test stage: --target builds it and what it needs.
    mine = build(daemon, root, "--target", "test", "-t", "dy-rw-static-site:test")
    assert mine.returncode == 0, mine.stderr.decode()
    assert any("RUN grep -q" in line for line in steps(mine.stdout))
    daemon.cli("rmi", "dy-rw-static-site:test")


def test_onbuild_base_and_application(dockerd, daemon, ctx):
    base = _context(ctx, "onbuild-base")
    child = _context(ctx, "onbuild-child", {"debug.log": "not shipped\n"})
    same_build(dockerd, daemon, base, "dy-rw-onbuild-base")
    same_build(dockerd, daemon, child, "dy-rw-onbuild-app", "--build-arg", "APP_ENV=staging")
    expected = (
        "left-pad installed\nlodash installed\nenv=staging\n"
        "Dockerfile\ninstalled.list\nmain.sh\npackage.list\n"
    )
    for engine in (dockerd, daemon):
        assert _run(engine, "dy-rw-onbuild-app") == expected
        engine.cli("rmi", "dy-rw-onbuild-app", "dy-rw-onbuild-base")


def test_official_image_style(dockerd, daemon, ctx):
    root = _context(ctx, "official-style")
    tag = "dy-rw-official:1"
    same_build(dockerd, daemon, root, tag)
    expected = "redis runs redis-server /usr/local/etc/redis/redis.conf in /data, log /dev/stdout\n"
    for engine in (dockerd, daemon):
        assert _run(engine, tag) == expected
        assert _run(engine, tag, "id", "-u") == "0\n"  # anything but the server runs as asked
        engine.cli("rmi", tag)


@pytest.mark.parametrize("workers", ["2", "8"])
def test_buildkit_era_dockerfile_on_dockyardd(daemon, ctx, workers):
    root = _context(ctx, "buildkit-era")
    path = os.path.join(root, "Dockerfile")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("@CACHE_ID@", f"dy-rw-{uuid.uuid4().hex[:12]}"))
    tag = f"dy-rw-buildkit:{workers}"
    states = []
    for _ in range(2):  # the second build re-runs the RUN and finds the cache filled
        out = build(daemon, root, "--no-cache", "--build-arg", f"WORKERS={workers}", "-t", tag)
        assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
        states.append(_run(daemon, tag, "cat", "/opt/deps/cache-state"))
    assert states == ["miss\n", "hit\n"]
    assert _run(daemon, tag) == "start: 2 settings, deps hit\n"
    conf = _run(daemon, tag, "cat", "/etc/app/app.conf")
    assert conf == f"listen = 0.0.0.0:9000\nworkers = {workers}\n"
    # quoted delimiter: nothing expanded; <<-: leading tabs gone; --chmod applied
    start = _run(daemon, tag, "cat", "/usr/local/bin/start")
    assert start.startswith('#!/bin/sh\necho "start: $(wc -l < /etc/app/app.conf)')
    assert _run(daemon, tag, "stat", "-c", "%a %U", "/usr/local/bin/start") == "755 root\n"
    assert _run(daemon, tag, "cat", "/etc/motd") == "built by a heredoc\n"
    assert _run(daemon, tag, "cat", "/opt/deps/lib.tar") == "library 1.0\n"
    assert _run(daemon, tag, "id", "-un") == "nobody\n"
    # the cache mount's contents never reach a layer
    assert "No such file" in daemon.cli("run", "--rm", tag, "ls", "/var/cache/pkg").stderr.decode()
    daemon.cli("rmi", tag)


@pytest.mark.parametrize("name", ["goservice", "webapp", "keyvalue"])
def test_more_projects_same_as_dockerd(dockerd, daemon, ctx, name):
    """A Go-style builder pattern, the Node "Dockerizing a web app" guide and a redis-like
    official image (each Dockerfile's header says more), built and run on both."""
    tag = f"dy-rw-{name}"
    same_build(dockerd, daemon, _context(ctx, name), tag)
    assert _run(daemon, tag) == _run(dockerd, tag)
    for engine in (dockerd, daemon):
        engine.cli("rmi", tag)


def test_webapp_dockerignore_kept_the_right_files(daemon, ctx):
    out = build(daemon, _context(ctx, "webapp"), "-t", "dy-rw-webapp-files")
    assert out.returncode == 0, out.stderr.decode()
    files = filesystem(daemon, "dy-rw-webapp-files")
    app = sorted(k.removeprefix("home/node/app/") for k in files if k.startswith("home/node/app/"))
    assert app == [
        ".dockerignore",
        ".install-stamp",
        "Dockerfile",
        "README.md",
        "node_modules",
        "node_modules/express",
        "package-lock.json",
        "package.json",
        "src",
        "src/server.js",
        "src/static",
        "src/static/app.css",
    ]
    assert files["home/node/app"][2:4] == (1000, 1000)  # made and chowned before USER/WORKDIR
    assert files["home/node/app/src/server.js"][2:4] == (1000, 1000)  # --chown=<uid>: gid=uid
    assert _run(daemon, "dy-rw-webapp-files").startswith(
        "production on 3000 in /home/node/app as 1000\n"
    )
    daemon.cli("rmi", "dy-rw-webapp-files")
