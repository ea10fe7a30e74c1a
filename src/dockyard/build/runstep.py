"""RUN steps (asyncio world): a container per step through the ``StepRunner``, committed
when it exits 0, removed as moby's legacy builder removes it (``Build.drop_container``).

As moby's dispatchRun: the command is the shell form through SHELL (``/bin/sh -c``) or the
JSON form as given; the container gets the stage's config with the build args added to
its environment, no entrypoint and no health check; the history and the cache key use the
command prefixed with the build args (``|2 A=1 B=2 /bin/sh -c make``).  Heredocs are handed
to the shell, which implements them (``RUN <<EOF`` alone runs the body as the script, or
executes it when it starts with ``#!``).  ``--mount`` binds context paths, stage files,
cache directories, tmpfs and secrets (the build's ``secrets``, a private file per step;
their content is in no layer, history entry or cache key: as BuildKit, a changed secret
does not bust the cache); ``--network`` overrides the build's network mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from dockyard.build.base import RunMount, RunRequest
from dockyard.build.cache import step_key
from dockyard.build.config import probe
from dockyard.build.dockerfile import Instruction
from dockyard.build.mounts import MountSpec, parse_mount
from dockyard.build.sources import scoped
from dockyard.build.steps import command
from dockyard.build.view import RootView
from dockyard.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.build.executor import Build, StageState

__all__ = ["run"]

_NETWORKS = ("default", "none", "host", "sandbox")


def _script(st: StageState, ins: Instruction) -> tuple[list[str], str | None]:
    """The argv, and a script body to execute when ``RUN <<EOF`` starts with ``#!``."""
    if ins.json or not ins.heredocs:
        return command(st, ins), None
    text = ins.args[0].strip()
    first = ins.heredocs[0]
    if len(ins.heredocs) == 1 and text.lstrip("<-").strip("'\"") == first.name:
        if first.content.startswith("#!"):
            return [], first.content
        return [*st.shell, first.content.rstrip("\n")], None
    body = text + "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
    return [*st.shell, body], None


async def run(build: Build, st: StageState, ins: Instruction) -> None:
    cmd, script = _script(st, ins)
    specs = [parse_mount(st.word(m)) for m in ins.flags.get("mount", [])]  # type: ignore[union-attr]
    network = str(ins.flags.get("network") or "")
    if network and network not in _NETWORKS:
        raise InvalidParameter(
            f"line {ins.line}: RUN --network={network}: use default, none or host"
        )
    network = "default" if network == "sandbox" else network
    if ins.flags.get("security") not in (None, "sandbox"):
        raise InvalidParameter(
            f"line {ins.line}: RUN --security={ins.flags['security']} needs BuildKit's "
            "security.insecure entitlement, which this daemon does not grant"
        )
    saved = [*st.args.history_prefix(st.env), *(cmd or ["<<" + ins.heredocs[0].name])]
    container_config = probe(st.config, saved)
    container_config["Entrypoint"] = None
    key = step_key(
        st.image_id,
        "RUN",
        container_config,
        [h.content for h in ins.heredocs],
        [s.__repr__() for s in specs],
        network,
    )
    if await build.cached(st, key, container_config, build.facts(st, ins)):
        return
    stack = contextlib.ExitStack()
    try:
        mounts = await asyncio.to_thread(_prepare_mounts, build, st, specs, script, stack)
        if script is not None:
            cmd = ["/dev/pipes/script"]
        stage_mounts = []
        for spec in specs:
            if spec.type == "bind" and spec.from_:
                stage_mounts.append(spec)
        for spec in stage_mounts:
            mounts.append(await _from_mount(build, st, spec, stack))
        await _run_container(build, st, ins, cmd, container_config, key, mounts, network)
    finally:
        await asyncio.to_thread(stack.close)


async def _run_container(
    build: Build,
    st: StageState,
    ins: Instruction,
    cmd: list[str],
    container_config: dict[str, object],
    key: str,
    mounts: list[RunMount],
    network: str,
) -> None:
    options = build.options
    env = st.env
    request = RunRequest(
        image_id=st.image_id,
        cmd=cmd,
        env=[*env, *st.args.for_run(env)],
        user=str(st.config.get("User") or ""),
        working_dir=str(st.config.get("WorkingDir") or ""),
        mounts=tuple(mounts),
        network_mode=network or options.network_mode or "default",
        extra_hosts=options.extra_hosts,
        shm_size=options.shm_size,
        memory=options.memory,
        memory_swap=options.memory_swap,
        cpu_shares=options.cpu_shares,
        cpuset_cpus=options.cpuset_cpus,
        cpu_period=options.cpu_period,
        cpu_quota=options.cpu_quota,
        ulimits=options.ulimits,
        cgroup_parent=options.cgroup_parent,
    )
    cid = await build.runner.create(request)
    ok = failed = False
    try:
        await st.log.text(f" ---> Running in {cid[:12]}\n")
        code = await build.runner.run(cid, st.log.raw)
        if code != 0:
            from dockyard.build.executor import BuildError

            failed = True
            raise BuildError(
                f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code
            )
        diff_id = await build.runner.commit(cid)
        try:
            empty = await asyncio.to_thread(_is_empty, build, diff_id)
            await build.commit(
                st, key, container_config, container=cid, diff_id=None if empty else diff_id
            )
        finally:
            await build.runner.release(cid)
        ok = True
    finally:
        # As moby's legacy builder: a step that ran to its end (success, or a non-zero
        # exit) keeps its container unless rm (success) or forcerm (failure) says
        # otherwise, and says so; a step stopped half-way (cancel, daemon fault) leaves
        # nothing behind.
        if ok or failed:
            await build.drop_container(st, cid, failed)
        else:
            await asyncio.shield(build.runner.remove(cid))


