"""The distribution API end to end in process: uploads, blobs, manifests, listings, referrers,
and every bad input of issue 12 with its spec code and status."""

from __future__ import annotations

import asyncio
import json
import os

from dockyard.distribution.registry.filesystem import FilesystemStorage

from .regclient import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    error_code,
    push_blob,
    push_image,
    with_client,
)


def _files(root) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for directory, _, files in os.walk(root):
        out += [os.path.join(directory, f) for f in files if not f.endswith("gc.lock")]
    return out


@with_client()
async def test_base_and_version_header(client, tmp_path):
    resp = await client.get("/v2/")
    assert resp.status == 200
    assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert await resp.json() == {}


@with_client()
async def test_monolithic_post_put_and_ranged_get(client, tmp_path):
    data = os.urandom(10000)
    digest = digest_of(data)
    resp = await client.post("/v2/a/b/blobs/uploads/")
    assert resp.status == 202
    location = resp.headers["Location"]
    assert resp.headers["Range"] == "0-0"
    resp = await client.put(f"{location}?digest={digest}", data=data)
    assert resp.status == 201
    assert resp.headers["Location"] == f"/v2/a/b/blobs/{digest}"
    assert resp.headers["Docker-Content-Digest"] == digest
    resp = await client.get(f"/v2/a/b/blobs/{digest}")
    assert resp.status == 200 and await resp.read() == data
    assert resp.headers["Docker-Content-Digest"] == digest
    resp = await client.get(f"/v2/a/b/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert resp.status == 206 and await resp.read() == data[100:200]
    for bad in ("bytes=20000-", "bytes=oops", "lines=1-2"):
        resp = await client.get(f"/v2/a/b/blobs/{digest}", headers={"Range": bad})
        assert resp.status == 416, bad
        assert (await resp.json())["errors"][0]["code"] == "RANGE_INVALID"
        assert resp.headers["Content-Range"] == "bytes */10000"
        assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    resp = await client.head(f"/v2/a/b/blobs/{digest}")
    assert resp.status == 200 and resp.headers["Content-Length"] == "10000"
    # Blobs are per repository: another repository cannot read it by digest.
    resp = await client.get(f"/v2/other/blobs/{digest}")
    assert resp.status == 404 and await error_code(resp) == "BLOB_UNKNOWN"


@with_client()
async def test_chunked_upload_status_and_out_of_order(client, tmp_path):
    data = os.urandom(3000)
    resp = await client.post("/v2/chunks/blobs/uploads/")
    location = resp.headers["Location"]
    resp = await client.patch(
        location, data=data[:1000], headers={"Content-Range": "0-999", "Content-Length": "1000"}
    )
    assert resp.status == 202 and resp.headers["Range"] == "0-999"
    # A chunk that does not start at 1000 is refused with 416 and the current range.
    resp = await client.patch(location, data=data[2000:], headers={"Content-Range": "2000-2999"})
    assert resp.status == 416 and resp.headers["Range"] == "0-999"
    assert await error_code(resp) == "RANGE_INVALID"
    resp = await client.get(location)
    assert resp.status == 204 and resp.headers["Range"] == "0-999"
    resp = await client.patch(
        location, data=data[1000:2000], headers={"Content-Range": "1000-1999"}
    )
    assert resp.status == 202 and resp.headers["Range"] == "0-1999"
    resp = await client.put(
        f"{location}?digest={digest_of(data)}",
        data=data[2000:],
        headers={"Content-Range": "2000-2999"},
    )
    assert resp.status == 201
    resp = await client.get(f"/v2/chunks/blobs/{digest_of(data)}")
    assert await resp.read() == data


@with_client()
async def test_cancel_upload(client, tmp_path):
    resp = await client.post("/v2/c/blobs/uploads/")
    location = resp.headers["Location"]
    await client.patch(location, data=b"partial")
    resp = await client.delete(location)
    assert resp.status == 204
    resp = await client.get(location)
    assert resp.status == 404 and await error_code(resp) == "BLOB_UPLOAD_UNKNOWN"
    assert os.listdir(tmp_path / "root" / "uploads") == []


@with_client()
async def test_digest_mismatch_stores_nothing(client, tmp_path):
    wrong = digest_of(b"something else")
    resp = await client.post(f"/v2/d/blobs/uploads/?digest={wrong}", data=b"payload")
    assert resp.status == 400 and await error_code(resp) == "DIGEST_INVALID"
    resp = await client.post("/v2/d/blobs/uploads/")
    resp = await client.put(f"{resp.headers['Location']}?digest={wrong}", data=b"payload")
    assert resp.status == 400 and await error_code(resp) == "DIGEST_INVALID"
    root = tmp_path / "root"
    assert os.listdir(root / "blobs" / "sha256") == []
    assert os.listdir(root / "uploads") == []
    resp = await client.head(f"/v2/d/blobs/{digest_of(b'payload')}")
    assert resp.status == 404


@with_client()
async def test_cross_repository_mount_and_fallback(client, tmp_path):
    digest = await push_blob(client, "src", b"shared layer")
    resp = await client.post(f"/v2/dst/blobs/uploads/?mount={digest}&from=src")
    assert resp.status == 201 and resp.headers["Location"] == f"/v2/dst/blobs/{digest}"
    resp = await client.get(f"/v2/dst/blobs/{digest}")
    assert await resp.read() == b"shared layer"
    # Not in "from": an upload session instead.
    missing = digest_of(b"nowhere")
    resp = await client.post(f"/v2/dst/blobs/uploads/?mount={missing}&from=src")
    assert resp.status == 202 and "/blobs/uploads/" in resp.headers["Location"]
    assert len(os.listdir(tmp_path / "root" / "blobs" / "sha256")) == 1  # stored once


@with_client()
async def test_blob_delete_unlinks(client, tmp_path):
    digest = await push_blob(client, "del", b"bytes")
    resp = await client.delete(f"/v2/del/blobs/{digest}")
    assert resp.status == 202
    resp = await client.head(f"/v2/del/blobs/{digest}")
    assert resp.status == 404
    resp = await client.delete(f"/v2/del/blobs/{digest}")
    assert resp.status == 404 and await error_code(resp) == "BLOB_UNKNOWN"


@with_client()
async def test_manifest_put_get_head_delete(client, tmp_path):
    digest, body = await push_image(client, "m/img", "v1", [b"layer one", b"layer two"])
    accept = {"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"}
    resp = await client.get("/v2/m/img/manifests/v1", headers=accept)
    assert resp.status == 200 and await resp.read() == body
    assert resp.headers["Content-Type"] == DOCKER_MANIFEST
    assert resp.headers["Docker-Content-Digest"] == digest
    resp = await client.head(f"/v2/m/img/manifests/{digest}", headers=accept)
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(body))
    resp = await client.put(
        "/v2/m/img/manifests/v2", data=body, headers={"Content-Type": DOCKER_MANIFEST}
    )
    assert resp.status == 201
    resp = await client.get("/v2/m/img/tags/list")
    assert (await resp.json())["tags"] == ["v1", "v2"]
    # Deleting a tag keeps the manifest; deleting the digest removes every tag naming it.
    resp = await client.delete("/v2/m/img/manifests/v2")
    assert resp.status == 202
    resp = await client.get(f"/v2/m/img/manifests/{digest}", headers=accept)
    assert resp.status == 200
    resp = await client.delete(f"/v2/m/img/manifests/{digest}")
    assert resp.status == 202
    resp = await client.get("/v2/m/img/manifests/v1", headers=accept)
    assert resp.status == 404 and await error_code(resp) == "MANIFEST_UNKNOWN"
    resp = await client.get("/v2/m/img/tags/list")
    assert (await resp.json())["tags"] == []


