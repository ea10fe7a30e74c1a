"""The image service: what the image endpoints call (asyncio world).

Metadata lives in :class:`Store` and is touched only from the event-loop thread; tar, blob
and driver work runs in threads.  Work on one image never waits for work on another: keyed
locks (``locks.py``) serialise only what touches the same image, reference or layer, and
leases keep what a load, pull, build or commit is writing from being collected meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

from dockyard.content import LocalStore, write_blob
from dockyard.errors import Conflict, DockyardError, InvalidParameter, NoSuchImage, NotFound
from dockyard.events import EventBus
from dockyard.filters import labels_match, parse_time, parse_until
from dockyard.images import reference
from dockyard.images.chain import chain_ids, is_full_id, short_id
from dockyard.images.changes import apply_changes
from dockyard.images.layer import LayerTars, apply_layer, ingest_layer
from dockyard.images.locks import KeyedLocks, Leases, image_key, layer_key, ref_key
from dockyard.images.store import ImageRow, LayerRow, Store
from dockyard.images.transfer import ImageTransfer
from dockyard.images.views import ImageViews, _parse_ref, _parses, empty_container_config

__all__ = ["IMAGE_LIST_FILTERS", "PRUNE_FILTERS", "ImageService", "empty_container_config"]

# ``until`` came with moby 25 (API 1.44, unversioned there, so every version has it)
IMAGE_LIST_FILTERS = ("dangling", "label", "reference", "before", "since", "until")
PRUNE_FILTERS = ("dangling", "label", "until")

_ZERO_TIME = "0001-01-01T00:00:00Z"

log = logging.getLogger("dockyard.images")


def now_rfc3339() -> str:
    """RFC 3339 with nanoseconds in UTC, as Go's time.RFC3339Nano prints it."""
    ns = time.time_ns()
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


