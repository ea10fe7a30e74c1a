"""The pull-through cache (asyncio world): repositories under an upstream's prefix are
fetched from it on first use and served locally afterwards.

- Manifests: by digest, once (a digest never changes); by tag, served from the cache until
  the tag is older than the upstream's ``ttl``, then revalidated with a ``HEAD`` (a new
  digest is fetched, the same one only refreshes the tag).  An unreachable upstream serves
  the stale tag rather than failing.
- Blobs: fetched once, *single-flight*: the first request starts one upstream download into
  a temp file; that request and every other one for the same blob meanwhile read the file
  as it grows, so all of them stream at upstream speed and the upstream sees one GET.  The
  download runs on its own (a client that hangs up does not cancel it); its digest is
  verified before the blob is published and linked, as any upload's.  Across worker
  processes a per-digest ``flock`` elects the one that fetches; the others follow its
  file (polling its size) until the blob is published.

Pushes and deletes under a cached prefix are refused (``UNSUPPORTED``), as distribution's
proxy mode does: the upstream owns that content.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from dockyard.distribution.registry import manifest as manifests
from dockyard.distribution.registry.base import Revision, Storage
from dockyard.distribution.registry.bodies import read_limited
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.names import is_digest
from dockyard.distribution.registry.upstream import Upstream, UpstreamConfig

__all__ = ["BlobStream", "Proxy"]

_ACCEPT = ", ".join(manifests.MANIFEST_TYPES + manifests.INDEX_TYPES)
_CHUNK = 1 << 20
_FOLLOW_PERIOD = 0.02  # how often a worker following another's fetch looks at its file


def _locked(path: str) -> bool:
    """True while some process holds the fetch lock ``path``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@dataclass(frozen=True, slots=True)
class BlobStream:
    """A blob served while it is fetched (``chunks`` is None for a HEAD)."""

    digest: str
    size: int | None
    chunks: AsyncIterator[bytes] | None


class _Fetch:
    """One upstream download that any number of readers follow."""

    def __init__(self, path: str, final: str, size: int | None) -> None:
        self.path = path
        self.final = final
        self.size = size
        self.written = 0
        self.done = False
        self.error: BaseException | None = None
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def _open(self) -> BinaryIO | None:
        for path in (self.final, self.path) if self.done else (self.path, self.final):
            try:
                return open(path, "rb")
            except FileNotFoundError:
                continue
        return None  # another worker has not created its file yet

    async def read(self) -> AsyncIterator[bytes]:
        f: BinaryIO | None = None
        offset = 0
        try:
            while True:
                event = self._event
                if self.error is not None:
                    raise RegistryError("UNAVAILABLE", f"upstream fetch failed: {self.error}")
                if f is None:
                    f = self._open()
                if f is not None and offset < self.written:
                    chunk = await asyncio.to_thread(os.pread, f.fileno(), _CHUNK, offset)
                    offset += len(chunk)
                    yield chunk
                    continue
                if self.done and f is not None:
                    return
                await event.wait()
        finally:
            if f is not None:
                f.close()


