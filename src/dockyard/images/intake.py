"""Layers and images arriving from a registry, one at a time (asyncio world).

Pull applies each layer as soon as it and its parent are there, so this module offers the
image service's write path in small steps instead of ``register``'s all-at-once:

- ``lease`` holds chain ids and blob digests while a pull runs: ``_collect_layers`` (rmi,
  prune) skips them, so a layer applied but not yet owned by an image is never collected;
- ``ensure_layer`` applies one stored diff on its parent under the layer's lock (two pulls
  or a pull and a load sharing a layer apply it once);
- ``commit_image`` records the image and points its references at it, holding only that
  image and those references (``locks.py``).

A crash between steps leaves layers without images, which the next collection removes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from dockyard.content import write_blob
from dockyard.images import reference
from dockyard.images.chain import chain_ids
from dockyard.images.layer import apply_stream
from dockyard.images.locks import layer_key
from dockyard.images.service import ImageService
from dockyard.images.store import LayerRow
from dockyard.streampipe import PipeWriter, thread_pipe

__all__ = ["Intake", "LayerFeed"]


@dataclass(frozen=True, slots=True)
class LayerFeed:
    """Where a downloading layer's tar goes: ``pipe`` into its apply and, if ``store``, the
    content store as well (the apply then relies on the store to check the diff id)."""

    pipe: PipeWriter
    store: bool


class Intake:
    """The pull side's handle on an ``ImageService``."""

    def __init__(self, images: ImageService) -> None:
        self.images = images

    @contextmanager
    def lease(self, names: list[str]) -> Iterator[None]:
        with self.images.leased.hold(names):
            yield

    def has_layer(self, chain_id: str) -> bool:
        return self.images.store.layer(chain_id) is not None

    def has_blob(self, digest: str) -> bool:
        """Whether the diff tar ``digest`` is at hand (stored, or rebuildable from a layer)."""
        try:
            return self.images.tars.has(digest)
        except Exception:  # a malformed digest: not usable either way
            return False

    def has_image(self, image_id: str) -> bool:
        return self.images.store.image(image_id) is not None

    def resolve_ref(self, name: str) -> str | None:
        return self.images.store.resolve_ref(name)

    async def ensure_layer(self, diff_id: str, chain_id: str, parent: str | None) -> bool:
        """Apply the stored ``diff_id`` as ``chain_id``; False if it was already there."""
        return await self.images.ensure_layer(diff_id, chain_id, parent)

    @property
    def independent_layers(self) -> bool:
        """Whether a layer can be extracted before its parent is complete.

        overlay2 keeps each layer's own files in its own ``diff`` directory (whiteouts are
        device nodes and xattrs there), so only the parent's directory must exist; vfs
        copies the parent's tree first, so it needs the parent finished."""
        return getattr(self.images.driver, "name", "") == "overlay2"

    @asynccontextmanager
    async def streamed_layer(
        self,
        diff_id: str,
        chain_id: str,
        parent: str | None,
        store_tar: Callable[[], Awaitable[object]],
    ) -> AsyncIterator[LayerFeed | None]:
        """A pipe to write the layer's tar into while it downloads; it is applied meanwhile.

        The layer directory is created before the first yield returns control, so a child's
        ``streamed_layer`` may start once this one has yielded (``independent_layers``).
        Yields None if the layer exists already.  Leaving the block normally (the download
        verified its compressed digest) waits for the apply, which checks the diff id, and
        records the layer; leaving it with an error removes whatever was applied, and an
        apply error (a hostile tar) wins over the broken pipe it caused in the writer.

        The tar goes to the content store too only when ``LayerFeed.store`` says so (the
        driver's layers cannot rebuild it).  A tar that its own layer cannot rebuild after
        all (a name it writes twice) must stay somewhere: ``store_tar`` is then awaited to
        fetch it again into the content store before the layer is recorded."""
        async with self.images.locks.hold(exclusive=[layer_key(chain_id)]):
            if self.has_layer(chain_id):
                yield None
                return
            images = self.images
            store = not images.tars.recordable()
            target = await asyncio.to_thread(images.tars.create, chain_id, parent, diff_id)
            reader, writer = thread_pipe()
            apply = asyncio.ensure_future(
                asyncio.to_thread(
                    apply_stream,
                    images.tars,
                    diff_id,
                    chain_id,
                    target,
                    reader,  # type: ignore[arg-type]  # read() is all a tar reader needs
                    checked=store,
                )
            )
            try:
                yield LayerFeed(writer, store)
            except BaseException as exc:
                writer.close()
                try:
                    await asyncio.shield(apply)
                except Exception as apply_exc:
                    if isinstance(exc, Exception) and _broken_pipe(exc):
                        # its own cause says why (ENOSPC, a hostile entry): keep it
                        raise apply_exc from apply_exc.__cause__ or exc
                else:
                    await asyncio.to_thread(images.tars.remove_layer, chain_id, diff_id)
                raise
            writer.close()
            size, recorded = await apply
            if not recorded and not store:
                try:
                    await store_tar()
                except BaseException:
                    await asyncio.to_thread(images.tars.remove_layer, chain_id, diff_id)
                    raise
            images.store.add_layer(LayerRow(chain_id, diff_id, parent, size))
            if store:
                await asyncio.to_thread(images.tars.release, diff_id)

    async def commit_image(
        self, raw_config: bytes, diff_ids: list[str], refs: list[reference.Reference]
    ) -> tuple[str, bool]:
        """Record the image (its layers are applied) and point ``refs`` at it.

        Returns (image id, whether the first ref changed), which decides between "Downloaded
        newer image" and "Image is up to date"."""
        images = self.images
        image_id = await asyncio.to_thread(write_blob, images.content, raw_config)
        names = [str(ref) for ref in refs]
        with images.leased.hold([image_id]):
            previous = await images.record_image(
                raw_config, image_id, chain_ids(diff_ids), "", names, retag=False
            )
        changed = bool(previous) and previous[0] != image_id
        for ref, was in zip(refs, previous):
            if was != image_id and not ref.digest:
                images.events.publish("image", "tag", image_id, {"name": ref.familiar()})
        return image_id, changed

    async def discard(self, digests: list[str]) -> None:
        """After a failed pull: drop its layers and the blobs nothing else uses."""
        await self.images._discard(digests)

    async def collect(self) -> None:
        """Remove layers no image holds (left by a pull the daemon did not finish)."""
        await self.images._collect_layers()


def _broken_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` came from writing into an apply that had already failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BrokenPipeError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
