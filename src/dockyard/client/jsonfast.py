"""JSON for the CLI without the ``json`` package (CLI world, start-up cost).

``import json`` pulls in ``re`` (and with it enum and functools): ~7 ms, a third of the
CLI's budget against the Go docker binary.  The C scanner and string encoder in ``_json``
are what ``json`` itself uses; this module drives them directly.  Errors fall back to the
real ``json`` module so messages stay the standard ones.
"""

from __future__ import annotations

import _json

__all__ = ["dumps", "loads"]


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


def loads(data: bytes | str) -> object:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except (StopIteration, SystemError):
        # SystemError: the C scanner reports a syntax error by raising json.decoder's
        # JSONDecodeError, which it cannot find until ``json`` has been imported.
        end = -1
    if end < 0 or text[end:].strip(_WS):
        import json

        return json.loads(text)  # raises the standard, informative error
    return value


def dumps(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
