"""HTTP to registries: sessions, TLS, endpoint fallback, auth retry, error mapping (asyncio).

One ``aiohttp.ClientSession`` per daemon carries every registry connection (keep-alive per
host).  TLS per host as dockerd: the system CAs plus Docker's ``certs.d/<host:port>/`` layout
(``*.crt`` CA certificates, ``*.cert`` + ``*.key`` client pairs, moby registry/registry.go
ReadCertsDirectory).  An insecure registry is tried over HTTPS without verification, then
over plain HTTP (``RegistryConfig.endpoints``).

``Repository`` is one repository on one endpoint with its ``Authorizer``: a 401 makes it
learn the challenge, fetch a token for the repository's scope and retry once.  Registry
errors become ``dockyard.errors`` here and only here (``RegistryError`` keeps the registry's
error code so pull can word "manifest unknown" as dockerd does).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from dockyard.distribution.auth import AuthConfig, Authorizer
from dockyard.distribution.config import Endpoint, RegistryConfig
from dockyard.errors import DockyardError, Internal, InvalidParameter, NotFound, Unauthorized

__all__ = [
    "RegistryError",
    "Repository",
    "Transport",
    "describe_error",
    "registry_message",
    "timeout_from_env",
]

CONNECT_TIMEOUT = 30.0  # seconds: Go's net.Dialer timeout in moby's registry transport
READ_TIMEOUT = 60.0  # a registry that sends nothing for this long is hung
# Overrides read when the daemon starts (the Transport is made then): tests shorten them to
# see a hung or unreachable registry fail in seconds; an operator on a slow link lengthens them.
CONNECT_TIMEOUT_ENV = "DOCKYARD_REGISTRY_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "DOCKYARD_REGISTRY_READ_TIMEOUT"
USER_AGENT = "docker/20.10.24 go/go1.19 (dockyard)"


class RegistryError(DockyardError):
    """The registry answered with an error; ``status`` and ``code`` are its own."""

    def __init__(self, message: str, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def registry_message(body: bytes, status: int) -> tuple[str, str]:
    """(message, first code) of a registry error body, worded as docker/distribution's
    errcode.Errors (``manifest unknown: manifest unknown``)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors:
        parts, code0 = [], ""
        for err in errors:
            if not isinstance(err, dict):
                continue
            code = str(err.get("code", "UNKNOWN"))
            code0 = code0 or code
            parts.append(f"{code.lower().replace('_', ' ')}: {err.get('message', '')}")
        if len(parts) == 1:
            return parts[0], code0
        return "errors:\n" + "".join(p + "\n" for p in parts), code0
    text = body.decode(errors="replace").strip()[:200]
    if status == 401:
        return "unauthorized: authentication required", "UNAUTHORIZED"
    if status == 404:
        return "not found", "NOT_FOUND"
    return f"received unexpected HTTP status: {status} {text}".strip(), ""


def describe_error(method: str, url: str, exc: BaseException) -> str:
    """Go's url.Error wording: ``Get "https://h/v2/": <what went wrong>``."""
    if (
        isinstance(exc, (ssl.SSLError, aiohttp.ClientSSLError))
        and "WRONG_VERSION_NUMBER" in str(exc).upper()
    ):
        what = "http: server gave HTTP response to HTTPS client"
    elif isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
        exc.os_error, ssl.SSLCertVerificationError
    ):
        what = f"x509: certificate verification failed: {exc.os_error.verify_message}"
    elif isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ssl.SSLError):
        what = f"remote error: tls: {exc.os_error.reason or exc.os_error}"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        reason = os.strerror(err.errno) if err is not None and err.errno else str(exc)
        what = f"dial tcp {exc.host}:{exc.port}: connect: {reason.lower()}"
    elif isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        what = "net/http: request canceled (timeout while waiting for the registry)"
    else:
        what = str(exc) or type(exc).__name__
    return f'{method.capitalize()} "{url}": {what}'


