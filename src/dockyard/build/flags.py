"""Instruction flags (pure): which ``--name`` each instruction takes, checked as moby's BFlags.

A bool flag may be written ``--link`` or ``--link=false``; a string flag needs ``=value``;
a list flag (``--mount``, ``--exclude``) may repeat.  Anything else is refused with moby's
words (``Unknown flag: x``, ``duplicate flag specified: x``, ``missing a value on flag: x``).
"""

from __future__ import annotations

from dockyard.errors import InvalidParameter

__all__ = ["FLAGS", "parse_flags"]

_BOOL, _STRING, _LIST = "bool", "string", "list"

FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": _STRING},
    "RUN": {"mount": _LIST, "network": _STRING, "security": _STRING},
    "COPY": {
        "from": _STRING,
        "chown": _STRING,
        "chmod": _STRING,
        "link": _BOOL,
        "parents": _BOOL,
        "exclude": _LIST,
    },
    "ADD": {
        "chown": _STRING,
        "chmod": _STRING,
        "link": _BOOL,
        "keep-git-dir": _BOOL,
        "checksum": _STRING,
        "exclude": _LIST,
    },
    "HEALTHCHECK": {
        "interval": _STRING,
        "timeout": _STRING,
        "start-period": _STRING,
        "start-interval": _STRING,
        "retries": _STRING,
    },
}


def parse_flags(keyword: str, words: list[str]) -> dict[str, str | bool | list[str]]:
    """``["--from=a", "--link"]`` to ``{"from": "a", "link": True}`` for ``keyword``."""
    known = FLAGS.get(keyword, {})
    out: dict[str, str | bool | list[str]] = {}
    for word in words:
        if word == "--":
            break
        name, eq, value = word[2:].partition("=")
        kind = known.get(name)
        if kind is None:
            raise InvalidParameter(f"Unknown flag: {name}")
        if name in out and kind != _LIST:
            raise InvalidParameter(f"duplicate flag specified: {name}")
        if kind == _BOOL:
            if not eq or value.lower() == "true":
                out[name] = True
            elif value.lower() == "false":
                out[name] = False
            else:
                raise InvalidParameter(f"expecting boolean value for flag {name}, not: {value}")
        elif not eq:
            raise InvalidParameter(f"missing a value on flag: {name}")
        elif kind == _LIST:
            listed = out.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
        else:
            out[name] = value
    return out
