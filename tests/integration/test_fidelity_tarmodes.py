"""Tar headers of ``docker export`` and ``docker cp`` (GET archive), side by side on the
reference dockerd and on dockyardd: every entry's raw ``mode`` field carries the file-type
bits as moby's pkg/archive writes them (directories 040755, files 0100644, symlinks
0120777, FIFOs 010644, set-id bits kept), read through Python's tarfile (which does not mask
on read) and listed by ``tar tvf``."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid

import pytest
from engines import api_request

SCRIPT = (
    "mkdir -m 0750 /t && cd /t && echo data > f && chmod 4754 f && ln f hard && ln -s f sym "
    "&& mkfifo -m 0640 fifo && mkdir -m 1777 sticky && touch sticky/empty"
)
NAMES = ["t", "t/f", "t/hard", "t/sym", "t/fifo", "t/sticky", "t/sticky/empty"]


@pytest.fixture
def made():
    """Containers made on each engine, removed afterwards."""
    made: list[tuple[object, str]] = []
    yield made
    for engine, name in made:
        engine.cli("rm", "-f", name)


def _run(engine, made) -> str:
    name = f"dyt-tarmode-{uuid.uuid4().hex[:8]}"
    made.append((engine, name))
    engine.cli("run", "--name", name, "busybox", "sh", "-c", SCRIPT, check=True)
    return name


def _headers(body: bytes, names: list[str]) -> dict[str, tuple[str, bytes, str, str]]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        found = {m.name.rstrip("/"): m for m in tar.getmembers()}
    return {
        n: (oct(found[n].mode), found[n].type, found[n].linkname, str(found[n].size)) for n in names
    }


def _listing(body: bytes, names: list[str]) -> list[str]:
    """``tar tvf`` lines of ``names`` (permissions and type column, link, path)."""
    out = subprocess.run(["tar", "tvf", "-"], input=body, capture_output=True, check=True).stdout
    lines = {}
    for line in out.decode().splitlines():
        fields = line.split()
        path = fields[5].rstrip("/")
        lines[path] = " ".join([fields[0], *fields[5:]])
    return [lines[n] for n in names]


def test_export_headers_match_dockerd(dockerd, daemon, made):
    seen = []
    for engine in (dockerd, daemon):
        name = _run(engine, made)
        status, body = api_request(engine, "GET", f"/containers/{name}/export", timeout=60)
        assert status == 200, body[:200]
        seen.append((_headers(body, [*NAMES, "bin", "bin/busybox"]), _listing(body, NAMES)))
    assert seen[1] == seen[0]
    headers = seen[0][0]
    assert headers["t"][0] == "0o40750" and headers["t/f"][0] == "0o104754", headers


def test_cp_archive_headers_match_dockerd(dockerd, daemon, made):
    seen = []
    for engine in (dockerd, daemon):
        name = _run(engine, made)
        status, body = api_request(engine, "GET", f"/containers/{name}/archive?path=/t")
        assert status == 200, body[:200]
        seen.append((_headers(body, NAMES), _listing(body, NAMES)))
    assert seen[1] == seen[0]
