"""The builder's StepRunner over the container service (asyncio world): a RUN step is a
container created, attached, started, waited for, committed and removed through the
container service's public methods, so it gets exactly the isolation of ``docker run``.

The commit makes a temporary image (the container service writes its own config and
history); the builder reads the new layer's diff id from it, registers its own image with
moby's config and history on the same layer, and then ``release`` drops the temporary one.
Before the commit the mount points the runtime had to make for the step's ``--mount``s
(an empty ``/run/secrets/id`` file, a ``/cache`` dir) leave the rw layer, as BuildKit
removes its mount stubs: a secret's name stays out of the image too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import stat
from typing import Any

import msgspec

from dockyard.build.base import Output, Progress, RunRequest
from dockyard.errors import DockyardError, Internal, NotFound
from dockyard.images import reference
from dockyard.images.service import ImageService

__all__ = ["ContainerStepRunner", "RegistryPuller", "drop_stubs"]


class RegistryPuller:
    """The builder's ``ImagePuller`` over the distribution service: the same pull as
    ``POST /images/create?fromImage=``, its messages forwarded into the build's stream."""

    def __init__(self, distribution: Any) -> None:
        self.distribution = distribution

    async def pull(self, ref: str, platform: str, registry_config: str, output: Progress) -> None:
        parsed = reference.parse(ref)
        auth = _auth_header(registry_config, parsed.domain)
        messages = await self.distribution.pull(
            parsed.name, parsed.digest or parsed.tag or "latest", platform, auth
        )
        async for message in messages:
            data = msgspec.to_builtins(message)
            if "errorDetail" in data:
                raise Internal(str(data["errorDetail"].get("message") or data.get("error")))
            await output(data)


def _auth_header(registry_config: str, domain: str) -> str | None:
    """The ``X-Registry-Auth`` value for ``domain`` out of ``X-Registry-Config`` (a map of
    registry → credentials, keyed as the docker CLI keys config.json: ``host:port``, maybe
    with a scheme, and ``https://index.docker.io/v1/`` for Docker Hub)."""
    if not registry_config:
        return None
    raw = registry_config.strip()
    padded = raw + "=" * (-len(raw) % 4)
    try:
        configs = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(configs, dict):
        return None
    hub = domain in ("docker.io", "index.docker.io", "registry-1.docker.io")
    for key, entry in configs.items():
        host = str(key).removeprefix("https://").removeprefix("http://").split("/")[0]
        if host == domain or (hub and host in ("index.docker.io", "docker.io")):
            return base64.urlsafe_b64encode(json.dumps(entry).encode()).decode()
    return None


class ContainerStepRunner:
    def __init__(self, containers: Any, images: ImageService) -> None:
        self.containers = containers
        self.images = images
        self._commits: dict[str, str] = {}
        self._targets: dict[str, list[str]] = {}  # container -> its mount targets

    async def create(self, request: RunRequest) -> str:
        host_config: dict[str, Any] = {
            "NetworkMode": request.network_mode,
            "Mounts": [_mount(m) for m in request.mounts],
            "ExtraHosts": list(request.extra_hosts) or None,
            "ShmSize": request.shm_size,
            "Memory": request.memory,
            "MemorySwap": request.memory_swap,
            "CpuShares": request.cpu_shares,
            "CpusetCpus": request.cpuset_cpus,
            "CpuPeriod": request.cpu_period,
            "CpuQuota": request.cpu_quota,
            "Ulimits": list(request.ulimits) or None,
            "CgroupParent": request.cgroup_parent,
        }
        body: dict[str, Any] = {
            "Image": request.image_id,
            "Cmd": request.cmd,
            # [] with a Cmd resets the image's entrypoint (moby's builder sends [""]).
            "Entrypoint": [],
            "Env": request.env,
            "User": request.user,
            "WorkingDir": request.working_dir,
            "Labels": request.labels or None,
            "AttachStdout": True,
            "AttachStderr": True,
            "Healthcheck": {"Test": ["NONE"]},
            "HostConfig": {k: v for k, v in host_config.items() if v},
        }
        created = await self.containers.create(None, body)
        cid = str(created["Id"])
        self._targets[cid] = [m.target for m in request.mounts]
        return cid

    async def run(self, container_id: str, output: Output) -> int:
        _, _, subscriber = await self.containers.attach(container_id, True, True)
        try:
            await self.containers.start(container_id)
            while (item := await subscriber.get()) is not None:
                await output(item[1])
            return int(await self.containers.wait_future(container_id, "not-running"))
        except asyncio.CancelledError:
            await asyncio.shield(self._kill(container_id))
            raise

    async def _kill(self, container_id: str) -> None:
        try:
            await self.containers.kill(container_id, "SIGKILL")
        except DockyardError:
            pass

    async def commit(self, container_id: str) -> str:
        targets = self._targets.pop(container_id, [])
        driver = self.containers.driver
        if targets and hasattr(driver, "diff_dir"):
            c = self.containers.get(container_id)
            lower = [
                driver.diff_dir(ch.removeprefix("sha256:"))
                for ch in self.images.store.image_chain(c.image_id)
            ]
            await asyncio.to_thread(drop_stubs, driver.diff_dir(c.rw_layer), lower, targets)
        image_id = await self.containers.commit(container_id, "", "", "", "", [], False, None)
        self._commits[container_id] = image_id
        diff_ids = self.images.config(image_id).get("rootfs", {}).get("diff_ids", [])
        return str(diff_ids[-1])

    async def release(self, container_id: str) -> None:
        image_id = self._commits.pop(container_id, None)
        if image_id:
            await self.images.drop_intermediate(image_id)

    async def remove(self, container_id: str) -> None:
        self._targets.pop(container_id, None)
        await self.release(container_id)
        try:
            await self.containers.remove(container_id, True, True)
        except NotFound:
            pass


def drop_stubs(upper: str, lower: list[str], targets: list[str]) -> None:
    """Remove from the rw layer ``upper`` the mount points made for ``targets``: each
    target, then its parents, while the path is in no image layer of ``lower`` and is an
    empty file or an empty (not opaque) directory.  A path an image layer has stops the
    walk: it was not made for the mount."""
    for target in targets:
        parts = [p for p in target.split("/") if p and p != "."]
        while parts:
            rel = os.path.join(*parts)
            if ".." in parts or any(os.path.lexists(os.path.join(d, rel)) for d in lower):
                break
            path = os.path.join(upper, rel)
            if _through_link(upper, parts):
                break  # the step swapped a parent for a symlink: never act outside upper
            try:
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    os.unlink(path)
                elif stat.S_ISDIR(st.st_mode) and not _opaque(path):
                    os.rmdir(path)  # OSError when not empty: the step wrote there
                else:
                    break
            except OSError:
                break
            parts.pop()


def _through_link(upper: str, parts: list[str]) -> bool:
    """Whether any parent of ``parts`` inside ``upper`` is a symlink (or not a directory)."""
    path = upper
    for part in parts[:-1]:
        path = os.path.join(path, part)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return True
        except OSError:
            return True
    return False


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _mount(m: Any) -> dict[str, Any]:
    if m.type == "tmpfs":
        options: dict[str, Any] = {}
        if m.source:
            options["SizeBytes"] = _size(m.source)
        return {"Type": "tmpfs", "Target": m.target, "TmpfsOptions": options}
    return {"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.readonly}


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
