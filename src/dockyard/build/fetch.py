"""``ADD <url>`` downloads (asyncio world), as moby's legacy builder makes them
(builder/remotecontext and dockerfile/copy.go ``downloadSource``).

The file is fetched by the daemon, following redirects, into a private temp dir, and named
from the URL's path (else from ``Content-Disposition``); its mode is 0600, its mtime the
``Last-Modified`` time when the server sends one; it is never unpacked.  BuildKit's
``--checksum=sha256:<hex>`` is checked against the content.  The build's cache key takes
the content's digest, so every build downloads again (moby does too) and a changed file
re-runs the step.  Time-outs and a size cap keep a stalled or endless server from holding
the build: an unreachable URL is an error naming it within ``CONNECT_TIMEOUT``.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

import aiohttp

from dockyard.errors import InvalidParameter

__all__ = ["MAX_BYTES", "Download", "download"]

CONNECT_TIMEOUT = 30.0  # seconds to connect (moby's client: 30 s dial)
READ_TIMEOUT = 60.0  # seconds without a byte before the download is given up
MAX_BYTES = 8 << 30  # the largest file ADD downloads (8 GiB)
MAX_REDIRECTS = 10  # Go's http.Client follows 10
_CHUNK = 1 << 16
_CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Download:
    """A downloaded file: ``path`` (in ``directory``), its ``name`` in the image when the
    destination is a directory, and ``digest`` (``sha256:<hex>`` of the content)."""

    path: str
    name: str
    digest: str


def check_checksum(value: str) -> str:
    """``--checksum``'s value, refused unless it is ``sha256:`` and 64 hex digits."""
    value = value.strip()
    if not _CHECKSUM.match(value):
        raise InvalidParameter(
            f"invalid checksum {value!r}: expected sha256: and 64 lowercase hex digits"
        )
    return value


def filename_for(url: str, disposition: str) -> str:
    """moby's ``getFilenameForDownload``: the URL path's last element, else the
    ``Content-Disposition`` filename, else ""."""
    path = urllib.parse.urlsplit(url).path
    if path and not path.endswith("/"):
        name = posixpath.basename(urllib.parse.unquote(path))
        if name:
            return name
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename() or ""
        if name and not name.endswith("/"):
            return posixpath.basename(name.replace("\\", "/"))
    return ""


async def download(
    url: str,
    directory: str,
    checksum: str = "",
    max_bytes: int = MAX_BYTES,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
) -> Download:
    """Fetch ``url`` into ``directory`` (which the caller removes); see the module doc."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidParameter(f"ADD {url}: only http and https URLs can be downloaded")
    timeout = aiohttp.ClientTimeout(
        total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=read_timeout
    )
    path = os.path.join(directory, "download")
    digest = hashlib.sha256()
    size = 0
    get = {"max_redirects": MAX_REDIRECTS, "allow_redirects": True, "proxy": _proxy(url)}
    try:
        # trust_env stays off: it would also send the daemon's ~/.netrc credentials to
        # whatever host a Dockerfile names; the proxy variables are applied by _proxy.
        async with (
            aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
            session.get(url, **get) as resp,
        ):
            if resp.status >= 400:
                raise InvalidParameter(
                    f"failed to GET {url} with status {resp.status} {resp.reason or ''}".rstrip()
                )
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise InvalidParameter(_too_big(url, max_bytes))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidParameter(_too_big(url, max_bytes))
                    digest.update(chunk)
                    f.write(chunk)
            name = filename_for(url, resp.headers.get("Content-Disposition", ""))
            modified = resp.headers.get("Last-Modified", "")
    except InvalidParameter:
        raise
    except TimeoutError:
        raise InvalidParameter(
            f"ADD {url}: no answer within {connect_timeout:g}s to connect or "
            f"{read_timeout:g}s between reads"
        ) from None
    except aiohttp.TooManyRedirects:
        raise InvalidParameter(f"ADD {url}: stopped after {MAX_REDIRECTS} redirects") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise InvalidParameter(f"ADD {url}: cannot download it: {exc}") from None
    os.chmod(path, 0o600)
    if modified:
        try:
            when = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (when, when))
        except (TypeError, ValueError, OverflowError):
            pass  # moby keeps the download time when Last-Modified does not parse
    got = "sha256:" + digest.hexdigest()
    if checksum and got != checksum:
        raise InvalidParameter(f"ADD {url}: checksum mismatch: expected {checksum}, got {got}")
    return Download(path, name, got)


def _proxy(url: str) -> str | None:
    """The daemon environment's proxy for ``url`` (``HTTP(S)_PROXY``, ``NO_PROXY``), as Go's
    ProxyFromEnvironment picks it for moby's download."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies_environment().get(parts.scheme.lower())
    if not proxy or urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    return proxy


def _too_big(url: str, max_bytes: int) -> str:
    return f"ADD {url}: the file is larger than {max_bytes} bytes, the most ADD downloads"