class Proxy:
    """Routes cached namespaces to their upstreams; see the module docstring."""

    def __init__(self, storage: Storage, upstreams: tuple[UpstreamConfig, ...]) -> None:
        self.storage = storage
        self.upstreams = sorted(
            (Upstream(u) for u in upstreams), key=lambda u: len(u.config.prefix), reverse=True
        )
        self._fetches: dict[str, asyncio.Future[_Fetch]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def route(self, name: str) -> tuple[Upstream, str] | None:
        """The upstream and its repository name for a local ``name``, if cached."""
        for upstream in self.upstreams:
            prefix = upstream.config.prefix
            if not prefix:
                return upstream, _official(upstream, name)
            if name.startswith(prefix + "/"):
                return upstream, _official(upstream, name[len(prefix) + 1 :])
        return None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for upstream in self.upstreams:
            await upstream.close()

    # ---- manifests ----

    async def manifest(self, name: str, reference: str) -> tuple[Revision, bytes]:
        upstream, remote = self.route(name) or (None, "")
        assert upstream is not None
        local: tuple[Revision, bytes] | None = None
        try:
            local = await asyncio.to_thread(self.storage.get_manifest, name, reference)
        except RegistryError:
            local = None
        if local is not None:
            if is_digest(reference):
                return local
            age = await asyncio.to_thread(self.storage.tag_age, name, reference)
            if age is not None and age < upstream.config.ttl:
                return local
        try:
            if local is not None:
                resp = await upstream.request(
                    "HEAD", remote, f"manifests/{reference}", {"Accept": _ACCEPT}
                )
                async with resp:
                    same = resp.headers.get("Docker-Content-Digest") == local[0].digest
                if resp.status == 200 and same:
                    await asyncio.to_thread(self.storage.touch_tag, name, reference)
                    return local
            return await self._fetch_manifest(upstream, name, remote, reference)
        except RegistryError as exc:
            if local is not None and exc.code == "UNAVAILABLE":
                return local  # stale beats nothing while the upstream is down
            raise

    async def _fetch_manifest(
        self, upstream: Upstream, name: str, remote: str, reference: str
    ) -> tuple[Revision, bytes]:
        resp = await upstream.request("GET", remote, f"manifests/{reference}", {"Accept": _ACCEPT})
        async with resp:
            if resp.status == 404:
                raise RegistryError("MANIFEST_UNKNOWN", f"{remote}:{reference} not upstream")
            if resp.status != 200:
                raise RegistryError(
                    "UNAVAILABLE", f"upstream answered {resp.status} for {remote}:{reference}"
                )
            data = await read_limited(resp.content, 4 << 20)
            content_type = resp.headers.get("Content-Type", "")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if is_digest(reference) and digest != reference:
            raise RegistryError("DIGEST_INVALID", f"upstream sent {digest} for {reference}")
        parsed = manifests.parse(data, content_type)
        tag = None if is_digest(reference) else reference
        await asyncio.to_thread(
            self.storage.put_manifest, name, data, parsed.media_type, tag, parsed, False
        )
        return await asyncio.to_thread(self.storage.get_manifest, name, digest)

    # ---- blobs ----

    async def blob(self, name: str, digest: str, head: bool) -> BlobStream:
        """A blob not yet in the cache: HEAD asks upstream, GET follows the single fetch."""
        upstream, remote = self.route(name) or (None, "")
        assert upstream is not None
        pending = self._fetches.get(digest)
        if head and pending is None:
            resp = await upstream.request("HEAD", remote, f"blobs/{digest}")
            async with resp:
                if resp.status != 200:
                    raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not upstream")
                return BlobStream(digest, resp.content_length, None)
        if pending is None:
            # Registered before the first await: concurrent requests find it and wait.
            pending = asyncio.get_running_loop().create_future()
            self._fetches[digest] = pending
            try:
                pending.set_result(await self._start(upstream, name, remote, digest))
            except BaseException as exc:
                self._fetches.pop(digest, None)
                pending.set_exception(exc)
                pending.exception()  # retrieved: waiters get it, nobody else must
                raise
        fetch = await asyncio.shield(pending)
        if head:
            return BlobStream(digest, fetch.size, None)
        return BlobStream(digest, fetch.size, fetch.read())

    async def _start(self, upstream: Upstream, name: str, remote: str, digest: str) -> _Fetch:
        """Fetch from upstream, unless another worker process already does: then follow
        its file (one flock per digest makes the fetch single-flight across workers)."""
        path = self.storage.fetch_path(digest)
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            return self._follow(path, digest)
        try:
            try:
                os.unlink(path)  # left by a worker that crashed mid-fetch
            except FileNotFoundError:
                pass
            resp = await upstream.request("GET", remote, f"blobs/{digest}")
            if resp.status != 200:
                resp.release()
                code = "BLOB_UNKNOWN" if resp.status == 404 else "UNAVAILABLE"
                raise RegistryError(code, f"upstream answered {resp.status} for blob {digest}")
            fetch = _Fetch(path, self.storage.blob_file(digest), resp.content_length)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        except BaseException:
            os.close(lock_fd)
            raise
        self._spawn(self._download(resp, fetch, name, digest, lock_fd))
        return fetch

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _follow(self, path: str, digest: str) -> _Fetch:
        """Track another worker's fetch of ``digest`` through its file."""
        fetch = _Fetch(path, self.storage.blob_file(digest), None)
        self._spawn(self._watch(fetch, path, digest))
        return fetch

    async def _watch(self, fetch: _Fetch, path: str, digest: str) -> None:
        try:
            while True:
                if os.path.exists(fetch.final):
                    fetch.written = fetch.size = os.stat(fetch.final).st_size
                    fetch.done = True
                    return
                try:
                    fetch.written = os.stat(path).st_size
                except FileNotFoundError:
                    pass
                if not _locked(path + ".lock") and not os.path.exists(fetch.final):
                    raise RegistryError("UNAVAILABLE", f"the fetch of {digest} was abandoned")
                fetch.notify()
                await asyncio.sleep(_FOLLOW_PERIOD)
        except Exception as exc:
            fetch.error = exc
        finally:
            self._fetches.pop(digest, None)
            fetch.notify()

    async def _download(
        self, resp: object, fetch: _Fetch, name: str, digest: str, lock_fd: int
    ) -> None:
        import aiohttp

        assert isinstance(resp, aiohttp.ClientResponse)
        hasher = hashlib.sha256()
        fd = os.open(fetch.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

        def write(data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            hasher.update(data)

        try:
            async with resp:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    await asyncio.to_thread(write, chunk)
                    fetch.written += len(chunk)
                    fetch.notify()
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest:
                raise RegistryError("DIGEST_INVALID", f"upstream sent {actual} for {digest}")
            if fetch.size is not None and fetch.written != fetch.size:
                raise RegistryError("SIZE_INVALID", f"upstream blob {digest} was cut short")
            fetch.size = fetch.written
            os.close(fd)
            fd = -1
            await asyncio.to_thread(self.storage.publish_file, name, fetch.path, digest)
            fetch.done = True
        except BaseException as exc:
            fetch.error = exc
            try:
                os.unlink(fetch.path)
            except FileNotFoundError:
                pass
            if not isinstance(exc, Exception):
                raise
        finally:
            if fd >= 0:
                os.close(fd)
            os.close(lock_fd)  # followers in other workers see the end
            self._fetches.pop(digest, None)
            fetch.notify()


_HUB_HOSTS = ("registry-1.docker.io", "index.docker.io", "docker.io")


def _official(upstream: Upstream, remote: str) -> str:
    """Docker Hub keeps its official images under ``library/``: ``cache/hub/busybox`` asks
    Hub for ``library/busybox``, as the docker CLI's ``busybox`` does."""
    host = urlsplit(upstream.config.url).hostname or ""
    if host in _HUB_HOSTS and "/" not in remote:
        return "library/" + remote
    return remote
