"""Pull: manifest → config → layers downloaded in parallel and applied in order (asyncio).

The order of events is moby's distribution/pull_v2.go and xfer/download.go, so the progress
stream reads the same: the manifest is resolved before anything is written (a missing tag is
an HTTP 404, not a stream error), then "Pulling from", one "Pulling fs layer" or "Already
exists" per layer, "Waiting" for layers beyond ``max-concurrent-downloads``, "Downloading",
"Verifying Checksum", "Download complete", "Extracting", "Pull complete", "Digest:" and the
final "Status:".

Layers download concurrently (one daemon-wide semaphore, as moby's download manager) and each
is applied as soon as it and every layer below it are in: layer 1 extracts while 2..n still
download.  A blob already being fetched by another pull is awaited, not fetched twice.  The
image's chain ids and blobs are leased until the image is recorded, so a concurrent rmi or
prune cannot collect a layer between its apply and the image's commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dockyard.distribution import manifests
from dockyard.distribution.auth import AuthConfig
from dockyard.distribution.config import RegistryConfig
from dockyard.distribution.download import LayerSink, fetch_layer
from dockyard.distribution.manifests import Descriptor, Manifest, Platform
from dockyard.distribution.progress import Message, Throttle
from dockyard.distribution.store import BlobSource, Store
from dockyard.distribution.transport import RegistryError, Repository, Transport
from dockyard.errors import DockyardError, Internal, InvalidParameter, NotFound
from dockyard.images.chain import chain_ids, check_digest
from dockyard.images.intake import Intake, LayerFeed
from dockyard.images.reference import Reference

__all__ = ["Puller", "manifest_error", "resolve"]

log = logging.getLogger("dockyard.distribution")

Emit = Callable[[Message], None]
_MAX_MANIFEST = 4 << 20
_MAX_CONFIG = 8 << 20


def manifest_error(exc: RegistryError, ref: Reference) -> DockyardError:
    """moby distribution/errors.go translatePullError wording and class."""
    if exc.code == "MANIFEST_UNKNOWN" or (exc.status == 404 and not exc.code):
        return NotFound(f"manifest for {ref.familiar()} not found: {exc.message}")
    if exc.code == "NAME_UNKNOWN":
        return NotFound(f"repository {ref.familiar_name} not found: {exc.message}")
    if exc.code == "DENIED":
        return NotFound(
            f"pull access denied for {ref.familiar_name}, repository does not exist or may "
            f"require 'docker login': {exc.message}"
        )
    if exc.status == 401 or exc.code == "UNAUTHORIZED":
        # dockerd 20.10 answers 500 here, and the docker CLI relies on it: on a 401 it
        # prompts for a login, even with no terminal, and waits forever.
        return Internal(exc.message)
    return Internal(f"error pulling {ref.familiar()}: {exc.message}")


async def _read_limited(resp, limit: int, what: str) -> bytes:  # type: ignore[no-untyped-def]
    data = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        data += chunk
        if len(data) > limit:
            raise InvalidParameter(f"{what} is larger than {limit} bytes: refused")
    return bytes(data)


async def fetch_manifest(repo: Repository, target: str, ref: Reference) -> tuple[Manifest, str]:
    """GET a manifest by tag or digest; returns it and its digest (checked if asked by digest).

    A tag is resolved first with ``HEAD``, as dockerd 20.10 (distribution's tag service) does,
    and the manifest then fetched by the digest it answered: errors on the way to the registry
    name the same request as dockerd's (``Head "…/manifests/TAG": no basic auth
    credentials``).  A registry that answers the HEAD without a digest, or with an error
    (whose details only a body carries), is asked with a GET of the tag instead."""
    headers = {"Accept": manifests.ACCEPT}
    if not target.startswith("sha256:"):
        try:
            async with repo.request(
                "HEAD", repo.url(f"manifests/{target}"), headers=headers
            ) as resp:
                found = resp.headers.get("Docker-Content-Digest", "")
        except RegistryError:
            found = ""
        if found.startswith("sha256:") and len(found) == 71:
            target = found
    try:
        async with repo.request("GET", repo.url(f"manifests/{target}"), headers=headers) as resp:
            raw = await _read_limited(resp, _MAX_MANIFEST, f"the manifest of {ref.familiar()}")
            content_type = resp.headers.get("Content-Type", "")
    except RegistryError as exc:
        raise manifest_error(exc, ref) from exc
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if target.startswith("sha256:") and digest != target:
        raise InvalidParameter(
            f"manifest verification failed for digest {target}: the registry sent {digest}"
        )
    return manifests.parse(raw, content_type, ref.familiar()), digest


async def resolve(
    transport: Transport,
    config: RegistryConfig,
    ref: Reference,
    auth: AuthConfig,
    platform: Platform | None,
) -> tuple[Repository, Manifest, str, Manifest]:
    """Find ``ref`` on its first reachable endpoint (mirrors first).

    Returns (repository, top manifest, its digest, the platform's image manifest)."""
    endpoints = await asyncio.to_thread(config.endpoints, ref.domain)
    target = ref.digest or ref.tag or "latest"
    errors: list[DockyardError] = []
    for endpoint in endpoints:
        try:
            repo = await transport.open([endpoint], ref.path, auth, ["pull"])
            top, digest = await fetch_manifest(repo, target, ref)
        except DockyardError as exc:
            if endpoint.mirror or (endpoint.scheme == "https" and endpoint.insecure):
                log.info("endpoint %s failed for %s: %s", endpoint.url, ref, exc.message)
                errors.append(exc)
                continue
            raise
        image = top
        if top.is_index:
            entry = manifests.select(top, platform or manifests.default_platform(), str(ref))
            image, _ = await fetch_manifest(repo, entry.digest, ref)
            if image.is_index:
                raise InvalidParameter(f"manifest list {entry.digest} nests another list")
        return repo, top, digest, image
    raise errors[-1]


@dataclass(slots=True)
class _Download:
    """A blob transfer that one or more pulls wait for."""

    task: asyncio.Task[str]
    users: int = 0
    watchers: list[Callable[[int], None]] = field(default_factory=list)


@dataclass(slots=True)
class _Stream:
    """Where a downloading layer is extracted: its chain, its parent, and the events that
    order directory creation (a layer's directory needs its parent's)."""

    chain_id: str
    parent: str | None
    parent_ready: asyncio.Event | None
    created: asyncio.Event


class Puller:
    """Daemon-wide pull machinery: the download slots and the transfers in flight."""

    def __init__(
        self, transport: Transport, config: RegistryConfig, intake: Intake, sources: Store
    ) -> None:
        self.transport = transport
        self.config = config
        self.intake = intake
        self.sources = sources
        self.slots = asyncio.Semaphore(config.max_downloads)
        self._inflight: dict[str, _Download] = {}

    async def pull_all_tags(
        self, ref: Reference, auth: AuthConfig, platform: Platform | None, emit: Emit
    ) -> None:
        """Every tag of the repository (``fromImage`` without a tag, as ``--all-tags`` sends),
        one after another, and one final status for the repository (moby
        pullV2Repository)."""
        body = await self._tag_list(ref, auth)
        try:
            tags = json.loads(body).get("tags") or []
        except (ValueError, AttributeError) as exc:
            raise Internal(f"invalid tag list for {ref.familiar_name}: {exc}") from exc
        changed = False
        for tag in sorted(t for t in tags if isinstance(t, str)):
            tagged = Reference(ref.domain, ref.path, tag, None)
            changed = await self.pull(tagged, auth, platform, emit, final=False) or changed
        verb = "Downloaded newer image" if changed else "Image is up to date"
        emit(Message.text(f"Status: {verb} for {ref.familiar_name}"))

    async def _tag_list(self, ref: Reference, auth: AuthConfig) -> bytes:
        """The repository's ``tags/list`` from its first endpoint that has it: mirrors in
        order (one that fails or lacks the repository is skipped, as ``resolve`` does for
        one tag), then the registry itself."""
        endpoints = await asyncio.to_thread(self.config.endpoints, ref.domain)
        errors: list[DockyardError] = []
        for endpoint in endpoints:
            try:
                repo = await self.transport.open([endpoint], ref.path, auth, ["pull"])
                async with repo.request("GET", repo.url("tags/list")) as resp:
                    return await _read_limited(resp, _MAX_MANIFEST, "the tag list")
            except DockyardError as exc:
                error = manifest_error(exc, ref) if isinstance(exc, RegistryError) else exc
                if endpoint.mirror or (endpoint.scheme == "https" and endpoint.insecure):
                    log.info("endpoint %s failed for %s: %s", endpoint.url, ref, error.message)
                    errors.append(error)
                    continue
                if error is exc:
                    raise
                raise error from exc
        raise errors[-1]

    async def pull(
        self,
        ref: Reference,
        auth: AuthConfig,
        platform: Platform | None,
        emit: Emit,
        final: bool = True,
    ) -> bool:
        """Pull one tag or digest; returns whether a reference changed.  Errors before the
        first ``emit`` are the caller's HTTP status; after it, stream errors.  ``final``
        writes the closing "Status:" line (all-tags pulls write one for the lot)."""
        repo, _, digest, image = await resolve(self.transport, self.config, ref, auth, platform)
        # moby pullV2Tag: the tag, or the whole familiar reference when pulled by digest
        tag_or_digest = ref.familiar() if ref.digest else ref.tag or "latest"
        emit(Message.text(f"Pulling from {ref.path}", tag_or_digest))
        assert image.config is not None
        raw_config = await self.config_blob(repo, image.config, ref)
        diff_ids = _diff_ids(raw_config, len(image.layers), ref)
        named = [ref] if ref.digest else [ref, Reference(ref.domain, ref.path, None, digest)]
        image_id = "sha256:" + hashlib.sha256(raw_config).hexdigest()
        chains = chain_ids(diff_ids)
        try:
            with self.intake.lease([*chains, *diff_ids, image_id]):
                if not self.intake.has_image(image_id):
                    await self._layers(repo, ref, image.layers, diff_ids, chains, emit)
                image_id, changed = await self.intake.commit_image(raw_config, diff_ids, named)
        except BaseException:
            # Nothing of a failed pull stays: its layers and blobs, unless another image or
            # a running pull holds them.
            await asyncio.shield(self.intake.discard(diff_ids))
            raise
        self.intake.images.events.publish("image", "pull", ref.familiar(), {"name": ref.familiar()})
        emit(Message.text(f"Digest: {digest}"))
        if final:
            verb = "Downloaded newer image" if changed else "Image is up to date"
            emit(Message.text(f"Status: {verb} for {ref.familiar()}"))
        return changed

    async def config_blob(self, repo: Repository, desc: Descriptor, ref: Reference) -> bytes:
        if desc.size > _MAX_CONFIG:
            raise InvalidParameter(f"image config of {ref.familiar()} is too large ({desc.size})")
        try:
            async with repo.request("GET", repo.url(f"blobs/{desc.digest}")) as resp:
                raw = await _read_limited(resp, _MAX_CONFIG, "the image config")
        except RegistryError as exc:
            raise Internal(f"error pulling image configuration: {exc.message}") from exc
        if "sha256:" + hashlib.sha256(raw).hexdigest() != desc.digest:
            raise InvalidParameter(f"image config verification failed for digest {desc.digest}")
        return raw

    async def _layers(
        self,
        repo: Repository,
        ref: Reference,
        layers: tuple[Descriptor, ...],
        diff_ids: list[str],
        chains: list[str],
        emit: Emit,
    ) -> None:
        # A layer counts as present only with its whole chain below it (chain ids say so).
        present = [self.intake.has_layer(c) for c in chains]
        waits: list[asyncio.Future[str] | None] = []
        started: list[str] = []
        try:
            for i, desc in enumerate(layers):
                short = desc.digest.split(":", 1)[1][:12]
                if present[i]:
                    emit(Message.layer(short, "Already exists"))
                    waits.append(None)
                    continue
                emit(Message.layer(short, "Pulling fs layer"))
                waits.append(None)
            # A layer is extracted while it downloads when its parent's directory can exist
            # by then: the lowest missing layer always, every layer when the driver keeps
            # layers independent (overlay2).  The others are applied from the store.
            first = present.index(False) if False in present else -1
            created = [asyncio.Event() for _ in layers]
            for i, desc in enumerate(layers):
                if present[i]:
                    created[i].set()
                    continue
                stream = None
                if i == first or self.intake.independent_layers:
                    parent_ready = created[i - 1] if i else None
                    stream = _Stream(
                        chains[i], chains[i - 1] if i else None, parent_ready, created[i]
                    )
                waits[i] = self._start(repo, desc, diff_ids[i], emit, stream)
                started.append(desc.digest)
            parent: str | None = None
            for i, desc in enumerate(layers):
                if not present[i]:
                    short = desc.digest.split(":", 1)[1][:12]
                    fut = waits[i]
                    assert fut is not None
                    await asyncio.shield(fut)
                    await self.intake.ensure_layer(diff_ids[i], chains[i], parent)
                    created[i].set()
                    emit(Message.moving(short, "Extracting", desc.size, desc.size))
                    emit(Message.layer(short, "Pull complete"))
                parent = chains[i]
        finally:
            for digest in started:
                self._release(digest)

    def _start(
        self,
        repo: Repository,
        desc: Descriptor,
        diff_id: str,
        emit: Emit,
        stream: _Stream | None = None,
    ) -> asyncio.Future[str]:
        short = desc.digest.split(":", 1)[1][:12]
        throttle = Throttle(lambda n: emit(Message.moving(short, "Downloading", n, desc.size)))
        existing = self._inflight.get(desc.digest)
        if existing is not None:
            existing.users += 1
            existing.watchers.append(lambda n: throttle.update(n, n >= desc.size))
            return existing.task
        download = _Download(
            asyncio.create_task(self._download(repo, desc, diff_id, short, emit, stream)),
            users=1,
        )
        download.watchers.append(lambda n: throttle.update(n, n >= desc.size))
        self._inflight[desc.digest] = download
        return download.task

    def _release(self, digest: str) -> None:
        download = self._inflight.get(digest)
        if download is None:
            return
        download.users -= 1
        if download.users <= 0:
            self._inflight.pop(digest, None)
            if not download.task.done():
                download.task.cancel()

    async def _download(
        self,
        repo: Repository,
        desc: Descriptor,
        diff_id: str,
        short: str,
        emit: Emit,
        stream: _Stream | None,
    ) -> str:
        if self.intake.has_blob(diff_id):
            emit(Message.layer(short, "Download complete"))
            return diff_id
        if stream is not None and stream.parent_ready is not None:
            # Before taking a slot: a parent fetched by another pull may need one.
            await stream.parent_ready.wait()
        if self.slots.locked():
            emit(Message.layer(short, "Waiting"))
        async with self.slots:
            if stream is None:
                return await self._fetch(repo, desc, diff_id, short, emit, None)

            def store_tar() -> Awaitable[str]:
                log.info("layer %s: fetching it again to store its tar", desc.digest)
                return self._fetch(repo, desc, diff_id, short, emit, None)

            async with self.intake.streamed_layer(
                diff_id, stream.chain_id, stream.parent, store_tar
            ) as feed:
                stream.created.set()
                return await self._fetch(repo, desc, diff_id, short, emit, feed)

    async def _fetch(
        self,
        repo: Repository,
        desc: Descriptor,
        diff_id: str,
        short: str,
        emit: Emit,
        feed: LayerFeed | None,
    ) -> str:
        """Download the layer into the content store, or into ``feed``'s apply."""
        sink = await asyncio.to_thread(
            LayerSink,
            self.intake.images.content,
            desc.digest,
            desc.size,
            diff_id,
            feed.pipe if feed else None,
            feed.store if feed else True,
        )

        def progress(n: int) -> None:
            download = self._inflight.get(desc.digest)
            for watch in download.watchers if download else ():
                watch(n)

        def retrying(seconds: int) -> None:
            plural = "s" if seconds != 1 else ""
            emit(Message.layer(short, f"Retrying in {seconds} second{plural}"))

        result = await fetch_layer(repo, sink, self.config.max_attempts, progress, retrying)
        emit(Message.layer(short, "Verifying Checksum"))
        emit(Message.layer(short, "Download complete"))
        self.sources.add(
            BlobSource(
                diff_id,
                desc.digest,
                desc.media_type or manifests.DOCKER_LAYER,
                desc.size,
                f"{repo.endpoint.host}/{repo.path}",
            )
        )
        return result


def _diff_ids(raw_config: bytes, count: int, ref: Reference) -> list[str]:
    try:
        config = json.loads(raw_config)
        diff_ids = config["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameter(f"invalid image config for {ref.familiar()}: {exc}") from exc
    if not isinstance(diff_ids, list) or len(diff_ids) != count:
        raise InvalidParameter(
            f"invalid image config for {ref.familiar()}: it names "
            f"{len(diff_ids) if isinstance(diff_ids, list) else '?'} layers, the manifest {count}"
        )
    for diff_id in diff_ids:
        check_digest(diff_id, "layer diff id")
    if config.get("os", "linux") != "linux":
        raise InvalidParameter(
            f'image operating system "{config.get("os")}" cannot be used on this platform'
        )
    return diff_ids
