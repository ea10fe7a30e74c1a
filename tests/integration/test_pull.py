"""Pull from Debian's docker-registry, side by side with Debian's dockerd: the progress
stream, the CLI's output, RepoDigests, distribution inspect and the early errors must match.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from engines import api_request
from regpeers import free_port, layer_tar, start_registry


@pytest.fixture(scope="module")
def registry():
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


def _import(engine, name: str, files: dict[str, bytes]) -> None:
    tar = layer_tar(files)
    engine.cli("import", "-", name, input=tar, check=True)


@pytest.fixture(scope="module")
def fresh(registry, dockerd):
    """An image neither daemon has, pushed to the registry by dockerd (then forgotten)."""
    name = f"{registry.host}/tests/fresh:v1"
    with open("/bin/busybox", "rb") as f:
        busybox = f.read()
    files = {"bin/busybox": busybox, "data/blob": os.urandom(500_000), "etc/hello": b"hi\n"}
    _import(dockerd, name, files)
    dockerd.cli("push", name, check=True)
    dockerd.cli("rmi", name, check=True)
    return name


def _pull_raw(engine, name: str) -> tuple[int, bytes]:
    repo, _, tag = name.rpartition(":")
    return api_request(engine, "POST", f"/images/create?fromImage={repo}&tag={tag}", timeout=120)


# dockerd's transfer broadcaster keeps only a watcher's latest progress, so it may skip
# intermediate lines (Downloading, Verifying Checksum, Extracting); these are always sent.
_STABLE = (
    "Pulling from",
    "Pulling fs layer",
    "Already exists",
    "Download complete",
    "Pull complete",
    "Digest:",
    "Status:",
)


def _shape(body: bytes) -> list[tuple[str, str]]:
    """(status, id) of every line that dockerd always writes."""
    out: list[tuple[str, str]] = []
    for line in body.splitlines():
        msg = json.loads(line)
        status = msg.get("status") or msg.get("error") or ""
        if status.startswith(_STABLE) or "error" in msg:
            out.append((status, msg.get("id", "")))
    return out


def _lossy(out: bytes) -> bytes:
    """The CLI's plain output without the lines dockerd may skip (see _STABLE): its progress
    writer drops a short-lived status (Waiting, Verifying Checksum, Download complete) when
    the next one overtakes it, which happens under load."""
    transient = (b": Waiting", b": Verifying Checksum", b": Download complete")
    return b"".join(
        line for line in out.splitlines(keepends=True) if not line.rstrip(b"\n").endswith(transient)
    )


def _statuses(body: bytes) -> list[str]:
    return [json.loads(line).get("status", "") for line in body.splitlines()]


def test_pull_stream_matches_dockerd(daemon, dockerd, fresh):
    try:
        mine_status, mine = _pull_raw(daemon, fresh)
        theirs_status, theirs = _pull_raw(dockerd, fresh)
        assert mine_status == theirs_status == 200
        assert _shape(mine) == _shape(theirs)
        # and ours has every intermediate step, in moby's order
        steps = [
            s
            for s in _statuses(mine)
            if s in ("Downloading", "Verifying Checksum", "Download complete", "Extracting")
        ]
        assert steps[0] == "Downloading" and "Verifying Checksum" in steps
        assert steps.index("Verifying Checksum") < steps.index("Download complete")
        assert steps[-1] == "Extracting"
        assert mine.endswith(b"\r\n")
        # every line is JSON the way Go writes it (">" escaped in progress bars)
        assert b">" not in mine
        last = [json.loads(line) for line in mine.splitlines()][-1]
        assert last == {"status": f"Status: Downloaded newer image for {fresh}"}
        # the same image: same id and RepoDigests on both
        fmt = "{{.Id}} {{json .RepoDigests}} {{json .RepoTags}}"
        assert (
            daemon.cli("inspect", "-f", fmt, fresh).stdout
            == dockerd.cli("inspect", "-f", fmt, fresh).stdout
        )
        # pulled again: up to date, nothing downloaded
        again = [json.loads(line) for line in _pull_raw(daemon, fresh)[1].splitlines()]
        assert again[0]["status"].startswith("Pulling from tests/fresh")
        assert again[-1]["status"] == f"Status: Image is up to date for {fresh}"
        assert len(again) == 3
        # the pulled layer is what runs
        out = daemon.cli("run", "--rm", fresh, "/bin/busybox", "cat", "/etc/hello")
        assert out.stdout == b"hi\n", out.stderr
    finally:
        daemon.cli("rmi", fresh)
        dockerd.cli("rmi", fresh)


def test_cli_pull_output_and_digests_match_dockerd(daemon, dockerd, fresh):
    try:
        mine = daemon.cli("pull", fresh)
        theirs = dockerd.cli("pull", fresh)
        assert (mine.returncode, _lossy(mine.stdout), mine.stderr) == (
            theirs.returncode,
            _lossy(theirs.stdout),
            theirs.stderr,
        )
        assert b": Verifying Checksum\n" in mine.stdout
        fmt = "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}"
        args = ("images", "--digests", "--format", fmt, fresh.rsplit(":", 1)[0])
        assert daemon.cli(*args).stdout == dockerd.cli(*args).stdout
        assert b"sha256:" in daemon.cli(*args).stdout
        # a second tag on the same image keeps one RepoDigest
        mine = api_request(daemon, "GET", f"/distribution/{fresh}/json")
        theirs = api_request(dockerd, "GET", f"/distribution/{fresh}/json")
        assert mine == theirs
        assert mine[0] == 200
    finally:
        daemon.cli("rmi", fresh)
        dockerd.cli("rmi", fresh)


def test_pull_by_digest(daemon, dockerd, fresh):
    digest = json.loads(api_request(dockerd, "GET", f"/distribution/{fresh}/json")[1])[
        "Descriptor"
    ]["digest"]
    by_digest = fresh.rsplit(":", 1)[0] + "@" + digest
    try:
        mine = daemon.cli("pull", by_digest)
        theirs = dockerd.cli("pull", by_digest)
        assert mine.returncode == 0, mine.stderr
        assert _lossy(mine.stdout) == _lossy(theirs.stdout)
        fmt = "{{json .RepoTags}} {{json .RepoDigests}}"
        assert daemon.cli("inspect", "-f", fmt, by_digest).stdout == (
            dockerd.cli("inspect", "-f", fmt, by_digest).stdout
        )
    finally:
        daemon.cli("rmi", by_digest)
        dockerd.cli("rmi", by_digest)


def test_layer_already_present_is_not_downloaded(daemon, registry):
    """An image of two layers, busybox's (which the daemon keeps) and one of its own: the
    pull says "Already exists" for busybox's layer and downloads only the other."""
    name = f"{registry.host}/tests/onbusybox:1"
    cname = "onbusybox-src"
    daemon.cli("run", "--name", cname, "busybox", "sh", "-c", "echo mine > /mine", check=True)
    try:
        daemon.cli("commit", cname, name, check=True)
    finally:
        daemon.cli("rm", "-f", cname)
    try:
        daemon.cli("push", name, check=True)
        daemon.cli("rmi", name, check=True)
        status, body = _pull_raw(daemon, name)
        lines = [json.loads(line) for line in body.splitlines()]
        assert status == 200
        assert lines[-1]["status"] == f"Status: Downloaded newer image for {name}"
        layers = [
            m["id"] for m in lines if m.get("status") in ("Already exists", "Pulling fs layer")
        ]
        assert len(layers) == 2
        assert [m["status"] for m in lines if m.get("id") == layers[0]] == ["Already exists"]
        mine = [m["status"] for m in lines if m.get("id") == layers[1]]
        assert mine[0] == "Pulling fs layer" and mine[-1] == "Pull complete"
        downloading = {m["id"] for m in lines if m.get("status") == "Downloading"}
        assert downloading <= {layers[1]}
        assert daemon.cli("run", "--rm", name, "cat", "/mine").stdout == b"mine\n"
        # the last tag of the repository takes its digest references along (moby)
        out = daemon.cli("rmi", name)
        assert out.stdout.decode().splitlines()[:2] == [
            f"Untagged: {name}",
            f"Untagged: {name.rsplit(':', 1)[0]}@{lines[-2]['status'].split()[-1]}",
        ]
        digests = daemon.cli("inspect", "-f", "{{json .RepoDigests}}", "busybox").stdout
        assert registry.host.encode() not in digests
    finally:
        daemon.cli("rmi", name)


