"""``dockyardd``: parse flags, wire the services, listen, shut down cleanly (asyncio world).

Start-up order: config → data root lock (a second daemon on the same root refuses) → pid
file → metadata DB, content store, storage driver → services → listeners.  SIGTERM and
SIGINT stop the listeners, then release everything in reverse order.
"""

from __future__ import annotations

import asyncio
import faulthandler
import fcntl
import logging
import os
import signal
import sys

from aiohttp import web

from dockyard import __version__
from dockyard.daemon import memory
from dockyard.daemon.config import Config, ConfigError, load, parse_args
from dockyard.daemon.listeners import ListenerError, open_sites

__all__ = ["main", "run"]

log = logging.getLogger("dockyard.daemon")


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do."""


def _lock_data_root(config: Config) -> int:
    os.makedirs(config.data_root, mode=0o711, exist_ok=True)
    fd = os.open(
        os.path.join(config.data_root, "dockyardd.lock"),
        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
        0o600,
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StartupError(
            f"another dockyardd is already using the data root {config.data_root}; "
            "stop it or start this one with another --data-root"
        ) from None
    return fd


def _write_pidfile(path: str) -> None:
    try:
        with open(path, encoding="ascii") as f:
            other = int(f.read().strip() or 0)
        if other and other != os.getpid() and os.path.exists(f"/proc/{other}"):
            raise StartupError(
                f"pid file found, ensure dockyardd is not running or delete {path} (pid {other})"
            )
    except (FileNotFoundError, ValueError):
        pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="ascii") as f:
        f.write(str(os.getpid()))


async def run(config: Config) -> None:
    from dockyard.api import Services, make_app, restoregate
    from dockyard.background import spawn
    from dockyard.build import BuildService, BuildStore
    from dockyard.containers.networking import Networking
    from dockyard.containers.service import ContainerService
    from dockyard.containers.shim import Shim
    from dockyard.containers.store import Store as ContainerStore
    from dockyard.content import LocalStore
    from dockyard.daemon import debris
    from dockyard.daemon.builder import ContainerStepRunner, RegistryPuller
    from dockyard.daemon.system import SystemService
    from dockyard.db import open_db
    from dockyard.distribution.config import RegistryConfig
    from dockyard.distribution.service import DistributionService
    from dockyard.distribution.store import Store as SourceStore
    from dockyard.events import EventBus
    from dockyard.images.service import ImageService
    from dockyard.images.store import Store
    from dockyard.network.service import NetworkService
    from dockyard.network.store import Store as NetworkStore
    from dockyard.runtime.supervisor.client import ensure as ensure_supervisor
    from dockyard.storage import open_driver
    from dockyard.volumes.local import LocalDriver
    from dockyard.volumes.service import VolumeService
    from dockyard.volumes.store import Store as VolumeStore

    lock_fd = _lock_data_root(config)
    # SIGUSR2's handler before the pidfile names this process: a report asked for as soon
    # as the pidfile appears must not find SIGUSR2's default action (termination).
    memory.install_sigusr2(asyncio.get_running_loop())
    _write_pidfile(config.pidfile)
    os.makedirs(config.exec_root, mode=0o700, exist_ok=True)
    tmpdir = os.path.join(config.data_root, "tmp")
    os.makedirs(tmpdir, mode=0o700, exist_ok=True)  # emptied by debris.collect
    db = open_db(os.path.join(config.data_root, "metadata.db"))
    content = LocalStore(os.path.join(config.data_root, "content"))
    driver = open_driver(config.storage_driver, config.data_root)
    await asyncio.to_thread(debris.collect, db, content, driver, config)
    events = EventBus()
    images = ImageService(Store(db), content, driver, events, tmpdir)
    distribution = DistributionService(
        config.registry or RegistryConfig(), images, SourceStore(db), config.data_root
    )
    shim_root = os.path.join(config.exec_root, "supervisor")
    volumes = VolumeService(
        VolumeStore(db), LocalDriver(os.path.join(config.data_root, "volumes")), events
    )
    containers = ContainerService(
        ContainerStore(db),
        images,
        driver,
        Shim(os.path.join(shim_root, "supervisor.sock")),
        events,
        config.data_root,
        config.exec_root,
        cgroup_parent=str(config.extra.get("cgroup-parent") or "/dockyard"),
        volumes=volumes,
        runtimes=config.runtimes,
    )
    networks = NetworkService(NetworkStore(db), events, config.extra, config.exec_root)
    containers.net = Networking(containers, networks)
    system = SystemService(config, images, events, containers, volumes)
    builder = BuildService(
        images,
        ContainerStepRunner(containers, images),
        BuildStore(db),
        config.data_root,
        RegistryPuller(distribution),
    )
    system.build = builder
    app = make_app(
        Services(
            images=images,
            events=events,
            system=system,
            containers=containers,
            volumes=volumes,
            networks=networks,
            build=builder,
            distribution=distribution,
        )
    )
    restoregate.install(app)  # requests but /_ping wait until restore is done

    # A stop must be quick (containers keep running; clients reconnect): requests still in
    # flight get half a second, then are cancelled.  Long polls (``wait`` of a ``run -d``
    # whose CLI is gone, event and log streams) would otherwise hold the full timeout.
    # max_field_size: build secrets travel in one header (X-Dockyard-Build-Secrets, up to
    # 500 KiB each, base64 twice); aiohttp's default of 8 KiB would refuse all but tiny ones.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=0.5,
        max_field_size=4 << 20,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    trimmer = None
    if os.environ.get("DOCKYARD_IDLE_TRIM", "1") != "0":
        trimmer = loop.create_task(
            memory.idle_trim(compact=(events.compact, memory.clear_request_caches)),
            name="idle-trim",
        )
    cleanups: list = []
    conversion: asyncio.Task[int] | None = None
    try:
        cleanups = await open_sites(runner, config)
        # After the listeners: a daemon that cannot serve leaves no supervisor behind.
        await asyncio.to_thread(ensure_supervisor, shim_root)
        await networks.start()
        networks.restore_allocations()
        await containers.restore()
        restoregate.open_gate(app)
        memory.warm_up()
        await distribution.start()
        # Layers stored before tar-split: their tars leave the content store, in the background.
        conversion = spawn(images.convert_layer_tars())
        log.info(
            "dockyardd %s listening on %s (storage driver %s, data root %s)",
            __version__,
            ", ".join(config.hosts),
            driver.name,
            config.data_root,
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        for task in (trimmer, conversion):
            if task is not None:
                task.cancel()
        await runner.cleanup()
        await distribution.close()
        for cleanup in cleanups:
            cleanup()
        db.close()
        try:
            os.unlink(config.pidfile)
        except FileNotFoundError:
            pass
        os.close(lock_fd)


def _configure_security(config: Config) -> list[str]:
    """Apply the daemon-wide container defaults (``seccomp-profile``, ``no-new-privileges``);
    returns what ``docker info`` lists as SecurityOptions."""
    from dockyard.containers import hostconfig, seccomp
    from dockyard.errors import InvalidParameter

    try:
        profile = seccomp.configure(config.extra.get("seccomp-profile"))
    except InvalidParameter as exc:
        raise ConfigError(f"Error loading seccomp profile: {exc.message}") from None
    enabled = bool(config.extra.get("no-new-privileges"))
    hostconfig.configure_no_new_privileges(enabled)
    return [f"name=seccomp,profile={profile}"] + (["name=no-new-privileges"] if enabled else [])


def main(argv: list[str] | None = None) -> int:
    # Before any thread allocates (see daemon/memory.py); 0 keeps glibc's default.
    memory.limit_arenas(int(os.environ.get("DOCKYARD_MALLOC_ARENA_MAX") or 0))
    args = parse_args(argv)
    if args.version:
        print(f"dockyardd version {__version__}")
        return 0
    try:
        config = load(args)
        config.security_options = _configure_security(config)
    except ConfigError as exc:
        print(f"dockyardd: {exc}", file=sys.stderr)
        return 1
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # A crash in native code (ctypes, netlink, uvloop) must leave a Python stack in the log.
    faulthandler.enable()
    # The standard loop: under uvloop 0.23 the daemon crashed (SIGSEGV in libuv's uv__read,
    # a stream read callback already cleared) about one daemon restart in four with hijacked
    # exec streams; asyncio costs ~10 ms per `docker run`.  DOCKYARD_LOOP=uvloop to compare.
    runner = asyncio.run
    if os.environ.get("DOCKYARD_LOOP") == "uvloop":
        import uvloop

        runner = uvloop.run
    try:
        runner(run(config))
    except (StartupError, ListenerError) as exc:
        print(f"dockyardd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
