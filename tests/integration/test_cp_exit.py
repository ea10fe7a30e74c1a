"""A container that exits while ``docker cp`` (GET archive) or ``docker export`` streams its
root: the exit's clean-up must not unmount the root under the copy (the copy finishes
whole), and the last user to let go unmounts it (no mount is left behind).

The client reads the first MiB, then the container is killed and its exit recorded
(``docker wait``), then the client reads the rest: the daemon cannot have finished the tar
before the exit, its stream being paced by the client (a few MiB in flight at most)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import uuid

import pytest
from engines import UnixHTTPConnection

SIZE_MB = 96


def _mounts_of(cid: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if cid in line.split()[4]]


@pytest.fixture
def writer(daemon):
    """A running container with a volume and /data: a big file first, small ones after it;
    removed (with its volume) afterwards."""
    name = f"dyt-cpexit-{uuid.uuid4().hex[:8]}"
    script = (
        f"mkdir /data && dd if=/dev/urandom of=/data/a-big bs=1M count={SIZE_MB} 2>/dev/null"
        " && for f in b c d e f; do echo $f > /data/$f; done && touch /ready; sleep 600"
    )
    # The volume: a copy also binds it under the root while it runs (as moby does).
    daemon.cli(
        "run", "-d", "--name", name, "--network", "none", "-v", f"{name}:/vol",
        "busybox", "sh", "-c", script, check=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while daemon.cli("exec", name, "test", "-e", "/ready").returncode != 0:
            assert time.monotonic() < deadline, "the big file was not written"
            time.sleep(0.2)
        cid = daemon.cli("inspect", "-f", "{{.Id}}", name, check=True).stdout.decode().strip()
        digest = daemon.cli("exec", name, "md5sum", "/data/a-big", check=True).stdout.split()[0]
        yield name, cid, digest.decode()
    finally:
        daemon.cli("rm", "-f", "-v", name)
        daemon.cli("volume", "rm", name)


@pytest.mark.parametrize("what", ["archive", "export"])
def test_container_exits_mid_copy(daemon, writer, what):
    name, cid, md5 = writer
    path = (
        f"/containers/{name}/archive?path=/data"
        if what == "archive"
        else f"/containers/{name}/export"
    )
    conn = UnixHTTPConnection(daemon.sock, timeout=120)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200
        body = bytearray(resp.read(1 << 20))
        daemon.cli("kill", name, check=True)
        assert daemon.cli("wait", name, check=True).stdout.strip() == b"137"
        time.sleep(0.5)  # the exit's clean-up runs after the wait is answered
        body += resp.read()
    finally:
        conn.close()
    assert body.endswith(b"\0" * 1024), "the tar stream stopped before its end"
    with tarfile.open(fileobj=io.BytesIO(bytes(body))) as tar:
        names = tar.getnames()
        member = tar.getmember("data/a-big")
        assert member.size == SIZE_MB << 20
        assert hashlib.md5(tar.extractfile(member).read()).hexdigest() == md5
        for small in "bcdef":
            assert tar.extractfile(f"data/{small}").read() == f"{small}\n".encode()
    if what == "export":  # the walk went on past the big file, through the whole root
        assert {"etc/passwd", "bin/busybox", "vol"} <= set(names), names[-20:]
    deadline = time.monotonic() + 10
    while _mounts_of(cid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _mounts_of(cid) == [], "the stopped container's root is still mounted"
