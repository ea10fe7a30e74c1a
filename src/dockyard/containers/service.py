"""The container service: records, lifecycle and streams behind the container endpoints
(asyncio world).

State lives in the record (SQLite) and, for running containers, in the supervisor, which
outlives the daemon.  Every running container has a monitor task waiting on the supervisor
for its exit; at start-up ``restore`` re-creates those tasks (or records exits that
happened while the daemon was down).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal as _signal
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

from dockyard import errors
from dockyard.background import spawn
from dockyard.containers import names
from dockyard.containers.attach import Hub, Subscriber
from dockyard.containers.bundle import build as build_bundle
from dockyard.containers.logs import Entry, LogReader
from dockyard.containers.record import Container, State
from dockyard.containers.runtimes import Runtime, Runtimes
from dockyard.containers.shim import Shim, ShimError
from dockyard.containers.store import Store
from dockyard.errors import Conflict, Forbidden, InvalidParameter, NotFound, NotModified
from dockyard.events import EventBus

__all__ = ["LIST_FILTERS", "ContainerService", "NoSuchContainer", "parse_signal"]

log = logging.getLogger("dockyard.containers")

LIST_FILTERS = (
    "id",
    "name",
    "label",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "health",
    "volume",
    "network",
    "isolation",
    "is-task",
    "publish",
    "expose",
)


class NoSuchContainer(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such container: {name}")


def now_rfc3339() -> str:
    ns = time.time_ns()
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def parse_signal(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    if value in (None, ""):
        return default
    text = str(value).upper()
    if text.isdigit():
        number = int(text)
        if not 0 < number < 65:
            raise InvalidParameter(f"Invalid signal: {value}")
        return number
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(getattr(_signal.Signals, name))
    except AttributeError:
        raise InvalidParameter(f"Invalid signal: {value}") from None


class ContainerService:
    def __init__(
        self,
        store: Store,
        images: Any,
        driver: Any,
        shim: Shim,
        events: EventBus,
        data_root: str,
        exec_root: str,
        cgroup_parent: str = "/dockyard",
        volumes: Any = None,
        runtimes: Runtimes | None = None,
    ) -> None:
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self.runtimes = runtimes or Runtimes.from_config({})
        self.store = store
        self.images = images
        self.driver = driver
        self.shim = shim
        self.events = events
        self.volumes = volumes
        self.net: Any = None  # containers.networking.Networking, set by the daemon
        if volumes is not None:
            volumes.users = self.volume_users
        self.data_root = data_root
        self.exec_root = exec_root
        self._records: dict[str, Container] = {c.id: c for c in store.all()}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._exiting: dict[str, asyncio.Event] = {}  # id -> set when its exit's clean-up ends
        self._exit_tasks: set[asyncio.Task[Any]] = set()
        self._exit_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._remove_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._hubs: dict[str, Hub] = {}
        self._pending: dict[str, Hub] = {}  # attached before start
        self._health: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._copy_mounts: dict[str, tuple[int, list[str]]] = {}  # docker cp's volume binds
        images.users = self.image_users
        from dockyard.containers.execs import Execs

        self.execs = Execs(self)

    # ---- lookups ---------------------------------------------------------------------------
    def get(self, name: str) -> Container:
        if name in self._records:
            return self._records[name]
        by_name = "/" + name.lstrip("/")
        for c in self._records.values():
            if c.name == by_name:
                return c
        matches = [c for c in self._records.values() if c.id.startswith(name)] if name else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {name}")
        raise NoSuchContainer(name)

    def image_users(self, image_id: str) -> list[str]:
        return [c.id[:12] for c in self._records.values() if c.image_id == image_id]

    def volume_users(self, name: str) -> list[str]:
        from dockyard.containers.mounts import uses_volume

        return [c.id for c in self._records.values() if uses_volume(c, name)]

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    def _save(self, c: Container) -> None:
        self._records[c.id] = c
        self.store.save(c)

    def _event(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"image": c.image_name, "name": c.name.lstrip("/")}
        attrs.update(c.config.get("Labels") or {})
        attrs.update(extra)
        self.events.publish("container", action, c.id, attrs, from_=c.image_name)

    # ---- create ----------------------------------------------------------------------------
    async def create(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("Image"):
            raise InvalidParameter("Config cannot be empty in order to create a container")
        host_config = body.pop("HostConfig", None) or {}
        networking = body.pop("NetworkingConfig", None)
        if not isinstance(host_config, dict):
            raise InvalidParameter("HostConfig must be a JSON object")
        image_name = str(body["Image"])
        image_id = self.images.resolve(image_name)
        image_cfg = self.images.config(image_id).get("config") or {}
        config = _merge_config(body, image_cfg)
        entrypoint = config.get("Entrypoint") or []
        cmd = config.get("Cmd") or []
        argv = list(entrypoint) + list(cmd)
        if not argv:
            raise InvalidParameter("No command specified")
        _validate_host_config(host_config)
        from dockyard.containers import hostconfig

        hostconfig.validate(host_config)
        host_config["Runtime"] = self._runtime(host_config).name
        cid = secrets.token_hex(32)
        config.setdefault("Hostname", "")
        if not config["Hostname"]:
            config["Hostname"] = cid[:12]
        config["Image"] = image_name
        taken = {c.name for c in self._records.values()}
        stored_name = names.validate(name) if name else names.random_name(taken)
        holder = next((c for c in self._records.values() if c.name == stored_name), None)
        if holder is not None:
            raise Conflict(
                f'Conflict. The container name "{stored_name}" is already in use by container '
                f'"{holder.id}". You have to remove (or rename) that container to be able to '
                "reuse that name."
            )
        top = self.images.store.image(image_id).top_layer
        requested = (
            self.net.validate(host_config, config, networking) if self.net is not None else {}
        )
        points = []
        if self.volumes is not None:
            from dockyard.containers.mounts import create_points

            points = await create_points(self.volumes, config, host_config, self.get)
        record = Container(
            id=cid,
            name=stored_name,
            created=now_rfc3339(),
            created_ns=time.time_ns(),
            image_id=image_id,
            image_name=image_name,
            path=argv[0],
            args=argv[1:],
            config=config,
            host_config=host_config,
            log_path=os.path.join(self.data_root, "containers", cid, f"{cid}-json.log"),
            rw_layer=cid,
            top_layer=top.removeprefix("sha256:") if top else None,
            mounts=points,
            net={"requested": requested},
        )
        await asyncio.to_thread(self._prepare_dirs, record)
        try:
            self._save(record)
        except sqlite3.IntegrityError as exc:
            await asyncio.to_thread(self.driver.remove, cid)
            raise Conflict(
                f'Conflict. The container name "{stored_name}" is already in use'
            ) from exc
        self._event(record, "create")
        return {"Id": cid, "Warnings": []}

    def _prepare_dirs(self, c: Container) -> None:
        os.makedirs(os.path.dirname(c.log_path), mode=0o710, exist_ok=True)
        self.driver.prepare(c.rw_layer, c.top_layer)

    # ---- start -----------------------------------------------------------------------------
    async def start(self, name: str) -> None:
        c = self.get(name)
        async with self._lock(c.id):
            if c.state.Running:
                raise NotModified("container already started")
            if c.state.Status == "removing":
                raise Conflict(f"container {c.id[:12]} is marked for removal and cannot be started")
            try:
                await self._start(c)
            except BaseException:
                if c.host_config.get("AutoRemove"):
                    # moby removes an auto-remove container whose start failed, which also
                    # answers the client's wait?condition=removed.
                    spawn(self.remove(c.id, force=True, volumes=True))
                raise

    async def _start(self, c: Container) -> None:
        bundle = os.path.join(self.exec_root, "containers", c.id)
        from dockyard.containers import mounts

        acquired = networked = False
        try:
            rootfs = await asyncio.to_thread(self.driver.mount, c.rw_layer)
            spec_mounts = []
            if c.mounts and self.volumes is not None:
                spec_mounts = await mounts.acquire(self.volumes, c, rootfs)
                acquired = True
            netns_path = None
            if self.net is not None:
                networked = True
                netns_path, etc_mounts = await self.net.setup(c, os.path.dirname(c.log_path))
                spec_mounts = etc_mounts + spec_mounts
            config_path = await asyncio.to_thread(
                build_bundle,
                bundle,
                rootfs,
                [c.path, *c.args],
                c.config,
                c.host_config,
                c.config.get("Hostname") or c.id[:12],
                f"{self.cgroup_parent}/{c.id}",
                spec_mounts,
                netns_path,
            )
        except (OSError, InvalidParameter, NotFound, Conflict, Forbidden) as exc:
            if networked:
                await self.net.teardown(c)
            if acquired:
                await mounts.release(self.volumes, c)
            message = getattr(exc, "message", None) or str(exc)
            c.state.Error = message
            self._save(c)
            raise InvalidParameter(f"failed to create the container's bundle: {message}") from exc
        log_cfg = (c.host_config.get("LogConfig") or {}).get("Config") or {}
        request = {
            "id": c.id,
            "bundle": bundle,
            "config": config_path,
            **self.runtime_request(c),
            "argv": [c.path, *c.args],
            "env": [],
            "tty": bool(c.config.get("Tty")),
            "stdin": bool(c.config.get("OpenStdin")),
            "log_path": c.log_path,
            "log_max_size": _size(log_cfg.get("max-size"), 10 << 20),
            "log_max_file": int(log_cfg.get("max-file") or 3),
        }
        pending = self._pending.pop(c.id, None)
        try:
            if pending is not None:
                reply, reader, writer = await self.shim.stream("start", attach=True, **request)
                self._hubs[c.id] = pending
                spawn(self._run_hub(c.id, pending, reader, writer, reply.get("tty", False)))
            else:
                reply = await self.shim.call("start", **request)
        except ShimError as exc:
            c.state.Error = exc.message
            c.state.ExitCode = 127 if "exec" in exc.message else 128
            self._save(c)
            if acquired:
                await mounts.release(self.volumes, c)
            if networked:
                await self.net.teardown(c)
            await asyncio.to_thread(self.driver.unmount, c.rw_layer)
            raise InvalidParameter(
                f"failed to create task for container: {exc.message}: unknown"
            ) from exc
        c.state = State(
            Status="running",
            Running=True,
            Pid=reply["pid"],
            StartedAt=reply["started_at"],
            FinishedAt=c.state.FinishedAt,
        )
        c.has_been_started = True
        c.manually_stopped = False
        self._save(c)
        self._event(c, "start")
        self._monitors[c.id] = asyncio.create_task(self._monitor(c.id))
        self._start_health(c)

    def _start_health(self, c: Container) -> None:
        from dockyard.containers import health

        if health.probe_command(c.config.get("Healthcheck")) is not None:
            self._health[c.id] = asyncio.create_task(health.monitor(self, c.id))

    async def _run_hub(
        self,
        cid: str,
        hub: Hub,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tty: bool,
    ) -> None:
        try:
            await hub.run(reader, writer, tty)
        finally:
            if self._hubs.get(cid) is hub:
                del self._hubs[cid]

    # ---- exits -----------------------------------------------------------------------------
    async def _monitor(self, cid: str) -> None:
        try:
            state = await self.shim.call("wait", id=cid)
        except Exception as exc:  # the supervisor vanished: the container is gone with it
            log.warning("lost the supervisor while waiting for %s: %s", cid[:12], exc)
            state = {"exit_code": 255, "finished_at": now_rfc3339()}
        await self._exited(
            cid,
            int(state["exit_code"]),
            state.get("finished_at") or now_rfc3339(),
            bool(state.get("oom_killed")),
        )

    async def _exited(self, cid: str, code: int, finished_at: str, oom: bool = False) -> None:
        task = asyncio.current_task()
        if task is not None and task is self._monitors.get(cid):
            # ``_monitors`` held this task; the loop itself keeps only a weak reference.
            self._exit_tasks.add(task)
            task.add_done_callback(self._exit_tasks.discard)
        self._monitors.pop(cid, None)
        cleaned = asyncio.Event()  # a remove meanwhile waits for the clean-up below
        self._exiting[cid] = cleaned
        try:
            c = await self._record_exit(cid, code, finished_at, oom)
        finally:
            cleaned.set()
            if self._exiting.get(cid) is cleaned:
                del self._exiting[cid]
        if c is None:
            return
        if c.host_config.get("AutoRemove"):
            try:
                await self.remove(cid, force=True, volumes=True)
            except NotFound:
                pass
        elif self._should_restart(c):
            self._schedule_restart(c)

    async def _record_exit(
        self, cid: str, code: int, finished_at: str, oom: bool
    ) -> Container | None:
        """The exit's state, then its clean-up (supervisor, layer, volumes, network)."""
        if (health := self._health.pop(cid, None)) is not None:
            health.cancel()
        c = self._records.get(cid)
        if c is None:
            return None
        hub = self._hubs.get(cid)
        if hub is not None:
            try:
                await asyncio.wait_for(hub.done.wait(), 5)
            except TimeoutError:
                pass
        health_state = c.state.Health
        if health_state is not None:
            health_state = {
                **health_state,
                "Status": "unhealthy" if health_state.get("Status") == "unhealthy" else "starting",
            }
        c.state = State(
            Status="exited",
            ExitCode=code,
            StartedAt=c.state.StartedAt,
            FinishedAt=finished_at,
            OOMKilled=oom,
            Health=health_state,
        )
        self._save(c)
        try:
            await self.shim.call("delete", id=cid)
        except Exception:  # already forgotten by the supervisor
            pass
        await asyncio.to_thread(self.driver.unmount, c.rw_layer)
        if self.volumes is not None and c.mounts:
            from dockyard.containers.mounts import release

            await release(self.volumes, c)
        if self.net is not None:
            try:
                await self.net.teardown(c)
            except Exception as exc:
                log.warning("network teardown of %s: %s", cid[:12], exc)
            if self._records.get(cid) is c:  # not removed meanwhile: never bring it back
                self._save(c)
        if oom:
            self._event(c, "oom")
        self._event(c, "die", exitCode=str(code))
        for fut in self._exit_waiters.pop(cid, []):
            if not fut.done():
                fut.set_result(code)
        return c

    def _should_restart(self, c: Container) -> bool:
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if name == "no" or c.manually_stopped or c.state.Status == "removing":
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return c.state.ExitCode != 0 and (limit == 0 or c.restart_count < limit)
        return name in ("always", "unless-stopped")

    def _schedule_restart(self, c: Container) -> None:
        """moby's back-off: 100 ms doubling per restart, reset after 10 s of running,
        capped at one minute."""
        ran = _since_ns(c.state.StartedAt, c.state.FinishedAt)
        delay = 0.1 if ran >= 10 else min(60.0, 0.1 * (2 ** min(c.restart_count, 10)))
        c.state.Restarting = True
        c.state.Status = "restarting"
        self._save(c)

        async def later() -> None:
            await asyncio.sleep(delay)
            async with self._lock(c.id):
                current = self._records.get(c.id)
                if current is None or current.manually_stopped or not current.state.Restarting:
                    return
                current.restart_count += 1
                current.state.Restarting = False
                try:
                    await self._start(current)
                except Exception as exc:
                    log.warning("restart of %s failed: %s", c.id[:12], exc)
                    current.state.Status = "exited"
                    self._save(current)

        spawn(later())

    async def restore(self) -> None:
        """Re-attach to containers that kept running while the daemon was away."""
        try:
            known = {s["id"]: s for s in (await self.shim.call("list"))["containers"]}
        except Exception as exc:
            log.warning("cannot list the supervisor's containers: %s", exc)
            known = {}
        for c in list(self._records.values()):
            if not c.state.Running:
                if c.state.Status == "removing":
                    await self.remove(c.id, force=True, volumes=True)
                elif c.state.Restarting or (
                    (c.host_config.get("RestartPolicy") or {}).get("Name")
                    in ("always", "unless-stopped")
                    and not c.manually_stopped
                    and c.has_been_started
                ):
                    self._schedule_restart(c)
                continue
            s = known.get(c.id)
            if s is None:
                exit_file = os.path.join(self.exec_root, "supervisor", c.id, "exit.json")
                try:
                    with open(exit_file, encoding="utf-8") as f:
                        s = json.load(f)
                except (OSError, ValueError):
                    s = {"exit_code": 255, "finished_at": now_rfc3339(), "running": False}
            if s.get("running"):
                for p in c.mounts:
                    if p.type == "volume" and self.volumes is not None:
                        self.volumes.hold(p.source, c.id)
                if self.net is not None:
                    await self.net.restore(c)
                self._monitors[c.id] = asyncio.create_task(self._monitor(c.id))
                self._start_health(c)
            else:
                await self._exited(
                    c.id,
                    int(s.get("exit_code") or 0),
                    s.get("finished_at") or now_rfc3339(),
                    bool(s.get("oom_killed")),
                )

    # ---- wait / stop / kill --------------------------------------------------------------
    def wait_future(self, name: str, condition: str) -> asyncio.Future[int]:
        """Registered at once (the client gets headers), resolved at exit or removal."""
        c = self.get(name)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        if condition == "removed":
            self._remove_waiters.setdefault(c.id, []).append(fut)
        elif condition in ("not-running", "") and not c.state.Running:
            fut.set_result(c.state.ExitCode)
        else:
            self._exit_waiters.setdefault(c.id, []).append(fut)
        return fut

    async def kill(self, name: str, signal: str | int | None) -> None:
        c = self.get(name)
        number = parse_signal(signal)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        try:
            await self._signal(c, number)
        except ShimError as exc:
            raise Conflict(f"Cannot kill container: {c.id}: {exc.message}") from exc
        self._event(c, "kill", signal=str(number))

    async def _signal(self, c: Container, number: int) -> None:
        """Signal the container; a paused one is thawed after, as moby does, or the signal
        would wait in its frozen cgroup (``rm -f`` hung until an unpause)."""
        await self.shim.call("kill", id=c.id, signal=number)
        if c.state.Paused:
            await asyncio.to_thread(self._cgroup(c).thaw)
            c.state.Paused = False
            c.state.Status = "running"
            self._save(c)

    async def stop(self, name: str, timeout: int | None, signal: str | None = None) -> None:
        c = self.get(name)
        # Under the container's lock: a restart in progress finishes first and is then
        # stopped, rather than coming back to life after the client heard "stopped".
        async with self._lock(c.id):
            c.manually_stopped = True
            if c.state.Restarting:
                c.state.Restarting = False
                c.state.Status = "exited"
                self._save(c)
                return
            if not c.state.Running:
                self._save(c)
                raise NotModified("container already stopped")
            self._save(c)
            await self._stop(c, timeout, signal)
        self._event(c, "stop")

    async def _stop(self, c: Container, timeout: int | None, signal: str | None = None) -> None:
        stop_signal = parse_signal(signal or c.config.get("StopSignal"), _signal.SIGTERM)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
        if timeout is None:
            timeout = 10
        fut = self.wait_future(c.id, "next-exit")
        try:
            await self._signal(c, stop_signal)
        except ShimError:
            pass
        if timeout < 0:
            await fut
            return
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            try:
                await self._signal(c, int(_signal.SIGKILL))
            except ShimError:
                pass
            await fut

    async def restart(self, name: str, timeout: int | None) -> None:
        c = self.get(name)
        if c.state.Running:
            await self._stop(c, timeout)
        async with self._lock(c.id):
            await self._start(c)
        self._event(c, "restart")

    # ---- remove / rename -------------------------------------------------------------------
    async def remove(self, name: str, force: bool, volumes: bool) -> None:
        c = self.get(name)
        if c.state.Restarting:
            if not force:
                raise Conflict(
                    f"You cannot remove a restarting container {c.id}. Stop the container before attempting removal or force remove"
                )
            c.manually_stopped = True
            c.state.Restarting = False
        if c.state.Running:
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {c.id}. Stop the container before "
                    "attempting removal or force remove"
                )
            try:
                await self.kill(c.id, _signal.SIGKILL)
            except Conflict as exc:
                # It exited a moment ago (an attached client has already seen its output
                # end) and the exit is still being recorded: the wait below sees it through.
                if "is not running" not in exc.message:
                    raise
            fut = self.wait_future(c.id, "not-running")
            await fut
        cleaning = self._exiting.get(c.id)
        if cleaning is not None:
            # ``wait`` answers once the exit is recorded, before its clean-up (unmount, volume
            # release, network teardown) is done; a remove right then must not race it.
            await cleaning.wait()
        if c.id not in self._records:
            return  # removed meanwhile (auto-remove)
        c.state.Status = "removing"
        self._save(c)
        await asyncio.to_thread(self._remove_files, c)
        self.store.delete(c.id)
        self._records.pop(c.id, None)
        self._locks.pop(c.id, None)
        if volumes and self.volumes is not None and c.mounts:
            from dockyard.containers.mounts import remove_anonymous

            await remove_anonymous(self.volumes, c)
        self._event(c, "destroy")
        for fut in self._remove_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(c.state.ExitCode)

    def _remove_files(self, c: Container) -> None:
        self.driver.remove(c.rw_layer)
        shutil.rmtree(os.path.dirname(c.log_path), ignore_errors=True)
        shutil.rmtree(os.path.join(self.exec_root, "containers", c.id), ignore_errors=True)

    async def rename(self, name: str, new: str) -> None:
        c = self.get(name)
        stored = names.validate(new)
        holder = next((o for o in self._records.values() if o.name == stored), None)
        if holder is not None and holder.id != c.id:
            raise Conflict(
                f'Conflict. The container name "{stored}" is already in use by container "{holder.id}". You have to remove (or rename) that container to be able to reuse that name.'
            )
        old = c.name
        c.name = stored
        self._save(c)
        self._event(c, "rename", oldName=old)

    # ---- networks --------------------------------------------------------------------------
    async def connect(self, name: str, network: str, endpoint: Any) -> None:
        c = self.get(name)
        if self.net is None:
            raise errors.NotImplemented("this daemon has no network service")
        async with self._lock(c.id):
            await self.net.connect(c, network, endpoint)
            self._save(c)

    async def disconnect(self, name: str, network: str, force: bool) -> None:
        c = self.get(name)
        if self.net is None:
            raise errors.NotImplemented("this daemon has no network service")
        async with self._lock(c.id):
            await self.net.disconnect(c, network, force)
            self._save(c)

    # ---- attach ----------------------------------------------------------------------------
    async def attach(
        self, name: str, stdout: bool, stderr: bool
    ) -> tuple[Container, Hub, Subscriber]:
        """Subscribe to a container's output (and its stdin), before its start if need be.

        Refused, with moby's words (409), while it is paused or restarting: output would not
        come and the caller could not tell why."""
        c = self.get(name)
        if c.state.Paused:
            raise Conflict(f"container {name} is paused, unpause the container before attach")
        if c.state.Restarting:
            raise Conflict(f"container {name} is restarting, wait until the container is running")
        hub = self._hubs.get(c.id)
        if hub is None and not c.state.Running:
            hub = self._pending.setdefault(c.id, Hub())
        elif hub is None:
            hub = Hub()
            reply, reader, writer = await self.shim.stream(
                "attach", id=c.id, stdin=bool(c.config.get("OpenStdin"))
            )
            self._hubs[c.id] = hub
            spawn(self._run_hub(c.id, hub, reader, writer, reply.get("tty", False)))
        self._event(c, "attach")
        return c, hub, hub.subscribe(stdout, stderr)

    def detached(self, c: Container) -> None:
        """A client typed the detach keys: moby says so on the event stream."""
        self._event(c, "detach")

    async def resize(self, name: str, height: int | None, width: int | None) -> None:
        c = self.get(name)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if c.config.get("Tty") and height and width:
            await self.shim.call("resize", id=c.id, h=height, w=width)

    # ---- logs ------------------------------------------------------------------------------
    async def log_entries(self, cid: str, stdout: bool = True, stderr: bool = True) -> list[Entry]:
        c = self.get(cid)
        reader = LogReader(c.log_path)
        entries = await asyncio.to_thread(reader.read_all)
        reader.close()
        return [
            e for e in entries if (e[0] == "stdout" and stdout) or (e[0] == "stderr" and stderr)
        ]

    async def logs(
        self,
        cid: str,
        stdout: bool,
        stderr: bool,
        tail: str,
        since: float,
        until: float,
        follow: bool,
    ) -> AsyncIterator[Entry]:
        """Entries as the logs endpoint sends them; with ``follow``, until the container stops."""
        c = self.get(cid)
        reader = LogReader(c.log_path)
        entries = await asyncio.to_thread(reader.read_all)

        def wanted(e: Entry) -> bool:
            if not ((e[0] == "stdout" and stdout) or (e[0] == "stderr" and stderr)):
                return False
            if since or until:
                from dockyard.containers.listing import _since

                t = _since(e[1])
                if since and t < since:
                    return False
                if until and t > until:
                    return False
            return True

        try:
            entries = [e for e in entries if wanted(e)]
            if tail not in ("all", "") and int(tail) >= 0:
                entries = entries[len(entries) - int(tail) :] if int(tail) else []
            for e in entries:
                yield e
            if not follow or until:
                return
            while True:
                running = c.id in self._records and self._records[c.id].state.Running
                for e in await asyncio.to_thread(lambda: list(reader.read_new())):
                    if wanted(e):
                        yield e
                if not running:
                    return
                await asyncio.sleep(0.1)
        finally:
            reader.close()

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted = []
        for c in list(self._records.values()):
            if c.state.Running:
                continue
            labels = c.config.get("Labels") or {}
            if not all(
                (
                    item.partition("=")[0] in labels
                    and (
                        not item.partition("=")[1]
                        or labels[item.partition("=")[0]] == item.partition("=")[2]
                    )
                )
                for item in filters.get("label", [])
            ):
                continue
            await self.remove(c.id, force=False, volumes=False)
            deleted.append(c.id)
        self.events.publish("container", "prune", "", {"reclaimed": "0"})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": 0}

    # ---- pause / stats / top ---------------------------------------------------------------
    def _cgroup(self, c: Container):  # type: ignore[no-untyped-def]
        from dockyard.runtime.cgroups import open_manager

        parent = c.host_config.get("CgroupParent")
        path = ("/" + parent.strip("/") if parent else self.cgroup_parent) + "/" + c.id
        return open_manager(path)

    async def pause(self, name: str, pause: bool) -> None:
        c = self.get(name)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.Paused == pause:
            raise Conflict(f"Container {c.id} is {'already' if pause else 'not'} paused")
        cgroup = self._cgroup(c)
        await asyncio.to_thread(cgroup.freeze if pause else cgroup.thaw)
        c.state.Paused = pause
        c.state.Status = "paused" if pause else "running"
        self._save(c)
        self._event(c, "pause" if pause else "unpause")

    _UPDATABLE = (
        "Memory",
        "MemorySwap",
        "MemoryReservation",
        "NanoCpus",
        "CpuShares",
        "CpuQuota",
        "CpuPeriod",
        "CpusetCpus",
        "CpusetMems",
        "PidsLimit",
        "BlkioWeight",
        "RestartPolicy",
    )

    async def update(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change resources (live, through the cgroup) and the restart policy."""
        from dockyard.containers import hostconfig

        c = self.get(name)
        changes = {k: v for k, v in body.items() if k in self._UPDATABLE and v not in (None, "")}
        merged = {**c.host_config, **changes}
        if changes.get("NanoCpus"):
            merged.pop("CpuQuota", None), merged.pop("CpuPeriod", None)
        _validate_host_config(merged)
        hostconfig.validate(merged)
        if merged.get("AutoRemove") and (merged.get("RestartPolicy") or {}).get("Name") not in (
            None,
            "",
            "no",
        ):
            raise Conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        if c.state.Running:
            cgroup = self._cgroup(c)
            await asyncio.to_thread(cgroup.set, hostconfig.resources(merged))
        c.host_config = merged
        self._save(c)
        self._event(c, "update")
        return {"Warnings": None}

    def stats_sample(self, name: str) -> dict[str, Any]:
        """One Docker-shaped stats sample read from the container's cgroup (blocking)."""
        from dockyard.containers.stats import sample

        c = self.get(name)
        return sample(c, self._cgroup(c) if c.state.Running else None)

    async def top(self, name: str, ps_args: str) -> dict[str, Any]:
        c = self.get(name)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        pids = set(await asyncio.to_thread(self._cgroup(c).pids))
        args = ps_args.split() if ps_args else ["-ef"]
        proc = await asyncio.create_subprocess_exec(
            "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise InvalidParameter(f"ps: {err.decode().strip()}")
        lines = out.decode().splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidParameter("Couldn't find PID field in ps output")
        at = titles.index("PID")
        procs = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > at and fields[at].isdigit() and int(fields[at]) in pids:
                procs.append(fields)
        return {"Titles": titles, "Processes": procs}

    # ---- archive (docker cp), export, changes ----------------------------------------------
    async def _rootfs(self, c: Container, with_mounts: bool = False) -> str:
        """The container's root in the daemon's view; ``with_mounts`` also binds its volumes
        and bind mounts there (as moby does for docker cp), until ``_release``."""
        rootfs = await asyncio.to_thread(self.driver.mount, c.rw_layer)
        if with_mounts and c.mounts and self.volumes is not None:
            from dockyard.containers.mounts import bind_for_copy

            count, paths = self._copy_mounts.get(c.id, (0, []))
            if not count:
                try:
                    paths = await asyncio.to_thread(bind_for_copy, self.volumes.driver, c, rootfs)
                except BaseException:
                    await self._release(c)
                    raise
            self._copy_mounts[c.id] = (count + 1, paths)
        return rootfs

    async def _release(self, c: Container) -> None:
        count, paths = self._copy_mounts.pop(c.id, (0, []))
        if count > 1:
            self._copy_mounts[c.id] = (count - 1, paths)
        elif paths:
            from dockyard.containers.mounts import unbind_for_copy

            await asyncio.to_thread(unbind_for_copy, paths)
        if not c.state.Running:
            await asyncio.to_thread(self.driver.unmount, c.rw_layer)

    async def archive_stat(self, name: str, path: str) -> tuple[Container, str, str]:
        from dockyard.containers import archive

        c = self.get(name)
        rootfs = await self._rootfs(c, with_mounts=True)
        try:
            host = await asyncio.to_thread(archive.locate, rootfs, path, c.id)
            header = await asyncio.to_thread(archive.path_stat, rootfs, host, path)
        except BaseException:
            await self._release(c)
            raise
        return c, host, header

    async def archive_get(self, name: str, path: str) -> tuple[str, AsyncIterator[bytes]]:
        from dockyard.containers import archive
        from dockyard.streampipe import stream_from_thread

        c, host, header = await self.archive_stat(name, path)
        # moby rebases on filepath.Base(path): "/data/." gives "." (the contents)
        top = "." if path.endswith("/.") else (os.path.basename(path.rstrip("/")) or ".")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream_from_thread(
                    lambda out: archive.write_tar(host, top, out)
                ):
                    yield chunk
            finally:
                await self._release(c)

        return header, chunks()

    async def archive_put(
        self, name: str, path: str, body: Any, no_overwrite: bool, copy_uid_gid: bool = False
    ) -> None:
        from dockyard.containers import archive

        c = self.get(name)
        from dockyard.containers.mounts import mount_for

        point = mount_for(c, path)
        if point is not None and not point.rw:
            raise Conflict(f"mounted volume is marked read-only: {point.destination}")
        if point is None and c.host_config.get("ReadonlyRootfs"):
            raise Conflict("container rootfs is marked read-only")
        rootfs = await self._rootfs(c, with_mounts=True)
        try:
            owner = None
            if copy_uid_gid and c.config.get("User"):
                from dockyard.containers.bundle import resolve_user

                user = await asyncio.to_thread(resolve_user, rootfs, c.config["User"], [])
                owner = (user.uid, user.gid)
            await asyncio.to_thread(archive.extract, rootfs, path, body, c.id, no_overwrite, owner)
        finally:
            await self._release(c)

    def _diff_dirs(self, c: Container) -> tuple[str, list[str]]:
        if not hasattr(self.driver, "diff_dir"):
            raise errors.NotImplemented(
                f"docker diff and commit need the overlay2 storage driver (this daemon uses {self.driver.name})"
            )
        lower = [
            self.driver.diff_dir(ch.removeprefix("sha256:"))
            for ch in reversed(self.images.store.image_chain(c.image_id))
        ]
        return self.driver.diff_dir(c.rw_layer), lower

    async def changes(self, name: str) -> list[dict[str, Any]]:
        from dockyard.containers.diff import changes

        c = self.get(name)
        upper, lower = self._diff_dirs(c)
        return await asyncio.to_thread(changes, upper, lower)

    async def export(self, name: str) -> AsyncIterator[bytes]:
        from dockyard.containers.diff import export_tar
        from dockyard.streampipe import stream_from_thread

        c = self.get(name)
        rootfs = await self._rootfs(c)
        self._event(c, "export")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream_from_thread(lambda out: export_tar(rootfs, out)):
                    yield chunk
            finally:
                await self._release(c)

        return chunks()

    async def commit(
        self,
        name: str,
        repo: str,
        tag: str,
        comment: str,
        author: str,
        changes: list[str],
        pause: bool,
        overrides: dict[str, Any] | None,
    ) -> str:
        """A new image: the container's image plus its rw layer as one more layer."""
        import json as _json
        import tempfile

        from dockyard.containers.diff import diff_tar
        from dockyard.images.changes import apply_changes
        from dockyard.images.layer import ingest_layer
        from dockyard.images.service import now_rfc3339 as image_time

        c = self.get(name)
        upper, _ = self._diff_dirs(c)
        paused_here = False
        if pause and c.state.Running and not c.state.Paused:
            await self.pause(c.id, True)
            paused_here = True
        try:
            spool = tempfile.TemporaryFile(dir=self.images.tmpdir)
            await asyncio.to_thread(diff_tar, upper, spool)
        finally:
            if paused_here:
                await self.pause(c.id, False)
        parent_cfg = self.images.config(c.image_id)
        config = {k: v for k, v in c.config.items() if k not in ("Hostname",)}
        config["Hostname"] = ""
        if overrides:
            config.update({k: v for k, v in overrides.items() if v is not None})
        apply_changes(config, changes)
        created = image_time()
        with spool:
            spool.seek(0)
            async with self.images.lock:
                written: list[str] = []
                try:
                    diff_id = await asyncio.to_thread(ingest_layer, self.images.content, spool)
                    written.append(diff_id)
                    new = {
                        "architecture": parent_cfg.get("architecture", "amd64"),
                        "author": author,
                        "comment": comment,
                        "config": config,
                        "container": c.id,
                        "container_config": c.config,
                        "created": created,
                        "docker_version": "dockyard-0.1.0",
                        "history": [
                            *(parent_cfg.get("history") or []),
                            {
                                "created": created,
                                "author": author,
                                "comment": comment,
                                "created_by": " ".join([c.path, *c.args]),
                            },
                        ],
                        "os": "linux",
                        "rootfs": {
                            "type": "layers",
                            "diff_ids": [
                                *parent_cfg.get("rootfs", {}).get("diff_ids", []),
                                diff_id,
                            ],
                        },
                    }
                    raw = _json.dumps(new, separators=(",", ":")).encode()
                    image_id = await self.images.register(
                        raw, new["rootfs"]["diff_ids"], parent=c.image_id, written=written
                    )
                except BaseException:
                    await self.images._discard(written)
                    raise
        if repo:
            await self.images.tag(image_id, repo, tag)
        self._event(c, "commit", comment=comment)
        return image_id

    # ---- list / inspect --------------------------------------------------------------------
    def inspect(self, name: str) -> dict[str, Any]:
        c = self.get(name)
        from dockyard.containers.mounts import inspect_view

        view = _inspect(c, self.driver.name)
        view["Mounts"] = inspect_view(c, self.volumes)
        if self.net is not None:
            view["NetworkSettings"] = self.net.view(c)
            files = os.path.dirname(c.log_path)
            if c.has_been_started and not (c.host_config.get("NetworkMode") or "").startswith(
                "container:"
            ):
                view["ResolvConfPath"] = os.path.join(files, "resolv.conf")
                view["HostnamePath"] = os.path.join(files, "hostname")
                view["HostsPath"] = os.path.join(files, "hosts")
        return view

    def list(
        self, all_: bool, limit: int | None, filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        from dockyard.containers.listing import matches, summary

        records = sorted(self._records.values(), key=lambda c: c.created_ns, reverse=True)
        out = []
        for c in records:
            if not all_ and not c.state.Running and not filters and limit in (None, -1, 0):
                continue
            if not matches(c, filters, self, all_ or bool(filters) or (limit not in (None, -1, 0))):
                continue
            out.append(summary(c, self.volumes, self.net))
            if limit and limit > 0 and len(out) >= limit:
                break
        return out

    def _runtime(self, host_config: dict[str, Any]) -> Runtime:
        try:
            return self.runtimes.resolve(host_config.get("Runtime"))
        except KeyError:
            raise InvalidParameter(
                f"unknown or invalid runtime name: {host_config.get('Runtime')}"
            ) from None

    def runtime_request(self, c: Container) -> dict[str, Any]:
        """What the supervisor needs to run (or exec into) ``c`` with its runtime."""
        rt = self._runtime(c.host_config)
        request = {"runtime": rt.name, "runtime_root": os.path.join(self.exec_root, rt.state_dir)}
        if not rt.native:
            request.update(runtime_path=rt.path, runtime_args=list(rt.args))
        return request

    def sizes(self, name: str) -> tuple[int, int]:
        """(SizeRw, SizeRootFs) as ``ps -s`` and ``inspect -s`` show them (blocking: walks
        the container's layer).  On vfs the layer is a full copy, so its own bytes are
        estimated as the copy's size less the image's."""
        c = self.get(name)
        row = self.images.store.image(c.image_id)
        image_size = row.size if row is not None else 0
        try:
            if hasattr(self.driver, "diff_dir"):
                from dockyard.storage._usage import disk_usage

                rw = disk_usage(self.driver.diff_dir(c.rw_layer))
            else:
                rw = max(0, self.driver.size(c.rw_layer) - image_size)
        except (OSError, errors.NotFound):
            rw = 0  # the layer is being removed
        return rw, rw + image_size

    def running_count(self) -> tuple[int, int, int, int]:
        records = list(self._records.values())
        running = sum(1 for c in records if c.state.Running and not c.state.Paused)
        paused = sum(1 for c in records if c.state.Paused)
        return len(records), running, paused, len(records) - running - paused


def _since_ns(started: str, finished: str) -> float:
    from dockyard.containers.listing import _since

    return max(0.0, _since(finished) - _since(started))


def _size(value: str | None, default: int) -> int:
    if not value:
        return default
    text = str(value).strip().lower()
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    try:
        if text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except (ValueError, IndexError):
        raise InvalidParameter(f"invalid log-opt max-size: {value!r}") from None


def _merge_config(body: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Create options over the image's config (moby daemon/create.go + merge.go)."""
    config = dict(body)
    if not config.get("Entrypoint"):
        if config.get("Entrypoint") == [""] or (body.get("Entrypoint") == [] and body.get("Cmd")):
            config["Entrypoint"] = None
        else:
            config["Entrypoint"] = image.get("Entrypoint")
            if not config.get("Cmd"):
                config["Cmd"] = image.get("Cmd")
    env = list(image.get("Env") or [])
    for item in body.get("Env") or []:
        key = item.split("=", 1)[0]
        env = [e for e in env if e.split("=", 1)[0] != key] + [item]
    config["Env"] = env or None
    for key in ("WorkingDir", "User", "StopSignal"):
        if not config.get(key) and image.get(key):
            config[key] = image[key]
    labels = dict(image.get("Labels") or {})
    labels.update(body.get("Labels") or {})
    config["Labels"] = labels
    if image.get("ExposedPorts"):
        config["ExposedPorts"] = {**image["ExposedPorts"], **(body.get("ExposedPorts") or {})}
    if image.get("Volumes"):
        config["Volumes"] = {**image["Volumes"], **(body.get("Volumes") or {})}
    if not config.get("Healthcheck") and image.get("Healthcheck"):
        config["Healthcheck"] = image["Healthcheck"]
    for key, default in (
        ("Domainname", ""),
        ("AttachStdin", False),
        ("AttachStdout", False),
        ("AttachStderr", False),
        ("Tty", False),
        ("OpenStdin", False),
        ("StdinOnce", False),
        ("Cmd", None),
        ("Volumes", None),
        ("WorkingDir", ""),
        ("OnBuild", None),
        ("User", ""),
    ):
        config.setdefault(key, default)
    return config


def _validate_host_config(hc: dict[str, Any]) -> None:
    for key in (
        "Memory",
        "MemorySwap",
        "NanoCpus",
        "CpuShares",
        "CpuQuota",
        "CpuPeriod",
        "PidsLimit",
    ):
        value = hc.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidParameter(f"invalid {key}: {value!r} is not an integer")
        if value < 0 and not (key in ("MemorySwap", "PidsLimit") and value == -1):
            raise InvalidParameter(f"invalid {key}: {value} must not be negative")
    if hc.get("Memory") and hc["Memory"] < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    restart = hc.get("RestartPolicy") or {}
    if restart.get("Name") not in (None, "", "no", "always", "unless-stopped", "on-failure"):
        raise InvalidParameter(f"invalid restart policy '{restart.get('Name')}'")
    if hc.get("AutoRemove") and restart.get("Name") not in (None, "", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def _inspect(c: Container, driver: str) -> dict[str, Any]:
    hc = dict(c.host_config)
    hc.setdefault("NetworkMode", "default")
    hc.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    hc.setdefault("AutoRemove", False)
    hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    if not hc["LogConfig"].get("Type"):
        hc["LogConfig"] = {"Type": "json-file", "Config": hc["LogConfig"].get("Config") or {}}
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": c.state.Status,
            "Running": c.state.Running,
            "Paused": c.state.Paused,
            "Restarting": c.state.Restarting,
            "OOMKilled": c.state.OOMKilled,
            "Dead": c.state.Dead,
            "Pid": c.state.Pid,
            "ExitCode": c.state.ExitCode,
            "Error": c.state.Error,
            "StartedAt": c.state.StartedAt,
            "FinishedAt": c.state.FinishedAt,
            **({"Health": c.state.Health} if c.state.Health is not None else {}),
        },
        "Image": c.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": c.log_path,
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": hc,
        "GraphDriver": {"Data": None, "Name": driver},
        "Mounts": [],
        "Config": c.config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": {},
            "SandboxKey": "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": {},
        },
    }
