"""Decoding of query strings and JSON bodies into typed values.

Docker's rules: booleans follow moby's ``BoolValue`` (false for "", 0, no, false, none;
case-insensitive), ``filters`` is JSON in either of two shapes (ENGINE-API.md §1): the CLI's
``{"key": {"value": true}}`` map and docker-py's ``{"key": ["value"]}`` list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec
from aiohttp import web

from dockyard.errors import InvalidParameter

__all__ = ["Filters", "boolean", "integer", "json_body", "parse_filters"]

_FALSE = {"", "0", "no", "false", "none"}

Filters = dict[str, list[str]]


def boolean(query: Mapping[str, str], key: str, default: bool = False) -> bool:
    if key not in query:
        return default
    return query[key].strip().lower() not in _FALSE


def integer(query: Mapping[str, str], key: str, default: int | None = None) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameter(f"invalid value for {key!r}: {raw!r} is not an integer") from None


def parse_filters(raw: str | None, allowed: Iterable[str]) -> Filters:
    """Decode a ``filters`` query value; an unknown key is a 400 as dockerd answers."""
    if not raw:
        return {}
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidParameter(f"invalid filters: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidParameter("invalid filters: expected a JSON object")
    allowed_set = set(allowed)
    out: Filters = {}
    for key, value in data.items():
        if key not in allowed_set:
            raise InvalidParameter(f"Invalid filter '{key}'")
        if isinstance(value, dict):
            out[key] = [str(k) for k, on in value.items() if on]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, str):
            out[key] = [value]
        else:
            raise InvalidParameter(f"invalid filters: values of '{key}' must be a list or map")
    return out


async def json_body(request: web.Request) -> dict:
    """A request's JSON object body (empty: ``{}``); anything else is a 400."""
    ctype = request.headers.get("Content-Type", "")
    raw = await request.read()
    if raw and not ctype.startswith("application/json"):
        raise InvalidParameter(f"Content-Type specified ({ctype}) must be 'application/json'")
    if not raw:
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidParameter(f"invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidParameter("the request body must be a JSON object")
    return body