# References are immutable; listing parses every stored one on each request.
class ImageService(ImageViews, ImageTransfer):
    def __init__(
        self,
        store: Store,
        content: LocalStore,
        driver: Any,
        events: EventBus,
        tmpdir: str,
    ) -> None:
        self.store = store
        self.content = content
        self.driver = driver
        # Diff tars: rebuilt from layer dirs (tar-split), else read from the content store.
        self.tars = LayerTars(
            content, driver, os.path.join(os.path.dirname(content.root), "tarsplit")
        )
        self.events = events
        self.tmpdir = tmpdir
        self.locks = KeyedLocks()
        # Chain ids and blob digests an unfinished load, pull, build or commit holds.
        self.leased = Leases()
        self._configs: dict[str, dict[str, Any]] = {}
        # Set by the containers service once it exists: image id -> container names using it.
        self.users: Callable[[str], list[str]] = lambda image_id: []
        # Also set by it: chain ids containers' rw layers stand on.  A forced rmi deletes
        # the image, not the layers under its stopped containers (moby keeps them too).
        self.held_layers: Callable[[], set[str]] = set

    # ---- lookups -------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """Image id for a reference, a full id or a unique id prefix (moby GetImage order)."""
        if not name:
            raise InvalidParameter("image name cannot be blank")
        if is_full_id(name):
            image_id = name if name.startswith("sha256:") else "sha256:" + name
            if self.store.image(image_id):
                return image_id
            raise NoSuchImage(name)
        try:
            ref = reference.parse(name)
        except InvalidParameter:
            ref = None
        if ref is not None:
            found = self.store.resolve_ref(str(ref.with_default_tag()))
            if found:
                return found
        prefix = name.removeprefix("sha256:")
        if prefix and all(c in "0123456789abcdef" for c in prefix):
            matches = self.store.images_by_prefix(prefix)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidParameter(f"ambiguous image id prefix {name!r}: give more characters")
        if ref is None:
            raise InvalidParameter("invalid reference format")
        raise NoSuchImage(str(ref.with_default_tag().familiar()))

    def config(self, image_id: str) -> dict[str, Any]:
        """The image's config, parsed once: configs are immutable (their digest is the id).

        Callers must not mutate the returned dict."""
        cached = self._configs.get(image_id)
        if cached is None:
            with self.content.open(image_id) as f:
                cached = self._configs[image_id] = json.loads(f.read())
        return cached

    def _tags_digests(self, image_id: str) -> tuple[list[str], list[str]]:
        tags, digests = [], []
        for name in self.store.refs_of(image_id):
            ref = _parse_ref(name)
            (digests if ref.digest else tags).append(ref.familiar())
        return tags, digests

    # ---- holding images and references ---------------------------------------------------
    @asynccontextmanager
    async def using(self, name: str) -> AsyncIterator[str]:
        """Resolve ``name`` and keep that image from being deleted until the block ends.

        Container create holds it from resolving the image to recording the container, so an
        ``rmi`` either finishes first (create then says "No such image") or sees the new
        container as a user."""
        async with self._resolved(name, exclusive=False) as image_id:
            yield image_id

    @asynccontextmanager
    async def _resolved(self, name: str, exclusive: bool) -> AsyncIterator[str]:
        """Resolve ``name``, lock the image, and check that ``name`` still means it (a tag
        may have moved while this waited)."""
        while True:
            image_id = self.resolve(name)
            key = [image_key(image_id)]
            async with self.locks.hold(exclusive=key if exclusive else (), shared=key):
                if self.resolve(name) != image_id:
                    continue
                yield image_id
                return

    @asynccontextmanager
    async def _pointing(self, image_id: str, refs: list[str]) -> AsyncIterator[None]:
        """Hold ``image_id``, the references about to point at it and the images they point
        at now (their ``rmi`` lists references first), re-checked once held."""

        def owners() -> dict[str, str | None]:
            return {r: self.store.resolve_ref(r) for r in refs}

        while True:
            before = owners()
            images = {image_id, *(o for o in before.values() if o)}
            async with self.locks.hold(
                exclusive=[ref_key(r) for r in refs], shared=[image_key(i) for i in images]
            ):
                if owners() != before:
                    continue
                if self.store.image(image_id) is None:
                    raise NoSuchImage(image_id)
                yield
                return

    # ---- tag / remove / prune ------------------------------------------------------------
    async def tag(self, name: str, repo: str, tag: str) -> None:
        ref = reference.parse_repo_tag(repo, tag)
        if ref.digest:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        ref = ref.with_default_tag()
        while True:
            image_id = self.resolve(name)
            async with self._pointing(image_id, [str(ref)]):
                if self.resolve(name) != image_id:
                    continue
                self.store.set_ref(str(ref), image_id, now_rfc3339())
                break
        self.events.publish("image", "tag", image_id, {"name": ref.familiar()})

    async def remove(self, name: str, force: bool, noprune: bool) -> list[dict[str, str]]:
        async with self._resolved(name, exclusive=True) as image_id:
            out, parent = await self._remove(name, image_id, force)
        if parent and not noprune:
            out.extend(await self._prune_parents(parent))
        return out

    async def _remove(
        self, name: str, image_id: str, force: bool
    ) -> tuple[list[dict[str, str]], str]:
        """Untag or delete (caller holds the image exclusively); returns what was done and
        the parent to consider pruning once the lock is released."""
        refs = [reference.parse(n) for n in self.store.refs_of(image_id)]
        out: list[dict[str, str]] = []
        by_ref = (
            not is_full_id(name)
            and not name.startswith("sha256:")
            and any(
                str(r) == str(reference.parse(name).with_default_tag())
                for r in refs
                if _parses(name)
            )
        )
        if by_ref:
            users = self.users(image_id)
            single = len({r.name for r in refs}) == 1 and sum(not r.digest for r in refs) <= 1
            if users and single and not force:
                # moby's ImageDelete: untagging would leave a used image dangling.
                raise Conflict(
                    f'conflict: unable to remove repository reference "{name}" (must force) - '
                    f"container {users[0]} is using its referenced image {short_id(image_id)}"
                )
            target = str(reference.parse(name).with_default_tag())
            self.store.delete_ref(target)
            familiar = reference.parse(target).familiar()
            out.append({"Untagged": familiar})
            self.events.publish("image", "untag", image_id, {"name": familiar})
            remaining = [r for r in refs if str(r) != target]
            # Digest references of the same repository go with its last tag (moby's
            # image_delete.go), even when tags of other repositories keep the image.
            repo = reference.parse(target).name
            if not any(not r.digest and r.name == repo for r in remaining):
                for r in [r for r in remaining if r.digest and r.name == repo]:
                    self.store.delete_ref(str(r))
                    out.append({"Untagged": r.familiar()})
                    self.events.publish("image", "untag", image_id, {"name": r.familiar()})
                    remaining.remove(r)
            if any(not r.digest for r in remaining):
                return out, ""
            refs = remaining
        else:
            repos = {r.name for r in refs}
            if len(repos) > 1 and not force:
                raise Conflict(
                    f"conflict: unable to delete {short_id(image_id)} (must be forced) - "
                    "image is referenced in multiple repositories"
                )
        users = self.users(image_id)
        if users and not force:
            raise Conflict(
                f"conflict: unable to delete {short_id(image_id)} (must be forced) - "
                f"image is being used by stopped container {users[0]}"
            )
        if self.store.children(image_id):
            raise Conflict(
                f"conflict: unable to delete {short_id(image_id)} (cannot be forced) - "
                "image has dependent child images"
            )
        for ref in refs:
            self.store.delete_ref(str(ref))
            out.append({"Untagged": ref.familiar()})
            self.events.publish("image", "untag", image_id, {"name": ref.familiar()})
        parent = self.parent_of(image_id)
        out.extend(await self._delete_image(image_id))
        return out, parent

    async def _prune_parents(self, parent: str) -> list[dict[str, str]]:
        """Delete untagged parents nothing else uses, one image lock at a time (a child's
        lock is released first: locks are only ever taken in one sorted batch)."""
        out: list[dict[str, str]] = []
        while parent:
            async with self.locks.hold(exclusive=[image_key(parent)]):
                row = self.store.image(parent)
                if (
                    row is None
                    or self.store.refs_of(parent)
                    or self.store.children(parent)
                    or self.users(parent)
                ):
                    break
                out.extend(await self._delete_image(parent))
            parent = row.parent
        return out

    async def _delete_image(self, image_id: str) -> list[dict[str, str]]:
        """Delete one image record and what only it held (caller holds it exclusively)."""
        self.store.delete_image(image_id)
        self._configs.pop(image_id, None)
        out = [{"Deleted": image_id}]
        self.events.publish("image", "delete", image_id, {"name": image_id})
        out.extend({"Deleted": c} for c in await self._collect_layers())
        if not self.leased[image_id]:
            await asyncio.to_thread(self._delete_blob_if_unused, image_id)
        return out

    async def _discard(self, written: list[str]) -> None:
        """After a failed import or load (its leases released): drop its layers and the
        blobs nothing else uses."""
        try:
            await self._collect_layers()
        finally:
            for digest in written:
                if not self.store.diff_id_users(digest) and self.store.image(digest) is None:
                    await asyncio.to_thread(self._delete_blob_if_unused, digest)
                elif not self.leased[digest]:
                    # a tar ingested again for a layer that is there: its split rebuilds it
                    await asyncio.to_thread(self.tars.release, digest)

    def _delete_blob_if_unused(self, digest: str) -> None:
        if self.leased[digest]:
            return
        try:
            self.content.delete(digest)
        except NotFound:
            pass

    async def _collect_layers(self) -> list[str]:
        """Remove layers that no image holds any more; returns their chain ids.

        Each layer is removed under its own lock and only if, once held, it is still an
        unused leaf nobody leases: a load applying it has leased it before looking."""
        removed: list[str] = []
        while leaves := [c.chain_id for c in self.store.unused_leaf_layers()]:
            held = self.held_layers()
            leaves = [c for c in leaves if not self.leased[c] and c not in held]
            if not leaves:
                break
            for chain_id in leaves:
                async with self.locks.hold(exclusive=[layer_key(chain_id)]):
                    unused = {c.chain_id: c for c in self.store.unused_leaf_layers()}
                    layer = unused.get(chain_id)
                    if layer is None or self.leased[chain_id] or chain_id in self.held_layers():
                        continue
                    await asyncio.to_thread(self.tars.remove_layer, chain_id, layer.diff_id)
                    self.store.delete_layer(chain_id)
                if not self.store.diff_id_users(layer.diff_id):
                    await asyncio.to_thread(self._delete_blob_if_unused, layer.diff_id)
                removed.append(chain_id)
        return removed

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        dangling_only = filters.get("dangling", ["true"])[-1].lower() in ("true", "1")
        until = None
        if "until" in filters:
            until = parse_until(filters["until"][-1])
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        for row in self.store.images():
            async with self.locks.hold(exclusive=[image_key(row.id)]):
                if self.store.image(row.id) is None:
                    continue  # removed meanwhile, or as the untagged parent of a pruned image
                if self.users(row.id) or self.store.children(row.id):
                    continue
                tags = [n for n in self.store.refs_of(row.id) if not reference.parse(n).digest]
                if dangling_only and tags:
                    continue
                if until is not None and row.created >= until:
                    continue
                labels = (self.config(row.id).get("config") or {}).get("Labels") or {}
                if not labels_match(labels, filters.get("label", [])):
                    continue
                before = sum(layer.size for layer in self.store.layers())
                for name in self.store.refs_of(row.id):
                    self.store.delete_ref(name)
                    deleted.append({"Untagged": reference.parse(name).familiar()})
                deleted.extend(await self._delete_image(row.id))
                reclaimed += before - sum(layer.size for layer in self.store.layers())
            if row.parent:
                before = sum(layer.size for layer in self.store.layers())
                deleted.extend(await self._prune_parents(row.parent))
                reclaimed += before - sum(layer.size for layer in self.store.layers())
        # Layers freed since the last collection (a forced rmi's, once its containers went).
        before = sum(layer.size for layer in self.store.layers())
        deleted.extend({"Deleted": c} for c in await self._collect_layers())
        reclaimed += before - sum(layer.size for layer in self.store.layers())
        self.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ---- import ----------------------------------------------------------------------------
    async def import_tar(
        self,
        body: BinaryIO,
        repo: str,
        tag: str,
        changes: list[str],
        message: str,
        platform: str,
    ) -> str:
        ref = reference.parse_repo_tag(repo, tag).with_default_tag() if repo else None
        if ref is not None and ref.digest:
            raise InvalidParameter("cannot import an image with a digest reference")
        os_, _, arch = (platform or "linux/amd64").partition("/")
        if os_ != "linux":
            raise InvalidParameter(
                f'"{platform}": unsupported platform: only linux images are supported'
            )
        container_config = empty_container_config()
        apply_changes(container_config, changes)
        written: list[str] = []
        try:
            diff_id = await asyncio.to_thread(ingest_layer, self.content, body)
            written.append(diff_id)
            created = now_rfc3339()
            config = {
                "architecture": arch or "amd64",
                "comment": message,
                "config": container_config,
                "container_config": empty_container_config(),
                "created": created,
                "docker_version": "dockyard-0.1.0",
                "history": [{"created": created, "comment": message or "Imported from -"}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
            raw = json.dumps(config, separators=(",", ":")).encode()
            refs = [str(ref)] if ref is not None else []
            image_id, _ = await self.register(raw, [diff_id], "", written, refs)
        except BaseException:
            await self._discard(written)
            raise
        self.events.publish("image", "import", image_id, {"name": image_id})
        if ref is not None:
            self.events.publish("image", "tag", image_id, {"name": ref.familiar()})
        return image_id

    async def register(
        self,
        raw_config: bytes,
        diff_ids: list[str],
        parent: str,
        written: list[str],
        refs: list[str] = [],  # noqa: B006 (never mutated)
    ) -> tuple[str, list[str | None]]:
        """Store a config, apply its chain, record the image and point ``refs`` at it.

        The chain and blobs are leased throughout, so no collection removes a layer between
        applying it and recording the image that holds it.  Blobs this call writes are
        appended to ``written`` so a failing caller can discard them (``_discard``).
        Returns the image id and, per ref, the image it pointed at before."""
        chain = chain_ids(diff_ids)
        with self.leased.hold([*chain, *diff_ids]):
            image_id = await asyncio.to_thread(write_blob, self.content, raw_config)
            with self.leased.hold([image_id]):
                if self.store.image(image_id) is None:
                    written.append(image_id)
                    parent_id: str | None = None
                    for diff_id, chain_id in zip(diff_ids, chain):
                        await self.ensure_layer(diff_id, chain_id, parent_id)
                        parent_id = chain_id
                before = await self.record_image(raw_config, image_id, chain, parent, refs)
            # applied (or loaded again): the tars ingested for them are rebuilt from now on
            await self._release_tars(diff_ids)
            return image_id, before

    async def record_image(
        self,
        raw_config: bytes,
        image_id: str,
        chain: list[str],
        parent: str,
        refs: list[str],
        retag: bool = True,
    ) -> list[str | None]:
        """Add the image row (if new) and point ``refs`` at it, holding both; returns what
        each ref pointed at before.  ``retag=False`` leaves refs already there untouched
        (a pull that found nothing new does not bump LastTagTime)."""
        async with self.locks.hold(shared=[image_key(image_id)]):
            if self.store.image(image_id) is None:
                size = sum((self.store.layer(c).size for c in chain), 0)  # type: ignore[union-attr]
                config = json.loads(raw_config)
                self.store.add_image(
                    ImageRow(
                        id=image_id,
                        created=parse_time(config.get("created")),
                        size=size,
                        top_layer=chain[-1] if chain else None,
                        parent=parent,
                        last_tag_time=_ZERO_TIME,
                        added_ns=time.time_ns(),
                    ),
                    chain,
                )
        if not refs:
            return []
        async with self._pointing(image_id, refs):
            before = [self.store.resolve_ref(r) for r in refs]
            for r, was in zip(refs, before):
                if retag or was != image_id:
                    self.store.set_ref(r, image_id, now_rfc3339())
            return before

    async def ensure_layer(self, diff_id: str, chain_id: str, parent: str | None) -> bool:
        """Apply the stored ``diff_id`` as ``chain_id`` unless it exists (the caller leases
        it and has its parent); False if it was already there.  Under the layer's lock, so
        two loads or pulls sharing a layer apply it once."""
        async with self.locks.hold(exclusive=[layer_key(chain_id)]):
            if self.store.layer(chain_id) is not None:
                return False
            # durable before it is recorded (LayerTars.apply syncs the layer)
            layer = await asyncio.to_thread(apply_layer, self.tars, diff_id, chain_id, parent)
            self.store.add_layer(LayerRow(layer.chain_id, layer.diff_id, layer.parent, layer.size))
            await asyncio.to_thread(self.tars.release, diff_id)
            return True

    async def _release_tars(self, diff_ids: list[str]) -> None:
        """Drop the content-store tars that applied layers can rebuild now."""
        for diff_id in dict.fromkeys(diff_ids):
            await asyncio.to_thread(self.tars.release, diff_id)

    # ---- the builder's steps (issue 13) -----------------------------------------------------
    def top_layer(self, image_id: str) -> str | None:
        """The chain id of an image's top layer (None for an image without layers)."""
        row = self.store.image(image_id)
        if row is None:
            raise NoSuchImage(image_id)
        return row.top_layer

    def parent_of(self, image_id: str) -> str:
        """The image a build step was committed on ('' for a pulled or loaded image)."""
        row = self.store.image(image_id)
        return row.parent if row is not None else ""

    def exists(self, image_id: str) -> bool:
        return self.store.image(image_id) is not None

    async def commit_step(
        self,
        config: dict[str, Any],
        parent: str,
        layer: BinaryIO | None = None,
        diff_id: str | None = None,
    ) -> str:
        """Register one build step's image: ``config`` (its rootfs holds the parent's diff
        ids) plus one new layer, either an uncompressed tar to ingest or a ``diff_id``
        already in the content store, or none for a config-only step."""
        written: list[str] = []
        try:
            if layer is not None:
                diff_id = await asyncio.to_thread(ingest_layer, self.content, layer)
                written.append(diff_id)
            if diff_id:
                config["rootfs"]["diff_ids"].append(diff_id)
            raw = json.dumps(config, separators=(",", ":")).encode()
            image_id, _ = await self.register(
                raw, list(config["rootfs"]["diff_ids"]), parent=parent, written=written
            )
            return image_id
        except BaseException:
            await asyncio.shield(self._discard(written))
            raise

    async def drop_intermediate(self, image_id: str) -> None:
        """Delete an untagged image nothing builds on (a RUN step's temporary commit),
        leaving its parents alone."""
        async with self.locks.hold(exclusive=[image_key(image_id)]):
            if self.store.image(image_id) is None or self.store.children(image_id):
                return
            if self.store.refs_of(image_id) or self.users(image_id):
                return
            await self._delete_image(image_id)

    # ---- start-up -------------------------------------------------------------------------
    async def convert_layer_tars(self) -> int:
        """Layers stored before tar-split keep their tar in the content store: give each a
        split file and drop the tar (a background task at start-up; reads every layer)."""
        done = 0
        for row in self.store.layers():
            self.leased[row.chain_id] += 1  # rmi meanwhile leaves this layer for later
            try:
                done += await asyncio.to_thread(self.tars.convert, row.diff_id, row.chain_id)
            except DockyardError as exc:
                log.warning("layer %s: not converted to tar-split: %s", row.diff_id, exc.message)
            finally:
                self.leased[row.chain_id] -= 1
                if self.leased[row.chain_id] <= 0:
                    del self.leased[row.chain_id]
        if done:
            log.info("converted %d stored layer tar(s) to tar-split metadata", done)
        return done

    # ---- system df -------------------------------------------------------------------------
    def disk_usage(self) -> dict[str, Any]:
        images = self.list(all_=True, filters={})
        layers_size = sum(layer.size for layer in self.store.layers())
        for image in images:
            image["SharedSize"] = 0
            image["Containers"] = len(self.users(image["Id"]))
        return {"LayersSize": layers_size, "Images": images}
