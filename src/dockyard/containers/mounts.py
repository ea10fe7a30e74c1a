"""A container's volumes, binds and tmpfs mounts through its life (asyncio world, with the
file work in threads).

At create the requests become mount points in the record (named volumes made, anonymous
ones created, ``--volumes-from`` copied, bind sources checked).  At start each volume is
acquired (mounted if it has a device) and, when still empty, filled from the image's
content at its destination (Docker's copy-up); the spec gets bind mounts whose
destinations the runtime resolves inside the rootfs.  At exit they are released; ``rm -v``
removes the anonymous ones nobody else uses.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import TYPE_CHECKING, Any

from dockyard.errors import Conflict, InvalidParameter, NotFound
from dockyard.runtime.rootfs import resolve
from dockyard.runtime.spec.mounts import Mount
from dockyard.volumes.mounts import MountPoint, from_host_config, sort_for_mounting

if TYPE_CHECKING:
    from dockyard.containers.record import Container
    from dockyard.volumes.service import VolumeService

__all__ = [
    "acquire",
    "copy_up",
    "create_points",
    "inspect_view",
    "release",
    "remove_anonymous",
    "uses_volume",
]


def _volumes_from(entries: Any, lookup: Any) -> list[MountPoint]:
    if not isinstance(entries, list):
        raise InvalidParameter("HostConfig.VolumesFrom must be an array")
    points: list[MountPoint] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            raise InvalidParameter(f"invalid volumes-from specification: {entry!r}")
        name, _, mode = entry.partition(":")
        if mode not in ("", "ro", "rw", "z", "Z"):
            raise InvalidParameter(f"invalid mode for volumes-from: {mode}")
        try:
            source = lookup(name)
        except NotFound as exc:
            # 400, not 404: the docker CLI answers a 404 from create by pulling the image
            raise InvalidParameter(f"--volumes-from: {exc.message}") from exc
        for p in source.mounts:
            if p.type == "tmpfs":
                continue
            rw = p.rw if mode in ("", "z", "Z") else mode == "rw"
            points.append(
                MountPoint(
                    type=p.type,
                    destination=p.destination,
                    source=p.source,
                    rw=rw,
                    mode=p.mode,
                    propagation=p.propagation,
                    nocopy=p.nocopy,
                    nonrecursive=p.nonrecursive,
                    from_volumes_of=source.id,
                )
            )
    return points


async def create_points(
    volumes: VolumeService, config: dict[str, Any], hc: dict[str, Any], lookup: Any
) -> list[MountPoint]:
    """Validate and resolve the mounts of a new container; volumes it needs are made."""
    points = from_host_config(config, hc)
    explicit = {p.destination for p in points}
    # --volumes-from comes after -v/--mount, which win on the same destination (moby).
    inherited = [
        p
        for p in _volumes_from(hc.get("VolumesFrom") or [], lookup)
        if p.destination not in explicit
    ]
    made: list[str] = []
    try:
        for p in points:
            if p.type == "bind":
                if os.path.exists(p.source):
                    continue
                if not p.autocreate:
                    raise InvalidParameter(
                        f'invalid mount config for type "bind": bind source path '
                        f"does not exist: {p.source}"
                    )
                # -v creates a missing host directory, as Docker does
                await asyncio.to_thread(os.makedirs, p.source, 0o755, True)
            elif p.type == "volume":
                existed = bool(p.source) and volumes.store.get(p.source) is not None
                v = await volumes.ensure(
                    p.source or None, p.driver, p.driver_opts, p.labels, anonymous=p.anonymous
                )
                if not existed:
                    made.append(v.name)
                p.source = v.name
                p.driver_opts = p.labels = None
    except BaseException:
        for name in made:
            try:
                await volumes.remove(name)
            except (Conflict, NotFound):
                pass
        raise
    return points + inherited


def uses_volume(c: Container, name: str) -> bool:
    return any(p.type == "volume" and p.source == name for p in c.mounts)


def copy_up(rootfs: str, destination: str, volume_path: str) -> None:
    """Fill an empty volume with what the image has at ``destination`` (blocking).

    The image path is resolved inside the rootfs, so a symlink there cannot make us copy
    host files; ``cp -a`` keeps owners, modes, links, xattrs and special files.
    """
    try:
        if os.listdir(volume_path):
            return
    except OSError:
        return
    source = resolve(rootfs, destination)
    if not os.path.isdir(source) or os.path.islink(source):
        return
    st = os.stat(source)
    os.chown(volume_path, st.st_uid, st.st_gid)
    os.chmod(volume_path, st.st_mode & 0o7777)
    if not os.listdir(source):
        return
    result = subprocess.run(
        ["cp", "-a", "--", source + "/.", volume_path + "/"], capture_output=True, text=True
    )
    if result.returncode:
        raise InvalidParameter(
            f"copying the image's {destination} into its volume failed: {result.stderr.strip()}"
        )


async def acquire(volumes: VolumeService, c: Container, rootfs: str) -> list[Mount]:
    """The spec mounts of a starting container; volumes are held from here until ``release``."""
    spec_mounts: list[Mount] = []
    held: list[str] = []
    try:
        for p in sort_for_mounting(c.mounts):
            if p.type == "tmpfs":
                options = ["nosuid", "nodev", "noexec", *(p.tmpfs_options or [])]
                if not p.rw:
                    options.append("ro")
                spec_mounts.append(
                    Mount(destination=p.destination, type="tmpfs", source="tmpfs", options=options)
                )
                continue
            if p.type == "volume":
                source = await volumes.acquire(p.source, c.id, p.destination, p.rw)
                held.append(p.source)
                if not p.nocopy:
                    await asyncio.to_thread(copy_up, rootfs, p.destination, source)
            else:
                source = p.source
                if not os.path.exists(source):
                    raise InvalidParameter(
                        f"error while creating mount source path '{source}': it no longer exists"
                    )
            options = ["bind" if p.nonrecursive else "rbind", "rw" if p.rw else "ro"]
            if p.propagation:
                options.append(p.propagation)
            spec_mounts.append(
                Mount(destination=p.destination, type="bind", source=source, options=options)
            )
    except BaseException:
        for name in held:
            await volumes.release(name, c.id)
        raise
    return spec_mounts


async def release(volumes: VolumeService, c: Container) -> None:
    for p in c.mounts:
        if p.type == "volume":
            await volumes.release(p.source, c.id)


async def remove_anonymous(volumes: VolumeService, c: Container) -> None:
    """``rm -v``: the container's own anonymous volumes, unless another container uses them."""
    for p in c.mounts:
        if p.type != "volume" or p.from_volumes_of:
            continue
        try:
            v = volumes.get(p.source)
        except NotFound:
            continue
        from dockyard.volumes.service import ANONYMOUS_LABEL

        if ANONYMOUS_LABEL not in v.labels:
            continue
        try:
            await volumes.remove(p.source)
        except (Conflict, NotFound):
            pass


