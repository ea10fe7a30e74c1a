"""An in-process registry (the real aiohttp app on a real filesystem root) for the API tests,
and a few helpers to push blobs and manifests through it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient, TestServer

from dockyard.distribution.registry.app import make_app
from dockyard.distribution.registry.config import Config

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def with_client(**config: object) -> Callable:
    """Run an async test with a ``TestClient`` on a fresh registry under ``tmp_path``."""

    def wrap(fn: Callable[..., Awaitable[None]]) -> Callable:
        def run(tmp_path, *args, **kwargs):  # type: ignore[no-untyped-def]
            async def main() -> None:
                app = make_app(Config(root=str(tmp_path / "root"), **config))  # type: ignore[arg-type]
                client = TestClient(TestServer(app))
                await client.start_server()
                try:
                    await fn(client, tmp_path, *args, **kwargs)
                finally:
                    await client.close()

            asyncio.run(main())

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return run

    return wrap


async def error_code(resp) -> str:  # type: ignore[no-untyped-def]
    body = await resp.json()
    return body["errors"][0]["code"]


async def push_blob(client: TestClient, name: str, data: bytes) -> str:
    digest = digest_of(data)
    resp = await client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
    assert resp.status == 201, await resp.text()
    return digest


async def push_image(
    client: TestClient,
    name: str,
    tag: str,
    layers: list[bytes],
    media_type: str = DOCKER_MANIFEST,
    extra: dict | None = None,
) -> tuple[str, bytes]:
    """Push a config, ``layers`` and a manifest; returns (digest, manifest bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": len(layers)}).encode()
    config_digest = await push_blob(client, name, config)
    descs = []
    for layer in layers:
        descs.append(
            {"mediaType": LAYER, "digest": await push_blob(client, name, layer), "size": len(layer)}
        )
    config_type = (
        "application/vnd.docker.container.image.v1+json"
        if media_type == DOCKER_MANIFEST
        else "application/vnd.oci.image.config.v1+json"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
        "layers": descs,
        **(extra or {}),
    }
    body = json.dumps(manifest).encode()
    resp = await client.put(
        f"/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": media_type}
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Docker-Content-Digest"] == digest_of(body)
    return digest_of(body), body
