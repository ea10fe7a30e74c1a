"""The pull-through cache in front of a real (in-process) upstream registry."""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
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


def test_upstream_with_token_auth_and_credentials(tmp_path):
    """The cache logs in to an upstream that wants Docker token auth, with its own
    credentials for that upstream; without them it cannot pull."""
    import bcrypt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from dockyard.distribution.registry.config import Rule, TokenConfig

    key = tmp_path / "key.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"puller:{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}\n")

    async def main() -> None:
        # The realm needs the upstream's port: serve first, then point the token at it.
        server = TestServer(make_app(Config(root=str(tmp_path / "tmp"))))
        await server.start_server()
        port = server.port
        await server.close()
        token = TokenConfig(
            realm=f"http://127.0.0.1:{port}/token",
            service="up",
            issuer="up",
            signing_key=str(key),
            rules=(Rule("puller", "*", ("pull", "push")),),
        )
        app = make_app(Config(root=str(tmp_path / "up"), htpasswd=str(htpasswd), token=token))
        upstream = TestClient(TestServer(app, port=port))
        await upstream.start_server()
        url = f"http://127.0.0.1:{port}"
        caches = [
            TestClient(
                TestServer(
                    make_app(
                        Config(
                            root=str(tmp_path / f"cache{i}"),
                            proxy=(UpstreamConfig(prefix="", url=url, **creds),),
                        )
                    )
                )
            )
            for i, creds in enumerate([{"username": "puller", "password": "pw"}, {}])
        ]
        for cache in caches:
            await cache.start_server()
        try:
            resp = await upstream.get(
                "/token",
                params={"scope": "repository:lib/x:pull,push", "service": "up"},
                headers={"Authorization": aiohttp.encode_basic_auth("puller", "pw")},
            )
            bearer = {"Authorization": f"Bearer {(await resp.json())['token']}"}
            config = b'{"os": "linux"}'
            for data in (config, b"layer"):
                resp = await upstream.post(
                    f"/v2/lib/x/blobs/uploads/?digest={digest_of(data)}",
                    data=data,
                    headers=bearer,
                )
                assert resp.status == 201
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": "a/b", "digest": digest_of(config), "size": 15},
                    "layers": [{"mediaType": "a/c", "digest": digest_of(b"layer"), "size": 5}],
                }
            ).encode()
            resp = await upstream.put(
                "/v2/lib/x/manifests/1",
                data=manifest,
                headers={**bearer, "Content-Type": DOCKER_MANIFEST},
            )
            assert resp.status == 201
            good, anonymous = caches
            resp = await good.get("/v2/lib/x/manifests/1", headers=ACCEPT)
            assert resp.status == 200 and await resp.read() == manifest
            resp = await good.get(f"/v2/lib/x/blobs/{digest_of(b'layer')}")
            assert resp.status == 200 and await resp.read() == b"layer"
            resp = await anonymous.get("/v2/lib/x/manifests/1", headers=ACCEPT)
            assert resp.status >= 400
        finally:
            await upstream.close()
            for cache in caches:
                await cache.close()

    asyncio.run(main())


def test_single_flight_across_workers(tmp_path):
    """Two worker processes' apps (two caches on one root, as --workers runs them): clients
    of both asking for one blob at once cause one upstream fetch, and all get it whole."""

    async def main() -> None:
        upstream_app = make_app(Config(root=str(tmp_path / "upstream")))
        upstream = TestClient(TestServer(upstream_app))
        await upstream.start_server()
        big = os.urandom(8 << 20)
        await push_image(upstream, "lib/app", "v1", [big])
        url = f"http://{upstream.host}:{upstream.port}"
        config = Config(root=str(tmp_path / "cache"), proxy=(UpstreamConfig(prefix="", url=url),))
        workers = [TestClient(TestServer(make_app(config))) for _ in range(2)]
        for worker in workers:
            await worker.start_server()
        try:
            layer = f"/v2/lib/app/blobs/{digest_of(big)}"
            responses = await asyncio.gather(*(w.get(layer) for w in workers * 3))
            bodies = await asyncio.gather(*(r.read() for r in responses))
            assert [r.status for r in responses] == [200] * 6
            assert all(b == big for b in bodies)
            assert _blob_gets(upstream_app) == 1
            uploads = os.listdir(tmp_path / "cache" / "uploads")
            assert [n for n in uploads if not n.endswith(".lock")] == []
        finally:
            await upstream.close()
            for worker in workers:
                await worker.close()

    asyncio.run(main())


def test_routes_by_prefix_longest_first_and_hub_official_images(tmp_path):
    """Several upstreams at once, each under its own prefix (the upstream's host is the
    natural one); Docker Hub's official images are asked for under ``library/``."""
    from dockyard.distribution.registry.filesystem import FilesystemStorage
    from dockyard.distribution.registry.proxy import Proxy

    proxy = Proxy(
        FilesystemStorage(str(tmp_path)),
        (
            UpstreamConfig(prefix="docker.io", url="https://registry-1.docker.io"),
            UpstreamConfig(prefix="ghcr.io", url="https://ghcr.io"),
            UpstreamConfig(prefix="ghcr.io/team", url="http://127.0.0.1:5999"),
        ),
    )

    def where(name: str) -> tuple[str, str] | None:
        found = proxy.route(name)
        return None if found is None else (found[0].config.url, found[1])

    assert where("docker.io/busybox") == ("https://registry-1.docker.io", "library/busybox")
    assert where("docker.io/bitnami/redis") == ("https://registry-1.docker.io", "bitnami/redis")
    assert where("ghcr.io/org/app") == ("https://ghcr.io", "org/app")
    assert where("ghcr.io/team/app") == ("http://127.0.0.1:5999", "app")  # longest prefix
    assert where("ghcr.io/app") == ("https://ghcr.io", "app")  # not Hub: no library/
    assert where("local/app") is None  # not cached: an ordinary repository
    asyncio.run(proxy.close())
