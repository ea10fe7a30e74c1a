"""An upstream registry as the pull-through cache sees it (asyncio world).

Only what a cache needs: authenticated ``GET``/``HEAD`` of manifests and blobs.  Auth is
Docker's: a request answered 401 with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``
gets a token from the realm (with this upstream's own credentials, if it has any) and is
retried once; ``Basic`` challenges get the credentials directly.  Tokens are cached per
scope until shortly before they expire.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import aiohttp

from dockyard.distribution.registry.errors import RegistryError

__all__ = ["Upstream", "UpstreamConfig"]

_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """One upstream: repositories under ``prefix/`` (``""``: all of them) come from ``url``."""

    prefix: str
    url: str
    username: str = ""
    password: str = ""
    ttl: float = 300.0  # a cached tag is revalidated after this many seconds
    tls_verify: bool = True


class Upstream:
    """Authenticated requests to one upstream registry."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, tuple[str, float]] = {}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=None if self.config.tls_verify else False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300),
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _basic(self) -> dict[str, str]:
        """This upstream's credentials as an Authorization header (none: anonymous)."""
        if self.config.username:
            auth = aiohttp.encode_basic_auth(self.config.username, self.config.password)
            return {"Authorization": auth}
        return {}

    async def _token(self, challenge: str, scope: str) -> str:
        cached = self._tokens.get(scope)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        params = dict(_PARAM.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise RegistryError("UNAVAILABLE", f"upstream {self.config.url}: bad challenge")
        query = {"scope": scope}
        if params.get("service"):
            query["service"] = params["service"]
        async with self.session().get(realm, params=query, headers=self._basic()) as resp:
            if resp.status != 200:
                raise RegistryError(
                    "UNAUTHORIZED", f"upstream token server {realm} answered {resp.status}"
                )
            body = await resp.json(content_type=None)
        token = str(body.get("token") or body.get("access_token") or "")
        expires = float(body.get("expires_in") or 60)
        self._tokens[scope] = (token, time.time() + max(expires - 10, 5))
        return token

    async def request(
        self, method: str, repository: str, path: str, headers: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """``method`` on ``/v2/<repository>/<path>``; the caller releases the response.
        ``UNAVAILABLE`` when the upstream cannot be reached."""
        url = f"{self.config.url.rstrip('/')}/v2/{repository}/{path}"
        scope = f"repository:{repository}:pull"
        headers = dict(headers or {})
        cached = self._tokens.get(scope)
        if cached is not None and cached[1] > time.time():
            headers["Authorization"] = f"Bearer {cached[0]}"
        try:
            resp = await self.session().request(method, url, headers=headers)
            if resp.status != 401:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.release()
            if challenge.lower().startswith("bearer"):
                headers["Authorization"] = f"Bearer {await self._token(challenge, scope)}"
                return await self.session().request(method, url, headers=headers)
            headers.pop("Authorization", None)
            headers.update(self._basic())
            return await self.session().request(method, url, headers=headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RegistryError(
                "UNAVAILABLE", f"upstream {self.config.url} unreachable: {exc}"
            ) from exc
