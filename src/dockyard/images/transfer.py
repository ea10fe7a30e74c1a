"""``docker save`` and ``docker load``: image archives out of and into the store (a part
of :class:`~dockyard.images.service.ImageService`, kept apart so the service holds the
records and this the archive traffic)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, BinaryIO

from dockyard.background import spawn
from dockyard.content import LocalStore
from dockyard.errors import InvalidParameter
from dockyard.events import EventBus
from dockyard.images import reference
from dockyard.images.archive import LoadItem, SaveItem, plan_load, unpack, write_save
from dockyard.images.chain import chain_ids, check_digest, is_full_id
from dockyard.images.layer import LayerTars, feed_layer_file, ingest_layer
from dockyard.images.locks import KeyedLocks, Leases, image_key
from dockyard.images.store import Store
from dockyard.images.views import _parses
from dockyard.streampipe import feed_thread, stream_from_thread

__all__ = ["ImageTransfer"]

log = logging.getLogger("dockyard.images")


class _Released:
    """An async iterator that calls ``release`` once, when it is exhausted or closed (also
    if it was never iterated: an unstarted async generator's ``finally`` never runs)."""

    def __init__(self, chunks: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        self._chunks = chunks
        self._release: Callable[[], None] | None = release

    def __aiter__(self) -> _Released:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ImageTransfer:
    """Save and load (mixed into the image service, whose records, locks, leases and
    ``register`` it uses)."""

    content: LocalStore
    store: Store
    tars: LayerTars
    leased: Leases
    locks: KeyedLocks
    events: EventBus
    tmpdir: str

    if TYPE_CHECKING:  # the service's

        async def _collect_layers(self) -> list[str]: ...

        def _delete_blob_if_unused(self, digest: str) -> None: ...

    def _save_items(self, names: list[str]) -> list[SaveItem]:
        """Resolve every name first, so an unknown one is a 404 before any byte is sent."""
        wanted: dict[str, list[reference.Reference]] = {}
        for name in names:
            ref = reference.parse(name) if _parses(name) else None
            if ref is not None and not ref.tag and not ref.digest:
                repo_refs = [reference.parse(n) for n, _ in self.store.refs()]
                matches = [r for r in repo_refs if r.name == ref.name and not r.digest]
                if matches:  # a bare repository name saves all of its tags (moby does)
                    for r in matches:
                        wanted.setdefault(self.resolve(str(r)), []).append(r)
                    continue
            image_id = self.resolve(name)
            entry = wanted.setdefault(image_id, [])
            if ref is not None and (ref.tag or not ref.digest) and not is_full_id(name):
                full = ref.with_default_tag()
                if self.store.resolve_ref(str(full)) == image_id:
                    entry.append(full)
        items = []
        for image_id, refs in wanted.items():
            config = self.config(image_id)
            diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
            unique = list(dict.fromkeys(str(r) for r in refs))
            with self.content.open(image_id) as f:
                raw = f.read()
            items.append(
                SaveItem(
                    image_id=image_id,
                    config=raw,
                    diff_ids=diff_ids,
                    open_layer=self.tars.open_sized,
                    repo_tags=[reference.parse(u).familiar() for u in unique],
                    full_names=unique,
                )
            )
        return items

    async def save(
        self, names: list[str], platform: dict[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the archive.  Its images and layers are leased until the stream ends, so
        an ``rmi`` meanwhile answers at once (as dockerd's does) and the layers it frees
        go only once the save is done."""
        while True:
            items = self._save_items(names)
            ids = [item.image_id for item in items]
            # Shared image locks: an rmi half-way through finishes first (then: 404).
            async with self.locks.hold(shared=[image_key(i) for i in sorted(set(ids))]):
                items = self._save_items(names)
                if [item.image_id for item in items] != ids:
                    continue  # a tag moved while this waited
                for name in names if platform is not None else ():
                    self._check_platform(name, self.resolve(name), platform)
                held = [
                    name
                    for item in items
                    for name in (item.image_id, *chain_ids(item.diff_ids), *item.diff_ids)
                ]
                lease = self.leased.hold(held)
                lease.__enter__()
                break
        for item in items:
            self.events.publish("image", "save", item.image_id, {"name": item.image_id})

        def release() -> None:
            lease.__exit__(None, None, None)
            self.collect_after_lease(ids)

        return _Released(stream_from_thread(lambda sink: write_save(items, sink)), release)

    def collect_after_lease(self, image_ids: list[str]) -> None:
        """Once a save or push that leased ``image_ids`` is done: if an ``rmi`` removed one
        meanwhile, collect what it had to leave (layers, blobs) in the background."""
        if any(self.store.image(i) is None for i in image_ids):
            spawn(self._collect_unleased(image_ids))

    async def _collect_unleased(self, image_ids: list[str]) -> None:
        try:
            await self._collect_layers()
            for image_id in image_ids:
                if self.store.image(image_id) is None:
                    await asyncio.to_thread(self._delete_blob_if_unused, image_id)
        except Exception:
            log.exception("collecting layers after a save failed")

    async def load(self, body: BinaryIO | AsyncIterator[bytes]) -> list[str]:
        """Load a ``docker save`` tarball, a file or the request body as it arrives (it is
        unpacked as it comes: never spooled first).  No lock is held while the body arrives
        (it may take minutes); each image then leases its layers and locks only its own
        keys."""
        messages: list[str] = []
        workdir = tempfile.mkdtemp(prefix="load-", dir=self.tmpdir)
        try:
            if isinstance(body, AsyncIterator):
                unpacked = await feed_thread(body, lambda reader: unpack(reader, workdir))
            else:
                unpacked = await asyncio.to_thread(unpack, body, workdir)
            for item in await asyncio.to_thread(plan_load, unpacked):
                messages.extend(await self._load_one(item))
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        return messages

    async def _apply_unpacked(
        self, diff_ids: list[str], paths: list[str], ingested: list[str]
    ) -> None:
        """Apply each unpacked layer file straight into its layer, as a pull applies a
        download: the tar-split recorder checks the diff id, and the tar is written to the
        content store only for a layer that cannot rebuild it (then ``ingested`` names it).
        One write of each layer after the unpack, as dockerd's load makes."""
        from dockyard.images.intake import Intake  # it builds on the service this is part of

        intake = Intake(self)  # type: ignore[arg-type]
        parent: str | None = None
        for diff_id, chain_id, path in zip(diff_ids, chain_ids(diff_ids), paths):

            def store_tar(path: str = path, diff_id: str = diff_id) -> Awaitable[None]:
                return self._ingest_file(path, diff_id, ingested)

            try:
                async with intake.streamed_layer(diff_id, chain_id, parent, store_tar) as feed:
                    if feed is not None:
                        pipe = feed.pipe
                        await asyncio.to_thread(feed_layer_file, path, pipe)  # type: ignore[arg-type]
            except InvalidParameter as exc:
                detail = exc.message.removeprefix(f"layer {diff_id}: ")
                raise InvalidParameter(f"invalid archive: layer {diff_id}: {detail}") from exc
            parent = chain_id

    async def _ingest_file(self, path: str, diff_id: str, ingested: list[str]) -> None:
        with open(path, "rb") as f:
            try:
                await asyncio.to_thread(ingest_layer, self.content, f, diff_id)
            except InvalidParameter as exc:
                raise InvalidParameter(f"invalid archive: layer {diff_id}: {exc.message}") from exc
        ingested.append(diff_id)

    async def _load_one(self, item: LoadItem) -> list[str]:
        try:
            config = json.loads(item.config)
            diff_ids = config["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidParameter(f"invalid archive: image config is not valid: {exc}") from exc
        if not isinstance(diff_ids, list) or len(diff_ids) != len(item.layers):
            raise InvalidParameter(
                "invalid archive: the image config names "
                f"{len(diff_ids) if isinstance(diff_ids, list) else '?'} layers, the manifest "
                f"{len(item.layers)}"
            )
        for diff_id in diff_ids:
            check_digest(diff_id, "layer diff id")
        refs = [reference.parse(tag).with_default_tag() for tag in item.repo_tags]
        ingested: list[str] = []
        try:
            with self.leased.hold([*chain_ids(diff_ids), *diff_ids]):
                if self.tars.recordable():
                    await self._apply_unpacked(diff_ids, item.layers, ingested)
                else:  # the driver cannot rebuild a tar: the content store keeps each
                    for diff_id, path in zip(diff_ids, item.layers):
                        await self._ingest_file(path, diff_id, ingested)
                image_id, previous = await self.register(
                    item.config, diff_ids, "", ingested, [str(r) for r in refs]
                )
        except BaseException:
            await asyncio.shield(self._discard(ingested))
            raise
        messages = []
        for ref, before in zip(refs, previous):
            if before and before != image_id:
                messages.append(
                    f"The image {ref.familiar()} already exists, renaming the old one with ID "
                    f"{before} to empty string"
                )
            messages.append(f"Loaded image: {ref.familiar()}")
            self.events.publish("image", "tag", image_id, {"name": ref.familiar()})
        if not refs:
            messages.append(f"Loaded image ID: {image_id}")
        self.events.publish("image", "load", image_id, {"name": image_id})
        return messages
