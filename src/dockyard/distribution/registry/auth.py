"""Access control (asyncio world): htpasswd basic auth, Docker token auth, the token server.

Each request needs a list of ``Access`` (``repository:NAME:pull,push``, as Docker's token
scopes); an empty list means "any authenticated client" (``GET /v2/``).  Three modes:

- none: everything is allowed (the default, for loopback use);
- htpasswd: HTTP basic auth against bcrypt entries; a known user may do everything
  (distribution's htpasswd controller);
- token: a ``Bearer`` JWT from the configured issuer, verified against its public keys,
  must grant every needed action (docs/spec/auth/token.md in distribution).  Without one the
  answer is 401 with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` so the client
  knows where to get a token and for what.  A signed-in user's token that names the
  repository but leaves the action out (the token server refused it) is 403 ``DENIED``, as
  Docker Hub answers a push to someone else's repository: a new token would not help.

With a signing key, ``/token`` is this registry's own token server: it authenticates the
htpasswd users (or none: anonymous) and grants the requested actions that the rules allow.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import hashlib
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from dockyard.distribution.registry.config import Config, Rule, TokenConfig
from dockyard.distribution.registry.errors import RegistryError
from dockyard.distribution.registry.names import check_name

__all__ = [
    "MOUNT_DENIED",
    "ROUTE",
    "USER",
    "Access",
    "Authorizer",
    "Challenge",
    "Htpasswd",
    "required",
]

USER: web.RequestKey[str] = web.RequestKey("user", str)  # who the request authenticated as
ROUTE: web.RequestKey[str] = web.RequestKey("route", str)  # route kind, for logs and metrics
MOUNT_DENIED: web.RequestKey[bool] = web.RequestKey("mount_denied", bool)
# bcrypt, jwt and cryptography are imported where used: together they add ~12 MB to every
# worker's idle RSS, and a registry without auth never needs them.
_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "EdDSA"]


@dataclass(frozen=True, slots=True)
class Access:
    """One resource and the actions wanted on it."""

    type: str
    name: str
    actions: tuple[str, ...]

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


class Challenge(RegistryError):
    """A 401 with the ``WWW-Authenticate`` header the client must answer."""

    def __init__(self, challenge: str, message: str = "", code: str = "UNAUTHORIZED") -> None:
        super().__init__(code, message or "authentication required")
        self.challenge = challenge


def required(kind: str, method: str, params: dict[str, str]) -> list[Access]:
    """The access a route and method need, as distribution's handlers declare them."""
    if kind == "base":
        return []
    if kind == "catalog":
        return [Access("registry", "catalog", ("*",))]
    name = params["name"]
    if method in ("GET", "HEAD") and kind not in ("upload", "uploads"):
        return [Access("repository", name, ("pull",))]
    if method == "DELETE" and kind in ("manifest", "blob"):
        return [Access("repository", name, ("delete",))]
    return [Access("repository", name, ("pull", "push"))]


def mount_source(request: web.Request) -> Access | None:
    """A cross-repository mount also reads its source repository."""
    source = request.query.get("from")
    if "mount" not in request.query or not source:
        return None
    try:
        return Access("repository", check_name(source), ("pull",))
    except RegistryError:
        return None