@with_client()
async def test_manifest_by_digest_must_match(client, tmp_path):
    _, body = await push_image(client, "dm", "x", [b"l"])
    resp = await client.put(
        f"/v2/dm/manifests/{digest_of(b'other')}",
        data=body,
        headers={"Content-Type": DOCKER_MANIFEST},
    )
    assert resp.status == 400 and await error_code(resp) == "DIGEST_INVALID"


@with_client()
async def test_accept_negotiation(client, tmp_path):
    await push_image(client, "neg", "oci", [b"l"], media_type=OCI_MANIFEST)
    resp = await client.get("/v2/neg/manifests/oci", headers={"Accept": DOCKER_MANIFEST})
    assert resp.status == 404 and await error_code(resp) == "MANIFEST_UNKNOWN"
    resp = await client.get("/v2/neg/manifests/oci", headers={"Accept": OCI_MANIFEST})
    assert resp.status == 200 and resp.headers["Content-Type"] == OCI_MANIFEST
    # An index by tag to a client without index support: its linux/amd64 manifest.
    _, child = await push_image(client, "neg", "child", [b"l2"])
    index = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": digest_of(child),
                "size": len(child),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    resp = await client.put(
        "/v2/neg/manifests/multi", data=json.dumps(index), headers={"Content-Type": DOCKER_LIST}
    )
    assert resp.status == 201
    resp = await client.get("/v2/neg/manifests/multi", headers={"Accept": DOCKER_MANIFEST})
    assert resp.status == 200 and await resp.read() == child
    resp = await client.get("/v2/neg/manifests/multi", headers={"Accept": DOCKER_LIST})
    assert resp.headers["Content-Type"] == DOCKER_LIST


