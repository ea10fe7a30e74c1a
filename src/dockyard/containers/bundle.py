"""Container record → OCI runtime bundle (config.json) (blocking world: reads the rootfs).

Image config and create options are merged here the way moby's daemon/oci_linux.go does:
Entrypoint + Cmd, image Env then container Env, a default PATH when none is set, the
working directory, user and groups resolved from the image's /etc/passwd and /etc/group,
the hostname.  Security defaults come from ``runtime.spec.default_spec``.
"""

from __future__ import annotations

import os
import stat

from dockyard.containers.rootdir import open_in_root
from dockyard.containers.runtimes import NATIVE
from dockyard.errors import InvalidParameter
from dockyard.runtime.spec.config import Root, Spec, dump
from dockyard.runtime.spec.default import default_nofile, default_spec
from dockyard.runtime.spec.mounts import Mount
from dockyard.runtime.spec.process import User

__all__ = ["DEFAULT_PATH", "build", "resolve_user"]

INIT_BINARIES = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/bin/tini")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _read_db(rootfs: str, name: str) -> list[list[str]]:
    """``/etc/<name>`` as the container sees it: opened through the root-confined resolver,
    so a symlinked ``/etc`` or ``/etc/passwd`` (``-> /etc/...`` or ``../..``) is followed
    inside the container's root and can never reach the host's users (a host-path open
    would follow an absolute link out of the root).  Missing or unreadable: no entries."""
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        fd = open_in_root(root_fd, f"/etc/{name}", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return []
    finally:
        os.close(root_fd)
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return []  # a FIFO or device there must not block or feed the lookup
        return [
            line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")
        ]


def resolve_user(rootfs: str, user: str, group_add: list[str]) -> User:
    """``user[:group]`` by name or number, as Docker resolves it inside the image."""
    name, _, group = (user or "0").partition(":")
    passwd = _read_db(rootfs, "passwd")
    groups = _read_db(rootfs, "group")
    uid = gid = None
    if name.isdigit():
        uid = int(name)
        for entry in passwd:
            if len(entry) > 3 and entry[2] == name:
                gid = int(entry[3]) if entry[3].isdigit() else 0
                break
    else:
        for entry in passwd:
            if entry[0] == name and len(entry) > 3:
                uid, gid = int(entry[2]), int(entry[3])
                break
        if uid is None:
            raise InvalidParameter(
                f"unable to find user {name}: no matching entries in passwd file"
            )
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            match = [g for g in groups if g[0] == group and len(g) > 2]
            if not match:
                raise InvalidParameter(
                    f"unable to find group {group}: no matching entries in group file"
                )
            gid = int(match[0][2])
    extra: list[int] = []
    for g in group_add:
        if g.isdigit():
            extra.append(int(g))
        else:
            match = [e for e in groups if e[0] == g and len(e) > 2]
            if not match:
                raise InvalidParameter(
                    f"unable to find group {g}: no matching entries in group file"
                )
            extra.append(int(match[0][2]))
    if not name.isdigit() or uid is not None:
        user_name = name if not name.isdigit() else None
        for entry in groups:  # supplementary groups the user is a member of
            if user_name and len(entry) > 3 and user_name in entry[3].split(","):
                extra.append(int(entry[2]))
    return User(uid=uid or 0, gid=gid or 0, additional_gids=sorted(set(extra)) or None)


def _add_devices(spec: Spec, host_config: dict) -> None:
    """--device nodes with their cgroup rules; --privileged gets every host node."""
    from dockyard.containers import devices

    if spec.linux is None:
        return
    found: list = []
    rules: list = []
    if host_config.get("Privileged"):
        found += devices.host_devices()
    for entry in host_config.get("Devices") or []:
        nodes, allow = devices.devices_from_path(
            entry["PathOnHost"],
            entry.get("PathInContainer") or entry["PathOnHost"],
            entry.get("CgroupPermissions") or "rwm",
        )
        found += nodes
        rules += allow
    if found:
        spec.linux.devices = [*(spec.linux.devices or []), *found]
    if rules and spec.linux.resources is not None:
        spec.linux.resources.devices = [*(spec.linux.resources.devices or []), *rules]


def build(
    bundle_dir: str,
    rootfs: str,
    args: list[str],
    config: dict,
    host_config: dict,
    hostname: str,
    cgroups_path: str,
    mounts: list[Mount] | None = None,
    netns_path: str | None = None,
    link_env: list[str] | None = None,
) -> str:
    """Write ``config.json`` for the container; returns its path.  ``link_env`` is what
    legacy links give it (``containers/links.py``), overridden by the container's own Env
    as moby's CreateDaemonEnvironment does."""
    from dockyard.containers.links import replace_or_append

    daemon_env = [DEFAULT_PATH, f"HOSTNAME={hostname}"]
    if config.get("Tty"):
        daemon_env.append("TERM=xterm")  # moby's CreateDaemonEnvironment, as for execs
    env = replace_or_append([*daemon_env, *(link_env or [])], config.get("Env") or [])
    spec = default_spec(args, rootfs=rootfs, hostname=hostname, nofile=default_nofile())
    spec.root = Root(rootfs, bool(host_config.get("ReadonlyRootfs")))
    spec.process.env = env
    spec.process.cwd = config.get("WorkingDir") or "/"
    # The supervisor makes the pty and hands its slave over as stdio (the runtime makes it
    # the controlling terminal), so the spec's own terminal stays off.
    spec.process.terminal = (
        bool(config.get("Tty")) and (host_config.get("Runtime") or NATIVE) != NATIVE
    )
    from dockyard.containers import hostconfig

    hostconfig.apply(spec, host_config)
    _add_devices(spec, host_config)
    if mounts:
        # The user's mounts replace a default one at the same place (e.g. /dev/shm), after it.
        taken = {m.destination for m in mounts}
        spec.mounts = [m for m in spec.mounts or [] if m.destination not in taken] + list(mounts)
    if host_config.get("Init"):
        # --init: tini as PID 1 forwards signals and reaps zombies (Docker mounts its
        # docker-init, which is tini, at the same place).
        init = next((p for p in INIT_BINARIES if os.path.exists(p)), None)
        if init is None:
            raise InvalidParameter("--init needs tini: install Debian's tini package")
        spec.mounts = [
            *(spec.mounts or []),
            Mount(
                destination="/sbin/docker-init", type="bind", source=init, options=["rbind", "ro"]
            ),
        ]
        spec.process.args = ["/sbin/docker-init", "--", *args]
    if host_config.get("NetworkMode") == "host" and spec.linux is not None:
        spec.linux.namespaces = [n for n in spec.linux.namespaces if n.type != "network"]
    elif netns_path and spec.linux is not None:
        for ns in spec.linux.namespaces:
            if ns.type == "network":
                ns.path = netns_path  # made and wired by the network service
    if spec.linux is not None:
        spec.linux.cgroups_path = (
            host_config.get("CgroupParent")
            and ("/" + host_config["CgroupParent"].strip("/") + "/" + os.path.basename(bundle_dir))
        ) or cgroups_path
    spec.process.user = resolve_user(
        rootfs, config.get("User") or "", list(host_config.get("GroupAdd") or [])
    )
    os.makedirs(bundle_dir, exist_ok=True)
    path = os.path.join(bundle_dir, "config.json")
    from dockyard.fsutil import atomic_write

    atomic_write(path, dump(spec))
    return path
