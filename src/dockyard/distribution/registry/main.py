"""``dockyard-registry``: serve the registry, or collect its garbage (process entry point).

    dockyard-registry serve --addr HOST:PORT --root DIR [--config FILE] [--workers N] ...
    dockyard-registry gc --root DIR [--config FILE] [--dry-run] [--delete-untagged]

``serve`` runs in the foreground (a service unit runs it as is).  Plain HTTP is refused on
a non-loopback address unless ``--insecure-listen`` is given: credentials and unsigned
content would cross the network in clear.  With ``--workers N`` the parent forks N-1
processes, each with its own ``SO_REUSEPORT`` socket on the address (the kernel spreads
connections); the parent is the first of them and stops the others when it stops.
Storage is shared through the filesystem (uploads are files, GC takes the flock in ``lock``).

As a service without a container, e.g. a systemd unit::

    [Service]
    ExecStart=/usr/bin/dockyard-registry serve --config /etc/dockyard/registry.json
    KillSignal=SIGTERM
    Restart=on-failure
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import ssl
import sys
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from dockyard.distribution.registry import gc
from dockyard.distribution.registry.app import make_app
from dockyard.distribution.registry.auth import USER
from dockyard.distribution.registry.config import Config, is_loopback, load, split_addr
from dockyard.distribution.registry.filesystem import FilesystemStorage
from dockyard.errors import DockyardError

__all__ = ["main"]

log = logging.getLogger("dockyard.registry")


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON object per request: structured, greppable, cheap."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        entry = {
            "ts": round(_now(), 3),
            "remote": request.remote,
            "method": request.method,
            "path": request.raw_path[:512],
            "status": response.status,
            "bytes": response.body_length,
            "duration": round(time, 6),
            "user": request.get(USER, ""),
            "agent": request.headers.get("User-Agent", "")[:200],
        }
        self.logger.info(json.dumps(entry))


def _now() -> float:
    return time.time()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard registry", description="An OCI registry")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Run the registry in the foreground")
    serve.add_argument("--addr", help="HOST:PORT to listen on (default 127.0.0.1:5000)")
    serve.add_argument("--root", help="Storage directory")
    serve.add_argument("--config", help="JSON configuration file")
    serve.add_argument(
        "--insecure-listen",
        action="store_true",
        default=None,
        help="Allow plain HTTP on a non-loopback address",
    )
    serve.add_argument("--tls-cert", help="TLS certificate (PEM)")
    serve.add_argument("--tls-key", help="TLS private key (PEM)")
    serve.add_argument("--tls-client-ca", help="Require client certificates from this CA")
    serve.add_argument("--htpasswd", help="htpasswd file (bcrypt) for basic auth")
    serve.add_argument(
        "--workers", type=int, help="Worker processes sharing the port (default: one per core)"
    )
    serve.add_argument("--max-blob-size", type=int, help="Largest blob accepted (bytes)")
    serve.add_argument("--upload-ttl", type=float, help="Seconds before an idle upload expires")
    serve.add_argument("--gc-interval", type=float, help="Seconds between online GCs (0: off)")
    serve.add_argument("--gc-grace", type=float, help="Spare blobs used this recently (s)")
    serve.add_argument(
        "--delete-untagged",
        action="store_true",
        default=None,
        help="Periodic GC also removes untagged manifests",
    )
    serve.add_argument("--access-log", help="Access log file ('-' stderr, '' off)")
    collect = sub.add_parser("gc", help="Remove unreferenced blobs (safe while serving)")
    collect.add_argument("--root", help="Storage directory")
    collect.add_argument("--config", help="JSON configuration file")
    collect.add_argument("--dry-run", action="store_true", help="Only print what would go")
    collect.add_argument(
        "--delete-untagged",
        action="store_true",
        default=None,
        help="Also remove manifests no tag reaches",
    )
    collect.add_argument("--gc-grace", type=float, help="Spare blobs used this recently (s)")
    return p


def _flags(args: argparse.Namespace) -> dict[str, object]:
    skip = {"command", "config", "dry_run"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key or None)
    if config.tls_client_ca:
        ctx.load_verify_locations(config.tls_client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(False)
    return sock


async def _serve(config: Config, sock: socket.socket, primary: bool) -> None:
    app = make_app(config, primary=primary)
    access = config.access_log
    runner = web.AppRunner(
        app,
        access_log_class=JsonAccessLogger,
        access_log=logging.getLogger("dockyard.registry.access") if access else None,
        handle_signals=False,
    )
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=_ssl_context(config), backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _run_worker(config: Config, sock: socket.socket, primary: bool) -> None:
    # asyncio's own loop, not uvloop: aiohttp's FileResponse sends blobs with
    # loop.sendfile, which only the standard selector transports implement (zero-copy
    # sendfile(2)); under uvloop it falls back to reading the file into 1 MiB buffers,
    # about half the blob throughput.  Small requests (manifests) run at the same rate.
    asyncio.run(_serve(config, sock, primary))


def _logging(config: Config) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    access = logging.getLogger("dockyard.registry.access")
    access.propagate = False
    if config.access_log:
        handler: logging.Handler = (
            logging.StreamHandler(sys.stderr)
            if config.access_log == "-"
            else logging.FileHandler(config.access_log)
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)


def serve(config: Config) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status."""
    host, port = split_addr(config.addr)
    if not config.tls_cert and not is_loopback(host) and not config.insecure_listen:
        print(
            f"refusing plain HTTP on {config.addr}: give --tls-cert/--tls-key, listen on "
            "a loopback address, or pass --insecure-listen",
            file=sys.stderr,
        )
        return 2
    FilesystemStorage(config.root)  # create the layout once, before any worker
    _logging(config)
    workers = config.workers if config.workers > 0 else (os.cpu_count() or 1)
    children = []
    for _ in range(workers - 1):
        sock = _socket(host, port, True)
        pid = os.fork()
        if pid == 0:
            # A worker follows its parent: if the parent dies, so does it.
            _set_parent_death_signal()
            try:
                _run_worker(config, sock, primary=False)
            finally:
                os._exit(0)
        sock.close()
        children.append(pid)
    # The parent is a worker too (the primary one: periodic GC), so N workers are N
    # processes; when it stops it stops the others.
    try:
        _run_worker(config, _socket(host, port, workers > 1), True)
    finally:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        status = 0
        for child in children:
            _, code = os.waitpid(child, 0)
            status = status or os.waitstatus_to_exitcode(code)
    return status


def _set_parent_death_signal() -> None:
    """PR_SET_PDEATHSIG(SIGTERM): a worker never outlives the parent that owns the port."""
    from dockyard.runtime import linux

    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGTERM)


def run_gc(config: Config, dry_run: bool) -> int:
    storage = FilesystemStorage(config.root)
    report = gc.collect(storage, config.gc_grace, config.delete_untagged, dry_run)
    verb = "would remove" if dry_run else "removed"
    for entry in report.manifests:
        print(f"{verb} manifest {entry}")
    for digest in report.blobs:
        print(f"{verb} blob {digest}")
    expired = 0 if dry_run else storage.expire_uploads(config.upload_ttl)
    print(report.summary() + (f", {expired} expired upload(s)" if expired else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load(args.config, _flags(args))
        if args.command == "serve":
            return serve(config)
        return run_gc(config, args.dry_run)
    except (DockyardError, OSError, ssl.SSLError, ValueError) as exc:
        message = exc.message if isinstance(exc, DockyardError) else str(exc)
        print(f"dockyard registry: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
