"""The build executor (asyncio world): stages as a graph, steps committed as moby's legacy
builder commits them.

- Only the stages the target needs are built (its base and ``COPY --from``/``RUN
  --mount from=`` stages, transitively); stages that do not depend on each other run at
  once, their output printed in stage order (``output.Printer``).
- Every step makes an image, as the legacy builder does: metadata steps (ENV, LABEL, CMD...)
  a config-only one whose history entry is ``empty_layer``; RUN, COPY, ADD and WORKDIR a
  layer when they changed something.  ``created_by`` is written as moby writes it
  (``/bin/sh -c #(nop)  ENV A=b``, ``|1 A=v /bin/sh -c make``, ``/bin/sh -c #(nop) COPY
  file:<hash> in /dst ``).
- Each step first looks up the cache (``cache.Cache``); a hit reuses the image.
Step handlers live in ``steps.py`` (metadata), ``runstep.py`` (RUN) and ``copystep.py``
(COPY, ADD, WORKDIR); this module owns the stages, FROM and the commit.
"""

from __future__ import annotations

import asyncio
import copy
import os
from dataclasses import dataclass, field
from typing import Any

from dockyard.build import expand
from dockyard.build.args import BuildArgs, StageArgs
from dockyard.build.base import ImagePuller, RunRequest, StepRunner
from dockyard.build.cache import Cache
from dockyard.build.config import DEFAULT_PATH
from dockyard.build.context import Context
from dockyard.build.dockerfile import Dockerfile, Instruction, Stage, parse
from dockyard.build.explain import Facts
from dockyard.build.options import BuildOptions
from dockyard.build.output import Emit, Printer, StageLog
from dockyard.errors import DockyardError, InvalidParameter, NoSuchImage, NotFound
from dockyard.images import reference
from dockyard.images.chain import is_full_id, short_id
from dockyard.images.service import ImageService, empty_container_config, now_rfc3339

__all__ = ["Build", "BuildError", "StageState"]


