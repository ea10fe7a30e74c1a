"""More Dockerfiles built on Debian's dockerd (legacy builder) and on dockyardd and compared
file by file and field by field: SHELL, MAINTAINER, FROM a previous stage, COPY
--from=<image>, an ARG used before it is declared; COPY of an absolute path; a failing RUN
leaves no mount or temp dir behind; several heredocs on one RUN line (dockyard only: the
legacy dockerd has no heredocs)."""

from __future__ import annotations

import os
import sys

import pytest
from test_build import _remove_new_images, build, config, same_build, write  # noqa: F401

STAGES = """\
FROM busybox AS base
MAINTAINER Jane Doe <jane@example.com>
SHELL ["/bin/sh", "-e", "-c"]
RUN echo "shell: $0 $-" > /shell-flags
COPY app.txt /app/
FROM base AS middle
SHELL ["/bin/sh", "-x", "-c"]
RUN cp /app/app.txt /app/copied.txt
CMD echo from the shell form
FROM middle
COPY --from=busybox /bin/busybox /tools/bb
COPY --from=base /shell-flags /
ENTRYPOINT echo entry
"""


def test_shell_maintainer_from_stage_copy_from_image_same_as_dockerd(dockerd, daemon, ctx):
    write(ctx, {"Dockerfile": STAGES, "app.txt": "app\n"})
    same_build(dockerd, daemon, ctx, "dy-build-stages")
    # SHELL is kept in the config and used by RUN, CMD and ENTRYPOINT (compared above: Shell,
    # Cmd, Entrypoint); MAINTAINER is the author of its stage's image only (a stage built
    # FROM it starts without one), on both engines.
    assert config(daemon, "dy-build-stages")["Shell"] == ["/bin/sh", "-x", "-c"]
    same_build(dockerd, daemon, ctx, "dy-build-stages-base", "--target", "base")
    for tag, author in (("dy-build-stages", b""), ("dy-build-stages-base", b"Jane Doe")):
        for engine in (dockerd, daemon):
            found = engine.cli("image", "inspect", "-f", "{{.Author}}", tag, check=True).stdout
            assert found == (author + b" <jane@example.com>" if author else b"") + b"\n"
    out = daemon.cli("run", "--rm", "--entrypoint", "cat", "dy-build-stages", "/shell-flags")
    assert (
        out.stdout == b"shell: /bin/sh ce\n"
    )  # SHELL's -e reached the RUN (dockerd: the same file)


ARG_BEFORE = """\
FROM busybox
ENV EARLY="[$X]" EARLY_DEFAULT=${X:-unset}
RUN echo "run before: [$X]" > /before
ARG X=declared
ENV LATE="[$X]"
RUN echo "run after: [$X]" > /after
ARG Y
RUN echo "y: [$Y]" > /y
"""


@pytest.mark.parametrize("args", [(), ("--build-arg", "X=given", "--build-arg", "Y=why")])
def test_arg_used_before_it_is_declared_same_as_dockerd(dockerd, daemon, ctx, args):
    write(ctx, {"Dockerfile": ARG_BEFORE})
    same_build(dockerd, daemon, ctx, "dy-build-argbefore", *args)
    out = daemon.cli("run", "--rm", "dy-build-argbefore", "cat", "/before", "/after", "/y")
    given = "given" if args else "declared"
    assert out.stdout.decode() == (
        f"run before: []\nrun after: [{given}]\ny: [{'why' if args else ''}]\n"
    )


