"""The container child path (synchronous world, single-threaded, runs after ``fork``).

Everything here executes in a freshly forked child and ends in ``execve`` or ``os._exit``;
nothing returns to the caller's code.  The order follows runc's ``standard_init_linux.go``
and ``rootfs_linux.go``:

    join cgroup (writes "0" to cgroup.procs: "0" is the writer, whatever its pid namespace)
    → unshare/setns the other namespaces → make every mount private (``MS_REC|MS_PRIVATE``
    on /, so nothing below propagates to the host) → bind the rootfs onto itself → apply
    ``Plan.before_pivot`` → pivot_root → ``Plan.after_pivot`` (sysctls, read-only and
    masked paths, read-only root) → hostname → [seccomp filter, unless no_new_privs] →
    process attributes (rlimits, oom score, no_new_privs, bounding set, user, capabilities)
    → look the program up in $PATH → [``create``: report ready, block opening exec.fifo
    until ``start``] → [seccomp filter, if no_new_privs] → execve.

Seccomp (runc's order): installing a filter needs CAP_SYS_ADMIN or no_new_privs.  Without
no_new_privs the filter goes in while the process still holds every capability, before
they are dropped; with it, as late as possible, right before execve, so the profile need
not allow the syscalls of our own set-up.  The filter was compiled by the parent before
the fork (``runtime/seccomp.py``); here it is one seccomp(2) call.

Errors travel to the parent on a close-on-exec pipe: a successful ``execve`` closes it
(the parent reads EOF); a failure writes ``E`` + JSON ``{"errno", "message", "kind"}``
and exits.  ``R`` means "set up, waiting for start".  Mount points are always resolved
with ``rootfs.resolve`` just before use, so image symlinks cannot redirect them to the host.
"""

from __future__ import annotations

import os
import resource
import signal
import stat
from typing import NoReturn

import msgspec

from dockyard.runtime import capabilities, linux
from dockyard.runtime.cgroups import Cgroup
from dockyard.runtime.rootfs import (
    CgroupOp,
    DeviceOp,
    MaskOp,
    MountOp,
    Plan,
    ReadonlyOp,
    SymlinkOp,
    SysctlOp,
    resolve,
)
from dockyard.runtime.seccomp import Filter
from dockyard.runtime.spec import Process, Spec

__all__ = [
    "NAMESPACE_FILES",
    "NAMESPACE_FLAGS",
    "ChildError",
    "ExecArgs",
    "InitArgs",
    "Report",
    "exec_in",
    "init",
    "read_report",
]

NAMESPACE_FLAGS = {
    "pid": linux.CLONE_NEWPID,
    "network": linux.CLONE_NEWNET,
    "mount": linux.CLONE_NEWNS,
    "ipc": linux.CLONE_NEWIPC,
    "uts": linux.CLONE_NEWUTS,
    "user": linux.CLONE_NEWUSER,
    "cgroup": linux.CLONE_NEWCGROUP,
}
NAMESPACE_FILES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
}


class ChildError(Exception):
    """A setup step failed in the child; ``kind`` is "exec" for program look-up failures."""

    def __init__(self, message: str, err: int = 0, kind: str = "setup") -> None:
        super().__init__(message)
        self.errno = err
        self.kind = kind


class Report(msgspec.Struct):
    errno: int
    message: str
    kind: str


class InitArgs(msgspec.Struct, frozen=True):
    spec: Spec
    plan: Plan
    cgroup: Cgroup | None
    report_fd: int
    fifo_fd: int | None  # O_PATH fd of exec.fifo for create/start; None execs at once
    stdio: tuple[int, int, int] | None
    seccomp: Filter | None = None
    console_fd: int | None = None  # connected console socket: a pty's master goes there


class ExecArgs(msgspec.Struct, frozen=True):
    process: Process
    ns_fds: tuple[int, ...]  # opened in the parent; mount namespace last
    cgroup: Cgroup | None
    report_fd: int
    stdio: tuple[int, int, int] | None
    seccomp: Filter | None = None  # the container's filter: an exec'd process gets it too
    console_fd: int | None = None


# --- reporting ---------------------------------------------------------------------------


def _send_error(fd: int, exc: BaseException) -> None:
    if isinstance(exc, ChildError):
        report = Report(exc.errno, str(exc), exc.kind)
    elif isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        report = Report(exc.errno or 0, f"{exc.strerror}{where}", "setup")
    else:
        report = Report(0, f"{type(exc).__name__}: {exc}", "setup")
    try:
        os.write(fd, b"E" + msgspec.json.encode(report))
    except OSError:
        os.write(2, f"dockyard-runtime: {report.message}\n".encode())


