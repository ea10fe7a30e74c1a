"""``builder prune`` end to end: ``--filter until=`` as a Go duration, an RFC 3339
timestamp and unix seconds, and ``--keep-storage``, checked on the records that really go
(the cache mount directories under the data root) and the ones that stay."""

from __future__ import annotations

import hashlib
import json
import os
import time

from engines import api_request
from test_build import _remove_new_images, build, write  # noqa: F401


def _mounts(daemon) -> set[str]:
    root = os.path.join(daemon.root, "data", "build", "cache-mounts")
    return set(os.listdir(root)) if os.path.isdir(root) else set()


def _name(ident: str) -> str:
    return hashlib.sha256(ident.encode()).hexdigest()


def _fill(daemon, ctx: str, ident: str, size: int) -> None:
    """A build whose cache mount ``ident`` gets ``size`` bytes."""
    write(
        ctx,
        {
            "Dockerfile": (
                f"FROM busybox\nRUN --mount=type=cache,id={ident},target=/c "
                f"head -c {size} /dev/zero > /c/blob\n"
            )
        },
    )
    result = build(daemon, ctx, "--no-cache", "-t", "dy-build-prune")
    assert result.returncode == 0, result.stderr
    assert _name(ident) in _mounts(daemon)


def _df(daemon) -> dict[str, int]:
    """The build cache records of ``GET /system/df``: id -> size."""
    status, body = api_request(daemon, "GET", "/system/df")
    assert status == 200, body
    return {r["ID"]: r["Size"] for r in json.loads(body).get("BuildCache") or []}


def _prune(daemon, *args: str) -> str:
    result = daemon.cli("builder", "prune", "-f", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def test_prune_until_duration_timestamp_and_unix_seconds(daemon, ctx):
    _prune(daemon)  # no cache mount of another test in the way
    _fill(daemon, ctx, "dy-prune-old", 1000)
    time.sleep(1.1)
    cut = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cut))
    time.sleep(1.1)
    _fill(daemon, ctx, "dy-prune-new", 1000)
    old, new = _name("dy-prune-old"), _name("dy-prune-new")

    # Both were used within the hour: a duration of 1h keeps them.
    out = _prune(daemon, "--filter", "until=1h")
    assert old[:25] not in out and {old, new} <= _mounts(daemon)
    # A timestamp between the two builds: only the older goes, and is listed.
    out = _prune(daemon, "--filter", f"until={stamp}")
    assert f"Deleted build cache objects:\n{old[:25]}\n" in out
    assert old not in _mounts(daemon) and new in _mounts(daemon)
    # Unix seconds before the newer: it stays; a duration of 0s: it goes.
    _prune(daemon, "--filter", f"until={int(cut)}")
    assert new in _mounts(daemon)
    out = _prune(daemon, "--filter", "until=0s")
    assert new[:25] in out and new not in _mounts(daemon)
    bad = daemon.cli("builder", "prune", "-f", "--filter", "until=yesterday")
    assert bad.returncode != 0
    assert b"invalid \"until\" filter 'yesterday'" in bad.stderr
    daemon.cli("rmi", "dy-build-prune")


def test_prune_keep_storage_removes_the_oldest_first(daemon, dockyard, ctx):
    _prune(daemon)
    _fill(daemon, ctx, "dy-keep-a", 300_000)
    time.sleep(1.1)
    _fill(daemon, ctx, "dy-keep-b", 100_000)
    a, b = _name("dy-keep-a"), _name("dy-keep-b")
    # system df lists both cache mounts with their sizes (and the CLI's table shows them).
    assert _df(daemon) == {a[:25]: 300_000, b[:25]: 100_000}
    table = daemon.cli("system", "df", "-v", check=True).stdout.decode()
    assert a[:12] in table and b[:12] in table
    # 400 kB held, 250 kB may stay: the oldest (a, 300 kB) goes, b stays.
    out = _prune(daemon, "--keep-storage", "250k")
    assert a[:25] in out and b[:25] not in out
    assert "Total reclaimed space: 300kB" in out
    assert a not in _mounts(daemon) and b in _mounts(daemon)
    assert _df(daemon) == {b[:25]: 100_000}
    # Everything fits: nothing more goes (the dockyard CLI sends the same request).
    result = dockyard("builder", "prune", "-f", "--keep-storage", "1m")
    assert result.returncode == 0 and b in _mounts(daemon)
    assert b"Total reclaimed space: 0B" in result.stdout
    _prune(daemon)
    assert b not in _mounts(daemon) and _df(daemon) == {}
    daemon.cli("rmi", "dy-build-prune")
