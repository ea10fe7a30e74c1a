"""What ``docker build`` passes on to the steps it runs and to the image it makes:
``--add-host``, ``--shm-size``, ``--ulimit``, ``--memory``, ``--network``, ``--label``,
``--cgroup-parent`` (legacy builder), the same on dockyardd as on Debian's dockerd: each RUN
writes what it sees into the image, and the two images must agree.  The dockyard CLI's
``build`` takes the same flags."""

from __future__ import annotations

import os

from test_build import _remove_new_images, build, config, write  # noqa: F401

# Everything a RUN step can see of the build's settings, one line each.
DOCKERFILE = """\
FROM busybox
RUN (echo "hosts $(grep dy-extra /etc/hosts | tr -s ' \\t' ' ')"; \\
     echo "shm $(df -k /dev/shm | awk 'NR==2{print $2}')"; \\
     echo "nofile $(ulimit -n) $(ulimit -Hn)"; \\
     echo "mem $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null \\
                || cat /sys/fs/cgroup/memory.max)"; \\
     echo "links $(ip -o link | awk -F': ' '{print $2}' | tr '\\n' ' ')") > /params.txt
LABEL from.dockerfile=yes
"""


PARENT = "dy-build-parent"


def _seen(engine, tag: str) -> dict[str, str]:
    out = engine.cli("run", "--rm", tag, "cat", "/params.txt", check=True).stdout.decode()
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())


def test_build_settings_reach_run_steps_and_image_as_on_dockerd(dockerd, daemon, dockyard, ctx):
    write(ctx, {"Dockerfile": DOCKERFILE})
    tag = "dy-build-params:1"
    args = (
        "--add-host",
        "dy-extra:10.1.2.3",
        "--shm-size",
        "96m",
        "--ulimit",
        "nofile=1024:2048",
        "--memory",
        "256m",
        "--network",
        "none",
        "--label",
        "com.example.built-by=test",
        "--label",
        "from.dockerfile=overridden",
        "-t",
        tag,
    )
    seen = {}
    for engine in (dockerd, daemon):
        done = build(engine, ctx, "--no-cache", *args)
        assert done.returncode == 0, done.stderr.decode()
        seen[engine.root] = _seen(engine, tag)
    ref, got = seen[dockerd.root], seen[daemon.root]
    assert got == ref
    # What dockerd shows, spelled out, so a change on both sides still shows here.
    assert got["hosts"] == "10.1.2.3 dy-extra"
    assert got["shm"] == str(96 * 1024)
    assert got["nofile"] == "1024 2048"
    assert got["mem"] == str(256 << 20)
    assert got["links"].split() == ["lo"]
    labels = [config(engine, tag)["Labels"] for engine in (dockerd, daemon)]
    assert (
        labels[0]
        == labels[1]
        == {
            "com.example.built-by": "test",
            "from.dockerfile": "overridden",
        }
    )
    # The dockyard CLI sends the same flags the same way.
    done = dockyard("build", "-q", "--no-cache", *args, ctx)
    assert done.returncode == 0, done.stderr.decode()
    assert _seen(daemon, tag) == ref
    assert config(daemon, tag)["Labels"] == labels[0]
    for engine in (dockerd, daemon):
        engine.cli("rmi", tag)


def test_build_defaults_reach_run_steps_as_on_dockerd(dockerd, daemon, ctx):
    """Without the flags: the default /dev/shm (64 MiB), the default bridge."""
    write(ctx, {"Dockerfile": DOCKERFILE})
    tag = "dy-build-params:2"
    seen = {}
    for engine in (dockerd, daemon):
        done = build(engine, ctx, "--no-cache", "-t", tag)
        assert done.returncode == 0, done.stderr.decode()
        seen[engine.root] = _seen(engine, tag)
    ref, got = seen[dockerd.root], seen[daemon.root]
    assert got["shm"] == ref["shm"] == str(64 * 1024)
    assert got["hosts"] == ref["hosts"] == ""
    # RUN steps are on the default bridge (the reference dockerd here runs without one)
    assert [link.split("@")[0] for link in got["links"].split()] == ["lo", "eth0"]
    assert got["nofile"] == ref["nofile"]
    for engine in (dockerd, daemon):
        engine.cli("rmi", tag)


def test_build_cgroup_parent_places_run_steps(dockerd, daemon, ctx):
    """``--cgroup-parent``: the RUN container's cgroup sits under the parent given."""
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nRUN cat /proc/self/cgroup > /cgroup.txt\n",
        },
    )
    tag = "dy-build-params:3"
    try:
        for engine in (dockerd, daemon):
            done = build(engine, ctx, "--no-cache", "--cgroup-parent", PARENT, "-t", tag)
            assert done.returncode == 0, done.stderr.decode()
            out = engine.cli("run", "--rm", tag, "cat", "/cgroup.txt", check=True).stdout.decode()
            memory = next(
                line for line in out.splitlines() if ":memory:" in line or line.startswith("0::")
            )
            assert f"/{PARENT}/" in memory, (engine.root, out)
            engine.cli("rmi", tag)
    finally:
        _remove_cgroups(PARENT)


def _remove_cgroups(name: str) -> None:
    """The parent cgroup the engines made, in every hierarchy (v1 controllers, or v2)."""
    for root in ["/sys/fs/cgroup"] + [e.path for e in os.scandir("/sys/fs/cgroup") if e.is_dir()]:
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        for dirpath, dirs, _files in os.walk(path, topdown=False):
            for d in dirs:
                os.rmdir(os.path.join(dirpath, d))
        os.rmdir(path)