@with_client()
async def test_manifest_bad_inputs(client, tmp_path):
    headers = {"Content-Type": DOCKER_MANIFEST}
    resp = await client.put("/v2/bad/manifests/t", data=b"{not json", headers=headers)
    assert resp.status == 400 and await error_code(resp) == "MANIFEST_INVALID"
    _, body = await push_image(client, "bad", "ok", [b"x"])
    mismatch = json.loads(body)
    resp = await client.put(
        "/v2/bad/manifests/t", data=json.dumps(mismatch), headers={"Content-Type": OCI_MANIFEST}
    )
    assert resp.status == 400 and await error_code(resp) == "MANIFEST_INVALID"
    missing = json.loads(body)
    missing["layers"][0]["digest"] = digest_of(b"never pushed")
    resp = await client.put("/v2/bad/manifests/t", data=json.dumps(missing), headers=headers)
    assert resp.status == 400 and await error_code(resp) == "MANIFEST_BLOB_UNKNOWN"
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest_of(b"none"), "size": 4}],
    }
    resp = await client.put(
        "/v2/bad/manifests/i", data=json.dumps(index), headers={"Content-Type": OCI_INDEX}
    )
    assert resp.status == 400 and await error_code(resp) == "MANIFEST_BLOB_UNKNOWN"
    resp = await client.put("/v2/bad/manifests/-tag", data=body, headers=headers)
    assert resp.status == 400 and await error_code(resp) == "TAG_INVALID"
    resp = await client.put("/v2/bad/manifests/" + "t" * 129, data=body, headers=headers)
    assert resp.status == 400 and await error_code(resp) == "TAG_INVALID"


