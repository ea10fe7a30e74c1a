"""Dockerfile builds: the same Dockerfiles built with the official docker CLI (legacy
builder) on Debian's dockerd and on dockyardd, compared file by file and field by field;
then what only dockyardd does (heredocs, cache mounts, the content-hash cache), bad input,
docker-py, the dockyard CLI and a client hanging up."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest
from engines import DOCKER_CLI, api_request

_RUNTIME_FILES = {".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab"}
_CONFIG_FIELDS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "OnBuild",
    "StopSignal",
    "Healthcheck",
    "Shell",
)


def build(engine, ctx: str, *args: str, input: bytes | None = None):
    env = dict(engine.env, DOCKER_BUILDKIT="0")
    return subprocess.run(
        [DOCKER_CLI, "build", *args, ctx], env=env, input=input, capture_output=True, timeout=300
    )


def write(root: str, files: dict[str, str | bytes]) -> str:
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    return root


@pytest.fixture(autouse=True, scope="module")
def _remove_new_images(daemon, dockerd):
    """Builds leave intermediate images (the legacy builder's cache); the ones this module
    made go at its end, on both engines, so later modules see the images they expect."""
    before = {engine.root: set(_all_images(engine)) for engine in (daemon, dockerd)}
    yield
    for engine in (daemon, dockerd):
        for image_id in _all_images(engine):  # newest first: children before parents
            if image_id not in before[engine.root]:
                engine.cli("rmi", "-f", image_id)


def _all_images(engine) -> list[str]:
    out = engine.cli("images", "-aq", "--no-trunc", check=True).stdout.decode()
    return list(dict.fromkeys(out.split()))


def export_image(engine, image: str) -> bytes:
    """The image's file system as ``docker export`` of a container made from it."""
    cid = engine.cli("create", image, "true", check=True).stdout.decode().strip()
    try:
        return engine.cli("export", cid, check=True).stdout
    finally:
        engine.cli("rm", "-f", cid)


def filesystem(engine, image: str) -> dict[str, tuple]:
    """Every path of the image's file system: type, mode, owner, size, link, content hash."""
    data = export_image(engine, image)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            name = m.name.rstrip("/").removeprefix("./")
            if not name or name in _RUNTIME_FILES or name.split("/")[0] in ("dev", "proc", "sys"):
                continue
            digest = hashlib.sha256(tf.extractfile(m).read()).hexdigest() if m.isreg() else ""
            kind = "l" if m.islnk() else m.type
            out[name] = (kind, m.mode & 0o7777, m.uid, m.gid, m.size, m.linkname, digest)
    return out


def config(engine, image: str) -> dict:
    raw = engine.cli("image", "inspect", image, check=True).stdout
    cfg = json.loads(raw)[0]["Config"]
    return {k: cfg.get(k) or None for k in _CONFIG_FIELDS}


def history(engine, image: str) -> list[tuple[str, bool]]:
    status, body = api_request(engine, "GET", f"/images/{image}/history")
    assert status == 200, body
    # A URL's hash (ADD <url>) has no prefix: the prefix, or its absence, must match.
    norm = re.compile(r"(file:|dir:|multi:|)[0-9a-f]{64}(?= in )")
    return [(norm.sub(r"\1<hash>", h["CreatedBy"]), h["Size"] == 0) for h in json.loads(body)]


def steps(output: bytes) -> list[str]:
    return [line for line in output.decode().splitlines() if line.startswith("Step ")]


def same_build(dockerd, daemon, ctx: str, tag: str, *args: str) -> None:
    theirs = build(dockerd, ctx, "-t", tag, *args)
    mine = build(daemon, ctx, "-t", tag, *args)
    assert theirs.returncode == 0, theirs.stderr.decode()
    assert mine.returncode == 0, mine.stderr.decode() + mine.stdout.decode()
    assert steps(mine.stdout) == steps(theirs.stdout)
    assert f"Successfully tagged {tag}" in mine.stdout.decode()
    assert config(daemon, tag) == config(dockerd, tag)
    assert filesystem(daemon, tag) == filesystem(dockerd, tag)
    assert history(daemon, tag)[:-1] == history(dockerd, tag)[:-1]


MULTISTAGE = """\
ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
ENV OUT=/out DEPTH="two words"
WORKDIR /src
COPY src/ ./
RUN mkdir -p $OUT && cat a.txt b.txt > $OUT/ab.txt && echo "$GREETING $DEPTH" > $OUT/greet \\
    && chmod 0751 $OUT/greet
FROM busybox
LABEL org.example.name="multi stage" version=1
COPY --from=builder /out/ /app/
COPY --from=0 --chown=1:2 /src/a.txt /app/a-owned.txt
COPY src/sub /app/sub
COPY --chown=nobody:bin src/run.sh /app/named-owner.sh
COPY --chown=daemon src/b.txt /app/user-only.txt
ENV PATH=/app/bin:$PATH HOME=/home/app
ENV FIRST=one SECOND=${FIRST:-unset}
USER 1000:1000
WORKDIR rel/dir
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD test -f /app/ab.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/greet"]
"""


def test_multistage_user_workdir_env_same_as_dockerd(dockerd, daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": MULTISTAGE,
            "src/a.txt": "a\n",
            "src/b.txt": "b\n",
            "src/sub/deep/c.txt": "c\n",
            "src/run.sh": "#!/bin/sh\necho run\n",
        },
    )
    os.chmod(os.path.join(ctx, "src/run.sh"), 0o755)
    same_build(dockerd, daemon, ctx, "dy-build-multi:1", "--build-arg", "GREETING=hi")
    out = daemon.cli("run", "--rm", "-u", "0", "dy-build-multi:1", check=True).stdout
    assert out == b"hi two words\n"
    daemon.cli("rmi", "dy-build-multi:1", check=True)


