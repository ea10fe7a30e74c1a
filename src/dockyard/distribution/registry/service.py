"""The registry service (asyncio world): the distribution API's operations over a storage.

Handlers in ``routes`` decode a request, call one method here and encode the answer; this
module holds the rules that are not storage: ``Accept`` negotiation, pagination, the
manifest size limit, streaming an upload body into a session without blocking the loop.
Storage calls are blocking (fsync, rename, hashing) and run in threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dockyard.distribution.registry import manifest as manifests
from dockyard.distribution.registry.base import Revision, Storage, UploadWriter
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.names import check_digest, check_name, is_digest
from dockyard.distribution.registry.proxy import BlobStream, Proxy

__all__ = ["BlobFile", "BlobStream", "Page", "Registry", "UploadState"]

_BATCH = 4 << 20  # bytes handed to a writer thread at once
_TOUCH_AFTER = 60.0  # a HEAD refreshes a blob's last use at most this often


@dataclass(frozen=True, slots=True)
class BlobFile:
    """A blob to serve with sendfile."""

    digest: str
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class UploadState:
    """Where an upload session stands."""

    name: str
    upload_id: str
    size: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_last`` is set when more entries follow."""

    items: list[str]
    next_last: str | None


def _page(items: list[str], n: int | None, last: str | None) -> Page:
    if last:
        items = [i for i in items if i > last]
    if n is None or n >= len(items):
        return Page(items, None)
    chosen = items[:n]
    return Page(chosen, chosen[-1] if chosen else None)


def _write(writer: UploadWriter, chunks: list[bytes]) -> None:
    """Write a batch as it arrived: joining it first would copy every byte once more."""
    for chunk in chunks:
        writer.write(chunk)


def _accepts(accept: list[str], media_type: str) -> bool:
    return not accept or media_type in accept or "*/*" in accept