async def _raw_get(client, path: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    """GET ``path`` byte for byte (aiohttp's client would normalise dot segments)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@with_client()
async def test_invalid_names_and_paths(client, tmp_path):
    names = ["Upper", "a/../b", "..", "a//b", "-a", "a" * 256, "a%2Fb", "a%2F..%2F..", "_x"]
    names += ["../../etc", "a/./b", "%2e%2e/x"]
    for name in names:
        status, body = await _raw_get(client, f"/v2/{name}/tags/list")
        assert status == 400, name
        assert body["errors"][0]["code"] == "NAME_INVALID", name
    resp = await client.post("/v2/..%2F..%2Fetc/blobs/uploads/")
    assert resp.status == 400
    resp = await client.get("/v2/ok/blobs/sha256:..%2F..%2Fpasswd")
    assert resp.status == 400 and await error_code(resp) == "DIGEST_INVALID"
    resp = await client.get("/v2/ok/blobs/uploads/..%2F..%2Froot")
    assert resp.status == 404 and await error_code(resp) == "BLOB_UPLOAD_UNKNOWN"
    # Nothing was created outside (or inside) the root by any of these.
    assert _files(tmp_path / "root") == []
    assert sorted(os.listdir(tmp_path)) == ["root"]


@with_client()
async def test_unsupported_method(client, tmp_path):
    resp = await client.post("/v2/x/tags/list")
    assert resp.status == 405 and await error_code(resp) == "UNSUPPORTED"


@with_client(max_blob_size=1000, max_manifest_size=2000)
async def test_body_limits(client, tmp_path):
    resp = await client.post("/v2/lim/blobs/uploads/")
    location = resp.headers["Location"]
    resp = await client.patch(location, data=os.urandom(5000))
    assert resp.status == 413 and await error_code(resp) == "PAYLOAD_TOO_LARGE"
    resp = await client.get(location)
    assert int(resp.headers["Range"].split("-")[1]) < 1000
    big = json.dumps({"schemaVersion": 2, "pad": "x" * 3000})
    resp = await client.put(
        "/v2/lim/manifests/t", data=big, headers={"Content-Type": DOCKER_MANIFEST}
    )
    assert resp.status == 413


@with_client()
async def test_large_manifest_arrives_whole(client, tmp_path):
    """A 2 MB manifest (20,000 layers) comes in many reads; it must be stored whole."""
    layer = await push_blob(client, "large", b"one layer")
    config = await push_blob(client, "large", b"{}")
    desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 9}
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/x", "digest": config, "size": 2},
            "layers": [desc] * 20000,
        }
    ).encode()
    assert len(body) > 2_000_000

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]
            await asyncio.sleep(0)

    resp = await client.put(
        "/v2/large/manifests/big", data=chunks(), headers={"Content-Type": OCI_MANIFEST}
    )
    assert resp.status == 201 and resp.headers["Docker-Content-Digest"] == digest_of(body)
    resp = await client.get("/v2/large/manifests/big", headers={"Accept": OCI_MANIFEST})
    assert await resp.read() == body


@with_client(max_blob_size=1000)
async def test_declared_size_over_the_limit_is_refused_unread(client, tmp_path):
    resp = await client.post("/v2/lim/blobs/uploads/")
    location = resp.headers["Location"]
    resp = await client.put(
        f"{location}?digest={digest_of(b'x' * 5000)}",
        data=b"x" * 5000,
    )
    assert resp.status == 413 and await error_code(resp) == "PAYLOAD_TOO_LARGE"
    resp = await client.get(location)
    assert resp.headers["Range"] == "0-0"


@with_client()
async def test_idle_upload_expires(client, tmp_path):
    resp = await client.post("/v2/exp/blobs/uploads/")
    location = resp.headers["Location"]
    await client.patch(location, data=b"half a layer")
    storage = FilesystemStorage(str(tmp_path / "root"))
    assert storage.expire_uploads(3600) == 0
    assert storage.expire_uploads(-1) == 1
    resp = await client.get(location)
    assert resp.status == 404
    assert os.listdir(tmp_path / "root" / "uploads") == []


@with_client()
async def test_tags_and_catalog_pagination(client, tmp_path):
    for tag in ["c", "a", "b", "d"]:
        await push_image(client, "pag/img", tag, [b"same"])
    await push_image(client, "pag/other", "x", [b"same"])
    await push_image(client, "aaa", "x", [b"same"])
    resp = await client.get("/v2/pag/img/tags/list?n=2")
    assert (await resp.json())["tags"] == ["a", "b"]
    assert resp.headers["Link"] == '</v2/pag/img/tags/list?last=b&n=2>; rel="next"'
    resp = await client.get("/v2/pag/img/tags/list?n=2&last=b")
    assert (await resp.json())["tags"] == ["c", "d"]
    resp = await client.get("/v2/pag/img/tags/list?n=-1")
    assert resp.status == 400
    resp = await client.get("/v2/_catalog?n=1")
    assert (await resp.json())["repositories"] == ["aaa"]
    assert "last=aaa" in resp.headers["Link"]
    resp = await client.get("/v2/_catalog?last=aaa")
    assert (await resp.json())["repositories"] == ["pag/img", "pag/other"]
    assert "Link" not in resp.headers
    resp = await client.get("/v2/nothere/tags/list")
    assert resp.status == 404 and await error_code(resp) == "NAME_UNKNOWN"


@with_client()
async def test_referrers(client, tmp_path):
    subject, body = await push_image(client, "ref", "app", [b"app"], media_type=OCI_MANIFEST)
    subject_desc = {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)}
    sig, _ = await push_image(
        client,
        "ref",
        "sig-1",
        [b"signature"],
        media_type=OCI_MANIFEST,
        extra={"subject": subject_desc, "artifactType": "application/vnd.example.sig"},
    )
    sbom, _ = await push_image(
        client,
        "ref",
        "sbom-1",
        [b"sbom"],
        media_type=OCI_MANIFEST,
        extra={
            "subject": subject_desc,
            "artifactType": "application/spdx+json",
            "annotations": {"k": "v"},
        },
    )
    resp = await client.get(f"/v2/ref/referrers/{subject}")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith(OCI_INDEX)
    found = (await resp.json())["manifests"]
    assert sorted(d["digest"] for d in found) == sorted([sig, sbom])
    assert {d["artifactType"] for d in found} == {
        "application/vnd.example.sig",
        "application/spdx+json",
    }
    resp = await client.get(f"/v2/ref/referrers/{subject}?artifactType=application/spdx%2Bjson")
    assert resp.headers["OCI-Filters-Applied"] == "artifactType"
    found = (await resp.json())["manifests"]
    assert [d["digest"] for d in found] == [sbom] and found[0]["annotations"] == {"k": "v"}
    # The subject header on push, and an empty index for a digest with no referrers.
    resp = await client.get(f"/v2/ref/referrers/{digest_of(b'none')}")
    assert (await resp.json())["manifests"] == []
    resp = await client.delete(f"/v2/ref/manifests/{sig}")
    resp = await client.get(f"/v2/ref/referrers/{subject}")
    assert [d["digest"] for d in (await resp.json())["manifests"]] == [sbom]


@with_client()
async def test_subject_header_on_push(client, tmp_path):
    config = await push_blob(client, "s", b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/x",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest_of(b"absent"), "size": 6},
    }
    resp = await client.put(
        f"/v2/s/manifests/{digest_of(json.dumps(manifest).encode())}",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert resp.status == 201 and resp.headers["OCI-Subject"] == digest_of(b"absent")


@with_client()
async def test_search(client, tmp_path):
    await push_image(client, "lib/busybox", "1", [b"x"])
    await push_image(client, "lib/alpine", "1", [b"y"])
    resp = await client.get("/v1/search?q=busy&n=10")
    body = await resp.json()
    assert body["num_results"] == 1 and body["results"][0]["name"] == "lib/busybox"


@with_client()
async def test_metrics(client, tmp_path):
    await client.get("/v2/")
    await client.get("/v2/x/manifests/nope")
    text = await (await client.get("/metrics")).text()
    assert 'registry_http_requests_total{method="GET",route="base",code="200"' in text
    assert 'route="manifest",code="404"' in text