def test_onbuild_triggers_same_as_dockerd(dockerd, daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nONBUILD COPY . /app/\nONBUILD RUN ls /app > /listing\n",
            "x.txt": "x\n",
        },
    )
    same_build(dockerd, daemon, ctx, "dy-build-onbuild-base")
    child = tempfile.mkdtemp(prefix="dy-build-child-")
    try:
        write(child, {"Dockerfile": "FROM dy-build-onbuild-base\nCMD cat /listing\n", "y": "y\n"})
        same_build(dockerd, daemon, child, "dy-build-onbuild-child")
        mine = build(daemon, child, "-t", "dy-build-onbuild-child")
        assert b"# Executing 2 build triggers" in mine.stdout
        assert daemon.cli("run", "--rm", "dy-build-onbuild-child", check=True).stdout == (
            b"Dockerfile\ny\n"
        )
    finally:
        subprocess.run(["rm", "-rf", child], check=False)
    for engine in (dockerd, daemon):
        engine.cli("rmi", "dy-build-onbuild-child", "dy-build-onbuild-base")


def test_dockerignore_same_as_dockerd(dockerd, daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nCOPY . /ctx/\n",
            ".dockerignore": "# comment\n*.log\n**/*.tmp\nbuild\n!build/keep.txt\nDockerfile\n",
            "a.log": "x",
            "keep.txt": "k",
            "deep/x/y.tmp": "t",
            "deep/x/z.txt": "z",
            "build/out.bin": "o",
            "build/keep.txt": "k",
        },
    )
    same_build(dockerd, daemon, ctx, "dy-build-ignore")
    files = sorted(k for k in filesystem(daemon, "dy-build-ignore") if k.startswith("ctx/"))
    assert files == [
        "ctx/.dockerignore",
        "ctx/build",
        "ctx/build/keep.txt",
        "ctx/deep",
        "ctx/deep/x",
        "ctx/deep/x/z.txt",
        "ctx/keep.txt",
    ]
    for engine in (dockerd, daemon):
        engine.cli("rmi", "dy-build-ignore")


def _stream(output: bytes) -> list[str]:
    """The build's stdout with container and image ids made comparable."""
    return [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in output.decode().splitlines()]


