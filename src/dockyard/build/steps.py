"""Metadata steps (asyncio world): ENV, ARG, LABEL, CMD, ENTRYPOINT, EXPOSE, VOLUME, USER,
STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD and MAINTAINER change the config only and are
committed as config-only images, with moby's commit comments (dispatchers.go)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from dockyard.build.cache import step_key
from dockyard.build.config import (
    check_signal,
    go_quote_list,
    healthcheck_comment,
    parse_duration,
    parse_ports,
    probe,
    set_env,
)
from dockyard.build.dockerfile import Instruction
from dockyard.errors import InvalidParameter

if TYPE_CHECKING:
    from dockyard.build.executor import Build, StageState

__all__ = ["dispatch"]


async def dispatch(build: Build, st: StageState, ins: Instruction) -> None:
    handler = _HANDLERS[ins.keyword]
    try:
        comment = handler(st, ins)
    except InvalidParameter as exc:
        raise InvalidParameter(f"line {ins.line}: {ins.keyword}: {exc.message}") from exc
    await commit_config(build, st, comment, ins)


async def commit_config(build: Build, st: StageState, comment: str, ins: Instruction) -> None:
    """moby's ``commit``: a config-only image whose Cmd is ``shell #(nop)  comment``."""
    container_config = probe(st.config, [*st.shell, "#(nop) ", comment])
    container_config["Image"] = st.image_id
    key = step_key(st.image_id, "config", container_config)
    if await build.cached(st, key, container_config, build.facts(st, ins)):
        return
    cid = await build.nop_container(st, container_config)
    try:
        await build.commit(st, key, container_config, container=cid)
    except BaseException:
        if cid:
            await asyncio.shield(build.runner.remove(cid))
        raise
    await build.drop_container(st, cid)


def _env(st: StageState, ins: Instruction) -> str:
    # The whole instruction is expanded with the variables from before it, as moby does:
    # in ``ENV A=1 B=$A`` B gets the old A.
    pairs = [(st.word(k), st.word(v or "")) for k, v in ins.pairs]
    env = st.env
    for key, value in pairs:
        env = set_env(env, key, value)
    st.config["Env"] = env
    return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)


def _arg(st: StageState, ins: Instruction) -> str:
    pairs = [(name, st.word(d) if d is not None else None) for name, d in ins.pairs]
    for name, value in pairs:
        st.args.declare(name, value)
    return "ARG " + " ".join(name if v is None else f"{name}={v}" for name, v in pairs)


def _label(st: StageState, ins: Instruction) -> str:
    labels = dict(st.config.get("Labels") or {})
    parts = []
    for raw_key, raw_value in ins.pairs:
        key, value = st.word(raw_key), st.word(raw_value or "")
        labels[key] = value
        parts.append(f"{key}={value}")
    st.config["Labels"] = labels
    return "LABEL " + " ".join(parts)


def command(st: StageState, ins: Instruction) -> list[str]:
    """CMD/ENTRYPOINT/RUN/HEALTHCHECK argv: JSON as given, shell form through SHELL."""
    if ins.json:
        return list(ins.args)
    return [*st.shell, ins.args[0]] if ins.args else []


def _cmd(st: StageState, ins: Instruction) -> str:
    cmd = command(st, ins)
    st.config["Cmd"] = cmd
    if ins.args:
        st.cmd_set = True
    return f"CMD {go_quote_list(cmd)}"


def _entrypoint(st: StageState, ins: Instruction) -> str:
    entrypoint = command(st, ins) if (ins.json or ins.args) else []
    st.config["Entrypoint"] = entrypoint or None
    if not st.cmd_set:
        st.config["Cmd"] = None
    return f"ENTRYPOINT {go_quote_list(entrypoint)}"


def _expose(st: StageState, ins: Instruction) -> str:
    specs = [w for arg in ins.args for w in st.words(arg)]
    ports = dict(st.config.get("ExposedPorts") or {})
    for key in parse_ports(specs):
        ports[key] = {}
    st.config["ExposedPorts"] = ports
    return "EXPOSE " + " ".join(sorted(specs))  # moby sorts them


def _volume(st: StageState, ins: Instruction) -> str:
    paths = (
        [st.word(a) for a in ins.args]
        if ins.json
        else [w for arg in ins.args for w in st.words(arg)]
    )
    volumes = dict(st.config.get("Volumes") or {})
    for path in paths:
        if not path.strip():
            raise InvalidParameter("VOLUME specified can not be an empty string")
        volumes[path] = {}
    st.config["Volumes"] = volumes
    return "VOLUME [" + " ".join(paths) + "]"


def _user(st: StageState, ins: Instruction) -> str:
    st.config["User"] = st.word(ins.args[0])
    return "USER " + st.config["User"]


def _stopsignal(st: StageState, ins: Instruction) -> str:
    st.config["StopSignal"] = check_signal(st.word(ins.args[0]))
    return "STOPSIGNAL " + st.config["StopSignal"]


def _maintainer(st: StageState, ins: Instruction) -> str:
    st.maintainer = st.word(ins.args[0])
    return "MAINTAINER " + st.maintainer


def _shell(st: StageState, ins: Instruction) -> str:
    st.config["Shell"] = list(ins.args)
    return "SHELL [" + " ".join(ins.args) + "]"


def _onbuild(st: StageState, ins: Instruction) -> str:
    expression = ins.args[0]
    st.config["OnBuild"] = [*(st.config.get("OnBuild") or []), expression]
    return "ONBUILD " + expression


def _healthcheck(st: StageState, ins: Instruction) -> str:
    if ins.args[0] == "NONE":
        health: dict[str, Any] = {"Test": ["NONE"]}
    else:
        rest = ins.args[1:]
        test = ["CMD", *rest] if ins.json else ["CMD-SHELL", rest[0]]
        health = {"Test": test}
        for flag, key in (
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("start-period", "StartPeriod"),
            ("start-interval", "StartInterval"),
        ):
            if flag in ins.flags:
                value = parse_duration(str(ins.flags[flag]), flag)
                if value:
                    health[key] = value
        if "retries" in ins.flags:
            try:
                retries = int(str(ins.flags["retries"]))
            except ValueError:
                raise InvalidParameter(
                    f'strconv.ParseInt: parsing "{ins.flags["retries"]}": invalid syntax'
                ) from None
            if retries < 0:
                raise InvalidParameter(f"--retries cannot be negative ({retries})")
            if retries:
                health["Retries"] = retries
    st.config["Healthcheck"] = health
    return healthcheck_comment(health)


_HANDLERS = {
    "ENV": _env,
    "ARG": _arg,
    "LABEL": _label,
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "EXPOSE": _expose,
    "VOLUME": _volume,
    "USER": _user,
    "STOPSIGNAL": _stopsignal,
    "MAINTAINER": _maintainer,
    "SHELL": _shell,
    "ONBUILD": _onbuild,
    "HEALTHCHECK": _healthcheck,
}
