"""``docker save`` and ``docker load``: image archives out of and into the store (a part
of :class:`~dockyard.images.service.ImageService`, kept apart so the service holds the
records and this the archive traffic)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO

from dockyard.content import LocalStore
from dockyard.errors import InvalidParameter
from dockyard.events import EventBus
from dockyard.images import reference
from dockyard.images.archive import LoadItem, SaveItem, plan_load, unpack, write_save
from dockyard.images.chain import chain_ids, check_digest, is_full_id
from dockyard.images.layer import LayerTars, ingest_layer
from dockyard.images.locks import Leases
from dockyard.images.store import Store
from dockyard.images.views import _parses
from dockyard.streampipe import stream_from_thread

__all__ = ["ImageTransfer"]


class ImageTransfer:
    """Save and load (mixed into the image service, whose records, locks, leases and
    ``register`` it uses)."""

    content: LocalStore
    store: Store
    tars: LayerTars
    leased: Leases
    events: EventBus
    tmpdir: str

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
        items = self._save_items(names)
        for name in names if platform is not None else ():
            self._check_platform(name, self.resolve(name), platform)
        for item in items:
            self.events.publish("image", "save", item.image_id, {"name": item.image_id})
        return stream_from_thread(lambda sink: write_save(items, sink))

    async def load(self, body: BinaryIO) -> list[str]:
        """Load a ``docker save`` tarball.  No lock is held while the body arrives (it may
        take minutes); each image then leases its layers and locks only its own keys."""
        messages: list[str] = []
        workdir = tempfile.mkdtemp(prefix="load-", dir=self.tmpdir)
        try:
            unpacked = await asyncio.to_thread(unpack, body, workdir)
            for item in await asyncio.to_thread(plan_load, unpacked):
                messages.extend(await self._load_one(item))
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        return messages

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
                for diff_id, path in zip(diff_ids, item.layers):
                    with open(path, "rb") as f:
                        try:
                            await asyncio.to_thread(ingest_layer, self.content, f, diff_id)
                        except InvalidParameter as exc:
                            raise InvalidParameter(
                                f"invalid archive: layer {diff_id}: {exc.message}"
                            ) from exc
                    ingested.append(diff_id)
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