def timeout_from_env(name: str, default: float) -> float:
    """Seconds from the environment variable ``name``; ``default`` when unset, refused when
    not a positive number (a daemon that silently kept 60 s would hide the mistake)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise InvalidParameter(f"{name}={raw!r}: expected a positive number of seconds")
    return value


class Transport:
    """The daemon's registry connections; ``close`` at shutdown."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self.connect_timeout = timeout_from_env(CONNECT_TIMEOUT_ENV, CONNECT_TIMEOUT)
        self.read_timeout = timeout_from_env(READ_TIMEOUT_ENV, READ_TIMEOUT)
        self._session: aiohttp.ClientSession | None = None
        self._ssl: dict[str, tuple[tuple, ssl.SSLContext]] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=None, connect=self.connect_timeout, sock_read=self.read_timeout
            )
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=10)
            self._session = aiohttp.ClientSession(
                timeout=timeout,
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def ssl_for(self, endpoint: Endpoint) -> ssl.SSLContext | bool:
        """The TLS settings of an endpoint: False for plain HTTP or unverified TLS.

        ``certs.d/<host>/`` is looked at on every call, as dockerd does: a CA or client pair
        dropped there (or changed) applies to the next pull or push without a restart.  The
        context is rebuilt only when the directory's listing or files' mtimes change."""
        if endpoint.scheme == "http":
            return False
        directory = os.path.join(self.config.certs_dir, endpoint.host)
        files: list[tuple[str, int, int]] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.endswith((".crt", ".cert", ".key")):
                        st = entry.stat()
                        files.append((entry.name, st.st_mtime_ns, st.st_size))
        except OSError:
            pass
        files.sort()
        key = (endpoint.host, endpoint.insecure, tuple(files))
        cached = self._ssl.get(endpoint.host)
        if cached is not None and cached[0] == key:
            return cached[1]
        ctx = ssl.create_default_context()
        if endpoint.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        for name, _, _ in files:
            path = os.path.join(directory, name)
            try:
                if name.endswith(".crt"):
                    ctx.load_verify_locations(cafile=path)
                elif name.endswith(".cert"):
                    key_path = path[: -len(".cert")] + ".key"
                    ctx.load_cert_chain(path, key_path)
            except (OSError, ssl.SSLError) as exc:
                raise Internal(
                    f"bad TLS material {path} for registry {endpoint.host}: {exc}"
                ) from exc
        self._ssl[endpoint.host] = (key, ctx)
        return ctx

    async def ping(self, endpoint: Endpoint, auth: AuthConfig) -> Authorizer:
        """``GET /v2/``: is the endpoint a registry, and which auth does it ask for?"""
        url = endpoint.url + "/v2/"
        ssl_ = self.ssl_for(endpoint)
        try:
            async with self.session.get(url, ssl=ssl_, allow_redirects=True) as resp:
                await resp.read()
                authorizer = Authorizer(self.session, auth, ssl_)
                if resp.status == 401:
                    authorizer.learn(resp.headers.getall("WWW-Authenticate", []))
                elif resp.status >= 400 and resp.status != 404:
                    raise Internal(f'Get "{url}": received unexpected HTTP status: {resp.status}')
                return authorizer
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
            raise Internal(describe_error("GET", url, exc)) from exc

    async def open(
        self, endpoints: list[Endpoint], path: str, auth: AuthConfig, actions: list[str]
    ) -> Repository:
        """The first endpoint that answers ``/v2/``; mirrors failing are skipped, as moby does."""
        last: DockyardError | None = None
        for endpoint in endpoints:
            try:
                authorizer = await self.ping(endpoint, auth)
            except DockyardError as exc:
                last = exc
                continue
            return Repository(self, endpoint, path, authorizer, actions)
        assert last is not None
        raise last


class Repository:
    """One repository on one endpoint; every request carries a token for ``actions``."""

    def __init__(
        self,
        transport: Transport,
        endpoint: Endpoint,
        path: str,
        authorizer: Authorizer,
        actions: list[str],
    ) -> None:
        self.transport = transport
        self.endpoint = endpoint
        self.path = path
        self.authorizer = authorizer
        self.scopes = [f"repository:{path}:{','.join(actions)}"]

    def url(self, tail: str) -> str:
        return f"{self.endpoint.url}/v2/{self.path}/{tail}"

    def add_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            self.scopes.append(scope)

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        data: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send with auth (retrying once after a 401), yield the response if its status is in
        ``ok``, else raise the registry's error."""
        ssl_ = self.transport.ssl_for(self.endpoint)
        for attempt in range(2):
            hdrs = dict(headers or {})
            token = await self.authorizer.header(self.scopes)
            if token:
                hdrs["Authorization"] = token
            elif self.authorizer.basic_only:
                # docker/distribution's Basic handler refuses to send nothing (moby's words)
                # Internal, as dockerd 20.10: a 401 makes the docker CLI prompt for a login.
                raise Internal(f'{method.capitalize()} "{url}": no basic auth credentials')
            try:
                resp = await self.transport.session.request(
                    method, url, headers=hdrs, data=data, ssl=ssl_, allow_redirects=True
                )
            except (TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
                raise Internal(describe_error(method, url, exc)) from exc
            try:
                if (
                    resp.status == 401
                    and attempt == 0
                    and not callable(data)
                    and not _is_stream(data)
                ):
                    challenges = resp.headers.getall("WWW-Authenticate", [])
                    if challenges:
                        self.authorizer.learn(challenges)
                    self.authorizer.forget(self.scopes)
                    continue
                if resp.status not in ok:
                    body = await resp.read()
                    message, code = registry_message(body, resp.status)
                    if resp.status in (401, 403) and not code:
                        code = "UNAUTHORIZED" if resp.status == 401 else "DENIED"
                    raise RegistryError(message, resp.status, code)
                yield resp
                return
            finally:
                resp.release()
        raise Unauthorized("unauthorized: authentication required")


def _is_stream(data: Any) -> bool:
    return data is not None and not isinstance(data, (bytes, bytearray, str, dict))


def as_dockyard_error(exc: RegistryError, what: str) -> DockyardError:
    """A registry refusal as the caller-facing error class (status for the API)."""
    if exc.status == 401 or exc.code == "UNAUTHORIZED":
        return Unauthorized(f"{what}: {exc.message}")
    if exc.status == 404:
        return NotFound(f"{what}: {exc.message}")
    return Internal(f"{what}: {exc.message}")
