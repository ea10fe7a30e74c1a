"""Push: layers (checked, mounted or uploaded), config, manifest (asyncio world).

moby distribution/push_v2.go, step by step, so the stream reads the same: "The push refers
to repository [...]", one "Preparing" per layer (top layer first), "Waiting" beyond
``max-concurrent-uploads``, then per layer one of "Layer already exists" (a HEAD found a
digest this layer was pulled or pushed as), "Mounted from <repo>" (a cross-repository mount
on the same registry) or "Pushing" progress and "Pushed"; last "<tag>: digest: ... size: N"
and an ``aux`` record.

A layer is gzip-compressed (``isal``, deterministic: no name, mtime 0) while it uploads, in
one streamed PATCH; its compressed digest is remembered per diff id (``store``), so the next
push to that registry checks it with HEAD.  A push elsewhere compresses again and sends the
same digests because the output is deterministic (pinned by a unit test on a known layer).
An interrupted push leaves only an unfinished upload on the registry, which it expires;
pushing again starts over and succeeds.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

from dockyard.distribution import manifests
from dockyard.distribution.auth import AuthConfig
from dockyard.distribution.config import RegistryConfig
from dockyard.distribution.progress import Message, Throttle
from dockyard.distribution.store import BlobSource, Store
from dockyard.distribution.transport import RegistryError, Repository, Transport
from dockyard.errors import DockyardError, Internal, NotFound
from dockyard.images.chain import chain_ids
from dockyard.images.reference import Reference
from dockyard.images.service import ImageService

__all__ = ["Pusher"]

Emit = Callable[[Message], None]
_CHUNK = 1 << 20
_LEVEL = 1  # isal levels 0-3; 1 is close to Go's default ratio, far faster


class _Compressor:
    """Reads the stored tar, yields gzip chunks, and learns digest and size (a thread)."""

    def __init__(self, open_tar: Callable[[], BinaryIO], loop: asyncio.AbstractEventLoop) -> None:
        self.open_tar = open_tar  # the layer's diff tar (rebuilt by tar-split, or stored)
        self.loop = loop
        self.queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=8)
        self.hash = hashlib.sha256()
        self.size = 0
        self.read = 0
        self.stop = threading.Event()

    def run(self) -> None:
        from isal import isal_zlib

        try:
            c = isal_zlib.compressobj(_LEVEL, isal_zlib.DEFLATED, 31)
            with self.open_tar() as f:
                while not self.stop.is_set():
                    data = f.read(_CHUNK)
                    if not data:
                        break
                    self.read += len(data)
                    self._put(c.compress(data))
            self._put(c.flush())
            self._send(None)
        except BaseException as exc:  # handed to the uploader, which raises it
            self._send(exc)

    def _put(self, data: bytes) -> None:
        if data:
            self.hash.update(data)
            self.size += len(data)
            self._send(data)

    def _send(self, item: bytes | BaseException | None) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        while not self.stop.is_set():
            try:
                fut.result(timeout=0.5)
                return
            except TimeoutError:
                continue
        fut.cancel()

    async def chunks(self, progress: Callable[[int], None]) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            progress(self.read)
            yield item


class Pusher:
    def __init__(
        self, transport: Transport, config: RegistryConfig, images: ImageService, sources: Store
    ) -> None:
        self.transport = transport
        self.config = config
        self.images = images
        self.sources = sources
        self.slots = asyncio.Semaphore(config.max_uploads)

    async def push(
        self,
        ref: Reference,
        tags: list[str],
        auth: AuthConfig,
        emit: Emit,
        known: bool = True,
        missing: str | None = None,
    ) -> None:
        """Push ``tags`` of the repository ``ref``.  ``known``: the repository has any local
        reference; ``missing``: the one tag asked for, absent.  The errors come where moby's
        Push and pushV2Repository raise them: an unknown repository before the registry is
        contacted, a missing tag or no tags at all after it answered."""
        emit(Message.text(f"The push refers to repository [{ref.name}]"))
        if not known:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        endpoints = await asyncio.to_thread(self.config.endpoints, ref.domain)
        endpoints = [e for e in endpoints if not e.mirror]  # never push to a mirror
        repo = await self.transport.open(endpoints, ref.path, auth, ["pull", "push"])
        if missing is not None:
            tagged = Reference(ref.domain, ref.path, missing)
            raise NotFound(f"tag does not exist: {tagged.familiar()}")
        if not tags:
            raise NotFound(f"no tags to push for {ref.familiar_name}")
        for tag in tags:
            await self._push_tag(repo, Reference(ref.domain, ref.path, tag), emit)

    async def _push_tag(self, repo: Repository, ref: Reference, emit: Emit) -> None:
        image_id = self.images.resolve(str(ref))
        config = self.images.config(image_id)
        diff_ids: list[str] = list(config.get("rootfs", {}).get("diff_ids", []))
        # An rmi meanwhile must not delete the layers and blobs this reads (the image may
        # go): what it frees is collected once the push is done.
        try:
            with self.images.leased.hold([image_id, *chain_ids(diff_ids), *diff_ids]):
                await self._push_image(repo, ref, emit, image_id, diff_ids)
        finally:
            self.images.collect_after_lease([image_id])

    async def _push_image(
        self, repo: Repository, ref: Reference, emit: Emit, image_id: str, diff_ids: list[str]
    ) -> None:
        with self.images.content.open(image_id) as f:
            raw_config = f.read()
        shorts = [d.split(":", 1)[1][:12] for d in diff_ids]
        order = list(range(len(diff_ids)))[::-1]  # moby lists the top layer first
        for i in order:
            emit(Message.layer(shorts[i], "Preparing"))
        results: dict[int, manifests.Descriptor] = {}

        async def one(i: int) -> None:
            results[i] = await self._push_layer(repo, diff_ids[i], shorts[i], emit)

        tasks = [asyncio.create_task(one(i)) for i in order]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        config_desc = manifests.Descriptor(
            manifests.DOCKER_CONFIG,
            "sha256:" + hashlib.sha256(raw_config).hexdigest(),
            len(raw_config),
        )
        if not await self._exists(repo, config_desc.digest):
            await self._upload_bytes(repo, raw_config, config_desc.digest)
        body = _manifest(config_desc, [results[i] for i in range(len(diff_ids))])
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        headers = {"Content-Type": manifests.DOCKER_MANIFEST}
        url = repo.url(f"manifests/{ref.tag}")
        try:
            async with repo.request("PUT", url, headers=headers, data=body, ok=(201, 200)):
                pass
        except RegistryError as exc:
            raise Internal(exc.message) from exc
        await self._record_digest(ref, digest, image_id)
        emit(Message.text(f"{ref.tag}: digest: {digest} size: {len(body)}"))
        emit(
            Message(
                progressDetail=Message.layer("", "").progressDetail,
                aux={"Tag": ref.tag, "Digest": digest, "Size": len(body)},
            )
        )

    async def _record_digest(self, ref: Reference, digest: str, image_id: str) -> None:
        """The pushed manifest becomes one of the image's RepoDigests, as moby records it."""
        from dockyard.images.service import now_rfc3339

        name = str(Reference(ref.domain, ref.path, None, digest))
        # Check and write with no await between: nothing can remove the image meanwhile.
        if self.images.store.image(image_id) is not None:
            self.images.store.set_ref(name, image_id, now_rfc3339())

    async def _push_layer(
        self, repo: Repository, diff_id: str, short: str, emit: Emit
    ) -> manifests.Descriptor:
        if self.slots.locked():
            emit(Message.layer(short, "Waiting"))
        async with self.slots:
            here = f"{repo.endpoint.host}/{repo.path}"
            known = [
                s
                for s in self.sources.by_diff_id(diff_id)
                if s.repository.split("/", 1)[0] == repo.endpoint.host
                and s.media_type in (manifests.DOCKER_LAYER, manifests.OCI_LAYER_GZIP)
            ]
            # 1. A digest this layer has on this registry: is it in this repository?
            for source in sorted(known, key=lambda s: s.repository != here):
                if await self._exists(repo, source.digest):
                    emit(Message.layer(short, "Layer already exists"))
                    self._remember(diff_id, source, here)
                    return _layer_desc(source)
            # 2. In another repository of the same registry: mount it.
            for source in known:
                if source.repository == here:
                    continue
                from_repo = source.repository.split("/", 1)[1]
                if await self._mount(repo, source.digest, from_repo):
                    emit(Message.layer(short, f"Mounted from {from_repo}"))
                    self._remember(diff_id, source, here)
                    return _layer_desc(source)
            # 3. Compress and upload.
            desc = await self._upload_layer(repo, diff_id, short, emit)
            emit(Message.layer(short, "Pushed"))
            self._remember(
                diff_id, BlobSource(diff_id, desc.digest, desc.media_type, desc.size, here), here
            )
            return desc

    def _remember(self, diff_id: str, source: BlobSource, repository: str) -> None:
        self.sources.add(
            BlobSource(diff_id, source.digest, source.media_type, source.size, repository)
        )

    async def _exists(self, repo: Repository, digest: str) -> bool:
        try:
            async with repo.request("HEAD", repo.url(f"blobs/{digest}"), ok=(200, 307)):
                return True
        except RegistryError as exc:
            if exc.status == 404:
                return False
            raise Internal(f"checking blob {digest}: {exc.message}") from exc

    async def _mount(self, repo: Repository, digest: str, from_repo: str) -> bool:
        repo.add_scope(f"repository:{from_repo}:pull")
        url = repo.url(f"blobs/uploads/?mount={digest}&from={from_repo}")
        try:
            async with repo.request("POST", url, ok=(201, 202)) as resp:
                if resp.status == 201:
                    return True
                location = resp.headers.get("Location", "")
        except RegistryError:
            return False
        if location:  # the registry started a plain upload instead: cancel it
            try:
                async with repo.request("DELETE", _absolute(repo, location), ok=(204, 200, 404)):
                    pass
            except DockyardError:
                pass
        return False

    async def _start_upload(self, repo: Repository) -> str:
        try:
            async with repo.request("POST", repo.url("blobs/uploads/"), ok=(202,)) as resp:
                location = resp.headers.get("Location", "")
        except RegistryError as exc:
            raise Internal(f"starting an upload: {exc.message}") from exc
        if not location:
            raise Internal("the registry started an upload without a Location")
        return _absolute(repo, location)

    async def _upload_bytes(self, repo: Repository, data: bytes, digest: str) -> None:
        location = await self._start_upload(repo)
        url = _with_query(location, f"digest={digest}")
        headers = {"Content-Type": "application/octet-stream"}
        try:
            async with repo.request("PUT", url, headers=headers, data=data, ok=(201, 204)):
                pass
        except RegistryError as exc:
            raise Internal(f"uploading {digest}: {exc.message}") from exc

    async def _upload_layer(
        self, repo: Repository, diff_id: str, short: str, emit: Emit
    ) -> manifests.Descriptor:
        tars = self.images.tars
        total = await asyncio.to_thread(tars.size, diff_id)
        throttle = Throttle(lambda n: emit(Message.moving(short, "Pushing", n, total)))
        location = await self._start_upload(repo)
        compressor = _Compressor(functools.partial(tars.open, diff_id), asyncio.get_running_loop())
        worker = asyncio.create_task(asyncio.to_thread(compressor.run))
        try:
            headers = {"Content-Type": "application/octet-stream"}
            async with repo.request(
                "PATCH",
                location,
                headers=headers,
                data=compressor.chunks(throttle.update),
                ok=(202, 204),
            ) as resp:
                location = _absolute(repo, resp.headers.get("Location", location))
            await worker
            throttle.update(compressor.read, final=True)
            digest = "sha256:" + compressor.hash.hexdigest()
            async with repo.request(
                "PUT", _with_query(location, f"digest={digest}"), ok=(201, 204)
            ):
                pass
        except RegistryError as exc:
            raise Internal(f"uploading layer {short}: {exc.message}") from exc
        finally:
            compressor.stop.set()
            if not worker.done():
                worker.cancel()
        return manifests.Descriptor(manifests.DOCKER_LAYER, digest, compressor.size)


def _layer_desc(source: BlobSource) -> manifests.Descriptor:
    return manifests.Descriptor(source.media_type, source.digest, source.size)


def _absolute(repo: Repository, location: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    return repo.endpoint.url + (location if location.startswith("/") else "/" + location)


def _with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


def _manifest(config: manifests.Descriptor, layers: list[manifests.Descriptor]) -> bytes:
    """Docker schema 2, indented with three spaces as docker/distribution marshals it."""
    doc = {
        "schemaVersion": 2,
        "mediaType": manifests.DOCKER_MANIFEST,
        "config": {"mediaType": config.media_type, "size": config.size, "digest": config.digest},
        "layers": [{"mediaType": d.media_type, "size": d.size, "digest": d.digest} for d in layers],
    }
    return json.dumps(doc, indent=3).encode()
