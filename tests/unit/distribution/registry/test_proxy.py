"""The pull-through cache in front of a real (in-process) upstream registry."""

from __future__ import annotations

import asyncio
import os

from aiohttp.test_utils import TestClient, TestServer

from dockyard.distribution.registry.app import METRICS, make_app
from dockyard.distribution.registry.config import Config
from dockyard.distribution.registry.upstream import UpstreamConfig

from .regclient import DOCKER_MANIFEST, digest_of, error_code, push_image

ACCEPT = {"Accept": DOCKER_MANIFEST}


def _blob_gets(app) -> int:  # type: ignore[no-untyped-def]
    return app[METRICS]._count.get(("GET", "blob", 200), 0)


def test_pull_through_cache(tmp_path):
    async def main() -> None:
        upstream_app = make_app(Config(root=str(tmp_path / "upstream")))
        upstream = TestClient(TestServer(upstream_app))
        await upstream.start_server()
        big = os.urandom(3 << 20)
        digest, body = await push_image(upstream, "lib/app", "v1", [big, b"small"])
        url = f"http://{upstream.host}:{upstream.port}"
        cache = TestClient(
            TestServer(
                make_app(
                    Config(
                        root=str(tmp_path / "cache"),
                        proxy=(UpstreamConfig(prefix="up", url=url, ttl=3600),),
                    )
                )
            )
        )
        await cache.start_server()
        try:
            resp = await cache.get("/v2/up/lib/app/manifests/v1", headers=ACCEPT)
            assert resp.status == 200 and await resp.read() == body
            assert resp.headers["Docker-Content-Digest"] == digest
            layer = f"/v2/up/lib/app/blobs/{digest_of(big)}"
            resp = await cache.head(layer)
            assert resp.status == 200 and resp.headers["Content-Length"] == str(len(big))
            # Four clients at once: one upstream fetch, every one gets the whole blob.
            before = _blob_gets(upstream_app)
            responses = await asyncio.gather(*(cache.get(layer) for _ in range(4)))
            bodies = await asyncio.gather(*(r.read() for r in responses))
            assert all(b == big for b in bodies)
            assert _blob_gets(upstream_app) - before == 1
            resp = await cache.get(layer, headers={"Range": "bytes=0-9"})
            assert resp.status == 206 and await resp.read() == big[:10]  # from the cache now
            # Writes under the cached prefix belong upstream.
            resp = await cache.post("/v2/up/lib/app/blobs/uploads/")
            assert resp.status == 405 and await error_code(resp) == "UNSUPPORTED"
            resp = await cache.get("/v2/up/lib/app/manifests/nope", headers=ACCEPT)
            assert resp.status == 404 and await error_code(resp) == "MANIFEST_UNKNOWN"
        finally:
            await upstream.close()
        try:
            # The upstream is gone: the cache still serves what it has.
            resp = await cache.get("/v2/up/lib/app/manifests/v1", headers=ACCEPT)
            assert resp.status == 200 and await resp.read() == body
            resp = await cache.get(f"/v2/up/lib/app/blobs/{digest_of(b'small')}")
            assert resp.status == 503  # never fetched, upstream down
            resp = await cache.get(layer)
            assert resp.status == 200 and await resp.read() == big
        finally:
            await cache.close()

    asyncio.run(main())


def test_tag_revalidation_after_ttl(tmp_path):
    async def main() -> None:
        upstream = TestClient(TestServer(make_app(Config(root=str(tmp_path / "up")))))
        await upstream.start_server()
        url = f"http://{upstream.host}:{upstream.port}"
        cache = TestClient(
            TestServer(
                make_app(
                    Config(
                        root=str(tmp_path / "cache"),
                        proxy=(UpstreamConfig(prefix="", url=url, ttl=0),),
                    )
                )
            )
        )
        await cache.start_server()
        try:
            first, _ = await push_image(upstream, "lib/x", "latest", [b"one"])
            resp = await cache.get("/v2/lib/x/manifests/latest", headers=ACCEPT)
            assert resp.headers["Docker-Content-Digest"] == first
            second, _ = await push_image(upstream, "lib/x", "latest", [b"two"])
            resp = await cache.get("/v2/lib/x/manifests/latest", headers=ACCEPT)
            assert resp.headers["Docker-Content-Digest"] == second
            await upstream.close()
            resp = await cache.get("/v2/lib/x/manifests/latest", headers=ACCEPT)
            assert resp.status == 200 and resp.headers["Docker-Content-Digest"] == second
        finally:
            await upstream.close()
            await cache.close()

    asyncio.run(main())
