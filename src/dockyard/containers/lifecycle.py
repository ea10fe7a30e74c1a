"""A container's lifecycle (asyncio world): the state machine behind create, start, stop,
kill, restart, pause and remove, the exit path, the restart policy and the restore after a
daemon restart (rename and prune, which move no container between states, are in
``housekeeping.py``).

States (``State.Status``) and what moves a container between them::

    (none)      --create-->                   created
    created     --start-->                    running     (the supervisor forks its init)
    exited      --start | restart-->          running
    running     --restart-->                  exited, then running  (stop, then start)
    running     --pause-->                    paused      (cgroup freezer; unpause: back)
    running     --its process exits-->        exited      (_monitor -> _exited -> _record_exit)
    running     --stop | kill-->              exited      (signalled; stop escalates to KILL)
    paused      --stop | kill | rm -f-->      exited      (signalled, then thawed)
    exited      --restart policy says so-->   restarting  (_schedule_restart: back-off)
    restarting  --back-off elapsed-->         running     (or exited if that start fails)
    restarting  --stop-->                     exited      (manually_stopped: no more restarts)
    exited      --AutoRemove-->               removing --> (none)
    created | exited --rm-->                  removing --> (none)  (rm -f kills a running one)
    (daemon restart) --restore-->             running: monitor re-attached; exited: exit.json
                                              read; removing: removed; restarting: rescheduled

Every transition saves the record (SQLite) and publishes moby's event.  A running container's
process belongs to the supervisor, which outlives the daemon: a monitor task per running
container waits on it for the exit, and ``restore`` re-creates those tasks.  Per-container
work is serialised by the core's lock (start, stop, scheduled restarts, network changes).
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
from typing import TYPE_CHECKING, Any

from dockyard.background import spawn
from dockyard.containers import createconfig, hostconfig, links, names
from dockyard.containers.bundle import build as build_bundle
from dockyard.containers.record import Container, State
from dockyard.containers.shim import ShimError
from dockyard.errors import (
    Conflict,
    DockyardError,
    Forbidden,
    Internal,
    InvalidParameter,
    NotFound,
    NotModified,
)

if TYPE_CHECKING:
    from dockyard.containers.core import ContainerCore
    from dockyard.containers.streams import Streams

__all__ = ["Lifecycle", "now_rfc3339", "parse_signal"]

log = logging.getLogger("dockyard.containers")


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


def _since_ns(started: str, finished: str) -> float:
    from dockyard.containers.listing import _since

    return max(0.0, _since(finished) - _since(started))


class Lifecycle:
    def __init__(self, core: ContainerCore, streams: Streams) -> None:
        self.core = core
        self.streams = streams  # hands attach-before-start clients to a start; drains at exit
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._exiting: dict[str, asyncio.Event] = {}  # id -> set when its exit's clean-up ends
        self._exit_tasks: set[asyncio.Task[Any]] = set()
        self._exit_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._remove_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._health: dict[str, asyncio.Task[None]] = {}

    # ---- create ----------------------------------------------------------------------------
    async def create(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("Image"):
            raise InvalidParameter("Config cannot be empty in order to create a container")
        host_config = body.pop("HostConfig", None) or {}
        networking = body.pop("NetworkingConfig", None)
        if not isinstance(host_config, dict):
            raise InvalidParameter("HostConfig must be a JSON object")
        image_name = str(body["Image"])
        # Held until the record is saved: an rmi meanwhile either finishes first (this then
        # answers "No such image") or waits and sees this container as a user.
        async with self.core.images.using(image_name) as image_id:
            return await self._create(name, body, host_config, networking, image_name, image_id)

    async def _create(
        self,
        name: str | None,
        body: dict[str, Any],
        host_config: dict[str, Any],
        networking: Any,
        image_name: str,
        image_id: str,
    ) -> dict[str, Any]:
        image_cfg = self.core.images.config(image_id).get("config") or {}
        config = createconfig.merge(body, image_cfg)
        entrypoint = config.get("Entrypoint") or []
        cmd = config.get("Cmd") or []
        argv = list(entrypoint) + list(cmd)
        if not argv:
            raise InvalidParameter("No command specified")
        createconfig.check_limits(host_config)
        hostconfig.validate(host_config)
        host_config["Runtime"] = self.core._runtime(host_config).name
        cid = secrets.token_hex(32)
        config.setdefault("Hostname", "")
        if not config["Hostname"]:
            config["Hostname"] = cid[:12]
        config["Image"] = image_name
        taken = {c.name for c in self.core._records.values()}
        stored_name = names.validate(name) if name else names.random_name(taken)
        holder = next((c for c in self.core._records.values() if c.name == stored_name), None)
        if holder is not None:
            raise Conflict(
                f'Conflict. The container name "{stored_name}" is already in use by container '
                f'"{holder.id}". You have to remove (or rename) that container to be able to '
                "reuse that name."
            )
        top = self.core.images.store.image(image_id).top_layer
        requested = (
            self.core.net.validate(host_config, config, networking)
            if self.core.net is not None
            else {}
        )
        taken = {c.name for c in self.core._records.values()}
        taken.update(n for c in self.core._records.values() for n in c.links)
        made_links = links.register(stored_name, host_config, self.core.get, taken)
        points = []
        if self.core.volumes is not None:
            from dockyard.containers.mounts import create_points

            points = await create_points(self.core.volumes, config, host_config, self.core.get)
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
            log_path=os.path.join(self.core.data_root, "containers", cid, f"{cid}-json.log"),
            rw_layer=cid,
            top_layer=top.removeprefix("sha256:") if top else None,
            mounts=points,
            net={"requested": requested},
            links=made_links,
        )
        try:
            await asyncio.to_thread(self._prepare_dirs, record)
        except BaseException:
            # Half-made (a full disk): leave no directory or rw layer behind.
            await asyncio.to_thread(self._discard_dirs, record)
            raise
        if not name:
            # A concurrent create may have drawn the same random name while this one
            # awaited: draw again (no await from here to the save, so nothing can interleave).
            taken = {c.name for c in self.core._records.values()}
            if record.name in taken:
                drawn = record.name
                record.name = stored_name = names.random_name(taken)
                record.links = {stored_name + n[len(drawn) :]: t for n, t in record.links.items()}
        try:
            self.core._save(record)
        except sqlite3.IntegrityError as exc:
            self.core._records.pop(cid, None)  # never listed: it was not created
            await asyncio.to_thread(self._discard_dirs, record)
            raise Conflict(
                f'Conflict. The container name "{stored_name}" is already in use'
            ) from exc
        except BaseException:
            self.core._records.pop(cid, None)  # not recorded (a full disk): not created
            await asyncio.to_thread(self._discard_dirs, record)
            raise
        self.core._event(record, "create")
        return {"Id": cid, "Warnings": []}

    def _prepare_dirs(self, c: Container) -> None:
        os.makedirs(os.path.dirname(c.log_path), mode=0o710, exist_ok=True)
        self.core.driver.prepare(c.rw_layer, c.top_layer)

    def _discard_dirs(self, c: Container) -> None:
        shutil.rmtree(os.path.dirname(c.log_path), ignore_errors=True)
        try:
            self.core.driver.remove(c.rw_layer)
        except (DockyardError, OSError) as exc:
            log.warning("could not remove the rw layer of a failed create %s: %s", c.id, exc)

    # ---- start -----------------------------------------------------------------------------
    async def start(self, name: str) -> None:
        c = self.core.get(name)
        async with self.core._lock(c.id):
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
        bundle = os.path.join(self.core.exec_root, "containers", c.id)
        from dockyard.containers import mounts

        acquired = networked = False
        # links are checked before anything is set up: a stopped target is moby's plain error
        link_env = self.core.net.link_env(c) if self.core.net is not None else []
        try:
            rootfs = await asyncio.to_thread(self.core.driver.mount, c.rw_layer)
            spec_mounts = []
            if c.mounts and self.core.volumes is not None:
                spec_mounts = await mounts.acquire(self.core.volumes, c, rootfs)
                acquired = True
            netns_path = None
            if self.core.net is not None:
                networked = True
                netns_path, etc_mounts = await self.core.net.setup(c, os.path.dirname(c.log_path))
                spec_mounts = etc_mounts + spec_mounts
            config_path = await asyncio.to_thread(
                build_bundle,
                bundle,
                rootfs,
                [c.path, *c.args],
                c.config,
                c.host_config,
                c.config.get("Hostname") or c.id[:12],
                f"{self.core.cgroup_parent}/{c.id}",
                spec_mounts,
                netns_path,
                link_env,
            )
        except (OSError, InvalidParameter, NotFound, Conflict, Forbidden) as exc:
            if networked:
                await self.core.net.teardown(c)
            if acquired:
                await mounts.release(self.core.volumes, c)
            message = getattr(exc, "message", None) or str(exc)
            c.state.Error = message
            self.core._save(c)
            raise InvalidParameter(f"failed to create the container's bundle: {message}") from exc
        log_cfg = (c.host_config.get("LogConfig") or {}).get("Config") or {}
        request = {
            "id": c.id,
            "bundle": bundle,
            "config": config_path,
            **self.core.runtime_request(c),
            "argv": [c.path, *c.args],
            "env": [],
            "tty": bool(c.config.get("Tty")),
            "stdin": bool(c.config.get("OpenStdin")),
            "log_path": c.log_path,
            "log_max_size": createconfig.log_size(log_cfg.get("max-size"), 10 << 20),
            "log_max_file": int(log_cfg.get("max-file") or 3),
        }
        pending = self.streams.take_pending(c.id)
        try:
            if pending is not None:
                reply, reader, writer = await self.core.shim.stream("start", attach=True, **request)
                self.streams.adopt(c.id, pending, reader, writer, reply.get("tty", False))
            else:
                reply = await self.core.shim.call("start", **request)
        except ShimError as exc:
            c.state.Error = exc.message
            c.state.ExitCode = 127 if "exec" in exc.message else 128
            self.core._save(c)
            if acquired:
                await mounts.release(self.core.volumes, c)
            if networked:
                await self.core.net.teardown(c)
            await self.core.fs.unmount_root(c)
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
        self.core._save(c)
        self.core._event(c, "start")
        self._monitors[c.id] = asyncio.create_task(self._monitor(c.id))
        self._start_health(c)

    def _start_health(self, c: Container) -> None:
        from dockyard.containers import health

        if health.probe_command(c.config.get("Healthcheck")) is not None:
            self._health[c.id] = asyncio.create_task(health.monitor(self.core, c.id))

    # ---- exits -----------------------------------------------------------------------------
    async def _monitor(self, cid: str) -> None:
        try:
            state = await self.core.shim.call("wait", id=cid)
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
        c = self.core._records.get(cid)
        if c is None:
            return None
        await self.streams.drain(cid)
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
        self._save_exit(c)
        try:
            await self.core.shim.call("delete", id=cid)
        except Exception:  # already forgotten by the supervisor
            pass
        await self.core.fs.unmount_root(c)  # (not under a running cp or export)
        if self.core.volumes is not None and c.mounts:
            from dockyard.containers.mounts import release

            await release(self.core.volumes, c)
        if self.core.net is not None:
            try:
                await self.core.net.teardown(c)
            except Exception as exc:
                log.warning("network teardown of %s: %s", cid[:12], exc)
            if self.core._records.get(cid) is c:  # not removed meanwhile: never bring it back
                self._save_exit(c)
        if oom:
            self.core._event(c, "oom")
        self.core._event(c, "die", exitCode=str(code))
        for fut in self._exit_waiters.pop(cid, []):
            if not fut.done():
                fut.set_result(code)
        return c

    def _save_exit(self, c: Container) -> None:
        """An exit whose record cannot be written (a full disk) is still cleaned up: its
        rootfs, volumes and network must not stay held.  The record in memory says exited;
        the next save writes it, and a restart finds the process gone either way."""
        try:
            self.core._save(c)
        except Exception as exc:  # (``_save`` updated ``_records`` before writing)
            log.error("could not record the exit of %s (cleaned up anyway): %s", c.id[:12], exc)

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
        self.core._save(c)

        async def later() -> None:
            await asyncio.sleep(delay)
            async with self.core._lock(c.id):
                current = self.core._records.get(c.id)
                if current is None or current.manually_stopped or not current.state.Restarting:
                    return
                current.restart_count += 1
                current.state.Restarting = False
                try:
                    await self._start(current)
                except Exception as exc:
                    log.warning("restart of %s failed: %s", c.id[:12], exc)
                    current.state.Status = "exited"
                    self.core._save(current)

        spawn(later())

    async def restore(self) -> None:
        """Re-attach to containers that kept running while the daemon was away."""
        try:
            known = {s["id"]: s for s in (await self.core.shim.call("list"))["containers"]}
        except Exception as exc:
            log.warning("cannot list the supervisor's containers: %s", exc)
            known = {}
        for c in list(self.core._records.values()):
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
                exit_file = os.path.join(self.core.exec_root, "supervisor", c.id, "exit.json")
                try:
                    with open(exit_file, encoding="utf-8") as f:
                        s = json.load(f)
                except (OSError, ValueError):
                    s = {"exit_code": 255, "finished_at": now_rfc3339(), "running": False}
            if s.get("running"):
                for p in c.mounts:
                    if p.type == "volume" and self.core.volumes is not None:
                        self.core.volumes.hold(p.source, c.id)
                if self.core.net is not None:
                    await self.core.net.restore(c)
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
        c = self.core.get(name)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidParameter(f"invalid condition: {condition!r}")
        if condition == "removed":
            waiters = self._remove_waiters.setdefault(c.id, [])
        elif condition in ("not-running", "") and not c.state.Running and c.id not in self._exiting:
            # (an exit still being cleaned up answers once its rootfs and network are gone,
            # so what the client does next finds the container fully stopped)
            fut.set_result(c.state.ExitCode)
            return fut
        else:
            waiters = self._exit_waiters.setdefault(c.id, [])
        waiters.append(fut)

        def forget(done: asyncio.Future[int]) -> None:
            # a waiter that gave up (its client hung up) leaves no trace
            if done.cancelled() and done in waiters:
                waiters.remove(done)

        fut.add_done_callback(forget)
        return fut

    async def kill(self, name: str, signal: str | int | None) -> None:
        c = self.core.get(name)
        number = parse_signal(signal)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        # moby's kill with SIGKILL returns once the exit is recorded: an inspect right after
        # says exited and a plain ``rm`` succeeds.  Registered before the signal, so the exit
        # cannot slip between the two.
        exited = self.wait_future(c.id, "not-running") if number == _signal.SIGKILL else None
        try:
            await self._signal(c, number)
        except ShimError as exc:
            if exited is not None:
                exited.cancel()
            raise Conflict(f"Cannot kill container: {c.id}: {exc.message}") from exc
        self.core._event(c, "kill", signal=str(number))
        if exited is not None:
            await exited
            cleaning = self._exiting.get(c.id)
            if cleaning is not None:
                await cleaning.wait()

    async def _signal(self, c: Container, number: int) -> None:
        """Signal the container; a paused one is thawed after, as moby does, or the signal
        would wait in its frozen cgroup (``rm -f`` hung until an unpause)."""
        await self.core.shim.call("kill", id=c.id, signal=number)
        if c.state.Paused:
            try:
                await self.core.cgroup_op(c, "thaw")
            except Conflict:
                pass  # it is gone already: nothing left to thaw
            c.state.Paused = False
            c.state.Status = "running"
            self.core._save(c)

    async def stop(self, name: str, timeout: int | None, signal: str | None = None) -> None:
        c = self.core.get(name)
        # Under the container's lock: a restart in progress finishes first and is then
        # stopped, rather than coming back to life after the client heard "stopped".
        async with self.core._lock(c.id):
            c.manually_stopped = True
            if c.state.Restarting:
                c.state.Restarting = False
                c.state.Status = "exited"
                self.core._save(c)
                return
            if not c.state.Running:
                self.core._save(c)
                raise NotModified("container already stopped")
            self.core._save(c)
            await self._stop(c, timeout, signal)
        self.core._event(c, "stop")

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
        c = self.core.get(name)
        if c.state.Running:
            await self._stop(c, timeout)
        async with self.core._lock(c.id):
            await self._start(c)
        self.core._event(c, "restart")

    # ---- remove ------------------------------------------------------------------------------
    async def remove(self, name: str, force: bool, volumes: bool) -> None:
        c = self.core.get(name)
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
        if c.id not in self.core._records:
            return  # removed meanwhile (auto-remove)
        c.state.Status = "removing"
        self.core._save(c)
        await asyncio.to_thread(self._remove_files, c)
        self.core.store.delete(c.id)
        self.core._records.pop(c.id, None)
        for link_name, parent in self.core.parents(c):
            # dockerd keeps a dangling link until its next restart (and then the parent
            # cannot start); dockyard lets the link go with its target.
            parent.links.pop(link_name, None)
            self.core._save(parent)
        self.core._locks.pop(c.id, None)
        self.core.execs.forget(c.id)
        if volumes and self.core.volumes is not None and c.mounts:
            from dockyard.containers.mounts import remove_anonymous

            await remove_anonymous(self.core.volumes, c)
        self.core._event(c, "destroy")
        for fut in self._remove_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(c.state.ExitCode)

    def _remove_files(self, c: Container) -> None:
        self.core.driver.remove(c.rw_layer)
        shutil.rmtree(os.path.dirname(c.log_path), ignore_errors=True)
        shutil.rmtree(os.path.join(self.core.exec_root, "containers", c.id), ignore_errors=True)

    # ---- pause ---------------------------------------------------------------------
    async def pause(self, name: str, pause: bool) -> None:
        c = self.core.get(name)
        if not pause and not c.state.Paused:
            # moby's containerUnpause returns a plain error here, so a 500 (running or not)
            raise Internal(f"Container {c.id} is not paused")
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.Paused == pause:
            raise Conflict(f"Container {c.id} is {'already' if pause else 'not'} paused")
        await self.core.cgroup_op(c, "freeze" if pause else "thaw")
        c.state.Paused = pause
        c.state.Status = "paused" if pause else "running"
        self.core._save(c)
        self.core._event(c, "pause" if pause else "unpause")
