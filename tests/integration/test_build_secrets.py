"""Build secrets: ``dockyard build --secret`` carries them (dockyardd's own
``X-Dockyard-Build-Secrets`` header, since the legacy API has no BuildKit session) to
``RUN --mount=type=secret``; the content is readable in the step and nowhere in the image,
its history or the daemon's tmp dir afterwards.  Docker's legacy builder has no secrets, so
there is no dockerd comparison here."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile

import pytest
from engines import api_request
from test_build import export_image

SECRET = b"hunter2-\x00-very-secret\n"
ENV_SECRET = "from-the-environment"

DOCKERFILE = """\
FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok > /seen \\
    && stat -c '%a %u:%g' /run/secrets/tok > /modes
RUN --mount=type=secret,id=tok,target=/etc/app/key,mode=0440,uid=7,gid=8 \\
    stat -c '%a %u:%g' /etc/app/key >> /modes && sha256sum /etc/app/key >> /seen
RUN --mount=type=secret,id=API_TOKEN,required=true cat /run/secrets/API_TOKEN | wc -c > /env-len
RUN --mount=type=secret,id=not-given test ! -e /run/secrets/not-given && touch /absent-ok
"""


@pytest.fixture
def ctx():
    path = tempfile.mkdtemp(prefix="dy-build-secret-")
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


def _write(root: str, name: str, data: bytes) -> str:
    path = os.path.join(root, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _export(daemon, image: str) -> dict[str, bytes]:
    data = export_image(daemon, image)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            f = tf.extractfile(m) if m.isreg() else None
            out[m.name.rstrip("/")] = f.read() if f else b""
    return out


def test_secret_readable_in_run_and_absent_from_image_and_history(daemon, dockyard, ctx):
    _write(ctx, "Dockerfile", DOCKERFILE.encode())
    src = _write(os.path.dirname(ctx), os.path.basename(ctx) + ".secret", SECRET)
    env = {"API_TOKEN": ENV_SECRET}
    tmp = os.path.join(daemon.root, "data", "tmp")
    try:
        result = dockyard(
            "build", "--progress=plain", "-t", "dy-secret", "--secret", f"id=tok,src={src}",
            "--secret", "id=API_TOKEN", ctx, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout
        digest = hashlib.sha256(SECRET).hexdigest()
        run = daemon.cli("run", "--rm", "dy-secret", "cat", "/seen", "/modes", "/env-len")
        assert run.stdout.decode() == (
            f"{digest}  /run/secrets/tok\n{digest}  /etc/app/key\n"
            f"400 0:0\n440 7:8\n{len(ENV_SECRET)}\n"
        )
        files = _export(daemon, "dy-secret")
        assert "absent-ok" in files  # an optional secret not given: nothing mounted
        # No file of the image holds the secret, and no mount stub names it.
        assert not [n for n, data in files.items() if SECRET in data or ENV_SECRET.encode() in data]
        assert not [n for n in files if n.startswith(("run/secrets", "etc/app"))]
        history = daemon.cli("history", "--no-trunc", "dy-secret", check=True).stdout
        inspect = daemon.cli("image", "inspect", "dy-secret", check=True).stdout
        for text in (history, inspect, result.stdout):
            assert SECRET.strip(b"\n") not in text and ENV_SECRET.encode() not in text
        assert not [n for n in os.listdir(tmp) if n.startswith("secret-")]

        # As Docker: a changed secret does not bust the cache.
        _write(os.path.dirname(ctx), os.path.basename(ctx) + ".secret", b"changed")
        again = dockyard(
            "build", "--progress=plain", "-t", "dy-secret", "--secret", f"id=tok,src={src}",
            "--secret", "id=API_TOKEN", ctx, env=env,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert again.stdout.count(b"Using cache") == 4
    finally:
        os.unlink(src)
        daemon.cli("rmi", "-f", "dy-secret")


def test_required_secret_missing_names_its_id(daemon, dockyard, ctx):
    _write(
        ctx, "Dockerfile", b"FROM busybox\nRUN --mount=type=secret,id=deploy-key,required cat x\n"
    )
    result = dockyard("build", "-t", "dy-secret-missing", ctx)
    assert result.returncode != 0
    assert b"secret deploy-key not found: it is required" in result.stderr
    assert daemon.cli("image", "inspect", "dy-secret-missing").returncode != 0


def test_cli_side_errors_before_anything_is_sent(daemon, dockyard, ctx):
    _write(ctx, "Dockerfile", b"FROM busybox\nRUN --mount=type=secret,id=a cat /run/secrets/a\n")
    missing = os.path.join(ctx, "no-such-file")
    result = dockyard("build", "--secret", f"id=a,src={missing}", ctx)
    assert result.returncode == 1
    assert f"failed to read secret a from {missing}: No such file or directory".encode() in (
        result.stderr
    )
    assert b"Sending build context" not in result.stdout
    unset = dockyard("build", "--secret", "id=a,env=DY_SURELY_UNSET_VAR", ctx)
    assert unset.returncode == 1
    assert b"environment variable DY_SURELY_UNSET_VAR is not set" in unset.stderr


def test_oversized_or_garbled_header_is_a_400(daemon):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"FROM busybox\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    big = base64.b64encode(b"x" * (500 * 1024 + 1)).decode()
    for header, message in (
        (json.dumps({"big": big}), b"secret 'big' is 512001 bytes: the limit is 512000"),
        ("not base64!", b"invalid X-Dockyard-Build-Secrets header"),
    ):
        value = base64.b64encode(header.encode()).decode() if "big" in header else header
        status, answer = api_request(
            daemon,
            "POST",
            "/build",
            buf.getvalue(),
            {"Content-Type": "application/x-tar", "X-Dockyard-Build-Secrets": value},
        )
        assert status == 400, answer
        assert message in answer