def read_report(fd: int) -> Report | None:
    """Parent side: None once the child exec'd (EOF) or is ready (``R``), else its error."""
    first = os.read(fd, 1)
    if first in (b"", b"R"):
        return None
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return msgspec.json.decode(b"".join(chunks), type=Report)


# --- the container's init ----------------------------------------------------------------


def init(args: InitArgs) -> NoReturn:
    """Become the container's init; never returns."""
    try:
        _setup_stdio(args.stdio, keep={args.report_fd, args.fifo_fd, args.console_fd})
        os.setsid()
        _controlling_terminal(args.stdio)
        if args.cgroup is not None:
            args.cgroup.apply(0)
        spec = args.spec
        _enter_namespaces(spec)
        if args.plan is not None and _has_new(spec, "mount"):
            _prepare_root(args.plan)
        if spec.hostname and _has_new(spec, "uts"):
            linux.sethostname(spec.hostname)
        process = spec.process
        assert process is not None  # validate() guarantees it
        if args.console_fd is not None:
            _open_console(args.console_fd, process)
        env = _environment(process)
        late = _early_seccomp(args.seccomp, process)
        _set_process(process)
        path = _lookup(process.args[0], env.get("PATH", ""))
        if args.fifo_fd is not None:
            os.write(args.report_fd, b"R")
            _wait_for_start(args.fifo_fd)
        _exec(path, process.args, env, args.report_fd, args.fifo_fd is not None, late)
    except BaseException as exc:
        _send_error(args.report_fd, exc)
    os._exit(1)


def exec_in(args: ExecArgs) -> NoReturn:
    """Join a running container (``ExecArgs.ns_fds``) and exec a process; never returns."""
    try:
        _setup_stdio(args.stdio, keep={args.report_fd, args.console_fd, *args.ns_fds})
        os.setsid()
        _controlling_terminal(args.stdio)
        if args.cgroup is not None:
            args.cgroup.apply(0)
        for fd in args.ns_fds:
            linux.setns(fd)
            os.close(fd)
        if args.console_fd is not None:
            _open_console(args.console_fd, args.process)
        env = _environment(args.process)
        late = _early_seccomp(args.seccomp, args.process)
        _set_process(args.process)
        path = _lookup(args.process.args[0], env.get("PATH", ""))
        _exec(path, args.process.args, env, args.report_fd, False, late)
    except BaseException as exc:
        _send_error(args.report_fd, exc)
    os._exit(1)


def _controlling_terminal(stdio: tuple[int, int, int] | None) -> None:
    """A caller that hands us a pty slave as stdin (the supervisor, for ``-t``) wants it as
    the controlling terminal of the new session, so ctrl-C and job control work."""
    if stdio is not None and os.isatty(0):
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _open_console(console_fd: int, process: Process) -> None:
    """runc's ``--console-socket`` protocol: a pty made in the container's own devpts (so
    it is ``/dev/pts/0`` inside), its master sent over the socket with ``SCM_RIGHTS`` (the
    name ``/dev/ptmx`` as the message), its slave our stdio and controlling terminal, owned
    by the process's user."""
    import fcntl
    import socket
    import struct
    import termios

    try:
        master, slave = os.openpty()
    except OSError as exc:
        raise ChildError(f"cannot allocate a terminal: {exc.strerror}", exc.errno or 0) from None
    try:
        if process.console_size is not None:
            size = struct.pack(
                "HHHH", process.console_size.height, process.console_size.width, 0, 0
            )
            fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        os.fchown(slave, process.user.uid, process.user.gid)
        sock = socket.socket(fileno=console_fd)
        try:
            socket.send_fds(sock, [b"/dev/ptmx"], [master])
        except OSError as exc:
            raise ChildError(
                f"cannot send the terminal to the console socket: {exc.strerror}", exc.errno or 0
            ) from None
        finally:
            sock.close()
    finally:
        os.close(master)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _has_new(spec: Spec, kind: str) -> bool:
    return any(ns.type == kind and not ns.path for ns in spec.linux.namespaces)


def _setup_stdio(stdio: tuple[int, int, int] | None, keep: set[int | None]) -> None:
    if stdio is not None:
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
    # Whatever the parent held open must not reach the container (PEP 446 makes most fds
    # non-inheritable already; this catches the ones a caller marked inheritable).
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def _enter_namespaces(spec: Spec) -> None:
    flags = 0
    for ns in spec.linux.namespaces:
        if ns.type == "pid":
            continue  # the parent chose our pid namespace before forking
        if ns.path:
            fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                linux.setns(fd, NAMESPACE_FLAGS[ns.type])
            finally:
                os.close(fd)
        else:
            flags |= NAMESPACE_FLAGS[ns.type]
    if flags:
        linux.unshare(flags)