def test_copy_of_an_absolute_path_is_inside_the_context(dockerd, daemon, ctx):
    """moby reads ``COPY /etc/passwd`` as the context's etc/passwd: never the host's."""
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY /etc/passwd /from-context\n"})
    results = [build(engine, ctx, "-t", "dy-build-abs") for engine in (dockerd, daemon)]
    for result in results:
        assert result.returncode == 1
        assert b"etc/passwd: file does not exist" in result.stderr, result.stderr
    write(ctx, {"etc/passwd": "not the host's\n"})
    same_build(dockerd, daemon, ctx, "dy-build-abs")
    out = daemon.cli("run", "--rm", "dy-build-abs", "cat", "/from-context").stdout
    assert out == b"not the host's\n"


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def test_failing_run_leaves_no_mount_or_temp_dir(daemon, ctx):
    data = os.path.join(daemon.root, "data")
    tmp = os.path.join(data, "tmp")
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM busybox\n"
                "RUN --mount=type=bind,source=.,target=/ctx,rw "
                "--mount=type=secret,id=s,required "
                "--mount=type=tmpfs,target=/scratch "
                "--mount=type=bind,from=busybox,source=/etc,target=/other <<EOF\n"
                "#!/bin/sh\n"
                "cat /run/secrets/s\n"
                "exit 5\n"
                "EOF\n"
            ),
            "s.txt": "the-secret\n",
        },
    )
    mounts_before = _mounts_under(data)
    tmp_before = set(os.listdir(tmp))
    before = set(daemon.cli("ps", "-aq", check=True).stdout.split())
    result = daemon.cli(
        "build", "--force-rm", "--secret", f"id=s,src={ctx}/s.txt", ctx,
        program=[sys.executable, "-m", "dockyard.cli.main"],
    )  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert b"the-secret" in result.stdout  # it ran, with every mount in place
    assert set(daemon.cli("ps", "-aq", check=True).stdout.split()) == before
    assert _mounts_under(data) == mounts_before
    assert set(os.listdir(tmp)) == tmp_before


def test_several_heredocs_on_one_run_line(daemon, ctx):
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM busybox\n"
                "ARG WHO=world\n"
                "RUN <<one cat > /one && <<-'two' cat > /two\n"
                "hello $WHO\n"
                "one\n"
                "\tliteral $WHO\n"
                "\ttwo\n"
            )
        },
    )
    result = build(daemon, ctx, "-t", "dy-build-heredocs")
    assert result.returncode == 0, result.stderr
    out = daemon.cli("run", "--rm", "dy-build-heredocs", "cat", "/one", "/two").stdout
    assert out == b"hello world\nliteral $WHO\n"


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM busybox\nRUN echo ran\nRUN <<EOF\necho never\n", b"line 3: unterminated heredoc"),
        ('FROM busybox\nRUN echo ran\nENV A="open\n', b"line 3:"),
    ],
)
def test_unterminated_heredoc_or_quote_fails_before_anything_runs(
    daemon, dockyard, ctx, dockerfile, message
):
    write(ctx, {"Dockerfile": dockerfile})
    before = set(daemon.cli("ps", "-aq", check=True).stdout.split())
    for result in (build(daemon, ctx), dockyard("build", ctx)):
        assert result.returncode == 1
        assert message in result.stderr, result.stderr
        assert b"Step 1/" not in result.stdout and b"ran" not in result.stdout
    assert set(daemon.cli("ps", "-aq", check=True).stdout.split()) == before


def test_run_network_none_and_copy_chmod_parents_exclude(daemon, ctx):
    """BuildKit's flags the legacy dockerd refuses, end to end on dockyardd."""
    write(
        ctx,
        {
            "Dockerfile": (
                "FROM busybox\n"
                "RUN --network=none ls /sys/class/net > /nets\n"
                "RUN ls /sys/class/net > /nets-default\n"
                "COPY --chmod=0750 run.sh /bin/run.sh\n"
                "COPY --parents src/a/*.txt src/b/*.txt /tree/\n"
                "COPY --exclude=*.log --exclude=skip logs/ /logs/\n"
            ),
            "run.sh": "#!/bin/sh\n",
            "src/a/one.txt": "1",
            "src/b/two.txt": "2",
            "src/b/no.md": "x",
            "logs/keep.txt": "k",
            "logs/drop.log": "d",
            "logs/skip/x": "x",
        },
    )
    result = build(daemon, ctx, "-t", "dy-build-flags")
    assert result.returncode == 0, result.stderr
    run = daemon.cli(
        "run", "--rm", "dy-build-flags", "sh", "-c",
        "cat /nets; echo --; stat -c '%a %n' /bin/run.sh; find /tree /logs | sort",
    )  # fmt: skip
    nets, _, rest = run.stdout.decode().partition("--\n")
    assert nets == "lo\n"  # no network but loopback
    assert rest.splitlines() == [
        "750 /bin/run.sh",
        "/logs",
        "/logs/keep.txt",
        "/tree",
        "/tree/src",
        "/tree/src/a",
        "/tree/src/a/one.txt",
        "/tree/src/b",
        "/tree/src/b/two.txt",
    ]
    default = daemon.cli("run", "--rm", "dy-build-flags", "cat", "/nets-default").stdout
    assert b"eth0" in default  # the default network has more than loopback
