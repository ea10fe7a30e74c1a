"""The build service: what ``POST /build``, ``/build/prune`` and ``/build/cancel`` call
(asyncio world).

A build unpacks its context, parses the Dockerfile (a parse error is raised before any
output, so the API answers it with a plain 400 as moby does), runs the executor, tags the
result and writes moby's closing lines.  A cancelled build (client hang-up or
``/build/cancel``) stops its running step; the executor's ``finally`` blocks remove the
step's container and scratch layers, and the context is deleted here.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, BinaryIO

from dockyard.background import spawn
from dockyard.build.base import ImagePuller, StepRunner
from dockyard.build.cache import Cache
from dockyard.build.context import open_context
from dockyard.build.dockerfile import Instruction, Stage
from dockyard.build.executor import Build
from dockyard.build.options import BuildOptions
from dockyard.build.output import Emit
from dockyard.build.store import Store
from dockyard.errors import InvalidParameter, NotFound
from dockyard.images import reference
from dockyard.images.chain import short_id
from dockyard.images.service import ImageService

__all__ = ["BuildService"]


class BuildService:
    def __init__(
        self,
        images: ImageService,
        runner: StepRunner,
        store: Store,
        data_root: str,
        puller: ImagePuller | None = None,
    ) -> None:
        self.images = images
        self.runner = runner
        self.puller = puller
        self.cache = Cache(store, images, os.path.join(data_root, "build"))
        self.active: dict[str, asyncio.Task[str]] = {}

    async def build(self, body: BinaryIO, options: BuildOptions, emit: Emit) -> str:
        """Build, streaming moby's messages to ``emit``; returns the image id."""
        tags = [_check_tag(t) for t in options.tags]
        if options.remote and options.remote != "-":
            raise InvalidParameter(
                f"remote context {options.remote!r}: this daemon builds from an uploaded "
                "context only (no remote contexts)"
            )
        context = await asyncio.to_thread(
            open_context, body, options.dockerfile, self.images.tmpdir
        )
        try:
            build = Build(
                self.images,
                self.runner,
                self.cache,
                context,
                options,
                _Quiet(emit, options.quiet),
                self.puller,
            )
            _add_labels(build, options.labels)
            task = asyncio.current_task()
            if options.build_id and task is not None:
                self.active[options.build_id] = task  # type: ignore[assignment]
            try:
                image_id = await build.run()
            finally:
                if options.build_id:
                    self.active.pop(options.build_id, None)
        finally:
            # The answer does not wait for the context's removal (a few ms per build).
            spawn(asyncio.to_thread(context.close))
        if options.quiet:
            await emit({"stream": image_id + "\n"})
        else:
            await emit({"stream": f"Successfully built {short_id(image_id)}\n"})
        for ref in tags:
            await self.images.tag(image_id, ref.name, ref.tag or "latest")
            if not options.quiet:
                await emit({"stream": f"Successfully tagged {ref.familiar()}\n"})
        return image_id

    def cancel(self, build_id: str) -> None:
        task = self.active.get(build_id)
        if task is None:
            raise NotFound(f"no such build: {build_id}")
        task.cancel()

    async def prune(self, all_: bool, until: float | None, keep_storage: int) -> dict[str, Any]:
        removed, reclaimed = await asyncio.to_thread(self.cache.prune, all_, until, keep_storage)
        return {"CachesDeleted": removed or None, "SpaceReclaimed": reclaimed}

    async def disk_usage(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.cache.usage)


class _Quiet:
    """``q=1``: only aux messages and errors get through, as with moby's SuppressOutput."""

    def __init__(self, emit: Emit, quiet: bool) -> None:
        self.emit = emit
        self.quiet = quiet

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.quiet and ("stream" in message or "status" in message):
            return
        await self.emit(message)


def _check_tag(name: str) -> reference.Reference:
    try:
        ref = reference.parse(name)
    except InvalidParameter as exc:
        raise InvalidParameter(f"invalid reference format: {name}: {exc.message}") from exc
    if ref.digest:
        raise InvalidParameter(f"invalid reference format: {name}: a tag cannot hold a digest")
    return ref.with_default_tag()


def _add_labels(build: Build, labels: dict[str, str]) -> None:
    """``--label``: one LABEL step per label, sorted, after the last stage built (moby's
    buildLabelOptions), values taken literally."""
    if not labels:
        return
    stages = list(build.dockerfile.stages)
    target = build.dockerfile.stage(build.options.target) if build.options.target else None
    index = target.index if target is not None else len(stages) - 1
    stage = stages[index]
    extra = tuple(
        Instruction(
            "LABEL",
            f"LABEL {k}={v}",
            stage.line,
            pairs=((_literal(k), _literal(v)),),
        )
        for k, v in sorted(labels.items())
    )
    stages[index] = Stage(
        stage.index,
        stage.base,
        stage.name,
        stage.platform,
        stage.line,
        stage.original,
        stage.instructions + extra,
    )
    build.dockerfile = type(build.dockerfile)(
        build.dockerfile.directives,
        build.dockerfile.meta_args,
        tuple(stages),
        build.dockerfile.warnings,
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