# --- filesystem --------------------------------------------------------------------------


def _prepare_root(plan: Plan) -> None:
    linux.mount(None, "/", None, plan.root_propagation, None)
    linux.mount(plan.rootfs, plan.rootfs, None, linux.MS_BIND | linux.MS_REC, None)
    for op in plan.before_pivot:
        if isinstance(op, MountOp):
            _mount(plan.rootfs, op)
        elif isinstance(op, DeviceOp):
            _device(plan.rootfs, op)
        elif isinstance(op, SymlinkOp):
            _symlink(plan.rootfs, op)
        elif isinstance(op, CgroupOp):
            _mount_cgroup(plan.rootfs, op)
    _pivot(plan.rootfs)
    for op in plan.after_pivot:
        if isinstance(op, SysctlOp):
            with open("/proc/sys/" + op.key.replace(".", "/"), "w") as f:
                f.write(op.value)
        elif isinstance(op, ReadonlyOp):
            _readonly(op.path)
        elif isinstance(op, MaskOp):
            _mask(op.path)


def _mount(rootfs: str, op: MountOp) -> None:
    dest = resolve(rootfs, op.destination)
    if op.bind:
        if os.path.isdir(op.source):
            os.makedirs(dest, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if not os.path.lexists(dest):
                os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        linux.mount(op.source, dest, None, op.flags & (linux.MS_BIND | linux.MS_REC), None)
        extra = op.flags & ~(linux.MS_BIND | linux.MS_REC | linux.MS_REMOUNT)
        if extra:
            linux.mount(None, dest, None, linux.MS_BIND | linux.MS_REMOUNT | extra, None)
    else:
        os.makedirs(dest, exist_ok=True)
        linux.mount(op.source, dest, op.fstype, op.flags, op.data or None)
    for propagation in op.propagation:
        linux.mount(None, dest, None, propagation, None)


_CGROUP_FLAGS = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC


def _mount_cgroup(rootfs: str, op: CgroupOp) -> None:
    dest = resolve(rootfs, op.destination)
    os.makedirs(dest, exist_ok=True)
    ro = linux.MS_RDONLY if op.readonly else 0
    if len(op.binds) == 1 and op.binds[0][0] == "":  # cgroup v2
        if op.private_ns:  # the namespace's root is the container's cgroup
            linux.mount("cgroup", dest, "cgroup2", _CGROUP_FLAGS | ro, None)
        else:
            linux.mount(op.binds[0][1], dest, None, linux.MS_BIND | linux.MS_REC, None)
            linux.mount(
                None, dest, None, linux.MS_BIND | linux.MS_REMOUNT | _CGROUP_FLAGS | ro, None
            )
        return
    linux.mount("tmpfs", dest, "tmpfs", _CGROUP_FLAGS, "mode=755")
    for name, source in op.binds:
        target = os.path.join(dest, name)  # a fresh tmpfs: nothing in it can be a symlink
        os.makedirs(target, exist_ok=True)
        linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC, None)
        linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | _CGROUP_FLAGS | ro, None)
        if "," in name:  # e.g. "cpu,cpuacct": "cpu" and "cpuacct" lead there too
            for part in name.split(","):
                if not os.path.lexists(os.path.join(dest, part)):
                    os.symlink(name, os.path.join(dest, part))
    if ro:
        linux.mount(None, dest, None, linux.MS_REMOUNT | _CGROUP_FLAGS | ro, "mode=755")


def _device(rootfs: str, op: DeviceOp) -> None:
    dest = resolve(rootfs, op.path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[op.kind]
    if os.path.lexists(dest):
        os.unlink(dest)
    os.mknod(dest, kind | op.mode, os.makedev(op.major, op.minor))
    os.chmod(dest, op.mode)  # mknod's mode is filtered by the umask
    os.chown(dest, op.uid, op.gid)


def _symlink(rootfs: str, op: SymlinkOp) -> None:
    dest = resolve(rootfs, os.path.dirname(op.path)) + "/" + os.path.basename(op.path)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        os.unlink(dest)
    try:
        os.symlink(op.target, dest)
    except FileExistsError:
        pass


def _pivot(rootfs: str) -> None:
    # libcontainer/rootfs_linux.go pivotRoot: no put_old directory is needed.
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(rootfs)
        linux.pivot_root(".", ".")
        os.fchdir(old_root)
        # Slave first, so the detach below cannot propagate to the host's mounts.
        linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC, None)
        linux.umount2(".", linux.MNT_DETACH)
    finally:
        os.close(old_root)
    os.chdir("/")


