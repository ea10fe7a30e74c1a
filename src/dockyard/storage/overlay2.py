"""The overlay2 storage driver (blocking world: call from a thread; never forks or chdirs).

Layout, as moby's ``daemon/graphdriver/overlay2`` (so tools that know Docker's tree work):

    HOME = ROOT/overlay2
    HOME/<id>/diff     this layer's own files: the overlayfs upper dir when it is mounted
    HOME/<id>/link     the layer's short name, 26 chars of base32 randomness
    HOME/<id>/lower    "l/SHORT:l/SHORT:..." the parent chain, nearest parent first
                       (absent for a base layer)
    HOME/<id>/work     overlayfs work dir (only layers with a parent can be mounted)
    HOME/<id>/merged   mount point of the union, made on mount and removed on unmount
    HOME/l/<SHORT>     symlink -> ../<id>/diff

Kernel facts relied on (Documentation/filesystems/overlayfs.rst):
- ``lowerdir=A:B`` lists lower layers top first; ``upperdir`` and ``workdir`` must be on
  the same filesystem; a whiteout is a 0:0 char device, ``trusted.overlay.opaque=y``
  makes an upper dir opaque (both written by ``dockyard.layers.apply_tar``);
- at most 500 lower layers (``OVL_MAX_STACK``);
- ``mount(2)``'s data argument is limited to one page (4096 bytes).  The short links
  keep each lowerdir at ``len(HOME) + 29`` bytes; moby additionally chdirs into HOME
  (in a re-exec'd child) and passes relative paths.  dockyard never forks from the
  threaded daemon nor chdirs, so when the option string would not fit in a page (about
  60 layers under a typical root, or a HOME containing ``,:\\``) it mounts with the new
  mount API instead: ``fsopen("overlay")`` + one ``fsconfig("lowerdir+", path)`` per
  layer (Linux 6.8+) + ``fsmount`` + ``move_mount``, which has no such limit;
- ``index=off`` as moby sets it: with the inode index on, reusing an upper dir with a
  different lower stack fails, and layers are shared between many mounts.

Mount state is read from /proc/self/mountinfo, not reference-counted, so ``mount`` and
``unmount`` stay idempotent across daemon restarts.  A lock serialises them in-process.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import threading
from typing import Literal

from dockyard.errors import Internal, InvalidParameter, NotFound
from dockyard.fsutil import atomic_write, fsync_dir
from dockyard.runtime import linux
from dockyard.storage import _layerid, _mountinfo
from dockyard.storage._layerid import stored_ids
from dockyard.storage._sync import sync_tree
from dockyard.storage._usage import disk_usage

__all__ = ["Overlay2", "supported"]

_MAX_LOWERS = 500
_PAGE = os.sysconf("SC_PAGE_SIZE")
_OPTION_SPECIALS = (",", ":", "\\")


def supported(root: str) -> bool:
    """Whether overlayfs mounts on the filesystem of ``root`` (tries a tiny mount there)."""
    os.makedirs(root, 0o700, exist_ok=True)
    probe = tempfile.mkdtemp(prefix=".overlay-probe-", dir=root)
    try:
        for sub in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(probe, sub))
        merged = os.path.join(probe, "merged")
        data = f"lowerdir={probe}/lower,upperdir={probe}/upper,workdir={probe}/work"
        try:
            linux.mount("overlay", merged, "overlay", 0, data)
        except OSError:
            return False
        linux.umount2(merged, linux.MNT_DETACH)
        return True
    finally:
        shutil.rmtree(probe, ignore_errors=True)


class Overlay2:
    """Layers as overlayfs upper dirs; a container root is an overlay mount of its chain."""

    name = "overlay2"
    whiteouts: Literal["overlay", "naive"] = "overlay"

    def __init__(self, root: str) -> None:
        self.home = os.path.join(os.path.realpath(root), "overlay2")
        os.makedirs(os.path.join(self.home, "l"), 0o700, exist_ok=True)
        self._lock = threading.Lock()

    def _dir(self, layer_id: str) -> str:
        return os.path.join(self.home, _layerid.check(layer_id))

    def diff_dir(self, layer_id: str) -> str:
        """The layer's own directory of changes (the upper dir of a rw layer)."""
        return os.path.join(self._dir(layer_id), "diff")

    # -- layers ------------------------------------------------------------------------

    def create(self, layer_id: str, parent: str | None) -> str:
        d = self._dir(layer_id)
        lower = self._lower_of_child(parent) if parent is not None else None
        if os.path.lexists(d):
            self.remove(layer_id)  # a leftover of a crash: start over
        try:
            os.mkdir(d, 0o700)
            short = self._new_short_name()
            # link file before symlink: a crash in between leaves nothing unnamed behind
            atomic_write(os.path.join(d, "link"), short.encode())
            os.symlink(f"../{layer_id}/diff", os.path.join(self.home, "l", short))
            os.mkdir(os.path.join(d, "diff"), 0o755)
            if lower is not None:
                atomic_write(os.path.join(d, "lower"), lower.encode())
                os.mkdir(os.path.join(d, "work"), 0o700)
            for parent in (d, os.path.join(self.home, "l"), self.home):
                fsync_dir(parent)  # the new names survive a power cut
        except OSError as exc:
            raise Internal(f"failed to create layer {layer_id}: {exc}") from exc
        return os.path.join(d, "diff")

    def _lower_of_child(self, parent: str) -> str:
        pdir = self._dir(parent)
        try:
            with open(os.path.join(pdir, "link"), encoding="ascii") as f:
                chain = [f"l/{f.read().strip()}"]
        except FileNotFoundError as exc:
            raise NotFound(f"parent layer {parent} does not exist: pull or load it first") from exc
        try:
            with open(os.path.join(pdir, "lower"), encoding="ascii") as f:
                chain += f.read().strip().split(":")
        except FileNotFoundError:
            pass  # the parent is a base layer
        if len(chain) > _MAX_LOWERS:
            raise InvalidParameter(
                f"max depth exceeded: overlayfs stacks at most {_MAX_LOWERS} layers"
            )
        return ":".join(chain)

    def _new_short_name(self) -> str:
        while True:
            short = base64.b32encode(os.urandom(16)).decode().rstrip("=")
            if not os.path.lexists(os.path.join(self.home, "l", short)):
                return short

    def ids(self) -> list[str]:
        return stored_ids(self.home)

    def sync(self, layer_id: str) -> None:
        sync_tree(self._dir(layer_id), layer_id)

    def exists(self, layer_id: str) -> bool:
        return os.path.isdir(self._dir(layer_id))

    def remove(self, layer_id: str) -> None:
        d = self._dir(layer_id)
        self.unmount(layer_id)
        try:
            with open(os.path.join(d, "link"), encoding="ascii") as f:
                short = f.read().strip()
        except FileNotFoundError:
            short = ""
        try:
            if short and "/" not in short:
                try:
                    os.unlink(os.path.join(self.home, "l", short))
                except FileNotFoundError:
                    pass
            shutil.rmtree(d)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise Internal(f"failed to remove layer {layer_id}: {exc}") from exc

    def size(self, layer_id: str) -> int:
        diff = os.path.join(self._dir(layer_id), "diff")
        if not os.path.isdir(diff):
            raise NotFound(f"layer {layer_id} does not exist")
        return disk_usage(diff)

    # -- container layers --------------------------------------------------------------

    def prepare(self, rw_id: str, parent: str | None) -> None:
        self.create(rw_id, parent)

    def mount(self, rw_id: str) -> str:
        d = self._dir(rw_id)
        if not os.path.isdir(os.path.join(d, "diff")):
            raise NotFound(f"layer {rw_id} does not exist")
        try:
            with open(os.path.join(d, "lower"), encoding="ascii") as f:
                lowers = [os.path.join(self.home, s) for s in f.read().strip().split(":")]
        except FileNotFoundError:
            return os.path.join(d, "diff")  # nothing below: the diff is the root (as moby)
        merged = os.path.join(d, "merged")
        with self._lock:
            os.makedirs(merged, 0o700, exist_ok=True)
            if _mountinfo.is_mounted(merged):
                return merged
            upper, work = os.path.join(d, "diff"), os.path.join(d, "work")
            data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},index=off"
            try:
                if len(data) < _PAGE and not any(c in self.home for c in _OPTION_SPECIALS):
                    linux.mount("overlay", merged, "overlay", 0, data)
                else:
                    _mount_with_fsconfig(lowers, upper, work, merged)
            except OSError as exc:
                raise Internal(f"failed to mount layer {rw_id}: {exc}") from exc
        return merged

    def unmount(self, rw_id: str) -> None:
        merged = os.path.join(self._dir(rw_id), "merged")
        with self._lock:
            if not os.path.isdir(merged):
                return
            try:
                if _mountinfo.is_mounted(merged):
                    linux.umount2(merged, linux.MNT_DETACH)
                os.rmdir(merged)
            except OSError as exc:
                raise Internal(f"failed to unmount layer {rw_id}: {exc}") from exc

    def status(self) -> list[tuple[str, str]]:
        return [
            ("Backing Filesystem", _mountinfo.backing_filesystem(self.home)),
            ("Supports d_type", "true"),
            ("Using metacopy", "false"),
            ("Native Overlay Diff", "true"),
            ("userxattr", "false"),
        ]

    def metadata(self, layer_id: str) -> dict[str, str] | None:
        """moby's overlay2 ``GetMetadata``: the layer's work/merged/diff paths and, above a
        base layer, its lower diffs top first with the ``l/`` short links resolved."""
        d = self._dir(layer_id)
        if not os.path.isdir(d):
            return None
        data = {
            "MergedDir": os.path.join(d, "merged"),
            "UpperDir": os.path.join(d, "diff"),
            "WorkDir": os.path.join(d, "work"),
        }
        try:
            with open(os.path.join(d, "lower"), encoding="ascii") as f:
                links = f.read().strip().split(":")
        except FileNotFoundError:
            return data  # a base layer has nothing below
        try:
            targets = [os.readlink(os.path.join(self.home, link)) for link in links]
        except OSError:
            return data  # a lower layer is being removed: show what is still there
        # each link reads "../<id>/diff", relative to HOME/l
        data["LowerDir"] = ":".join(
            os.path.normpath(os.path.join(self.home, "l", t)) for t in targets
        )
        return data


def _mount_with_fsconfig(lowers: list[str], upper: str, work: str, target: str) -> None:
    """Mount an overlay with the new mount API: no page limit on the lower list."""
    fs_fd = linux.fsopen("overlay")
    try:
        try:
            for lower in lowers:
                linux.fsconfig(fs_fd, linux.FSCONFIG_SET_STRING, "lowerdir+", lower)
            linux.fsconfig(fs_fd, linux.FSCONFIG_SET_STRING, "upperdir", upper)
            linux.fsconfig(fs_fd, linux.FSCONFIG_SET_STRING, "workdir", work)
            linux.fsconfig(fs_fd, linux.FSCONFIG_SET_STRING, "index", "off")
            linux.fsconfig(fs_fd, linux.FSCONFIG_CMD_CREATE)
        except OSError as exc:
            log = linux.fs_log(fs_fd)
            raise OSError(
                exc.errno, f"{exc.strerror} ({log})" if log else exc.strerror, target
            ) from exc
        mnt_fd = linux.fsmount(fs_fd)
        try:
            linux.move_mount(mnt_fd, target)
        finally:
            os.close(mnt_fd)
    finally:
        os.close(fs_fd)
