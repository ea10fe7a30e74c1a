"""``docker exec``: exec instances of running containers (asyncio world).

An exec is kept in memory, as moby keeps it (exec instances do not survive a daemon
restart).  Its process is started by the supervisor, which runs it under the same
stdio/log machinery as a container, keyed by the exec id; its exit code is known before
the attached stream is closed, so ``GET /exec/{id}/json`` right after the stream ends has it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dockyard import detachkeys
from dockyard.background import spawn
from dockyard.containers.attach import Hub
from dockyard.containers.bundle import DEFAULT_PATH, resolve_user
from dockyard.containers.hostconfig import capabilities, no_new_privileges
from dockyard.containers.links import replace_or_append
from dockyard.containers.runtimes import NATIVE
from dockyard.errors import Conflict, Internal, InvalidParameter, NotFound
from dockyard.runtime.spec.default import default_nofile, default_spec

__all__ = ["Exec", "Execs", "NoSuchExec"]


class NoSuchExec(NotFound):
    def __init__(self, exec_id: str) -> None:
        super().__init__(f"No such exec instance: {exec_id}")


@dataclass
class Exec:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    detached: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict[str, Any]:
        cmd = list(self.config.get("Cmd") or [])
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": bool(self.config.get("Tty")),
                "entrypoint": cmd[0] if cmd else "",
                "arguments": cmd[1:],
                "privileged": bool(self.config.get("Privileged")),
                # moby: ``user,omitempty``
                **({"user": self.config["User"]} if self.config.get("User") else {}),
            },
            "OpenStdin": bool(self.config.get("AttachStdin")),
            "OpenStderr": bool(self.config.get("AttachStderr")),
            "OpenStdout": bool(self.config.get("AttachStdout")),
            "CanRemove": False,
            "ContainerID": self.container_id,
            # moby keeps the parsed bytes and its JSON encoder writes []byte as base64.
            "DetachKeys": base64.b64encode(self._keys()).decode(),
            "Pid": self.pid,
        }

    def _keys(self) -> bytes:
        raw = self.config.get("DetachKeys") or ""
        return detachkeys.parse(raw) if raw else b""

    @property
    def detach_keys(self) -> bytes:
        """The sequence that detaches a TTY client (checked at create)."""
        return self._keys() or detachkeys.DEFAULT


class Execs:
    def __init__(self, containers: Any) -> None:
        self.containers = containers
        self.records: dict[str, Exec] = {}

    def get(self, exec_id: str) -> Exec:
        try:
            return self.records[exec_id]
        except KeyError:
            raise NoSuchExec(exec_id) from None

    def ids_of(self, container_id: str) -> list[str] | None:
        """``ExecIDs`` of container inspect: the container's execs that have not ended
        (moby drops an exec from its container's list when it exits); null when none."""
        ids = [
            e.id
            for e in self.records.values()
            if e.container_id == container_id and e.exit_code is None
        ]
        return ids or None

    def forget(self, container_id: str) -> None:
        """Drop the container's exec records (it is being removed): moby's exec store
        forgets them with it, and kept forever they would grow without bound."""
        for exec_id in [i for i, e in self.records.items() if e.container_id == container_id]:
            del self.records[exec_id]

    def create(self, name: str, body: dict[str, Any]) -> dict[str, str]:
        c = self.containers.get(name)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.Paused:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        cmd = body.get("Cmd")
        if not cmd or not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
            raise InvalidParameter("No exec command specified")
        keys = body.get("DetachKeys") or ""
        if not isinstance(keys, str):
            raise InvalidParameter('DetachKeys must be a string such as "ctrl-p,ctrl-q"')
        if keys:
            try:
                detachkeys.parse(keys)
            except ValueError:
                # moby answers 500 here (a plain error), unlike attach's 400; keep its status.
                raise Internal(f"Invalid escape keys ({keys}) provided") from None
        if self.containers.net is not None:
            self.containers.net.link_env(c)  # moby: a stopped link target fails the create
        exec_id = secrets.token_hex(32)
        self.records[exec_id] = Exec(exec_id, c.id, body)
        self.containers._event(c, f"exec_create: {' '.join(cmd)}", execID=exec_id)
        return {"Id": exec_id}

    async def _process(self, e: Exec) -> dict[str, Any]:
        c = self.containers.get(e.container_id)
        # moby: the container's daemon environment (links included, as they are now), then
        # its Env, then the exec's
        daemon_env = [DEFAULT_PATH, f"HOSTNAME={c.config.get('Hostname') or c.id[:12]}"]
        if e.config.get("Tty"):
            daemon_env.append("TERM=xterm")
        if self.containers.net is not None:
            daemon_env += self.containers.net.link_env(c)
        rootfs = await asyncio.to_thread(self.containers.driver.mount, c.rw_layer)
        base = default_spec(list(e.config["Cmd"]), nofile=default_nofile()).process
        env = replace_or_append(daemon_env, c.config.get("Env") or [])
        base.env = replace_or_append(env, e.config.get("Env") or [])
        base.cwd = e.config.get("WorkingDir") or c.config.get("WorkingDir") or "/"
        user = e.config.get("User") or c.config.get("User") or ""
        base.user = await asyncio.to_thread(
            resolve_user, rootfs, user, list(c.host_config.get("GroupAdd") or [])
        )
        base.no_new_privileges = no_new_privileges(c.host_config)
        # The container's own set (moby starts an exec from the container's process spec);
        # --privileged lifts it to exactly what a privileged container holds.
        privileged = bool(e.config.get("Privileged") or c.host_config.get("Privileged"))
        caps = capabilities({**c.host_config, "Privileged": privileged})
        base.capabilities.bounding = caps  # type: ignore[union-attr]
        base.capabilities.effective = list(caps)  # type: ignore[union-attr]
        base.capabilities.permitted = list(caps)  # type: ignore[union-attr]
        return msgspec.to_builtins(base)

    async def start(self, exec_id: str, hub: Hub | None) -> Exec:
        """Start the process; a given ``hub`` (made before the start, so early stdin is
        buffered in it) carries its output."""
        e = self.get(exec_id)
        if e.running or e.exit_code is not None:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        c = self.containers.get(e.container_id)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        request = {
            "id": exec_id,
            "exec_of": c.id,
            "process": await self._process(e),
            **self.containers.runtime_request(c),
            "tty": bool(e.config.get("Tty")),
            "stdin": bool(e.config.get("AttachStdin")),
        }
        if request["runtime"] != NATIVE:
            # An OCI runtime reads the process from a file (``runc exec --process``).
            request["process_file"] = await asyncio.to_thread(
                self._process_file, exec_id, request["process"], request["tty"]
            )
        shim = self.containers.shim
        try:
            if hub is not None:
                reply, reader, writer = await shim.stream("start", attach=True, **request)
                spawn(hub.run(reader, writer, bool(reply.get("tty"))))
            else:
                reply = await shim.call("start", **request)
        except Conflict as exc:
            self._drop_process_file(exec_id)
            e.exit_code = 126  # moby: any failure to start an exec (not found, not executable)
            e.done.set()
            raise InvalidParameter(f"OCI runtime exec failed: {exc.message}: unknown") from exc
        e.running, e.pid = True, reply["pid"]
        self.containers._event(c, f"exec_start: {' '.join(e.config['Cmd'])}", execID=exec_id)
        spawn(self._monitor(e))
        return e

    def detached(self, e: Exec) -> str:
        """A client typed the detach keys: the process goes on running, but, as in moby
        (daemon/exec.go), the exec is recorded as ended with 126 and the attach as failed.
        Returns the message moby writes to the client."""
        e.detached = True
        e.running, e.exit_code = False, 126
        e.done.set()
        self.containers._event(self.containers.get(e.container_id), "exec_detach", execID=e.id)
        return "exec attach failed: error on attach stdin: read escape sequence"

    def _process_file(self, exec_id: str, process: dict[str, Any], tty: bool) -> str:
        folder = os.path.join(self.containers.exec_root, "exec-processes")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        path = os.path.join(folder, f"{exec_id}.json")
        with open(path, "wb") as f:
            f.write(msgspec.json.encode({**process, "terminal": tty}))
        return path

    def _drop_process_file(self, exec_id: str) -> None:
        try:
            os.unlink(os.path.join(self.containers.exec_root, "exec-processes", f"{exec_id}.json"))
        except FileNotFoundError:
            pass

    async def _monitor(self, e: Exec) -> None:
        try:
            state = await self.containers.shim.call("wait", id=e.id)
            if not e.detached:  # a detached exec's record is final (see ``detached``)
                e.exit_code = int(state["exit_code"])
            await self.containers.shim.call("delete", id=e.id)
        except Exception:
            e.exit_code = e.exit_code if e.exit_code is not None else 126
        e.running = False
        e.done.set()
        self._drop_process_file(e.id)
        c = self.containers._records.get(e.container_id)
        if c is not None:
            self.containers._event(c, "exec_die", execID=e.id, exitCode=str(e.exit_code))

    async def resize(self, exec_id: str, height: int | None, width: int | None) -> None:
        e = self.get(exec_id)
        if e.running and e.config.get("Tty") and height and width:
            await self.containers.shim.call("resize", id=e.id, h=height, w=width)
