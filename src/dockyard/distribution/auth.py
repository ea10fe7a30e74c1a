"""Registry credentials and the token flow (asyncio world for fetching, pure for parsing).

- ``AuthConfig.decode`` reads ``X-Registry-Auth``: base64url JSON of moby's
  ``types.AuthConfig`` (``username``, ``password``, ``serveraddress``, ``identitytoken``,
  ``registrytoken``).  As dockerd 20.10, an undecodable header counts as no credentials.
- ``parse_challenges`` reads ``WWW-Authenticate`` (``Bearer realm=..,service=..,scope=..`` or
  ``Basic realm=..``), as docker/distribution ``registry/client/auth/challenge``.
- ``Authorizer`` answers the ``Authorization`` header for one registry host and scope: Basic
  with the credentials, or a Bearer token from the realm (anonymous when there are no
  credentials; refresh token / identity token posted as OAuth2 ``refresh_token`` grant, as
  docker/distribution's token handler does), cached until it expires.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from dockyard.errors import Unauthorized

__all__ = ["AuthConfig", "Authorizer", "Challenge", "parse_challenges"]

_CLIENT_ID = "docker"
_MIN_TOKEN_LIFETIME = 60  # seconds; docker/distribution's minimum when expires_in is short


@dataclass(frozen=True, slots=True)
class AuthConfig:
    username: str = ""
    password: str = ""
    serveraddress: str = ""
    identitytoken: str = ""
    registrytoken: str = ""

    @classmethod
    def from_json(cls, data: object) -> AuthConfig:
        if not isinstance(data, dict):
            return cls()

        def text(key: str) -> str:
            value = data.get(key) or data.get(key.capitalize()) or ""
            return value if isinstance(value, str) else ""

        # Older clients send "auth" = base64(user:password) instead of the two fields.
        username, password = text("username"), text("password")
        encoded = text("auth")
        if encoded and not username:
            try:
                username, _, password = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
        return cls(
            username=username,
            password=password,
            serveraddress=text("serveraddress"),
            identitytoken=text("identitytoken"),
            registrytoken=text("registrytoken"),
        )

    @classmethod
    def decode(cls, header: str | None) -> AuthConfig:
        """The ``X-Registry-Auth`` header; empty credentials when absent or garbled."""
        if not header:
            return cls()
        raw = header.strip()
        padded = raw + "=" * (-len(raw) % 4)
        for decoder in (base64.urlsafe_b64decode, base64.standard_b64decode):
            try:
                return cls.from_json(json.loads(decoder(padded)))
            except (binascii.Error, ValueError):
                continue
        return cls()

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identitytoken or self.registrytoken)


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str]


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Every challenge of every ``WWW-Authenticate`` header (quoted values, commas inside)."""
    out: list[Challenge] = []
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        params: dict[str, str] = {}
        i, n = 0, len(rest)
        while i < n:
            while i < n and rest[i] in " ,":
                i += 1
            eq = rest.find("=", i)
            if eq < 0:
                break
            key = rest[i:eq].strip().lower()
            i = eq + 1
            if i < n and rest[i] == '"':
                i += 1
                value = []
                while i < n and rest[i] != '"':
                    if rest[i] == "\\" and i + 1 < n:
                        i += 1
                    value.append(rest[i])
                    i += 1
                i += 1
                params[key] = "".join(value)
            else:
                end = rest.find(",", i)
                end = n if end < 0 else end
                params[key] = rest[i:end].strip()
                i = end
        if scheme:
            out.append(Challenge(scheme.lower(), params))
    return out


@dataclass(slots=True)
class _Token:
    value: str
    expires: float


