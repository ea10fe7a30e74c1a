"""The distribution service: what the pull, push, auth, search and distribution routes call
(asyncio world).

Streams (pull, push) are async iterators of progress ``Message``s.  The operation runs as a
task feeding a queue; its first message is awaited before the iterator is handed back, so an
error found before anything is written (bad reference, unknown tag, refused credentials,
unreachable registry) is raised to the route and becomes the HTTP status dockerd would give.
Later errors arrive in the stream as ``errorDetail`` lines.  A client hanging up cancels the
operation.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dockyard.distribution import manifests
from dockyard.distribution.auth import AuthConfig
from dockyard.distribution.config import RegistryConfig
from dockyard.distribution.login import login
from dockyard.distribution.progress import Message
from dockyard.distribution.pull import Puller, resolve
from dockyard.distribution.push import Pusher
from dockyard.distribution.search import search
from dockyard.distribution.store import Store
from dockyard.distribution.transport import Transport
from dockyard.errors import DockyardError, InvalidParameter, disk_full
from dockyard.images import reference
from dockyard.images.intake import Intake
from dockyard.images.service import ImageService

__all__ = ["DistributionService"]

log = logging.getLogger("dockyard.distribution")

_DONE = object()


class DistributionService:
    def __init__(
        self, config: RegistryConfig, images: ImageService, sources: Store, data_root: str = ""
    ) -> None:
        self.data_root = data_root  # named by a full disk's error
        self.config = config
        self.images = images
        self.sources = sources
        self.transport = Transport(config)
        self.intake = Intake(images)
        self.puller = Puller(self.transport, config, self.intake, sources)
        self.pusher = Pusher(self.transport, config, images, sources)

    async def start(self) -> None:
        """Drop what a pull killed half-way left behind (layers without an image)."""
        await self.intake.collect()

    async def close(self) -> None:
        await self.transport.close()

    # ---- pull ----------------------------------------------------------------------------
    async def pull(
        self, image: str, tag: str, platform: str, auth_header: str | None
    ) -> AsyncIterator[Message]:
        """``POST /images/create?fromImage=``: the progress stream of one pull; with neither
        a tag nor a digest (``docker pull --all-tags``), of every tag of the repository."""
        ref = _pull_reference(image, tag)
        plat = manifests.parse_platform(platform) if platform else None
        auth = AuthConfig.decode(auth_header)
        if ref.tag is None and ref.digest is None:
            return await _stream(
                lambda emit: self.puller.pull_all_tags(ref, auth, plat, emit), self.data_root
            )
        return await _stream(lambda emit: self.puller.pull(ref, auth, plat, emit), self.data_root)

    # ---- push ----------------------------------------------------------------------------
    async def push(
        self, name: str, tag: str, auth_header: str | None, body: bytes | None = None
    ) -> AsyncIterator[Message]:
        """``POST /images/{name}/push``: one tag, or every tag of the repository if none.

        Without ``X-Registry-Auth`` the credentials are the JSON body (moby's old form);
        an empty or broken body is moby's 400."""
        if auth_header is None:
            try:
                auth = AuthConfig.from_json(json.loads(body or b""))
            except ValueError:
                message = "EOF" if not (body or b"").strip() else "invalid character in JSON"
                raise InvalidParameter(
                    f"Bad parameters and missing X-Registry-Auth: {message}"
                ) from None
        else:
            auth = AuthConfig.decode(auth_header)
        ref = reference.parse(name)
        if ref.digest is not None:
            raise InvalidParameter("cannot push a digest reference")
        repo = reference.Reference(ref.domain, ref.path)
        # Every local reference of the repository (tags and digests), as moby's
        # ReferencesByName: none at all is refused before the registry is contacted.
        local = [
            r
            for r in (reference.parse(n) for n, _ in self.images.store.refs())
            if r.name == repo.name
        ]
        if tag:
            wanted = [reference.parse_repo_tag(repo.name, tag).tag or "latest"]
        elif ref.tag:
            wanted = [ref.tag]
        else:
            wanted = sorted(r.tag for r in local if r.tag and not r.digest)
        tags = [
            t
            for t in wanted
            if self.images.store.resolve_ref(str(reference.Reference(repo.domain, repo.path, t)))
        ]
        # A named tag that is not there: moby's "tag does not exist", once the registry answers.
        missing = None if tags or not (tag or ref.tag) else wanted[0]
        push = self.pusher.push
        return await _stream(
            lambda emit: push(repo, tags, auth, emit, bool(local), missing), self.data_root
        )

    # ---- login / search -----------------------------------------------------------------
    async def login(self, body: dict[str, Any]) -> dict[str, str]:
        """``POST /auth``."""
        return await login(self.transport, self.config, AuthConfig.from_json(body))

    async def search(
        self, term: str, limit: int | None, filters: dict[str, list[str]], auth_header: str | None
    ) -> list[dict[str, Any]]:
        if not term:
            raise InvalidParameter("term is required: give the text to search for")
        auth = AuthConfig.decode(auth_header)
        return await search(self.transport, self.config, term, limit, filters, auth)

    async def inspect(self, name: str, auth_header: str | None) -> dict[str, Any]:
        """``GET /distribution/{name}/json``: the registry's descriptor and platforms."""
        ref = reference.parse(name).with_default_tag()
        auth = AuthConfig.decode(auth_header)
        _, top, digest, _ = await resolve(self.transport, self.config, ref, auth, None)
        platforms: list[dict[str, str]] = []
        if top.is_index:
            for entry in top.manifests:
                if entry.platform is not None:
                    platforms.append(_platform_json(entry.platform))
        else:
            platforms.append(await self._config_platform(ref, auth, top))
        return {
            "Descriptor": {"mediaType": top.media_type, "digest": digest, "size": len(top.raw)},
            "Platforms": platforms,
        }

    async def _config_platform(
        self, ref: reference.Reference, auth: AuthConfig, manifest: manifests.Manifest
    ) -> dict[str, str]:
        repo, _, _, _ = await resolve(self.transport, self.config, ref, auth, None)
        assert manifest.config is not None
        raw = await self.puller.config_blob(repo, manifest.config, ref)
        cfg = json.loads(raw)
        return _platform_json(manifests.config_platform(cfg))


def _platform_json(p: manifests.Platform) -> dict[str, str]:
    out = {"architecture": p.architecture, "os": p.os}
    if p.variant:
        out["variant"] = p.variant
    return out


def _pull_reference(image: str, tag: str) -> reference.Reference:
    """fromImage + tag as moby's postImagesCreate combines them (tag may be a digest)."""
    ref = reference.parse(image)
    if tag:
        if tag.startswith("sha256:") or ":" in tag:
            ref = reference.parse(f"{ref.name}@{tag}")
        else:
            if ref.digest is not None:
                raise InvalidParameter("cannot pull with both a tag and a digest")
            ref = reference.parse_repo_tag(ref.name, tag)
    return ref  # no tag and no digest: every tag (moby's pullV2Repository)


async def _stream(
    run: Callable[[Callable[[Message], None]], Awaitable[object]], data_root: str = ""
) -> AsyncIterator[Message]:
    """Start ``run(emit)``; return once it emitted its first message (or raise its error).
    A later error is the stream's last line; a full disk says so as the API's errors do."""
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def body() -> None:
        try:
            await run(queue.put_nowait)
        except DockyardError as exc:
            queue.put_nowait(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("registry operation failed")
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(_DONE)

    task = asyncio.create_task(body())
    first = await queue.get()
    if isinstance(first, BaseException):
        await task
        raise first

    async def rest() -> AsyncIterator[Message]:
        item: object = first
        try:
            while item is not _DONE:
                if isinstance(item, BaseException):
                    item = disk_full(item, data_root) or item
                if isinstance(item, DockyardError):
                    yield Message.failure(item.message)
                elif isinstance(item, BaseException):
                    yield Message.failure(str(item) or type(item).__name__)
                elif isinstance(item, Message):
                    yield item
                item = await queue.get()
        finally:
            if not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass

    return rest()
