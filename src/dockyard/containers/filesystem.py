"""A container's filesystem (asyncio world): ``docker cp`` (archive stat/get/put), ``diff``,
``export`` and ``commit``.

The mechanics are in ``archive.py`` (paths and tars inside the root), ``diff.py`` (changes
and tars of the rw layer) and ``mounts.py`` (volumes bound under the root for a copy); this
module mounts the container's root while they run and releases it after.  Commit writes a
layer and an image through the image service; it never changes the container's state
beyond pausing it for the copy when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dockyard import errors
from dockyard.containers.record import Container
from dockyard.errors import Conflict

if TYPE_CHECKING:
    from dockyard.containers.core import ContainerCore
    from dockyard.containers.lifecycle import Lifecycle

__all__ = ["Filesystem"]


class Filesystem:
    def __init__(self, core: ContainerCore, lifecycle: Lifecycle) -> None:
        self.core = core
        self.lifecycle = lifecycle  # commit --pause
        self._copy_mounts: dict[str, tuple[int, list[str]]] = {}  # docker cp's volume binds
        self._root_users: dict[str, int] = {}  # copies and exports using the mounted root
        # per container: [lock, waiters]; the counts above are read and changed across awaits
        self._root_locks: dict[str, list[Any]] = {}

    @contextlib.asynccontextmanager
    async def _root_lock(self, cid: str) -> AsyncIterator[None]:
        """Serialise one container's root and copy-bind bookkeeping: two concurrent
        ``docker cp`` both saw no binds, both bound, and one set was never undone; the first
        to end unmounted a stopped container's root under the other.  The entry goes when
        its last user does."""
        entry = self._root_locks.setdefault(cid, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._root_locks[cid]

    # ---- the root as the daemon sees it ---------------------------------------------------
    async def _rootfs(self, c: Container, with_mounts: bool = False) -> str:
        """The container's root in the daemon's view; ``with_mounts`` also binds its volumes
        and bind mounts there (as moby does for docker cp), until ``release``."""
        async with self._root_lock(c.id):
            rootfs = await asyncio.to_thread(self.core.driver.mount, c.rw_layer)
            self._root_users[c.id] = self._root_users.get(c.id, 0) + 1
            if with_mounts and c.mounts and self.core.volumes is not None:
                from dockyard.containers.mounts import bind_for_copy

                count, paths = self._copy_mounts.get(c.id, (0, []))
                if not count:
                    try:
                        paths = await asyncio.to_thread(
                            bind_for_copy, self.core.volumes.driver, c, rootfs
                        )
                    except BaseException:
                        await self._drop_root(c)
                        raise
                self._copy_mounts[c.id] = (count + 1, paths)
        return rootfs

    async def release(self, c: Container, with_mounts: bool = True) -> None:
        """Undo one ``_rootfs`` (``with_mounts`` as it was called): unbind the copy mounts
        when their last user ends, unmount a stopped container's root when its last user
        does (``archive_stat``'s caller calls it)."""
        async with self._root_lock(c.id):
            if with_mounts and c.mounts and self.core.volumes is not None:
                count, paths = self._copy_mounts.pop(c.id, (0, []))
                if count > 1:
                    self._copy_mounts[c.id] = (count - 1, paths)
                elif paths:
                    from dockyard.containers.mounts import unbind_for_copy

                    await asyncio.to_thread(unbind_for_copy, paths)
            await self._drop_root(c)

    async def _drop_root(self, c: Container) -> None:
        """One user less of the root (under ``_root_lock``)."""
        users = self._root_users.pop(c.id, 1) - 1
        if users > 0:
            self._root_users[c.id] = users
        elif not c.state.Running:
            await asyncio.to_thread(self.core.driver.unmount, c.rw_layer)

    async def unmount_root(self, c: Container) -> None:
        """The container stopped (or failed to start): unmount its root unless a copy or
        an export is reading it, in which case the last of them unmounts it when done
        (``_drop_root``).  Unmounting under them would detach the root mid-stream: an
        export walking it by path would end short, a copy's volume binds would be torn
        off under it."""
        async with self._root_lock(c.id):
            if not self._root_users.get(c.id):
                await asyncio.to_thread(self.core.driver.unmount, c.rw_layer)

    # ---- archive (docker cp) ------------------------------------------------------------
    async def archive_stat(self, name: str, path: str) -> tuple[Container, str, str]:
        from dockyard.containers import archive

        c = self.core.get(name)
        rootfs = await self._rootfs(c, with_mounts=True)
        try:
            host = await asyncio.to_thread(archive.locate, rootfs, path, c.id)
            header = await asyncio.to_thread(archive.path_stat, rootfs, host, path)
        except BaseException:
            await self.release(c)
            raise
        return c, host, header

    async def archive_get(self, name: str, path: str) -> tuple[str, AsyncIterator[bytes]]:
        from dockyard.containers import archive
        from dockyard.streampipe import stream_from_thread

        c, host, header = await self.archive_stat(name, path)
        # moby rebases on filepath.Base(path): "/data/." gives "." (the contents)
        top = "." if path.endswith("/.") else (os.path.basename(path.rstrip("/")) or ".")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream_from_thread(
                    lambda out: archive.write_tar(host, top, out)
                ):
                    yield chunk
            finally:
                await self.release(c)

        return header, chunks()

    async def archive_put(
        self, name: str, path: str, body: Any, no_overwrite: bool, copy_uid_gid: bool = False
    ) -> None:
        from dockyard.containers import archive

        c = self.core.get(name)
        from dockyard.containers.mounts import mount_for

        point = mount_for(c, path)
        if point is not None and not point.rw:
            raise Conflict(f"mounted volume is marked read-only: {point.destination}")
        if point is None and c.host_config.get("ReadonlyRootfs"):
            raise Conflict("container rootfs is marked read-only")
        rootfs = await self._rootfs(c, with_mounts=True)
        try:
            owner = None
            if copy_uid_gid and c.config.get("User"):
                from dockyard.containers.bundle import resolve_user

                user = await asyncio.to_thread(resolve_user, rootfs, c.config["User"], [])
                owner = (user.uid, user.gid)
            await asyncio.to_thread(archive.extract, rootfs, path, body, c.id, no_overwrite, owner)
        finally:
            await self.release(c)

    # ---- changes, export, commit (overlay2's upper dir) ----------------------------------
    def _diff_dirs(self, c: Container) -> tuple[str, list[str]]:
        if not hasattr(self.core.driver, "diff_dir"):
            raise errors.NotImplemented(
                f"docker diff and commit need the overlay2 storage driver (this daemon uses {self.core.driver.name})"
            )
        lower = [
            self.core.driver.diff_dir(ch.removeprefix("sha256:"))
            for ch in reversed(self.core.images.store.image_chain(c.image_id))
        ]
        return self.core.driver.diff_dir(c.rw_layer), lower

    async def changes(self, name: str) -> list[dict[str, Any]]:
        from dockyard.containers.diff import changes

        c = self.core.get(name)
        upper, lower = self._diff_dirs(c)
        return await asyncio.to_thread(changes, upper, lower)

    async def export(self, name: str) -> AsyncIterator[bytes]:
        from dockyard.containers.diff import export_tar
        from dockyard.streampipe import stream_from_thread

        c = self.core.get(name)
        rootfs = await self._rootfs(c)
        self.core._event(c, "export")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream_from_thread(lambda out: export_tar(rootfs, out)):
                    yield chunk
            finally:
                await self.release(c, with_mounts=False)

        return chunks()

    async def commit(
        self,
        name: str,
        repo: str,
        tag: str,
        comment: str,
        author: str,
        changes: list[str],
        pause: bool,
        overrides: dict[str, Any] | None,
    ) -> str:
        """A new image: the container's image plus its rw layer as one more layer."""
        import json as _json
        import tempfile

        from dockyard.containers.diff import diff_tar
        from dockyard.images.changes import apply_changes
        from dockyard.images.layer import ingest_layer
        from dockyard.images.service import now_rfc3339 as image_time

        c = self.core.get(name)
        upper, _ = self._diff_dirs(c)
        paused_here = False
        if pause and c.state.Running and not c.state.Paused:
            try:
                await self.lifecycle.pause(c.id, True)
                paused_here = True
            except Conflict:
                pass  # it stopped meanwhile: nothing to pause, its layer is still
        try:
            spool = tempfile.TemporaryFile(dir=self.core.images.tmpdir)
            await asyncio.to_thread(diff_tar, upper, spool)
        finally:
            if paused_here and c.state.Paused:  # (an exit meanwhile thawed it for good)
                try:
                    await self.lifecycle.pause(c.id, False)
                except Conflict:
                    pass  # exited meanwhile
        parent_cfg = self.core.images.config(c.image_id)
        config = {k: v for k, v in c.config.items() if k not in ("Hostname",)}
        config["Hostname"] = ""
        if overrides:
            config.update({k: v for k, v in overrides.items() if v is not None})
        apply_changes(config, changes)
        created = image_time()
        with spool:
            spool.seek(0)
            written: list[str] = []
            try:
                diff_id = await asyncio.to_thread(ingest_layer, self.core.images.content, spool)
                written.append(diff_id)
                new = {
                    "architecture": parent_cfg.get("architecture", "amd64"),
                    "author": author,
                    "comment": comment,
                    "config": config,
                    "container": c.id,
                    "container_config": c.config,
                    "created": created,
                    "docker_version": "dockyard-0.1.0",
                    "history": [
                        *(parent_cfg.get("history") or []),
                        {
                            "created": created,
                            "author": author,
                            "comment": comment,
                            "created_by": " ".join([c.path, *c.args]),
                        },
                    ],
                    "os": "linux",
                    "rootfs": {
                        "type": "layers",
                        "diff_ids": [
                            *parent_cfg.get("rootfs", {}).get("diff_ids", []),
                            diff_id,
                        ],
                    },
                }
                raw = _json.dumps(new, separators=(",", ":")).encode()
                image_id, _ = await self.core.images.register(
                    raw, new["rootfs"]["diff_ids"], parent=c.image_id, written=written
                )
            except BaseException:
                await self.core.images._discard(written)
                raise
        if repo:
            await self.core.images.tag(image_id, repo, tag)
        self.core._event(c, "commit", comment=comment)
        return image_id
