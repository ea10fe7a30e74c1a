"""Online GC on a real storage root: what goes, what stays, and the race with a push."""

from __future__ import annotations

import json
import os
import threading
import time

from dockyard.distribution.registry import gc, lock
from dockyard.distribution.registry import manifest as manifests
from dockyard.distribution.registry.filesystem import FilesystemStorage

from .regclient import DOCKER_MANIFEST, LAYER, OCI_INDEX, OCI_MANIFEST, digest_of

OLD = time.time() - 86400


def _blob(storage: FilesystemStorage, name: str, data: bytes, old: bool = True) -> str:
    upload = storage.start_upload(name)
    writer = storage.append(name, upload, 0)
    writer.write(data)
    writer.close()
    digest = digest_of(data)
    storage.commit_upload(name, upload, digest)
    if old:
        os.utime(os.path.join(storage.root, "blobs", "sha256", digest[7:]), (OLD, OLD))
    return digest


def _manifest(
    storage: FilesystemStorage,
    name: str,
    tag: str | None,
    layers: list[bytes],
    extra: dict | None = None,
    media_type: str = DOCKER_MANIFEST,
) -> str:
    config = _blob(storage, name, json.dumps({"layers": len(layers), **(extra or {})}).encode())
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": 1,
        },
        "layers": [
            {"mediaType": LAYER, "digest": _blob(storage, name, data), "size": len(data)}
            for data in layers
        ],
    }
    if extra and "subject" in extra:
        body["subject"] = extra["subject"]
    data = json.dumps(body).encode()
    digest = storage.put_manifest(name, data, media_type, tag, manifests.parse(data, media_type))
    _age_revision(storage, name, digest)
    return digest


def _age_revision(storage: FilesystemStorage, name: str, digest: str) -> None:
    path = os.path.join(storage.root, "repositories", name, "_manifests", "revisions", digest[7:])
    os.utime(path, (OLD, OLD))
    os.utime(os.path.join(storage.root, "blobs", "sha256", digest[7:]), (OLD, OLD))


def _exists(storage: FilesystemStorage, digest: str) -> bool:
    return storage.has_blob(digest)


def test_unreferenced_old_blobs_go_recent_ones_stay(tmp_path):
    storage = FilesystemStorage(str(tmp_path))
    kept = _manifest(storage, "app", "v1", [b"kept layer"])
    orphan = _blob(storage, "app", b"orphan")
    fresh = _blob(storage, "app", b"fresh, a push under way", old=False)
    dry = gc.collect(storage, grace=60, delete_untagged=False, dry_run=True)
    assert dry.blobs == [orphan] and _exists(storage, orphan)
    report = gc.collect(storage, grace=60, delete_untagged=False, dry_run=False)
    assert report.blobs == [orphan] and report.freed == len(b"orphan")
    assert not _exists(storage, orphan)
    assert _exists(storage, fresh) and _exists(storage, kept)
    assert digest_of(b"kept layer") in storage.links("app")
    assert orphan not in storage.links("app")  # its link went with it


def test_delete_untagged_keeps_what_tags_reach(tmp_path):
    storage = FilesystemStorage(str(tmp_path))
    untagged = _manifest(storage, "r", None, [b"only in untagged"])
    child = _manifest(storage, "r", None, [b"child layer"])
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child, "size": 1}],
    }
    data = json.dumps(index).encode()
    index_digest = storage.put_manifest(
        "r", data, OCI_INDEX, "multi", manifests.parse(data, OCI_INDEX)
    )
    _age_revision(storage, "r", index_digest)
    subject = {"mediaType": OCI_INDEX, "digest": index_digest, "size": len(data)}
    referrer = _manifest(
        storage, "r", None, [b"signature"], {"subject": subject}, media_type=OCI_MANIFEST
    )
    report = gc.collect(storage, grace=60, delete_untagged=True, dry_run=False)
    assert report.manifests == [f"r@{untagged}"]
    assert not _exists(storage, untagged) and not _exists(storage, digest_of(b"only in untagged"))
    for digest in (
        child,
        index_digest,
        referrer,
        digest_of(b"child layer"),
        digest_of(b"signature"),
    ):
        assert _exists(storage, digest)
    assert [r["digest"] for r in storage.referrers("r", index_digest)] == [referrer]