class Authorizer:
    """``Authorization`` headers for one registry, given what its ``/v2/`` answered.

    One per (registry, credentials); tokens are cached per scope string.  ``refresh_token``
    remembers an identity token the realm handed out (``POST /auth`` returns it)."""

    def __init__(self, session: aiohttp.ClientSession, auth: AuthConfig, ssl: Any) -> None:
        self.session = session
        self.auth = auth
        self.ssl = ssl
        self.challenges: list[Challenge] = []
        self._tokens: dict[str, _Token] = {}
        self.refresh_token = auth.identitytoken

    def learn(self, www_authenticate: list[str]) -> None:
        self.challenges = parse_challenges(www_authenticate)

    @property
    def needs_auth(self) -> bool:
        return bool(self.challenges)

    @property
    def basic_only(self) -> bool:
        """The registry asks for Basic credentials and there are none to give."""
        schemes = {c.scheme for c in self.challenges}
        return schemes == {"basic"} and not self.auth.username

    async def header(self, scopes: list[str], offline: bool = False) -> str | None:
        if self.auth.registrytoken:
            return f"Bearer {self.auth.registrytoken}"
        for challenge in self.challenges:
            if challenge.scheme == "bearer" and "realm" in challenge.params:
                return "Bearer " + await self._token(challenge.params, scopes, offline)
        for challenge in self.challenges:
            if challenge.scheme == "basic" and self.auth.username:
                creds = f"{self.auth.username}:{self.auth.password}".encode()
                return "Basic " + base64.b64encode(creds).decode()
        return None

    def forget(self, scopes: list[str]) -> None:
        """Drop a cached token the registry refused (expired early, revoked)."""
        self._tokens.pop(" ".join(scopes), None)

    async def _token(self, params: dict[str, str], scopes: list[str], offline: bool) -> str:
        key = " ".join(scopes)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires > time.monotonic():
            return cached.value
        realm = params["realm"]
        service = params.get("service", "")
        if self.refresh_token:
            data = await self._post_token(realm, service, scopes)
        else:
            data = await self._get_token(realm, service, scopes, offline)
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str) or not token:
            raise Unauthorized(f"authorization server {realm} returned no token")
        if isinstance(data.get("refresh_token"), str) and data["refresh_token"]:
            self.refresh_token = data["refresh_token"]
        lifetime = data.get("expires_in")
        if not isinstance(lifetime, int) or lifetime < _MIN_TOKEN_LIFETIME:
            lifetime = _MIN_TOKEN_LIFETIME
        self._tokens[key] = _Token(token, time.monotonic() + lifetime - 5)
        return token

    async def _get_token(
        self, realm: str, service: str, scopes: list[str], offline: bool
    ) -> dict[str, Any]:
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        query.extend(("scope", s) for s in scopes)
        basic = None
        if self.auth.username:
            query.append(("account", self.auth.username))
            basic = aiohttp.BasicAuth(self.auth.username, self.auth.password)
        if offline:
            query += [("offline_token", "true"), ("client_id", _CLIENT_ID)]
        return await self._fetch("GET", realm, params=query, auth=basic)

    async def _post_token(self, realm: str, service: str, scopes: list[str]) -> dict[str, Any]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "service": service,
            "client_id": _CLIENT_ID,
            "scope": " ".join(scopes),
        }
        return await self._fetch("POST", realm, data=form)

    async def _fetch(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        try:
            async with self.session.request(method, url, ssl=self.ssl, **kw) as resp:
                body = await resp.read()
                if resp.status in (401, 403):
                    raise Unauthorized(_token_error(body, resp.status))
                if resp.status >= 400:
                    raise Unauthorized(
                        f"token server {url} answered {resp.status}: "
                        f"{body[:200].decode(errors='replace').strip()}"
                    )
        except aiohttp.ClientError as exc:
            raise Unauthorized(f"cannot reach the token server {url}: {exc}") from exc
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise Unauthorized(f"token server {url} returned invalid JSON") from exc
        return data if isinstance(data, dict) else {}


def _token_error(body: bytes, status: int) -> str:
    """docker/distribution's message for a refused token request."""
    try:
        data = json.loads(body)
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors and isinstance(errors, list) and isinstance(errors[0], dict):
            code = str(errors[0].get("code", "UNAUTHORIZED")).lower().replace("_", " ")
            return f"{code}: {errors[0].get('message', '')}"
        if isinstance(data, dict) and data.get("details"):
            return f"unauthorized: {data['details']}"
    except ValueError:
        pass
    text = body.decode(errors="replace").strip()
    return f"unauthorized: {text}" if text else "unauthorized: incorrect username or password"
