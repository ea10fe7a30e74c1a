"""The daemon's listening sockets: unix, tcp (TLS required off loopback) and fd:// (asyncio).

The unix socket is made 0660 and given to the ``docker`` group when it exists, as dockerd
does; a stale socket file is replaced, a live one means another daemon owns it.
Plain TCP is refused on anything but loopback: without TLS anyone who can reach the port
is root on this host.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from dockyard.daemon.config import Config

__all__ = ["ListenerError", "open_sites"]


class ListenerError(Exception):
    """A host address cannot be served; the message says which and why."""


def _unix_in_use(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _ssl_context(config: Config) -> ssl.SSLContext:
    if not (config.tlscert and config.tlskey):
        raise ListenerError("--tls needs --tlscert and --tlskey")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(config.tlscert, config.tlskey)
        if config.tlsverify:
            if not config.tlscacert:
                raise ListenerError("--tlsverify needs --tlscacert to check client certificates")
            ctx.load_verify_locations(config.tlscacert)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ListenerError(f"cannot load TLS files: {exc}") from exc
    return ctx


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _unix(runner: web.AppRunner, path: str, group: str) -> Callable[[], None]:
    if os.path.exists(path):
        if _unix_in_use(path):
            raise ListenerError(f"{path} is in use by another daemon; stop it or pass another -H")
        os.unlink(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    site = web.UnixSite(runner, path)
    await site.start()
    os.chmod(path, 0o660)
    try:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    except KeyError:
        pass

    def cleanup() -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    return cleanup


async def open_sites(runner: web.AppRunner, config: Config) -> list[Callable[[], None]]:
    """Start one site per ``-H``; returns cleanups to run after the runner stops."""
    cleanups: list[Callable[[], None]] = []
    for host in config.hosts:
        url = urlsplit(host if "://" in host else f"tcp://{host}")
        if url.scheme == "unix":
            cleanups.append(await _unix(runner, url.path or "/run/dockyard.sock", config.group))
        elif url.scheme == "tcp":
            if url.hostname is None or url.port is None:
                raise ListenerError(f"invalid host {host!r}: use tcp://HOST:PORT")
            ctx = _ssl_context(config) if config.tls else None
            if ctx is None and not _is_loopback(url.hostname):
                raise ListenerError(
                    f"refusing to listen on {host} without TLS: anyone who reaches it gets root "
                    "on this host; add --tlsverify with --tlscacert/--tlscert/--tlskey, or bind 127.0.0.1"
                )
            try:
                await web.TCPSite(runner, url.hostname, url.port, ssl_context=ctx).start()
            except OSError as exc:
                raise ListenerError(f"cannot listen on {host}: {exc.strerror}") from exc
        elif url.scheme == "fd":
            count = int(os.environ.get("LISTEN_FDS", "0"))
            if os.environ.get("LISTEN_PID") not in (None, str(os.getpid())) or count < 1:
                raise ListenerError("fd:// given but no sockets were passed (LISTEN_FDS is unset)")
            wanted = url.netloc
            for i in range(count):
                if wanted and str(3 + i) != wanted:
                    continue
                sock = socket.socket(fileno=3 + i)
                await web.SockSite(runner, sock).start()
        else:
            raise ListenerError(f"invalid host {host!r}: the scheme must be unix, tcp or fd")
    return cleanups
