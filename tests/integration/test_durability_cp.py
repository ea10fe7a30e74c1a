"""docker cp against a running container that races it (CVE-2018-15664): a process inside
swaps a directory for a symlink to ``/`` in a tight loop while 1,000 copies run in each
direction; no copy may read or write the host."""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
import urllib.parse

from engines import api_request

COPIES = 1000
THREADS = 4


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _run_threads(work, n: int) -> None:
    errors: list[BaseException] = []

    def body(start: int) -> None:
        try:
            for i in range(start, COPIES, n):
                work(i)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_cp_survives_symlink_swap_race(daemon, docker, tmp_path):
    # A host directory whose path the container mirrors under /w/d: if a copy ever
    # followed the swapped-in symlink "/w/d -> /" on the host, it would reach it.
    hostdir = tmp_path / "hostside"
    hostdir.mkdir()
    (hostdir / "secret").write_bytes(b"HOST SECRET\n")
    rel = str(hostdir).lstrip("/")
    script = (
        f"mkdir -p /w/d/{rel} && echo inside > /w/d/{rel}/secret && touch /w/ready; "
        "cd /w; while true; do mv d d.real; ln -s / d; rm d; mv d.real d; done"
    )
    # A volume: every copy also binds it onto the root (inside, its mount point cannot be
    # renamed, so the swap races the copy paths, not the bind).
    docker(
        "run", "-d", "--name", "cprace", "-v", "dyt-cprace:/w/vol",
        "busybox", "sh", "-c", script, check=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while docker("exec", "cprace", "test", "-e", "/w/ready").returncode != 0:
            assert time.monotonic() < deadline, "the racing container did not start"
            time.sleep(0.1)
        get_path = urllib.parse.quote(f"/w/d/{rel}/secret")
        put_path = urllib.parse.quote(f"/w/d/{rel}")
        seen = {"inside": 0, "missing": 0, "put": 0, "put-missing": 0}
        lock = threading.Lock()

        def read(i: int) -> None:
            status, body = api_request(daemon, "GET", f"/containers/cprace/archive?path={get_path}")
            assert b"HOST SECRET" not in body, "a copy read the host's file"
            assert status in (200, 404), (status, body[:200])
            if status == 200:
                with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                    data = tar.extractfile("secret").read()
                assert data == b"inside\n", data
            with lock:
                seen["inside" if status == 200 else "missing"] += 1

        def write(i: int) -> None:
            status, body = api_request(
                daemon,
                "PUT",
                f"/containers/cprace/archive?path={put_path}",
                body=_tar(f"written-{i}", b"x"),
                headers={"Content-Type": "application/x-tar"},
            )
            assert status in (200, 404), (status, body[:200])
            with lock:
                seen["put" if status == 200 else "put-missing"] += 1

        _run_threads(read, THREADS)
        _run_threads(write, THREADS)
        assert sorted(os.listdir(hostdir)) == ["secret"], "a copy wrote into the host"
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        assert not [p for p in points if p == "/vol" or p.startswith(str(tmp_path))], points
        assert (hostdir / "secret").read_bytes() == b"HOST SECRET\n"
        # The race really ran: some copies met the directory, some the symlink.
        assert seen["inside"] and seen["missing"], seen
        assert seen["put"] and seen["put-missing"], seen
        print("cp race outcomes:", seen)
    finally:
        docker("rm", "-f", "-v", "cprace")
        docker("volume", "rm", "dyt-cprace")