def _readonly(path: str) -> None:
    if path == "/":
        linux.mount(None, "/", None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY, None)
        return
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC, None)
    except FileNotFoundError:
        return
    keep = os.statvfs(path).f_flag & (linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    flags = keep | linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
    linux.mount(path, path, None, flags, None)


def _mask(path: str) -> None:
    try:
        linux.mount("/dev/null", path, None, linux.MS_BIND, None)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY, None)


# --- process attributes ------------------------------------------------------------------


def _environment(process: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in process.env or ():
        key, _, value = item.partition("=")
        env[key] = value
    if "HOME" not in env:
        env["HOME"] = _home(process.user.uid)
    return env


def _home(uid: int) -> str:
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def _set_process(process: Process) -> None:
    for rl in process.rlimits or ():
        try:
            resource.setrlimit(getattr(resource, rl.type), (rl.soft, rl.hard))
        except (ValueError, OSError) as exc:  # CPython reports EPERM as ValueError
            raise ChildError(
                f"error setting rlimit {rl.type} to {rl.soft}/{rl.hard}: {exc} "
                "(raising a hard limit needs CAP_SYS_RESOURCE)",
                1,
            ) from None
    if process.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(process.oom_score_adj))
    if process.no_new_privileges:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    caps = process.capabilities
    last = linux.cap_last_cap()
    if caps is not None:
        bounding = capabilities.mask(caps.bounding, last)
        for cap in range(last + 1):
            if not bounding & (1 << cap):
                linux.prctl(linux.PR_CAPBSET_DROP, cap)
    user = process.user
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(user.additional_gids or [])
    os.setgid(user.gid)
    os.setuid(user.uid)
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        linux.capset(
            capabilities.mask(caps.effective, last),
            capabilities.mask(caps.permitted, last),
            capabilities.mask(caps.inheritable, last),
        )
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
        for name in caps.ambient or ():
            n = capabilities.CAPABILITIES[name]
            if n <= last:
                linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, n)
    if user.umask is not None:
        os.umask(user.umask)
    if process.cwd:
        os.chdir(process.cwd)


def _early_seccomp(seccomp: Filter | None, process: Process) -> Filter | None:
    """Install the filter now if it must be (no no_new_privs); else return it for later."""
    if seccomp is None or process.no_new_privileges:
        return seccomp
    _load_seccomp(seccomp)
    return None


def _load_seccomp(seccomp: Filter) -> None:
    try:
        linux.seccomp_set_filter(seccomp.program, seccomp.flags)
    except OSError as exc:
        raise ChildError(f"error loading seccomp filter: {exc.strerror}", exc.errno or 0) from None


def _lookup(name: str, search: str) -> str:
    """Go's ``exec.LookPath`` with runc's wording for failures."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as exc:
            raise ChildError(
                f'exec: "{name}": stat {name}: {exc.strerror.lower()}', exc.errno or 0, "exec"
            ) from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise ChildError(f'exec: "{name}": permission denied', 13, "exec")
        return name
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise ChildError(f'exec: "{name}": executable file not found in $PATH', 2, "exec")


def _wait_for_start(fifo_fd: int) -> None:
    # Reopening the O_PATH fd through /proc works after pivot_root and for any uid: a
    # process may always follow its own /proc/self/fd links.  The open blocks until
    # ``start`` opens the fifo for reading.
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)


def _exec(
    path: str,
    argv: list[str],
    env: dict[str, str],
    report_fd: int,
    started: bool,
    seccomp: Filter | None = None,
) -> None:
    # Python starts with SIGPIPE and SIGXFSZ ignored, and ignored signals survive execve.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    if seccomp is not None:
        try:
            _load_seccomp(seccomp)
        except ChildError as exc:
            if not started:
                raise
            os.write(2, f"dockyard-runtime: {exc}\n".encode())
            os._exit(1)
    try:
        os.execve(path, argv, env)
    except OSError as exc:
        if not started:
            raise ChildError(
                f'exec: "{argv[0]}": {exc.strerror.lower()}', exc.errno or 0, "exec"
            ) from None
        # After ``start`` nobody listens on the report pipe; tell the container's stderr.
        os.write(2, f"dockyard-runtime: exec {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127 if exc.errno == 2 else 126)