def _new_containers(engine, before: set[bytes]) -> list[str]:
    """``<status word> <exit code>`` of each container made since ``before``, sorted."""
    out = engine.cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}", check=True)
    found = []
    for line in out.stdout.decode().splitlines():
        cid, status = line.split(" ", 1)
        if cid[:12].encode() not in before:
            found.append(" ".join(status.split()[:2]))
    return sorted(found)


def _remove_new(engine, before: set[bytes]) -> None:
    ids = [c.decode() for c in engine.cli("ps", "-aq").stdout.split() if c not in before]
    if ids:
        engine.cli("rm", "-f", *ids)


STEP_LINES = (
    'FROM busybox\nENV A=1\nLABEL x=y\nRUN echo hi\nWORKDIR /w\nCOPY Dockerfile /d\nCMD ["sh"]\n'
)


@pytest.mark.parametrize(
    ("dockerfile", "args"),
    [
        (STEP_LINES, ["--no-cache"]),
        (STEP_LINES, ["--no-cache", "--rm=false"]),
        (STEP_LINES, []),  # cached: no containers at all
        ("FROM busybox\nENV B=1\nRUN echo out; exit 3\n", ["--no-cache"]),
        ("FROM busybox\nENV B=1\nRUN echo out; exit 3\n", ["--no-cache", "--force-rm"]),
        ("FROM busybox\nENV B=1\nRUN echo out; exit 3\n", ["--no-cache", "--rm=false"]),
    ],
)
def test_step_stream_and_kept_containers_same_as_dockerd(dockerd, daemon, ctx, dockerfile, args):
    """Line for line as dockerd 20.10's legacy builder: metadata steps and WORKDIR get a
    container too (" ---> Running in", "Removing intermediate container"); a failed RUN
    keeps its container unless --force-rm; --rm=false keeps every one."""
    write(ctx, {"Dockerfile": dockerfile})
    results = {}
    for engine in (dockerd, daemon):
        before = set(engine.cli("ps", "-aq", check=True).stdout.split())
        try:
            build(engine, ctx, "--no-cache")  # a warm cache for the cached case
            _remove_new(engine, before)
            result = build(engine, ctx, *args)
            results[engine.root] = (
                result.returncode,
                _stream(result.stdout),
                _new_containers(engine, before),
            )
        finally:
            _remove_new(engine, before)
    theirs, mine = results[dockerd.root], results[daemon.root]
    assert mine == theirs
    if "exit 3" in dockerfile:
        assert theirs[0] == 3
        kept = {"--force-rm": [], "--rm=false": ["Created", "Exited (3)"]}
        assert theirs[2] == kept.get(args[-1], ["Exited (3)"])


def test_failing_run_reports_code_and_leaves_nothing(dockerd, daemon, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo before-failing\nRUN echo out; exit 7\n"})
    before = set(daemon.cli("ps", "-aq", check=True).stdout.split())
    theirs = build(dockerd, ctx, "-t", "dy-build-fail", "--force-rm")
    mine = build(daemon, ctx, "-t", "dy-build-fail", "--force-rm")
    message = b"The command '/bin/sh -c echo out; exit 7' returned a non-zero code: 7"
    assert theirs.returncode == mine.returncode == 7
    assert message in theirs.stderr and message in mine.stderr
    assert b"out\n" in mine.stdout
    assert set(daemon.cli("ps", "-aq", check=True).stdout.split()) == before
    assert daemon.cli("image", "inspect", "dy-build-fail").returncode == 1


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        (
            "FROM busybox\nFROBNICATE x\n",
            b"dockerfile parse error line 2: unknown instruction: FROBNICATE",
        ),
        ("FROM busybox\nCOPY --nope=1 a b\n", b"dockerfile parse error line 2: Unknown flag: nope"),
    ],
)
def test_parse_errors_before_anything_runs(dockerd, daemon, ctx, dockerfile, message):
    write(ctx, {"Dockerfile": dockerfile})
    for engine in (dockerd, daemon):
        result = build(engine, ctx)
        assert result.returncode == 1
        assert message in result.stderr, (engine.root, result.stderr)
        assert b"Step 1/" not in result.stdout