def inspect_view(c: Container, volumes: VolumeService | None) -> list[dict[str, Any]]:
    """``Mounts`` in inspect and the container list, with moby's fields."""
    out = []
    for p in c.mounts:
        if p.type == "volume":
            out.append(
                {
                    "Type": "volume",
                    "Name": p.source,
                    "Source": volumes.driver.path(p.source) if volumes else "",
                    "Destination": p.destination,
                    "Driver": "local",
                    "Mode": p.mode,
                    "RW": p.rw,
                    "Propagation": "",
                }
            )
        elif p.type == "bind":
            out.append(
                {
                    "Type": "bind",
                    "Source": p.source,
                    "Destination": p.destination,
                    "Mode": p.mode,
                    "RW": p.rw,
                    "Propagation": p.propagation,
                }
            )
        elif p.destination not in (c.host_config.get("Tmpfs") or {}):
            # moby lists ``--mount type=tmpfs`` but not HostConfig.Tmpfs (``--tmpfs``)
            out.append(
                {
                    "Type": "tmpfs",
                    "Source": "",
                    "Destination": p.destination,
                    "Mode": p.mode,
                    "RW": p.rw,
                    "Propagation": "",
                }
            )
    return out


def mount_for(c: Container, path: str) -> MountPoint | None:
    """The mount point holding ``path`` in the container (the deepest one), if any."""
    clean = os.path.normpath("/" + path.strip("/"))
    best = None
    for p in c.mounts:
        inside = clean == p.destination or clean.startswith(p.destination + "/")
        if (
            p.type != "tmpfs"
            and inside
            and (best is None or len(p.destination) > len(best.destination))
        ):
            best = p
    return best


def bind_for_copy(driver: Any, c: Container, rootfs: str) -> list[str]:
    """Bind the container's volumes and bind mounts onto its root in the daemon's view
    (blocking), so ``docker cp`` reads and writes the mounted data; returns what to undo.

    Destinations are resolved inside the root by fd (``rootdir``), as the runtime does, and
    every mount call names a pinned inode (``/proc/self/fd/N``), never a path under the
    root: a running container swapping a directory for a symlink meanwhile cannot redirect
    a bind, a remount or the final unmount to the host.  The container's own mount
    namespace is private, so these binds are never seen inside it.
    """
    done: list[str] = []
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for p in sort_for_mounting(c.mounts):
            if p.type == "tmpfs":
                continue  # a tmpfs lives only inside the container
            source = driver.path(p.source) if p.type == "volume" else p.source
            if not os.path.exists(source):
                continue
            done.append(_attach(root_fd, source, p))
    except BaseException:
        unbind_for_copy(done)
        raise
    finally:
        os.close(root_fd)
    return done


def _attach(root_fd: int, source: str, p: Any) -> str:
    """Bind ``source`` on ``p.destination`` inside the root; the fd path that undoes it.

    A detached bind (``open_tree``), made private (and read-only) before it is attached
    onto the inode pinned inside the root: no step names it by path, and its fd names the
    mount itself from then on, wherever the container renames the mount point.  The walk
    is retried when the target vanishes meanwhile (a process inside renaming it, or a
    concurrent copy's bind below it going away)."""
    from dockyard.containers import rootdir
    from dockyard.runtime import linux

    directory = os.path.isdir(source)
    for _attempt in range(8):
        try:
            fd = rootdir.make_target(root_fd, p.destination, directory=directory)
        except FileNotFoundError as exc:
            error: OSError = exc
            continue
        tree = linux.open_tree(source)
        try:
            linux.mount_setattr(tree, 0 if p.rw else linux.MOUNT_ATTR_RDONLY, linux.MS_PRIVATE)
            linux.move_mount_to_fd(tree, fd)
        except FileNotFoundError as exc:
            os.close(tree)
            error = exc
            continue
        except BaseException:
            os.close(tree)
            raise
        finally:
            os.close(fd)
        return f"/proc/self/fd/{tree}"
    raise Conflict(
        f"mount point {p.destination} kept changing while the copy resolved it "
        f"(a process in the container is renaming it): try again ({error.strerror})"
    ) from error


def unbind_for_copy(paths: list[str]) -> None:
    """Undo ``bind_for_copy``: detach each bind through its pinned fd, then close it."""
    from dockyard.runtime import linux

    for dest in reversed(paths):
        try:
            linux.umount2(dest, linux.MNT_DETACH)
        except OSError:
            pass
        if dest.startswith("/proc/self/fd/"):
            os.close(int(dest.rsplit("/", 1)[1]))
    paths.clear()  # a second undo must not close fd numbers reused since