class BuildError(DockyardError):
    """A step failed; ``code`` is the exit code of a failing RUN (else 0)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class StageState:
    """What a stage has built so far."""

    stage: Stage
    log: StageLog
    args: StageArgs
    image_id: str = ""
    image_cfg: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    maintainer: str = ""
    cmd_set: bool = False
    lexer: expand.Lexer = field(default_factory=expand.Lexer)
    facts: Facts | None = None  # of the step being built, recorded with its cache key

    @property
    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])

    def vars(self) -> dict[str, str]:
        return self.args.expansion_env(self.env)

    def word(self, text: str) -> str:
        return self.lexer.expand(text, self.vars())

    def words(self, text: str) -> list[str]:
        return self.lexer.words(text, self.vars())

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or ["/bin/sh", "-c"])


class Build:
    """One build: ``await Build(...).run()`` returns the final image id."""

    def __init__(
        self,
        images: ImageService,
        runner: StepRunner,
        cache: Cache,
        context: Context,
        options: BuildOptions,
        emit: Emit,
        puller: ImagePuller | None = None,
    ) -> None:
        self.images = images
        self.puller = puller
        self.pulls: dict[str, asyncio.Future[str]] = {}
        self.runner = runner
        self.cache = cache
        self.context = context
        self.options = options
        self.emit = emit
        self.dockerfile: Dockerfile = parse(context.dockerfile, context.dockerfile_name)
        self.args = BuildArgs(dict(options.build_args))
        self.results: dict[int, asyncio.Future[StageState]] = {}
        self.lexer = expand.Lexer(self.dockerfile.directives.escape)
        self.cache_from = self._cache_from_images()

    # ---- plan ------------------------------------------------------------------------------
    def _meta(self) -> None:
        for ins in self.dockerfile.meta_args:
            for name, default in ins.pairs:
                value = None
                if default is not None:
                    value = self.lexer.expand(default, self.args.meta_env())
                self.args.declare_meta(name, value)

    def stage_ref(self, name: str) -> int | None:
        """The index of the stage ``name`` refers to (a name or a number), if any."""
        found = self.dockerfile.stage(name)
        if found is not None:
            return found.index
        if name.isdigit() and int(name) < len(self.dockerfile.stages):
            return int(name)
        return None

    def _base(self, stage: Stage) -> str:
        return self.lexer.expand(stage.base, self.args.meta_env())

    def _deps(self, stage: Stage) -> set[int]:
        deps: set[int] = set()
        base = self.stage_ref(self._base(stage))
        if base is not None and base < stage.index:
            deps.add(base)
        for ins in stage.instructions:
            refs: list[str] = []
            inner = ins.trigger or ins
            if isinstance(inner.flags.get("from"), str):
                refs.append(str(inner.flags["from"]))
            for mount in inner.flags.get("mount", []) if inner.keyword == "RUN" else []:
                for part in str(mount).split(","):
                    if part.startswith("from="):
                        refs.append(part[5:])
            for ref in refs:
                index = self.stage_ref(self.lexer.expand(ref, self.args.meta_env()))
                if index is not None and index < stage.index:
                    deps.add(index)
                elif index is not None:
                    raise InvalidParameter(
                        f"line {ins.line}: stage {ref!r} is used before it is defined "
                        "(a stage can only copy from a stage above it)"
                    )
        return deps

    def plan(self) -> list[Stage]:
        """The stages to build, in order: the target and what it needs."""
        stages = self.dockerfile.stages
        target = len(stages) - 1
        if self.options.target:
            found = self.dockerfile.stage(self.options.target)
            if found is None:
                raise InvalidParameter(
                    f"failed to reach build target {self.options.target} in Dockerfile"
                )
            target = found.index
        for name in self.options.no_cache_filter:
            if self.dockerfile.stage(name) is None:
                raise InvalidParameter(
                    f"--no-cache-filter {name}: the Dockerfile has no stage of that name"
                )
        needed: set[int] = set()
        pending = [target]
        while pending:
            index = pending.pop()
            if index in needed:
                continue
            needed.add(index)
            pending.extend(self._deps(stages[index]))
        return [s for s in stages if s.index in needed]

    # ---- run -------------------------------------------------------------------------------
    async def run(self) -> str:
        self._meta()
        stages = self.plan()
        total = len(self.dockerfile.meta_args) + sum(1 + len(s.instructions) for s in stages)
        numbers: dict[int, int] = {}
        counter = len(self.dockerfile.meta_args)
        for stage in stages:
            numbers[stage.index] = counter + 1
            counter += 1 + len(stage.instructions)
        head = StageLog()
        for warning in self.dockerfile.warnings:
            await head.text(warning + "\n")
        for number, ins in enumerate(self.dockerfile.meta_args, 1):
            await head.text(f"Step {number}/{total} : {ins.original}\n")
        head.close()
        logs = {s.index: StageLog() for s in stages}
        printer = Printer(self.emit, [head, *(logs[s.index] for s in stages)])
        loop = asyncio.get_running_loop()
        self.results = {s.index: loop.create_future() for s in stages}
        tasks = [
            asyncio.create_task(self._stage(s, logs[s.index], numbers[s.index], total))
            for s in stages
        ]
        printing = asyncio.create_task(printer.run())
        try:
            await asyncio.gather(*tasks)
            await printing
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            printing.cancel()
            await asyncio.gather(printing, return_exceptions=True)
            await printer.flush()
            raise
        unused = self.args.unused()
        if unused:
            await self.emit(
                {
                    "stream": f"[Warning] One or more build-args [{' '.join(unused)}] were not "
                    "consumed\n"
                }
            )
        final = self.results[stages[-1].index].result()
        return final.image_id

    async def _stage(self, stage: Stage, log: StageLog, number: int, total: int) -> None:
        future = self.results[stage.index]
        try:
            st = StageState(stage, log, self.args.stage(), lexer=self.lexer)
            await log.text(f"Step {number}/{total} : {stage.original}\n")
            await self._from(st)
            await log.text(f" ---> {_short(st.image_id)}\n")
            for offset, ins in enumerate(stage.instructions, 1):
                await log.text(f"Step {number + offset}/{total} : {ins.original}\n")
                await self.step(st, ins)
                await log.text(f" ---> {_short(st.image_id)}\n")
            if st.image_id:
                await log.aux({"ID": st.image_id})
            future.set_result(st)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else BuildError("cancelled"))
                future.exception()  # retrieved: siblings may never await it
            raise
        finally:
            log.close()

    async def stage_result(self, index: int) -> StageState:
        future = self.results.get(index)
        if future is None:
            raise InvalidParameter(f"stage {index} is not part of this build")
        return await asyncio.shield(future)

    # ---- FROM --------------------------------------------------------------------------------
    async def _from(self, st: StageState) -> None:
        name = self._base(st.stage)
        if not name:
            raise InvalidParameter(f"line {st.stage.line}: FROM needs an image name")
        self._check_platform(st.stage.platform or self.options.platform)
        index = self.stage_ref(name)
        if index is not None and index < st.stage.index:
            parent = await self.stage_result(index)
            image_id = parent.image_id
        elif name.lower() == "scratch":
            image_id = ""
        else:
            image_id = await self.image(name, st.log, st.stage.platform)
        await self.load(st, image_id)
        env = st.env
        if not any(e.startswith("PATH=") for e in env):
            st.config["Env"] = [*env, DEFAULT_PATH]
        triggers = list(st.config.get("OnBuild") or [])
        st.config["OnBuild"] = None
        if triggers:
            word = "trigger" if len(triggers) == 1 else "triggers"
            await st.log.text(f"# Executing {len(triggers)} build {word}\n")
            for text in triggers:
                trigger = _parse_trigger(text, st.stage.line)
                await self.step(st, trigger)

    async def image(self, name: str, log: StageLog, platform: str = "") -> str:
        """The id of image ``name`` (FROM, ``COPY --from``, ``RUN --mount from=``), pulled
        when it is not here or when ``pull=1`` asks for the latest, as moby's builder
        does, with the pull's progress in the stage's output.  One pull per name and
        build: stages naming the same image wait for it."""
        if not self.options.pull or is_full_id(name) or name.startswith("sha256:"):
            try:
                return self.images.resolve(name)
            except NoSuchImage:
                if self.puller is None:
                    raise NotFound(
                        f"pull access denied for {name}: the image is not here and this "
                        "daemon cannot pull; load it first (docker load) or build it"
                    ) from None
        if self.puller is None:
            raise InvalidParameter("pull=1: this daemon has no registry client to pull with")
        ref = str(reference.parse(name).with_default_tag())
        pending = self.pulls.get(ref)
        if pending is None:
            pending = self.pulls[ref] = asyncio.get_running_loop().create_future()
            try:
                wanted = self.lexer.expand(platform, self.args.meta_env()) if platform else ""
                await self.puller.pull(
                    ref, wanted or self.options.platform, self.options.registry_config, log.message
                )
                pending.set_result(self.images.resolve(ref))
            except BaseException as exc:
                pending.set_exception(
                    exc if isinstance(exc, Exception) else BuildError("cancelled")
                )
                pending.exception()  # retrieved: a sibling stage may never await it
                raise
        return await asyncio.shield(pending)

    def _check_platform(self, platform: str) -> None:
        if not platform:
            return
        wanted = self.lexer.expand(platform, self.args.meta_env()).lower()
        machine = os.uname().machine
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
        if wanted.split("/")[:2] != ["linux", arch][: len(wanted.split("/")[:2])]:
            raise InvalidParameter(
                f"platform {platform!r} is not supported here (this host builds linux/{arch})"
            )

    async def load(self, st: StageState, image_id: str) -> None:
        """Make ``image_id`` the stage's current image (after FROM or a cache hit)."""
        st.image_id = image_id
        # Read only (``commit`` builds new lists): the image service's parsed config as is.
        st.image_cfg = self.images.config(image_id) if image_id else {}
        st.config = copy.deepcopy(st.image_cfg.get("config") or empty_container_config())
        st.config["Image"] = image_id

    # ---- one step ------------------------------------------------------------------------------
    async def step(self, st: StageState, ins: Instruction) -> None:
        from dockyard.build import copystep, runstep, steps

        if ins.keyword == "RUN":
            await runstep.run(self, st, ins)
        elif ins.keyword in ("COPY", "ADD"):
            await copystep.copy(self, st, ins)
        elif ins.keyword == "WORKDIR":
            await copystep.workdir(self, st, ins)
        else:
            await steps.dispatch(self, st, ins)

    async def nop_container(self, st: StageState, container_config: dict[str, Any]) -> str:
        """The container moby's ``probeAndCreate`` makes for a step that changes only the
        config (or WORKDIR): created, never started, committed from, then dropped.  "" on
        ``scratch``: the container service needs an image (dockerd makes one there too)."""
        if not st.image_id:
            return ""
        cid = await self.runner.create(
            RunRequest(
                image_id=st.image_id,
                cmd=list(container_config.get("Cmd") or []),
                env=st.env,
                user=str(st.config.get("User") or ""),
                working_dir=str(st.config.get("WorkingDir") or ""),
                network_mode="none",
            )
        )
        await st.log.text(f" ---> Running in {cid[:12]}\n")
        return cid

    async def drop_container(self, st: StageState, cid: str, failed: bool = False) -> None:
        """After a step ran to its end: remove its container when ``rm`` (success) or
        ``forcerm`` (failure) asks for it, with moby's line; otherwise it stays, as with
        dockerd (``docker ps -a`` shows it, ``docker commit`` can inspect a failure)."""
        if not cid:
            return
        remove = self.options.force_rm or (self.options.rm and not failed)
        if remove:
            await asyncio.shield(self.runner.remove(cid))
            await st.log.text(f"Removing intermediate container {cid[:12]}\n")

    def facts(self, st: StageState, ins: Instruction, files: dict[str, str] | None = None) -> Facts:
        """The parts of a step's cache key, for ``--explain-cache``."""
        return Facts(ins.original, st.image_id, st.args.values(), files or {})

    def _cache_disabled(self, st: StageState) -> str:
        if self.options.no_cache:
            return "cache disabled (--no-cache)"
        if st.stage.name and st.stage.name in self.options.no_cache_filter:
            return f"cache disabled for stage {st.stage.name} (--no-cache-filter)"
        return ""

    async def cached(
        self,
        st: StageState,
        key: str,
        probe: dict[str, Any],
        facts: Facts | None = None,
        link: bool = False,
    ) -> bool:
        """Look ``key`` up (and the ``--cache-from`` images); on a hit, load it and say so.
        With ``--explain-cache`` every step says whether it hit, and why it missed.  A
        ``link`` key (COPY --link) does not hold the parent: a hit made on another parent
        is rebased, its layer put on this one."""
        st.facts = facts
        explain = self.options.explain_cache
        disabled = self._cache_disabled(st)
        if disabled:
            if explain:
                await st.log.text(f" ---> Cache miss: {disabled}\n")
            return False
        hit = self.cache.lookup(key)
        source = ""
        if hit is None and not link:  # a --link key names no parent to look for
            hit = self._cache_from_hit(st.image_id, probe)
            source = " (from a --cache-from image)"
        if hit is None:
            if explain:
                why = self.cache.explain(key, facts) if facts else "no record of this step"
                await st.log.text(f" ---> Cache miss: {why}\n")
            return False
        if explain:
            await st.log.text(f" ---> Cache hit{source}\n")
        await st.log.text(" ---> Using cache\n")
        if link and self.images.parent_of(hit) != st.image_id:
            await self._rebase(st, key, probe, hit)
        else:
            await self.load(st, hit)
        return True

    async def _rebase(self, st: StageState, key: str, probe: dict[str, Any], hit: str) -> None:
        """A COPY --link hit built on another parent: the same layer (a diff id already in
        the content store) committed on this parent, with this parent's config."""
        cfg = self.images.config(hit)
        diff_ids = cfg.get("rootfs", {}).get("diff_ids") or []
        last = (cfg.get("history") or [{}])[-1]
        diff_id = None if last.get("empty_layer") or not diff_ids else diff_ids[-1]
        st.facts = None
        await self.commit(st, key, probe, diff_id=diff_id)

    def _cache_from_images(self) -> list[str]:
        """Images named by ``--cache-from`` and their parent chains (moby's cache sources)."""
        found: list[str] = []
        for name in self.options.cache_from:
            try:
                image_id = self.images.resolve(name)
            except DockyardError:
                continue
            while image_id and image_id not in found:
                found.append(image_id)
                image_id = self.images.parent_of(image_id)
        return found

    def _cache_from_hit(self, parent: str, probe: dict[str, Any]) -> str | None:
        for image_id in self.cache_from:
            if self.images.parent_of(image_id) != parent or not parent:
                continue
            if self.images.config(image_id).get("container_config") == probe:
                return image_id
        return None

    async def commit(
        self,
        st: StageState,
        key: str,
        probe: dict[str, Any],
        *,
        container: str = "",
        layer: Any = None,
        diff_id: str | None = None,
    ) -> None:
        """Make the step's image: the stage config, one history entry, maybe a layer."""
        created = now_rfc3339()
        base = st.image_cfg
        entry: dict[str, Any] = {"created": created, "created_by": " ".join(probe["Cmd"])}
        if st.maintainer:
            entry["author"] = st.maintainer
        if layer is None and not diff_id:
            entry["empty_layer"] = True
        config = copy.deepcopy(st.config)
        config["Image"] = st.image_id
        new: dict[str, Any] = {
            "architecture": base.get("architecture") or _arch(),
            **({"author": st.maintainer} if st.maintainer else {}),
            "config": config,
            "container": container,
            "container_config": probe,
            "created": created,
            "docker_version": "dockyard-0.1.0",
            "history": [*(base.get("history") or []), entry],
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": list(base.get("rootfs", {}).get("diff_ids", [])),
            },
        }
        if base.get("variant"):
            new["variant"] = base["variant"]
        image_id = await self.images.commit_step(new, st.image_id, layer=layer, diff_id=diff_id)
        self.cache.remember(key, image_id, st.facts)
        st.facts = None
        await self.load(st, image_id)


def _parse_trigger(text: str, line: int) -> Instruction:
    try:
        df = parse(f"FROM scratch\n{text}\n", "ONBUILD trigger")
    except InvalidParameter as exc:
        raise InvalidParameter(f"line {line}: bad ONBUILD trigger {text!r}: {exc}") from exc
    (ins,) = df.stages[0].instructions
    return ins


def _short(image_id: str) -> str:
    return short_id(image_id) if image_id else ""


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