class Htpasswd:
    """bcrypt entries of an htpasswd file; checks are cached (bcrypt is slow by design)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._ok: set[bytes] = set()
        with open(path, encoding="utf-8") as f:
            for line in f:
                user, sep, hashed = line.strip().partition(":")
                if sep and user and not user.startswith("#"):
                    self._users[user] = hashed.encode()

    async def check(self, user: str, password: str) -> bool:
        hashed = self._users.get(user)
        if hashed is None or not hashed.startswith(b"$2"):
            return False
        key = hashlib.sha256(f"{user}\0{password}".encode() + hashed).digest()
        if key in self._ok:
            return True
        import bcrypt

        ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed)
        if ok:
            self._ok.add(key)
        return ok


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _load_key(path: str) -> object:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(path, "rb") as f:
        data = f.read()
    if b"CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


class TokenIssuer:
    """Signs tokens for the built-in ``/token`` endpoint."""

    def __init__(self, config: TokenConfig) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        with open(config.signing_key, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            self.algorithm = "ES256"
        elif isinstance(self.key, rsa.RSAPrivateKey):
            self.algorithm = "RS256"
        else:
            raise ValueError("the token signing key must be an EC (P-256) or RSA key")
        self.config = config

    def grant(self, user: str, wanted: list[Access]) -> list[Access]:
        """The part of ``wanted`` the rules give ``user`` (``""`` = anonymous)."""
        out = []
        for access in wanted:
            allowed: set[str] = set()
            for rule in self.config.rules:
                if _rule_applies(rule, user, access):
                    allowed.update(rule.actions)
            if access.type == "registry":
                actions = ("*",) if "*" in allowed else ()
            else:
                actions = tuple(a for a in access.actions if a in allowed or "*" in allowed)
            if actions:
                out.append(Access(access.type, access.name, actions))
        return out

    def sign(self, user: str, granted: list[Access], service: str) -> tuple[str, int]:
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.config.issuer,
            "sub": user,
            "aud": service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.config.expiry,
            "jti": secrets.token_hex(16),
            "access": [
                {"type": a.type, "name": a.name, "actions": list(a.actions)} for a in granted
            ],
        }
        return jwt.encode(claims, self.key, algorithm=self.algorithm), now  # type: ignore[arg-type]


def _rule_applies(rule: Rule, user: str, access: Access) -> bool:
    if rule.user != "*" and rule.user != user:
        return False
    if access.type == "registry":
        return rule.repository == "*"
    return fnmatch.fnmatchcase(access.name, rule.repository)


def _scopes(raw: list[str]) -> list[Access]:
    out = []
    for item in raw:
        for scope in item.split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind in ("repository", "registry") and name:
                out.append(Access(kind, name, tuple(a for a in actions.split(",") if a)))
    return out


class Authorizer:
    """Decides every request; see the module docstring for the modes."""

    def __init__(
        self,
        htpasswd: Htpasswd | None,
        token: TokenConfig | None,
        issuer: TokenIssuer | None,
        keys: list[object],
    ) -> None:
        self.htpasswd = htpasswd
        self.token = token
        self.issuer = issuer
        self.keys = keys

    @classmethod
    def from_config(cls, config: Config) -> Authorizer:
        htpasswd = Htpasswd(config.htpasswd) if config.htpasswd else None
        token, issuer, keys = config.token, None, []
        if token is not None:
            keys = [_load_key(p) for p in token.keys]
            if token.signing_key:
                issuer = TokenIssuer(token)
                keys.append(issuer.key.public_key())  # type: ignore[union-attr]
        return cls(htpasswd, token, issuer, keys)

    async def authorize(self, request: web.Request, needed: list[Access]) -> None:
        """Return if the request may proceed; raise a ``Challenge`` (401) otherwise.

        A cross-repository mount whose source the token does not let the client read is
        not refused: the mount is skipped (``MOUNT_DENIED``) and the client uploads, so a
        push never fails for an optimisation and never reads a repository it may not.
        """
        if self.token is not None:
            self._check_token(request, needed)
            source = mount_source(request)
            if source is not None:
                try:
                    self._check_token(request, [source])
                except RegistryError:  # a Challenge (401) or DENIED (403)
                    request[MOUNT_DENIED] = True
        elif self.htpasswd is not None:
            creds = _basic(request)
            if creds is None or not await self.htpasswd.check(*creds):
                raise Challenge('Basic realm="dockyard-registry"', "basic authentication required")
            request[USER] = creds[0]

    def _check_token(self, request: web.Request, needed: list[Access]) -> None:
        assert self.token is not None
        challenge = f'Bearer realm="{self.token.realm}",service="{self.token.service}"'
        if needed:
            challenge += ',scope="' + " ".join(a.scope() for a in needed) + '"'
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Challenge(challenge, "a bearer token is required")
        claims = self._verify(value.strip(), challenge)
        granted: dict[tuple[str, str], set[str]] = {}
        for entry in claims.get("access") or []:
            if isinstance(entry, dict):
                key = (str(entry.get("type")), str(entry.get("name")))
                granted.setdefault(key, set()).update(map(str, entry.get("actions") or []))
        subject = str(claims.get("sub", ""))
        for access in needed:
            have = granted.get((access.type, access.name))
            if have is not None and ("*" in have or set(access.actions) <= have):
                continue
            if have is not None and subject:
                # The token server has ruled on this repository for a signed-in user and
                # left these actions out: a new token cannot help (Docker Hub's "denied").
                raise RegistryError(
                    "DENIED",
                    f"requested access to the resource is denied: {subject} may not "
                    f"{'/'.join(sorted(set(access.actions) - have))} {access.name}",
                )
            raise Challenge(
                challenge + ',error="insufficient_scope"',
                f"the token does not grant {access.scope()}",
            )
        request[USER] = subject

    def _verify(self, token: str, challenge: str) -> dict[str, object]:
        import jwt

        assert self.token is not None
        last: Exception | None = None
        for key in self.keys:
            try:
                return jwt.decode(
                    token,
                    key,  # type: ignore[arg-type]
                    algorithms=_ALGORITHMS,
                    audience=self.token.service,
                    issuer=self.token.issuer,
                    leeway=30,
                )
            except jwt.PyJWTError as exc:
                last = exc
        raise Challenge(challenge + ',error="invalid_token"', f"invalid token: {last}")

    async def issue(self, request: web.Request) -> web.StreamResponse:
        """``GET``/``POST /token``: the built-in token server."""
        request[ROUTE] = "token"
        if self.issuer is None or self.token is None:
            raise RegistryError("UNSUPPORTED", "this registry does not issue tokens")
        if request.method == "POST":
            form = await request.post()
            grant = form.get("grant_type")
            if grant != "password":
                raise RegistryError("UNSUPPORTED", f"grant_type {grant!r} is not supported")
            user, password = str(form.get("username", "")), str(form.get("password", ""))
            creds: tuple[str, str] | None = (user, password)
            service = str(form.get("service", self.token.service))
            scopes = _scopes([str(form.get("scope", ""))])
        elif request.method == "GET":
            creds = _basic(request)
            service = request.query.get("service", self.token.service)
            scopes = _scopes(request.query.getall("scope", []))
        else:
            raise RegistryError("UNSUPPORTED", "use GET or POST on /token")
        user = ""
        if creds is not None:
            if self.htpasswd is None or not await self.htpasswd.check(*creds):
                raise Challenge(
                    'Basic realm="dockyard-registry token"', "wrong user name or password"
                )
            user = creds[0]
        token, issued = self.issuer.sign(user, self.issuer.grant(user, scopes), service)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued))
        return web.json_response(
            {
                "token": token,
                "access_token": token,
                "expires_in": self.token.expiry,
                "issued_at": stamp,
            }
        )
