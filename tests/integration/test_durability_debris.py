"""Crash debris: ``kill -9`` of the daemon in the middle of a load and of a commit, plus
planted leftovers of every kind, are found and removed at the next start; afterwards nothing
on disk, in the mount table or in the cgroup tree is left that no record owns."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time

import pytest
from engines import api_request, cgroup_parent, make_busybox, start_dockyardd

from dockyard.runtime import linux
from dockyard.storage import disk_usage, mount_points

FAKE = "d" * 64


def _records(root: str) -> tuple[set[str], set[str]]:
    """(container ids, layer chain ids) the metadata store holds (read only)."""
    conn = sqlite3.connect(f"file:{root}/data/metadata.db?mode=ro", uri=True)
    try:
        containers = {row[0] for row in conn.execute("SELECT id FROM containers")}
        layers = {
            row[0].removeprefix("sha256:") for row in conn.execute("SELECT chain_id FROM layers")
        }
    finally:
        conn.close()
    return containers, layers


def _unowned(root: str) -> list[str]:
    """Everything under the roots, in the mount table and the cgroup tree no record owns."""
    containers, layers = _records(root)
    data, execr = os.path.join(root, "data"), os.path.join(root, "exec")
    found = []
    for name in os.listdir(os.path.join(data, "overlay2")):
        if name != "l" and name not in layers | containers:
            found.append(f"layer {name}")
    for top in (os.path.join(data, "containers"), os.path.join(execr, "containers")):
        if os.path.isdir(top):
            found += [f"container dir {n}" for n in os.listdir(top) if n not in containers]
    found += [f"tmp {n}" for n in os.listdir(os.path.join(data, "tmp"))]
    found += [f"ingest {n}" for n in os.listdir(os.path.join(data, "content", "ingest"))]
    for point, _ in mount_points():
        if not point.startswith(root + "/"):
            continue
        rel = os.path.relpath(point, data)
        parts = rel.split("/")
        if parts[0] == "overlay2" and parts[2:] == ["merged"] and parts[1] in containers:
            continue
        if (
            point.startswith(os.path.join(execr, "netns") + "/")
            and point.rsplit("/", 1)[1] in containers
        ):
            continue
        if point.startswith(os.path.join(execr, "supervisor")):
            continue
        found.append(f"mount {point}")
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", hierarchy, cgroup_parent(root))
        if os.path.isdir(top):
            found += [
                f"cgroup {n}" for n in os.listdir(top) if len(n) == 64 and n not in containers
            ]
    return found


def _kill_when(engine, ready, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"never saw {what} in progress"
        time.sleep(0.005)
    engine.proc.kill()
    engine.proc.wait(10)


@pytest.fixture
def crashy(workdir):
    root = os.path.join(workdir, "debris")
    state = {"engine": start_dockyardd(root)}
    try:
        make_busybox(state["engine"])
        yield state
    finally:
        state["engine"].stop()


def _restart(state) -> str:
    """Start the daemon again on the same root; returns its log of this start."""
    old = state["engine"]
    if old.proc.poll() is None:
        old.proc.kill()
        old.proc.wait(10)
    size = os.path.getsize(old.log)
    state["engine"] = start_dockyardd(old.root)
    with open(old.log, encoding="utf-8", errors="replace") as f:
        f.seek(size)
        return f.read()


def test_kill_during_load_and_commit_leaves_nothing_unowned(crashy, tmp_path):
    e = crashy["engine"]
    root, data = e.root, os.path.join(e.root, "data")
    # An image with a 256 MiB layer of random bytes: long enough to kill mid-way.
    e.cli(
        "run", "--name", "big", "busybox", "sh", "-c",
        "head -c 268435456 /dev/urandom > /blob", check=True,
    )  # fmt: skip
    e.cli("commit", "big", "dyt/big:1", check=True)
    tarball = tmp_path / "big.tar"
    with open(tarball, "wb") as out:
        subprocess.run(["docker", "save", "dyt/big:1"], env=e.env, stdout=out, check=True)
    e.cli("rmi", "dyt/big:1", check=True)
    layers_before = set(os.listdir(os.path.join(data, "overlay2")))

    # 1. kill -9 during a load, once its bytes are landing on disk
    load = subprocess.Popen(
        ["docker", "load", "-i", str(tarball)], env=e.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def loading() -> bool:
            ingest = os.listdir(os.path.join(data, "content", "ingest"))
            new = set(os.listdir(os.path.join(data, "overlay2"))) - layers_before
            return bool(ingest or new)

        _kill_when(e, loading, "a load")
    finally:
        load.wait(30)
    log = _restart(crashy)
    e = crashy["engine"]
    assert "debris: removed" in log, log
    assert _unowned(root) == []

    # 2. kill -9 during a commit of the container with the big file
    commit = subprocess.Popen(
        ["docker", "commit", "big", "dyt/big:2"], env=e.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _kill_when(e, lambda: bool(os.listdir(os.path.join(data, "content", "ingest"))), "a commit")
    finally:
        commit.wait(30)
    log = _restart(crashy)
    assert "debris: removed content ingest" in log, log
    assert _unowned(root) == []
    e = crashy["engine"]
    # Everything listed still inspects and removes.
    assert e.cli("rm", "-f", "big").returncode == 0
    for image in e.cli("images", "-q").stdout.decode().split():
        assert e.cli("image", "inspect", image).returncode == 0


def test_planted_debris_of_every_kind_is_collected(crashy):
    e = crashy["engine"]
    root, data, execr = e.root, os.path.join(e.root, "data"), os.path.join(e.root, "exec")
    e.cli("run", "-d", "--name", "keeper", "busybox", "sleep", "300", check=True)
    keeper = e.cli("inspect", "-f", "{{.Id}}", "keeper").stdout.decode().strip()
    e.proc.kill()
    e.proc.wait(10)
    planted = []
    # a half-extracted layer, a container directory and bundle without a record
    layer = os.path.join(data, "overlay2", FAKE)
    os.makedirs(os.path.join(layer, "diff", "usr"))
    with open(os.path.join(layer, "diff", "usr", "blob"), "wb") as f:
        f.write(os.urandom(1 << 20))
    for top in (os.path.join(data, "containers"), os.path.join(execr, "containers")):
        os.makedirs(os.path.join(top, FAKE))
        with open(os.path.join(top, FAKE, "x"), "w") as f:
            f.write("x")
    # temp files: a load's work dir, an ingest, an atomic_write temp beside a record
    os.makedirs(os.path.join(data, "tmp", "load-123"))
    with open(os.path.join(data, "tmp", "load-123", "layer.tar"), "wb") as f:
        f.write(b"\0" * 4096)
    with open(os.path.join(data, "content", "ingest", "abc"), "wb") as f:
        f.write(b"\0" * 4096)
    with open(os.path.join(data, "overlay2", keeper, ".link.tmp-99999"), "w") as f:
        f.write("x")
    # a docker cp bind left under the running container's root, a pinned netns of nobody
    merged = os.path.join(data, "overlay2", keeper, "merged")
    linux.mount(os.path.join(data, "tmp"), os.path.join(merged, "tmp"), None, linux.MS_BIND, None)
    ns = os.path.join(execr, "netns", FAKE)
    os.makedirs(os.path.dirname(ns), exist_ok=True)
    open(ns, "w").close()
    linux.mount("/proc/self/ns/net", ns, None, linux.MS_BIND, None)
    # the cgroup of a container that no longer exists
    for hierarchy in ("memory", "pids", "unified"):
        path = os.path.join("/sys/fs/cgroup", hierarchy, cgroup_parent(root), FAKE)
        if os.path.isdir(os.path.dirname(os.path.dirname(path))):
            os.makedirs(path, exist_ok=True)
            planted.append(path)
    assert planted
    assert len(_unowned(root)) >= 9, _unowned(root)

    log = _restart(crashy)
    assert _unowned(root) == [], log
    assert "debris: removed layer" in log and "debris: removed copy bind" in log, log
    assert "debris: removed network namespace" in log and "debris: removed cgroup" in log, log
    summary = [line for line in log.splitlines() if "bytes given back" in line]
    assert summary and int(summary[0].split(" bytes given back")[0].rsplit(" ", 1)[1]) > 1 << 20
    # the running container was left alone and still answers
    e = crashy["engine"]
    state = json.loads(e.cli("inspect", "keeper").stdout)[0]["State"]
    assert state["Running"], state
    assert e.cli("exec", "keeper", "true").returncode == 0
    e.cli("rm", "-f", "keeper", check=True)


def _df_total(e) -> int:
    status, body = api_request(e, "GET", "/system/df")
    assert status == 200
    df = json.loads(body)
    return (
        df["LayersSize"]
        + sum(c.get("SizeRw") or 0 for c in df["Containers"])
        + sum(v["UsageData"]["Size"] for v in df["Volumes"])
    )


def test_system_df_counts_everything_under_the_data_root(crashy):
    e = crashy["engine"]
    data = os.path.join(e.root, "data")
    e.cli(
        "run",
        "--name",
        "dfbox",
        "busybox",
        "sh",
        "-c",
        "head -c 1000000 /dev/zero > /f",
        check=True,
    )
    e.cli("volume", "create", "dyt-df", check=True)
    try:
        total = _df_total(e)
        on_disk = disk_usage(data, True)
        assert abs(total - on_disk) < 256 * 1024, (total, on_disk)
        # a file no record owns (what a crash could leave) shows up too
        with open(os.path.join(data, "tmp", "unseen"), "wb") as f:
            f.write(b"\0" * (4 << 20))
        assert _df_total(e) - total >= 4 << 20
    finally:
        os.unlink(os.path.join(data, "tmp", "unseen"))
        e.cli("rm", "-f", "dfbox")
        e.cli("volume", "rm", "dyt-df")