def _is_empty(build: Build, diff_id: str) -> bool:
    import tarfile

    with build.images.tars.open(diff_id) as f:
        try:
            with tarfile.open(fileobj=f, mode="r|") as tf:
                return next(iter(tf), None) is None
        except tarfile.TarError:
            return False


def _prepare_mounts(
    build: Build,
    st: StageState,
    specs: list[MountSpec],
    script: str | None,
    stack: contextlib.ExitStack,
) -> list[RunMount]:
    mounts: list[RunMount] = []
    if script is not None:
        tmp = tempfile.mkdtemp(prefix="heredoc-", dir=build.images.tmpdir)
        stack.callback(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "script")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        os.chmod(path, 0o755)
        os.chmod(tmp, 0o755)
        mounts.append(RunMount("bind", "/dev/pipes/script", path, readonly=True))
    for spec in specs:
        if spec.type == "cache":
            path = build.cache.mount_dir(spec.id, spec.mode, spec.uid, spec.gid)
            mounts.append(RunMount("bind", spec.target, path, readonly=spec.readonly))
        elif spec.type == "tmpfs":
            mounts.append(RunMount("tmpfs", spec.target, spec.size))
        elif spec.type == "secret":
            path = _secret_file(build, spec, stack)
            if path:
                mounts.append(RunMount("bind", spec.target, path, readonly=True))
        elif spec.type == "bind" and not spec.from_:
            source = scoped(build.context.root, spec.source or ".")
            if not os.path.exists(source):
                raise InvalidParameter(
                    f"RUN --mount: {spec.source or '.'} is not in the build context"
                )
            if not spec.readonly:
                copy_dir = tempfile.mkdtemp(prefix="bind-", dir=build.images.tmpdir)
                stack.callback(shutil.rmtree, copy_dir, True)
                target = os.path.join(copy_dir, "src")
                if os.path.isdir(source):
                    shutil.copytree(source, target, symlinks=True)
                else:
                    shutil.copy2(source, target)
                source = target
            mounts.append(RunMount("bind", spec.target, source, readonly=spec.readonly))
    return mounts


def _secret_file(build: Build, spec: MountSpec, stack: contextlib.ExitStack) -> str:
    """The secret's content in a private file for this step's bind mount, removed when the
    step ends; "" for an optional secret the build was not given (BuildKit then mounts
    nothing).  The file lives in the data root's tmp dir (0700, emptied at daemon start),
    so a crash cannot leave it behind; its mode and owner are what the step sees (BuildKit's
    defaults: 0400, root)."""
    value = build.options.secrets.get(spec.id)
    if value is None:
        if spec.required:
            raise InvalidParameter(
                f"secret {spec.id} not found: it is required (pass it with "
                f"dockyard build --secret id={spec.id},src=FILE)"
            )
        return ""
    tmp = tempfile.mkdtemp(prefix="secret-", dir=build.images.tmpdir)
    stack.callback(shutil.rmtree, tmp, True)
    path = os.path.join(tmp, "secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    os.chown(path, spec.uid or 0, spec.gid or 0)
    os.chmod(path, 0o400 if spec.mode is None else spec.mode)
    return path


async def _from_mount(
    build: Build, st: StageState, spec: MountSpec, stack: contextlib.ExitStack
) -> RunMount:
    name = st.word(spec.from_)
    index = build.stage_ref(name)
    if index is not None:
        image_id = (await build.stage_result(index)).image_id
    else:
        image_id = await build.image(name, st.log)
    view = RootView(build.images.driver, build.images.top_layer(image_id) if image_id else None)
    root = await asyncio.to_thread(view.__enter__)
    stack.callback(view.__exit__, None, None, None)
    source = scoped(root, spec.source or "/")
    return RunMount("bind", spec.target, source, readonly=spec.readonly)