def test_manifest_pushed_during_gc_keeps_its_blobs(tmp_path, monkeypatch):
    """A push whose manifest lands between GC's mark and sweep: its old, unreferenced-at-mark
    blob must survive (the sweep re-marks under the lock)."""
    storage = FilesystemStorage(str(tmp_path))
    config = _blob(storage, "late", b'{"late": true}')
    layer = _blob(storage, "late", b"a layer uploaded long ago, HEAD-checked since")
    marked = threading.Event()
    original = lock.exclusive

    def exclusive(path: str):  # type: ignore[no-untyped-def]
        marked.set()
        return original(path)

    monkeypatch.setattr(gc.lock, "exclusive", exclusive)
    reports: list[gc.Report] = []
    with lock.shared(storage.lock_path):  # a writer inside its window
        thread = threading.Thread(
            target=lambda: reports.append(gc.collect(storage, 60, False, False))
        )
        thread.start()
        assert marked.wait(10)
        body = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/x", "digest": config, "size": 14},
            "layers": [{"mediaType": LAYER, "digest": layer, "size": 1}],
        }
        data = json.dumps(body).encode()
        storage.put_manifest(
            "late", data, DOCKER_MANIFEST, "v1", manifests.parse(data, DOCKER_MANIFEST)
        )
        assert thread.is_alive()  # the sweep waits for the writer
    thread.join(10)
    assert reports and reports[0].blobs == []
    assert _exists(storage, layer) and _exists(storage, config)


def test_reupload_of_garbage_refreshes_it(tmp_path):
    storage = FilesystemStorage(str(tmp_path))
    digest = _blob(storage, "x", b"was garbage")
    _blob(storage, "y", b"was garbage", old=False)  # pushed again: a use
    report = gc.collect(storage, grace=60, delete_untagged=False, dry_run=False)
    assert report.blobs == [] and _exists(storage, digest)


def test_periodic_gc_in_the_server(tmp_path):
    """``gc-interval``: the server collects by itself while it serves."""
    import asyncio

    from .regclient import push_blob, with_client

    @with_client(gc_interval=0.1, gc_grace=60.0)
    async def run(client, tmp_path):  # type: ignore[no-untyped-def]
        orphan = await push_blob(client, "p", b"orphan")
        kept = await push_blob(client, "p", b"fresh")
        path = os.path.join(str(tmp_path / "root"), "blobs", "sha256", orphan[7:])
        os.utime(path, (OLD, OLD))
        for _ in range(100):
            if not os.path.exists(path):
                break
            await asyncio.sleep(0.05)
        assert not os.path.exists(path)
        resp = await client.head(f"/v2/p/blobs/{kept}")
        assert resp.status == 200
        resp = await client.head(f"/v2/p/blobs/{orphan}")
        assert resp.status == 404

    run(tmp_path)


def test_temp_files_left_by_a_kill_are_never_tags_links_or_manifests(tmp_path):
    """A kill -9 inside an atomic write leaves ``.<name>.tmp-<pid>-<tid>`` beside the tags,
    links and revisions: it must not list as a tag, nor make GC fail on a bad digest."""
    storage = FilesystemStorage(str(tmp_path))
    kept = _manifest(storage, "app", "v1", [b"kept layer"])
    repo = os.path.join(storage.root, "repositories", "app")
    for sub in ("_manifests/tags", "_layers", "_manifests/revisions"):
        with open(os.path.join(repo, sub, ".v2.tmp-4242-4243"), "w") as f:
            f.write("partial")
    assert storage.tags("app") == ["v1"]
    assert all(d.startswith("sha256:") and len(d) == 71 for d in storage.links("app"))
    assert [r.digest for r in storage.revisions("app")] == [kept]
    report = gc.collect(storage, grace=60, delete_untagged=True, dry_run=False)
    assert report.blobs == [] and _exists(storage, kept)
