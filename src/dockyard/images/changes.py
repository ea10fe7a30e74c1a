"""The ``changes`` of import and commit: Dockerfile instructions applied to an image config.

Docker allows CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR and
STOPSIGNAL here (moby builder/dockerfile: ``validCommitCommands``).  Pure logic.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from dockyard.errors import InvalidParameter

__all__ = ["ALLOWED", "apply_changes"]

ALLOWED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
)


def _json_or_shell(arg: str, shell_form: bool) -> list[str]:
    text = arg.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    if shell_form:
        return ["/bin/sh", "-c", text]
    return shlex.split(text)


def _pairs(instruction: str, arg: str) -> list[tuple[str, str]]:
    """``KEY=VALUE ...`` or the legacy ``KEY VALUE`` form of ENV and LABEL."""
    words = shlex.split(arg)
    if not words:
        raise InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        if len(words) < 2 and instruction == "ENV":
            raise InvalidParameter("ENV must have two arguments")
        key, _, rest = arg.strip().partition(" ")
        return [(key, rest.strip())]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidParameter(f"{instruction} names can not be blank; got {word!r}")
        out.append((key, value))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    """Apply each change line to the container-config part of an image config, in place."""
    for line in changes:
        line = line.strip()
        if not line:
            continue
        word, _, arg = line.partition(" ")
        instruction = word.upper()
        if instruction not in ALLOWED:
            raise InvalidParameter(f"{word} is not a valid change command")
        arg = arg.strip()
        if instruction == "CMD":
            config["Cmd"] = _json_or_shell(arg, shell_form=True)
        elif instruction == "ENTRYPOINT":
            config["Entrypoint"] = _json_or_shell(arg, shell_form=True)
        elif instruction == "ENV":
            env = [e for e in (config.get("Env") or [])]
            for key, value in _pairs("ENV", arg):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif instruction == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs("LABEL", arg))
            config["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in arg.split():
                number, _, proto = port.partition("/")
                if not number.replace("-", "").isdigit():
                    raise InvalidParameter(f"invalid containerPort: {number}")
                ports[f"{number}/{proto or 'tcp'}"] = {}
            config["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            volumes = dict(config.get("Volumes") or {})
            for path in _json_or_shell(arg, shell_form=False):
                volumes[path] = {}
            config["Volumes"] = volumes
        elif instruction == "ONBUILD":
            config["OnBuild"] = [*(config.get("OnBuild") or []), arg]
        elif instruction == "USER":
            config["User"] = arg
        elif instruction == "WORKDIR":
            config["WorkingDir"] = arg
        elif instruction == "STOPSIGNAL":
            config["StopSignal"] = arg
