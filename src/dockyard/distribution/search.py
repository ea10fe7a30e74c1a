"""``GET /images/search`` through a registry's ``/v1/search`` (asyncio world).

As moby registry/service.go Search: a term ``host/words`` searches that registry, anything
else Docker Hub's index; ``limit`` is 1..100 (25 by default); ``is-official``,
``is-automated`` and ``stars`` filters are applied by the daemon to what the index returns.
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.distribution.auth import AuthConfig
from dockyard.distribution.config import HUB_DOMAIN, RegistryConfig
from dockyard.distribution.transport import Transport, describe_error, registry_message
from dockyard.errors import DockyardError, Internal, InvalidParameter

__all__ = ["search"]

HUB_INDEX = "index.docker.io"
DEFAULT_LIMIT = 25


def _split(term: str) -> tuple[str, str]:
    first, slash, rest = term.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return HUB_DOMAIN, term


def _bool_filter(filters: dict[str, list[str]], key: str) -> bool | None:
    values = filters.get(key)
    if not values:
        return None
    value = values[-1].lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidParameter(f"Invalid filter '{key}={values[-1]}'")
    return value in ("true", "1")


async def search(
    transport: Transport,
    config: RegistryConfig,
    term: str,
    limit: int | None,
    filters: dict[str, list[str]],
    auth: AuthConfig,
) -> list[dict[str, Any]]:
    if limit is None or limit == 0:
        limit = DEFAULT_LIMIT
    if limit < 1 or limit > 100:
        raise InvalidParameter(f"Limit {limit} is outside the range of [1, 100]")
    official = _bool_filter(filters, "is-official")
    automated = _bool_filter(filters, "is-automated")
    stars = 0
    if filters.get("stars"):
        try:
            stars = int(filters["stars"][-1])
        except ValueError:
            raise InvalidParameter(f"Invalid filter 'stars={filters['stars'][-1]}'") from None
    host, words = _split(term)
    endpoints = config.endpoints(host) if host != HUB_DOMAIN else config.endpoints(HUB_INDEX)
    endpoints = [e for e in endpoints if not e.mirror]
    last: DockyardError | None = None
    for endpoint in endpoints:
        url = f"{endpoint.url}/v1/search"
        headers = {}
        if not auth.empty and auth.username:
            import base64

            creds = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
            headers["Authorization"] = f"Basic {creds}"
        try:
            async with transport.session.get(
                url,
                params={"q": words, "n": str(limit)},
                headers=headers,
                ssl=transport.ssl_for(endpoint),
            ) as resp:
                body = await resp.read()
                status = resp.status
        except Exception as exc:
            last = Internal(describe_error("GET", url, exc))
            continue
        if status != 200:
            message, _ = registry_message(body, status)
            raise Internal(f"Unexpected status code {status}: {message}")
        try:
            data = json.loads(body)
            results = data.get("results") or []
        except (ValueError, AttributeError) as exc:
            raise Internal(f"invalid search answer from {url}: {exc}") from exc
        out: list[dict[str, Any]] = []
        for r in results:
            if not isinstance(r, dict):
                continue
            item = {
                "star_count": int(r.get("star_count") or 0),
                "is_official": bool(r.get("is_official")),
                "name": str(r.get("name", "")),
                "is_automated": bool(r.get("is_automated")),
                "description": str(r.get("description", "")),
            }
            if official is not None and item["is_official"] != official:
                continue
            if automated is not None and item["is_automated"] != automated:
                continue
            if item["star_count"] < stars:
                continue
            out.append(item)
        return out[:limit]
    assert last is not None
    raise last