@pytest.mark.parametrize(
    "query",
    [
        "fromImage={reg}/tests/nothere&tag=latest",
        "fromImage={reg}/tests/fresh&tag=nope",
        "fromImage=UPPER/x&tag=latest",
        "fromImage=a:b:c&tag=",
        "fromImage=" + "a" * 300 + "&tag=latest",
        "fromImage={reg}/tests/fresh&tag=bad tag!",
    ],
)
def test_early_errors_are_statuses_as_dockerd(daemon, dockerd, registry, fresh, query):
    path = "/images/create?" + query.format(reg=registry.host).replace(" ", "%20")
    mine = api_request(daemon, "POST", path)
    theirs = api_request(dockerd, "POST", path)
    assert mine[0] == theirs[0], (mine, theirs)
    assert json.loads(mine[1]) == json.loads(theirs[1])


def test_unreachable_registry_is_named(daemon, dockerd):
    port = free_port()
    path = f"/images/create?fromImage=127.0.0.1:{port}/x&tag=latest"
    mine = api_request(daemon, "POST", path)
    theirs = api_request(dockerd, "POST", path)
    assert mine[0] == theirs[0] == 500
    assert json.loads(mine[1]) == json.loads(theirs[1])
    assert f"127.0.0.1:{port}" in json.loads(mine[1])["message"]