def test_copy_outside_context_and_missing_source(daemon, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY ../secret /\n"})
    os.symlink("/etc/passwd", os.path.join(ctx, "link-out"))
    result = build(daemon, ctx)
    assert result.returncode == 1
    assert b"forbidden path outside the build context: ../secret" in result.stderr
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY link-out /x\n"})
    result = build(daemon, ctx)
    assert b"file not found in build context" in result.stderr
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY missing /\n"})
    assert b"stat missing: file does not exist" in build(daemon, ctx).stderr


def test_cache_content_hash_touch_and_change(daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b\nCOPY c.txt /c\n",
            "a.txt": "one\n",
            "c.txt": "c\n",
        },
    )
    first = build(daemon, ctx, "-t", "dy-build-cache")
    assert first.returncode == 0, first.stderr
    time.sleep(1.1)
    os.utime(os.path.join(ctx, "a.txt"))
    second = build(daemon, ctx, "-t", "dy-build-cache")
    assert second.stdout.count(b"Using cache") == 3
    write(ctx, {"c.txt": "changed\n"})
    third = build(daemon, ctx, "-t", "dy-build-cache")
    assert third.stdout.count(b"Using cache") == 2
    fourth = build(daemon, ctx, "-t", "dy-build-cache", "--no-cache")
    assert b"Using cache" not in fourth.stdout
    assert (
        daemon.cli("run", "--rm", "dy-build-cache", "cat", "/b", "/c").stdout == b"one\nchanged\n"
    )
    # Without its keys (builder prune --all) the cache is gone, but --cache-from finds the
    # steps again in the image's parent chain, as moby compares container configs.
    daemon.cli("builder", "prune", "--all", "-f", check=True)
    assert build(daemon, ctx, "-t", "dy-build-cache2").stdout.count(b"Using cache") == 0
    daemon.cli("builder", "prune", "--all", "-f", check=True)
    hits = build(daemon, ctx, "-t", "dy-build-cache3", "--cache-from", "dy-build-cache2")
    assert hits.stdout.count(b"Using cache") == 3, hits.stdout
    daemon.cli("rmi", "dy-build-cache", "dy-build-cache2", "dy-build-cache3")


def test_heredocs_cache_mounts_and_unused_args(daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM busybox\n"
                "ARG NAME=world\n"
                "RUN <<EOF\n"
                "echo hello $NAME > /greeting\n"
                "EOF\n"
                "COPY <<one <<'two' /files/\n"
                "expanded $NAME\n"
                "one\n"
                "literal $NAME\n"
                "two\n"
                "RUN --mount=type=cache,target=/cache "
                "echo run >> /cache/runs && wc -l < /cache/runs > /count\n"
                "RUN <<EOF\n"
                "#!/bin/sh\n"
                "echo script $0 > /script-out\n"
                "EOF\n"
                "RUN --mount=type=bind,source=data,target=/mnt cat /mnt/x > /from-bind\n"
                "RUN --mount=type=tmpfs,target=/scratch touch /scratch/y && ls /scratch\n"
                "RUN --mount=type=bind,from=busybox,source=/etc,target=/other "
                "grep -c nobody /other/passwd > /from-image\n"
                "RUN --mount=type=secret,id=absent cat /from-image\n"
            ),
            "data/x": "bound\n",
        },
    )
    first = build(daemon, ctx, "-t", "dy-build-heredoc", "--build-arg", "UNUSED=1")
    assert first.returncode == 0, first.stderr + first.stdout
    assert b"[Warning] One or more build-args [UNUSED] were not consumed" in first.stdout
    out = daemon.cli(
        "run", "--rm", "dy-build-heredoc", "cat", "/greeting", "/files/one", "/files/two", "/count"
    ).stdout
    assert out == b"hello world\nexpanded world\nliteral $NAME\n1\n"
    out = daemon.cli("run", "--rm", "dy-build-heredoc", "cat", "/script-out", "/from-bind").stdout
    assert out == b"script /dev/pipes/script\nbound\n"
    assert daemon.cli("run", "--rm", "dy-build-heredoc", "cat", "/from-image").stdout == b"1\n"
    assert b"\ny\n" in first.stdout
    again = build(daemon, ctx, "-t", "dy-build-heredoc", "--no-cache")
    assert again.returncode == 0
    count = daemon.cli("run", "--rm", "dy-build-heredoc", "cat", "/count").stdout
    assert count == b"2\n"  # the cache directory outlived the first build
    daemon.cli("rmi", "dy-build-heredoc")
    pruned = daemon.cli("builder", "prune", "-f", check=True).stdout
    assert b"Total reclaimed space" in pruned