class Registry:
    """The distribution API over a ``Storage``."""

    def __init__(
        self,
        storage: Storage,
        max_manifest_size: int = 4 << 20,
        proxy: Proxy | None = None,
    ) -> None:
        self.storage = storage
        self.max_manifest_size = max_manifest_size
        self.proxy = proxy

    def _cached(self, name: str) -> bool:
        check_name(name)
        return self.proxy is not None and self.proxy.route(name) is not None

    def _writable(self, name: str) -> None:
        """Refuse writes under a pull-through cache's prefix: the upstream owns them."""
        if self._cached(name):
            raise RegistryError(
                "UNSUPPORTED", f"{name} is a pull-through cache of an upstream: push there"
            )

    # ---- blobs ----

    async def blob(self, name: str, digest: str, head: bool = False) -> BlobFile | BlobStream:
        """A blob linked to ``name``; a HEAD also records a use (push checks existence
        with HEAD and then skips the upload: GC must spare the blob until the manifest).
        Under a cached prefix, a blob not yet here streams from its upstream."""
        check_digest(digest)
        if self.proxy is not None and self._cached(name):
            try:
                path, size = await asyncio.to_thread(self.storage.blob_path, name, digest)
            except RegistryError:
                return await self.proxy.blob(name, digest, head)
            return BlobFile(digest, path, size)
        if head:
            await asyncio.to_thread(self.storage.touch_blob, name, digest, _TOUCH_AFTER)
        path, size = await asyncio.to_thread(self.storage.blob_path, name, digest)
        return BlobFile(digest, path, size)

    async def delete_blob(self, name: str, digest: str) -> None:
        """Unlink the blob from ``name``; GC frees its bytes once nothing uses it."""
        check_digest(digest)
        self._writable(name)
        await asyncio.to_thread(self.storage.unlink_blob, name, digest)

    async def mount(self, name: str, digest: str, source: str) -> bool:
        """Link ``source``'s blob into ``name``; False when ``source`` does not hold it."""
        check_name(name)
        check_digest(digest)
        try:
            check_name(source)
        except RegistryError:
            return False
        if not await asyncio.to_thread(self.storage.has_link, source, digest):
            return False
        return await asyncio.to_thread(self.storage.link_blob, name, digest)

    # ---- uploads ----

    async def start_upload(self, name: str) -> UploadState:
        self._writable(name)
        upload_id = await asyncio.to_thread(self.storage.start_upload, name)
        return UploadState(name, upload_id, 0)

    async def upload_status(self, name: str, upload_id: str) -> UploadState:
        size = await asyncio.to_thread(self.storage.upload_size, name, upload_id)
        return UploadState(name, upload_id, size)

    async def append(
        self,
        name: str,
        upload_id: str,
        body: AsyncIterator[bytes],
        offset: int | None = None,
        length: int | None = None,
    ) -> UploadState:
        """Stream ``body`` onto the session; with ``offset`` (Content-Range), refuse a chunk
        that does not start where the data ends (416).  ``length`` is the declared size;
        fewer bytes received is a ``SIZE_INVALID`` (the data so far is kept)."""
        writer = await asyncio.to_thread(self.storage.append, name, upload_id, offset)
        start = writer.size
        limit = self.storage.max_blob_size
        if limit and length is not None and start + length > limit:
            writer.close()  # refused before a byte of it is read
            raise RegistryError(
                "PAYLOAD_TOO_LARGE", f"a blob may hold at most {limit} bytes on this registry"
            )
        pending: list[bytes] = []
        pending_size = 0
        try:
            async for chunk in body:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= _BATCH:
                    chunks, pending, pending_size = pending, [], 0
                    await asyncio.to_thread(_write, writer, chunks)
        except ConnectionResetError as exc:
            # The client went away: keep what arrived, so that it can resume from the
            # range a status GET reports (the session expires if it never comes back).
            if pending:
                await asyncio.to_thread(_write, writer, pending)
            writer.close()
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", f"the client went away after {writer.size} bytes"
            ) from exc
        except BaseException:
            writer.close()
            raise
        try:
            if pending:
                await asyncio.to_thread(_write, writer, pending)
        finally:
            writer.close()
        if length is not None and writer.size - start != length:
            raise RegistryError(
                "SIZE_INVALID",
                f"Content-Length was {length} but {writer.size - start} bytes arrived",
            )
        return UploadState(name, upload_id, writer.size)

    async def commit(self, name: str, upload_id: str, digest: str) -> int:
        """Verify the session as ``digest`` and publish it in ``name``."""
        return await asyncio.to_thread(self.storage.commit_upload, name, upload_id, digest)

    async def cancel(self, name: str, upload_id: str) -> None:
        await asyncio.to_thread(self.storage.cancel_upload, name, upload_id)

    async def expire_uploads(self, idle_seconds: float) -> int:
        return await asyncio.to_thread(self.storage.expire_uploads, idle_seconds)

    # ---- manifests ----

    async def put_manifest(
        self, name: str, reference: str, data: bytes, content_type: str
    ) -> tuple[str, manifests.Manifest]:
        """Validate and store; returns the digest and what the manifest names."""
        self._writable(name)
        if len(data) > self.max_manifest_size:
            raise RegistryError(
                "PAYLOAD_TOO_LARGE",
                f"a manifest may hold at most {self.max_manifest_size} bytes",
            )
        parsed = manifests.parse(data, content_type)
        tag = None
        if is_digest(reference):
            actual = "sha256:" + hashlib.sha256(data).hexdigest()
            if check_digest(reference) != actual:
                raise RegistryError(
                    "DIGEST_INVALID", f"the manifest's digest is {actual}, not {reference}"
                )
        else:
            tag = reference
        digest = await asyncio.to_thread(
            self.storage.put_manifest, name, data, parsed.media_type, tag, parsed
        )
        return digest, parsed

    async def manifest(
        self, name: str, reference: str, accept: list[str]
    ) -> tuple[Revision, bytes]:
        """The manifest ``reference`` names, as the client's ``Accept`` allows.

        As distribution 2.8: an OCI manifest asked for by a client that does not accept
        OCI is unknown to it; an index asked for by tag by a client that does not accept
        indexes gives its linux/amd64 manifest when there is one.
        """
        if self.proxy is not None and self._cached(name):
            revision, data = await self.proxy.manifest(name, reference)
        else:
            revision, data = await asyncio.to_thread(self.storage.get_manifest, name, reference)
        if _accepts(accept, revision.media_type):
            return revision, data
        if revision.media_type in manifests.INDEX_TYPES and not is_digest(reference):
            child = _default_platform(data)
            if child is not None:
                return await self.manifest(name, child, accept)
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            f"manifest {name}:{reference} is a {revision.media_type}, which the client's "
            "Accept header does not list",
        )

    async def delete_manifest(self, name: str, reference: str) -> None:
        self._writable(name)
        await asyncio.to_thread(self.storage.delete_manifest, name, reference)

    # ---- listings ----

    async def tags(self, name: str, n: int | None, last: str | None) -> Page:
        check_name(name)
        return _page(await asyncio.to_thread(self.storage.tags, name), n, last)

    async def catalog(self, n: int | None, last: str | None) -> Page:
        return _page(await asyncio.to_thread(self.storage.repositories), n, last)

    async def referrers(
        self, name: str, digest: str, artifact_type: str | None
    ) -> list[dict[str, object]]:
        check_name(name)
        check_digest(digest)
        found = await asyncio.to_thread(self.storage.referrers, name, digest)
        if artifact_type:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found

    async def search(self, query: str) -> list[str]:
        """Repositories whose name holds ``query`` (``/v1/search``)."""
        names = await asyncio.to_thread(self.storage.repositories)
        query = query.lower()
        return [n for n in names if query in n]


def _default_platform(data: bytes) -> str | None:
    try:
        for child in json.loads(data).get("manifests", []):
            platform = child.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                return str(child["digest"])
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    return None
