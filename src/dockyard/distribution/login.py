"""``POST /auth``: check credentials against a registry's ``/v2/`` (asyncio world).

moby registry/auth.go loginV2: ping the registry, then ``GET /v2/`` through the auth flow the
registry asked for (Basic, or a Bearer token fetched with ``offline_token=true`` so that a
token server may hand back a refresh token, which becomes the ``IdentityToken``).  A registry
that asks for nothing accepts any credentials, as dockerd does.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dockyard.distribution.auth import AuthConfig
from dockyard.distribution.config import HUB_DOMAIN, RegistryConfig
from dockyard.distribution.transport import Transport, describe_error
from dockyard.errors import DockyardError, Internal, InvalidParameter, Unauthorized

__all__ = ["login", "registry_host"]

INDEX_SERVER = "https://index.docker.io/v1/"


def registry_host(server: str) -> str:
    """The registry host of a ``serveraddress`` (``https://h:5000/v1/`` → ``h:5000``)."""
    if not server:
        return HUB_DOMAIN
    if "://" in server:
        server = urlsplit(server).netloc
    host = server.split("/", 1)[0]
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return HUB_DOMAIN
    if not host:
        raise InvalidParameter(f"invalid registry address {server!r}")
    return host


async def login(transport: Transport, config: RegistryConfig, auth: AuthConfig) -> dict[str, str]:
    host = registry_host(auth.serveraddress)
    endpoints = [e for e in config.endpoints(host) if not e.mirror]
    last: DockyardError | None = None
    for endpoint in endpoints:
        try:
            authorizer = await transport.ping(endpoint, auth)
        except DockyardError as exc:
            last = exc
            continue
        url = endpoint.url + "/v2/"
        if not authorizer.needs_auth:
            return {"IdentityToken": "", "Status": "Login Succeeded"}
        header = await authorizer.header([], offline=True)
        if header is None:
            raise Unauthorized(f"login attempt to {url} failed: no basic auth credentials")
        try:
            async with transport.session.get(
                url, headers={"Authorization": header}, ssl=transport.ssl_for(endpoint)
            ) as resp:
                await resp.read()
                status, reason = resp.status, resp.reason or ""
        except Exception as exc:
            raise Internal(describe_error("GET", url, exc)) from exc
        if status == 200:
            return {"IdentityToken": authorizer.refresh_token or "", "Status": "Login Succeeded"}
        if status == 401:
            raise Unauthorized(f"login attempt to {url} failed with status: {status} {reason}")
        raise Internal(f"login attempt to {url} failed with status: {status} {reason}")
    assert last is not None
    raise last