def test_target_skips_unneeded_stages(daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM busybox AS unused\nRUN exit 1\n"
                "FROM busybox AS a\nRUN echo a > /a\n"
                "FROM busybox AS b\nRUN echo b > /b\n"
                "FROM busybox AS final\nCOPY --from=a /a /\nCOPY --from=b /b /\n"
                "FROM busybox AS after\nRUN exit 1\n"
            )
        },
    )
    result = build(daemon, ctx, "-t", "dy-build-target", "--target", "final")
    assert result.returncode == 0, result.stderr
    assert "RUN exit 1" not in result.stdout.decode()
    assert daemon.cli("run", "--rm", "dy-build-target", "cat", "/a", "/b").stdout == b"a\nb\n"
    daemon.cli("rmi", "dy-build-target")


def test_docker_py_build(api, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nARG X\nRUN echo $X > /x\n"})
    image, logs = api.images.build(path=ctx, tag="dy-build-py", buildargs={"X": "py"}, rm=True)
    assert any("Successfully built" in line.get("stream", "") for line in logs)
    assert api.containers.run(image.id, "cat /x", remove=True) == b"py\n"
    api.images.remove("dy-build-py")


def test_dockyard_cli_build_quiet_iidfile(dockyard, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nENV A=1\n", ".dockerignore": "*.bin\n", "x.bin": "x"})
    iid = os.path.join(ctx, "..", os.path.basename(ctx) + ".iid")
    try:
        result = dockyard("build", "-q", "--iidfile", iid, "-t", "dy-build-cli", ctx)
        assert result.returncode == 0, result.stderr
        with open(iid) as f:
            image_id = f.read()
        assert result.stdout.decode().strip() == image_id
        failing = dockyard("build", "-f", "-", ctx, input=b"FROM busybox\nRUN exit 4\n")
        assert failing.returncode == 4
        assert b"returned a non-zero code: 4" in failing.stderr
    finally:
        if os.path.exists(iid):
            os.unlink(iid)
    dockyard("rmi", "dy-build-cli")


def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_hostile_context_refused(daemon):
    body = _tar([("Dockerfile", b"FROM busybox\n"), ("../../escape", b"x")])
    status, answer = api_request(
        daemon, "POST", "/build", body, {"Content-Type": "application/x-tar"}
    )
    assert status == 400, answer
    assert not os.path.exists("/tmp/escape")
    status, answer = api_request(
        daemon,
        "POST",
        "/build?squash=1",
        _tar([("Dockerfile", b"FROM busybox\n")]),
        {"Content-Type": "application/x-tar"},
    )
    assert status == 400 and b"experimental" in answer


def test_client_hangup_cancels_the_running_step(daemon):
    body = _tar([("Dockerfile", b"FROM busybox\nRUN sleep 60\n")])
    before = set(daemon.cli("ps", "-aq", check=True).stdout.split())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(daemon.sock)
    sock.sendall(
        b"POST /build?t=dy-build-hangup HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    seen = b""
    deadline = time.monotonic() + 30
    while b"Running in" not in seen and time.monotonic() < deadline:
        seen += sock.recv(4096)
    assert b"Running in" in seen
    sock.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if set(daemon.cli("ps", "-aq", check=True).stdout.split()) == before:
            break
        time.sleep(0.2)
    assert set(daemon.cli("ps", "-aq", check=True).stdout.split()) == before
    assert daemon.cli("image", "inspect", "dy-build-hangup").returncode == 1


def test_add_archive_scratch_and_wildcards_same_as_dockerd(dockerd, daemon, ctx):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tf:
        for name, data in (("pkg/bin/tool", b"#!/bin/sh\n"), ("pkg/README", b"r\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o755, 12, 34
            tf.addfile(info, io.BytesIO(data))
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM scratch\n"
                "ADD pkg.tar.gz /opt/\n"
                "COPY *.conf /etc/app/\n"
                "ADD plain.txt /opt/plain.txt\n"
                "COPY --chown=5:6 dir /srv/\n"
            ),
            "pkg.tar.gz": payload.getvalue(),
            "a.conf": "a",
            "b.conf": "b",
            "plain.txt": "p",
            "dir/x/y": "y",
        },
    )
    same_build(dockerd, daemon, ctx, "dy-build-add")
    for engine in (dockerd, daemon):
        engine.cli("rmi", "dy-build-add")


def test_independent_stages_run_at_once(daemon, ctx):
    stamp = "cut -d' ' -f1 /proc/uptime"
    write(
        ctx,
        {
            "Dockerfile": (
                f"FROM busybox AS one\nRUN {stamp} > /one && sleep 2 && {stamp} >> /one\n"
                f"FROM busybox AS two\nRUN {stamp} > /two && sleep 2 && {stamp} >> /two\n"
                "FROM busybox\nCOPY --from=one /one /\nCOPY --from=two /two /\n"
                "RUN --network=none cat /one /two\n"
            )
        },
    )
    result = build(daemon, ctx, "-t", "dy-build-parallel", "--no-cache")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    # Output stays in stage order, as the legacy builder prints it...
    assert out.index("Step 2/8 : RUN") < out.index("Step 3/8 : FROM") < out.index("Step 4/8 : RUN")
    # ...while the two 2 s steps ran side by side: their intervals overlap.
    times = daemon.cli("run", "--rm", "dy-build-parallel", "cat", "/one", "/two").stdout.split()
    one_start, one_end, two_start, two_end = (float(t) for t in times)
    assert one_start < two_end and two_start < one_end, times
    daemon.cli("rmi", "dy-build-parallel")


def test_build_cancel_endpoint(daemon):
    body = _tar([("Dockerfile", b"FROM busybox\nRUN sleep 60\n")])
    before = set(daemon.cli("ps", "-aq", check=True).stdout.split())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(daemon.sock)
    try:
        sock.sendall(
            b"POST /build?buildid=dy-cancel-1 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-tar\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        seen = b""
        deadline = time.monotonic() + 30
        while b"Running in" not in seen and time.monotonic() < deadline:
            seen += sock.recv(4096)
        status, _ = api_request(daemon, "POST", "/build/cancel?id=dy-cancel-1")
        assert status == 200
        while b"Build cancelled" not in seen and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            seen += chunk
        assert b"Build cancelled" in seen
    finally:
        sock.close()
    assert set(daemon.cli("ps", "-aq", check=True).stdout.split()) == before
    status, _ = api_request(daemon, "POST", "/build/cancel?id=nope")
    assert status == 404


def test_cache_survives_a_daemon_restart(workdir, ctx):
    from engines import make_busybox, start_dockyardd

    root = os.path.join(workdir, "build-restart")
    engine = start_dockyardd(root)
    try:
        make_busybox(engine)
        write(ctx, {"Dockerfile": "FROM busybox\nCOPY f /f\nRUN cat /f > /g\n", "f": "f\n"})
        assert build(engine, ctx, "-t", "dy-build-restart").returncode == 0
        engine.proc.send_signal(signal.SIGTERM)
        engine.proc.wait(20)
        engine = start_dockyardd(root)
        again = build(engine, ctx, "-t", "dy-build-restart")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count(b"Using cache") == 2
    finally:
        engine.stop()


def test_stdin_dockerfile_and_dockerfile_outside_context(daemon, ctx):
    dockerfile = b"FROM busybox\nCOPY f /f\n"
    write(ctx, {"f": "in context\n"})
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    bare = subprocess.run(
        [DOCKER_CLI, "build", "-t", "dy-build-stdin", "-"],
        env=env,
        input=b"FROM busybox\nENV FROM_STDIN=1\n",
        capture_output=True,
        timeout=120,
    )
    assert bare.returncode == 0, bare.stderr
    outside = tempfile.NamedTemporaryFile(prefix="dy-build-", suffix=".Dockerfile")
    with outside:
        outside.write(dockerfile)
        outside.flush()
        result = build(daemon, ctx, "-f", outside.name, "-t", "dy-build-outside")
    assert result.returncode == 0, result.stderr
    assert daemon.cli("run", "--rm", "dy-build-outside", "cat", "/f").stdout == b"in context\n"
    daemon.cli("rmi", "dy-build-stdin", "dy-build-outside")


def test_image_prune_after_a_failed_build(daemon, ctx):
    # A failed build leaves a chain of untagged step images; pruning the child also removes
    # its untagged parents, which prune then met again (it failed with "content not found").
    write(ctx, {"Dockerfile": "FROM busybox\nLABEL dy-build-prune=1\nENV A=1\nRUN exit 1\n"})
    assert build(daemon, ctx, "--force-rm").returncode == 1
    flt = ("--filter", "label=dy-build-prune=1")
    assert len(daemon.cli("images", "-aq", *flt, check=True).stdout.split()) == 2
    daemon.cli("image", "prune", "-f", *flt, check=True)
    assert daemon.cli("images", "-aq", *flt, check=True).stdout == b""


EXPLAIN = """\
FROM busybox AS base
ARG V=1
COPY src/ /src/
RUN cat /src/* > /all && echo $V >> /all
FROM busybox AS final
COPY --from=base /all /all
RUN wc -l /all > /count
"""


def _explained(result) -> list[str]:
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    lines = result.stdout.decode().splitlines()
    return [line.removeprefix(" ---> ") for line in lines if line.startswith(" ---> Cache ")]


def test_explain_cache_and_no_cache_filter(dockyard, ctx):
    write(ctx, {"Dockerfile": EXPLAIN, "src/a": "a\n", "src/b": "b\n"})

    def run(*args: str) -> list[str]:
        return _explained(
            dockyard("build", "--explain-cache", "-t", "dy-build-explain", *args, ctx)
        )

    first = run("--build-arg", "V=0")
    assert len(first) == 5 and all(line.startswith("Cache miss: ") for line in first), first
    assert run("--build-arg", "V=0") == ["Cache hit"] * 5
    write(ctx, {"src/b": "changed\n"})
    assert run("--build-arg", "V=0") == [
        "Cache hit",
        "Cache miss: sources changed: src/b",
        "Cache miss: parent changed (an earlier step, or the FROM image, is not the same)",
        "Cache miss: sources changed: /all, <--from image>",
        "Cache miss: parent changed (an earlier step, or the FROM image, is not the same)",
    ]
    os.utime(os.path.join(ctx, "src/a"), (1, 1))  # touched, not changed
    assert run("--build-arg", "V=0") == ["Cache hit"] * 5
    changed_arg = run("--build-arg", "V=2")
    assert changed_arg[:3] == ["Cache hit", "Cache hit", "Cache miss: build args changed: V"]
    assert run("--build-arg", "V=2", "--no-cache-filter", "base") == [
        "Cache miss: cache disabled for stage base (--no-cache-filter)",
        "Cache miss: cache disabled for stage base (--no-cache-filter)",
        "Cache miss: cache disabled for stage base (--no-cache-filter)",
        # final's COPY --from reads base's new image, whose /all has the same content
        "Cache miss: sources changed: <--from image>",
        "Cache miss: parent changed (an earlier step, or the FROM image, is not the same)",
    ]
    # Without --explain-cache the stream is the legacy builder's, filter or not.
    plain = dockyard(
        "build", "--build-arg", "V=2", "--no-cache-filter", "final", "-t", "dy-build-explain", ctx
    )
    assert plain.returncode == 0 and b"Cache miss" not in plain.stdout
    assert plain.stdout.count(b"Using cache") == 3
    bad = dockyard("build", "--no-cache-filter", "nope", ctx)
    assert bad.returncode == 1
    assert b"--no-cache-filter nope: the Dockerfile has no stage of that name" in bad.stderr
    dockyard("rmi", "dy-build-explain")


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``args`` with stdout and stderr on a 40x120 pseudo-terminal; all it wrote."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(60), out
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_dockyard_build_live_step_display_on_a_terminal(daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nENV A=1\n"
            "RUN for i in 1 2 3 4 5 6 7 8; do echo tick-$i; sleep 0.2; done\n"
        },
    )
    cli = [sys.executable, "-m", "dockyard.cli.main", "build", "-t", "dy-build-tty"]
    code, out = _on_a_terminal([*cli, "--no-cache", ctx], daemon.env)
    text = out.decode()
    assert code == 0, text
    assert "[+] Building" in text and "[+] Finished" in text
    assert "\x1b[2K" in text and re.search(r"\x1b\[\d+A", text)  # redrawn in place
    # The running step showed its latest lines, with its clock moving between frames.
    assert " => => tick-8" in text
    clocks = set(re.findall(r" => \[3/3\] RUN for i in[^\n]*?(\d+\.\d)s", text))
    assert len(clocks) >= 3, clocks
    assert re.search(r" => CACHED \[2/3\] ENV A=1|=> \[2/3\] ENV A=1 +\d+\.\ds", text)
    assert text.rstrip().endswith("Successfully tagged dy-build-tty:latest")
    # --progress=plain on a terminal: the legacy builder's lines, as before.
    code, out = _on_a_terminal([*cli, "--progress=plain", ctx], daemon.env)
    assert code == 0
    assert b"\x1b[" not in out and b"Step 3/3 : RUN for i in" in out
    assert out.count(b"Using cache") == 2
    daemon.cli("rmi", "dy-build-tty")


def _layers(engine, image: str) -> list[str]:
    out = engine.cli("image", "inspect", "-f", "{{json .RootFS.Layers}}", image, check=True)
    return json.loads(out.stdout)


def test_copy_link_layer_is_reused_on_a_new_base(daemon, ctx):
    base = tempfile.mkdtemp(prefix="dy-build-linkbase-")
    try:
        for version in ("1", "2"):
            write(base, {"Dockerfile": f"FROM busybox\nRUN echo {version} > /base\n"})
            made = build(daemon, base, "-t", "dy-build-linkbase")
            assert made.returncode == 0, made.stderr
            write(
                ctx,
                {
                    "Dockerfile": "FROM dy-build-linkbase\n"
                    "COPY --link --chown=nobody app/ /srv/app/\n"
                    "COPY app/x /plain-x\n"
                    "RUN cat /base /srv/app/x > /out\n",
                    "app/x": "x\n",
                    "app/sub/y": "y\n",
                },
            )
            result = build(daemon, ctx, "-t", f"dy-build-link:{version}")
            assert result.returncode == 0, result.stderr
            out = result.stdout.decode()
            # Built on base 1; on base 2 only the --link step is a hit (rebased), the plain
            # COPY after it and the RUN are not.
            assert out.count("Using cache") == (0 if version == "1" else 1), out
            if version == "2":
                assert out.index("Using cache") < out.index("Step 3/4")
        one, two = _layers(daemon, "dy-build-link:1"), _layers(daemon, "dy-build-link:2")
        assert one[-4] != two[-4]  # the bases differ...
        assert one[-3] == two[-3]  # ...the --link layer is the same layer
        run = daemon.cli(
            "run",
            "--rm",
            "dy-build-link:2",
            "sh",
            "-c",
            "cat /out; stat -c '%U %a' /srv/app /srv/app/x /srv/app/sub/y; ls -ld /tmp | cut -c1-10",
            check=True,
        ).stdout.decode()
        assert run == "2\nx\nnobody 755\nnobody 644\nnobody 644\ndrwxrwxrwt\n", run
        history = json.loads(api_request(daemon, "GET", "/images/dy-build-link:2/history")[1])
        assert history[2]["CreatedBy"].startswith("/bin/sh -c #(nop) COPY --chown=nobodydir:")
    finally:
        for tag in ("dy-build-link:1", "dy-build-link:2", "dy-build-linkbase"):
            daemon.cli("rmi", "-f", tag)
        subprocess.run(["rm", "-rf", base], check=False)
