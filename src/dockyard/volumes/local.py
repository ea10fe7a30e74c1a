"""Docker's ``local`` volume driver (blocking world).

A volume is the directory ``<data-root>/volumes/<name>/_data``.  With driver options
``type``/``device``/``o`` (e.g. ``type=tmpfs,device=tmpfs,o=size=10m`` or
``type=none,o=bind,device=/srv/x``) the filesystem is mounted on that directory while a
container uses it and unmounted when the last one stops, as moby's local driver does;
a daemon restart finds such a mount still in place and keeps it.
"""

from __future__ import annotations

import os
import shutil

from dockyard.errors import InvalidParameter
from dockyard.fsutil import fsync_dir

__all__ = ["OPTION_KEYS", "LocalDriver"]

OPTION_KEYS = ("type", "device", "o", "size")


class LocalDriver:
    name = "local"

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o701, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    def validate(self, options: dict[str, str]) -> None:
        for key in options:
            if key not in OPTION_KEYS:
                raise InvalidParameter(f'create: invalid option key: "{key}"')
        if options.get("size"):
            raise InvalidParameter("create: quota size requested but no quota support")
        if ("type" in options or "o" in options) and not options.get("device"):
            raise InvalidParameter('create: missing required option: "device"')
        if options.get("device") and not options.get("type"):
            raise InvalidParameter('create: missing required option: "type"')
        if "bind" in (options.get("o") or "").split(",") and not os.path.isdir(options["device"]):
            raise InvalidParameter(
                f"create: failed to mount local volume: mount {options['device']}: "
                "no such file or directory"
            )

    def create(self, name: str) -> str:
        """Make the volume's ``_data`` directory, durably before returning: the API answers
        the create once the record is written, and the record names this directory, so the
        new directory and each directory entry made for it are fsynced, child first."""
        path = self.path(name)
        fresh = not os.path.lexists(os.path.dirname(path))
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
            for directory in (path, os.path.dirname(path), self.root):
                fsync_dir(directory)
        except OSError:
            # A full disk can let the volume's own directory in and refuse ``_data``: a
            # half-made volume must not stay behind, since nothing records it.
            if fresh:
                self.remove(name)
            raise
        return path

    def mount(self, name: str, options: dict[str, str]) -> str:
        """Mount a volume with a device; plain directories need nothing."""
        path = self.path(name)
        if not options.get("device") or os.path.ismount(path):
            return path
        from dockyard.runtime import linux
        from dockyard.runtime.rootfs import parse_options

        parsed = parse_options((options.get("o") or "").split(",") if options.get("o") else [])
        kind = options.get("type") or "none"
        flags = parsed.flags
        source = options["device"]
        try:
            if flags & linux.MS_BIND:
                linux.mount(source, path, None, flags & (linux.MS_BIND | linux.MS_REC), None)
                extra = flags & ~(linux.MS_BIND | linux.MS_REC)
                if extra:
                    linux.mount(None, path, None, linux.MS_BIND | linux.MS_REMOUNT | extra, None)
            else:
                linux.mount(source, path, kind, flags, parsed.data or None)
        except OSError as exc:
            raise InvalidParameter(
                f"error while mounting volume '{path}': failed to mount local "
                f"volume: mount {source}:{path}, flags: {flags:#x}, data: "
                f"{parsed.data}: {exc.strerror}"
            ) from exc
        return path

    def unmount(self, name: str) -> None:
        path = self.path(name)
        if os.path.ismount(path):
            from dockyard.runtime import linux

            try:
                linux.umount2(path, linux.MNT_DETACH)
            except OSError:
                pass

    def remove(self, name: str) -> None:
        self.unmount(name)
        shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def size(self, name: str) -> int:
        """Bytes used under the volume, hard links counted once (``docker system df -v``)."""
        total, seen = 0, set()
        for dirpath, _dirnames, filenames in os.walk(self.path(name)):
            for entry in filenames:  # symlinks to directories are listed as directories
                try:
                    st = os.lstat(os.path.join(dirpath, entry))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
        return total