def test_docker_py_pull(api, registry, fresh):
    repo, _, tag = fresh.rpartition(":")
    try:
        image = api.images.pull(repo, tag=tag)
        assert fresh in image.tags
        assert any(d.startswith(repo + "@sha256:") for d in image.attrs["RepoDigests"])
    finally:
        api.images.remove(fresh)


def test_run_pulls_a_missing_image(docker, registry, fresh):
    try:
        out = docker("run", "--rm", fresh, "/bin/busybox", "cat", "/etc/hello")
        assert out.stdout == b"hi\n", out.stderr
        assert b"Unable to find image" in out.stderr
        assert b"Downloaded newer image" in out.stderr
    finally:
        docker("rmi", fresh)


def test_pull_all_tags_as_dockerd(daemon, dockerd, registry):
    repo = f"{registry.host}/tests/alltags"
    for tag in ("t1", "t2"):
        daemon.cli("tag", "busybox", f"{repo}:{tag}", check=True)
        daemon.cli("push", f"{repo}:{tag}", check=True)
    daemon.cli("rmi", f"{repo}:t1", f"{repo}:t2", check=True)
    try:
        mine = daemon.cli("pull", "--all-tags", repo)
        theirs = dockerd.cli("pull", "--all-tags", repo)
        assert mine.returncode == theirs.returncode == 0, mine.stderr

        # dockerd downloads a blob it has not seen to learn its diff id; dockyard trusts the
        # config's diff ids and says "Already exists": compare the lines about tags only
        def tags_only(out: bytes) -> list[bytes]:
            return [line for line in out.splitlines() if not re.match(rb"[0-9a-f]{12}: ", line)]

        assert tags_only(mine.stdout) == tags_only(theirs.stdout)
        assert mine.stdout.splitlines()[-2] == f"Status: Downloaded newer image for {repo}".encode()
        for tag in ("t1", "t2"):
            assert daemon.cli("inspect", f"{repo}:{tag}").returncode == 0
    finally:
        daemon.cli("rmi", f"{repo}:t1", f"{repo}:t2")
        dockerd.cli("rmi", f"{repo}:t1", f"{repo}:t2")
