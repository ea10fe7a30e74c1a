"""The native OCI runtime (synchronous world; call from a single-threaded process).

Public operations, each on a state root (``state.Store``), mirror runc's verbs:

    create(store, id, bundle, stdio=None) -> State   init set up, blocked before execve
    start(store, id)                                 release it (it execs the program)
    run(store, id, bundle, stdio=None) -> State      create + start in one step; the caller
                                                     is the init's parent and reaps it
    kill(store, id, signal, all=False)
    delete(store, id, force=False)                   init gone → cgroup and state removed
    exec_process(store, id, process, stdio=None) -> pid   caller reaps the pid
    state(store, id) -> state.Report; list_states(store) -> list[state.Report]

How the init becomes pid 1 without an intermediate process: the caller itself runs
``unshare(CLONE_NEWPID)`` (which only changes the namespace of *future children*), forks,
then ``setns`` back to its own pid namespace, so the caller stays the init's parent and
can ``waitpid`` it, and a long-lived caller (the supervisor) can repeat this for every
container.  ``create`` hands the init an ``exec.fifo`` in the state directory; ``start``
opens it for reading, which unblocks the init (runc's scheme, so create and start may be
different processes).  Never call these from a threaded process: ``fork`` there copies
only the calling thread and any lock another thread held.
"""

from __future__ import annotations

import errno
import os
import select
import signal as signals
import time
from collections.abc import Callable

from dockyard.errors import Conflict, Internal, InvalidParameter, NotFound
from dockyard.runtime import process, rootfs, seccomp, spare, spec
from dockyard.runtime.cgroups import Cgroup, open_manager
from dockyard.runtime.pidns import fork_into
from dockyard.runtime.state import FIFO, Report, State, Store, process_start_time

__all__ = [
    "check_console",
    "create",
    "delete",
    "exec_process",
    "kill",
    "list_states",
    "load_bundle",
    "parse_signal",
    "run",
    "start",
    "state",
    "wait_exit",
]


def load_bundle(bundle: str) -> spec.Spec:
    """Read and validate ``<bundle>/config.json``."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise NotFound(f"{path} not found: is {bundle} an OCI bundle?") from None
    try:
        loaded = spec.load(data)
    except ValueError as exc:  # msgspec.DecodeError/ValidationError are ValueErrors
        raise InvalidParameter(f"{path}: {exc}") from exc
    spec.validate(loaded)
    return loaded


def _cgroup_path(s: spec.Spec, container_id: str) -> str:
    return s.linux.cgroups_path or f"/dockyard-runtime/{container_id}"


def _seccomp(s: spec.Spec) -> seccomp.Filter | None:
    """The container's filter, compiled here in the parent so the forked child only loads
    it (an exec'd process gets the container's filter, as with runc)."""
    if s.linux.seccomp is None:
        return None
    return seccomp.compile(s.linux.seccomp)


def _raise_report(report: process.Report) -> None:
    message = f"unable to start container process: {report.message}"
    if report.kind == "exec":
        raise InvalidParameter(message)
    raise Internal(message)


def check_console(terminal: bool, console_fd: int | None) -> None:
    """runc's rules: a terminal needs somewhere to send it, and a console socket a terminal."""
    if terminal and console_fd is None:
        raise InvalidParameter(
            "cannot allocate tty if runc will detach without setting console socket"
        )
    if console_fd is not None and not terminal:
        raise InvalidParameter("cannot use console socket if runc will not detach or allocate tty")


def _launch(
    store: Store,
    container_id: str,
    bundle: str,
    stdio: tuple[int, int, int] | None,
    wait: bool,
    console_fd: int | None = None,
    console: Callable[[], int] | None = None,
) -> State:
    bundle = os.path.abspath(bundle)
    s = load_bundle(bundle)
    assert s.process is not None
    if s.process.terminal and console_fd is None and console is not None:
        console_fd = console()
    if stdio is None:  # the supervisor's callers hand over a pty as stdio instead
        check_console(s.process.terminal, console_fd)
    plan = rootfs.plan(s, bundle)
    seccomp_filter = _seccomp(s)
    if not os.path.isdir(plan.rootfs):
        raise NotFound(f"rootfs {plan.rootfs} does not exist: unpack the image there first")
    directory = store.reserve(container_id)
    cgroup: Cgroup | None = None
    ready: spare.Spare | None = None
    fifo_fd = None
    try:
        if wait:
            fifo = os.path.join(directory, FIFO)
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)
            fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        pid_ns = next((ns for ns in s.linux.namespaces if ns.type == "pid"), None)
        cgroup_path = _cgroup_path(s, container_id)
        if (
            not wait
            and stdio is None
            and console_fd is None
            and pid_ns is not None
            and not pid_ns.path
        ):
            ready = spare.take(cgroup_path)
        claimed = ready.claim(cgroup_path) if ready is not None else None
        if claimed is None:
            if ready is not None:
                ready.discard()
                ready = None
            cgroup = open_manager(cgroup_path)
            cgroup.create()
        else:
            cgroup = claimed
        plan = rootfs.with_cgroup(plan, cgroup.mount_sources())
        if s.linux.resources is not None:
            cgroup.set(s.linux.resources)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        args = process.InitArgs(
            s, plan, None if ready else cgroup, write_fd, fifo_fd, stdio, seccomp_filter, console_fd
        )
        try:
            if ready is not None:
                ready.start(args, write_fd)
                pid, started = ready.pid, ready.start_time
            else:
                pid = fork_into(pid_ns, lambda: process.init(args))
                started = process_start_time(pid) or 0
        finally:
            os.close(write_fd)
        try:
            report = process.read_report(read_fd)
        finally:
            os.close(read_fd)
        if report is not None:
            os.waitpid(pid, 0)
            _raise_report(report)
        state = State(
            oci_version=s.oci_version,
            id=container_id,
            pid=pid,
            bundle=bundle,
            rootfs=plan.rootfs,
            created=_now(),
            init_start_time=started,
            cgroup_path=cgroup.path,
            annotations=s.annotations,
        )
        store.save(state)
        return state
    except BaseException:
        if ready is not None:
            ready.discard()  # its init, if it got that far, is in the container's cgroup
        if cgroup is not None:
            _destroy_cgroup(cgroup)
        store.remove(container_id)
        raise
    finally:
        if fifo_fd is not None:
            os.close(fifo_fd)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def create(
    store: Store,
    container_id: str,
    bundle: str,
    stdio: tuple[int, int, int] | None = None,
    console_fd: int | None = None,
) -> State:
    """Set the container up; its init waits before ``execve`` until ``start``.  With
    ``process.terminal`` the pty's master goes to ``console_fd`` (a connected socket)."""
    return _launch(store, container_id, bundle, stdio, wait=True, console_fd=console_fd)


def run(
    store: Store,
    container_id: str,
    bundle: str,
    stdio: tuple[int, int, int] | None = None,
    console_fd: int | None = None,
    console: Callable[[], int] | None = None,
) -> State:
    """Create and start at once; returns after the program is exec'd (caller reaps pid).
    ``console`` makes a console socket when config.json asks for a terminal and
    ``console_fd`` gives none (the foreground command copies the pty itself)."""
    return _launch(
        store, container_id, bundle, stdio, wait=False, console_fd=console_fd, console=console
    )


def start(store: Store, container_id: str) -> None:
    st = store.load(container_id)
    status = store.status(st)
    if status != "created":
        raise Conflict(f"cannot start a container that is {status}: {container_id}")
    fifo = os.path.join(store.dir(container_id), FIFO)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        pidfd = os.pidfd_open(st.pid)
    except ProcessLookupError:
        os.close(fd)
        raise Conflict(f"cannot start a container that has stopped: {container_id}") from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        events = dict(poller.poll())
        if fd not in events or not os.read(fd, 1):
            raise Conflict(f"cannot start a container that has stopped: {container_id}")
    finally:
        os.close(fd)
        os.close(pidfd)
    os.unlink(fifo)


def parse_signal(name: str) -> int:
    """``KILL``, ``SIGKILL`` or ``9`` → 9."""
    if name.isdigit():
        return int(name)
    upper = name.upper()
    if not upper.startswith("SIG"):
        upper = "SIG" + upper
    try:
        return int(signals.Signals[upper])
    except KeyError:
        raise InvalidParameter(f"unknown signal {name!r}") from None


def kill(store: Store, container_id: str, sig: int = signals.SIGTERM, all: bool = False) -> None:
    st = store.load(container_id)
    if store.status(st) == "stopped":
        raise Conflict(f"container not running: {container_id}")
    if all and st.cgroup_path:
        for pid in open_manager(st.cgroup_path).pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    try:
        os.kill(st.pid, sig)
    except ProcessLookupError:
        pass


def wait_exit(pid: int, start_time: int) -> None:
    """Block until ``pid`` (started at ``start_time``) has exited, child of ours or not."""
    if process_start_time(pid) != start_time:
        return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [])
    finally:
        os.close(pidfd)


def _destroy_cgroup(cgroup: Cgroup) -> None:
    try:
        cgroup.destroy()
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise Internal(f"cannot remove cgroup {cgroup.path}: {exc}") from exc


def delete(store: Store, container_id: str, force: bool = False) -> None:
    st = store.load(container_id)
    status = store.status(st)
    if status == "running" and not force:
        raise Conflict(
            f"cannot delete container {container_id} that is not stopped: running "
            "(stop it first, or use --force)"
        )
    cgroup = open_manager(st.cgroup_path) if st.cgroup_path else None
    if status != "stopped":
        try:
            os.kill(st.pid, signals.SIGKILL)
        except ProcessLookupError:
            pass
        wait_exit(st.pid, st.init_start_time)
    if cgroup is not None:
        try:
            for pid in cgroup.pids():  # stragglers that left the pid namespace (exec'd)
                os.kill(pid, signals.SIGKILL)
        except OSError:
            pass
        _destroy_cgroup(cgroup)
    store.remove(container_id)


def exec_process(
    store: Store,
    container_id: str,
    proc: spec.Process,
    stdio: tuple[int, int, int] | None = None,
    console_fd: int | None = None,
    console: Callable[[], int] | None = None,
) -> int:
    """Start ``proc`` inside a running container; returns its pid (the caller reaps it).
    ``console`` as for ``run``."""
    if proc.terminal and console_fd is None and console is not None:
        console_fd = console()
    if stdio is None:
        check_console(proc.terminal, console_fd)
    st = store.load(container_id)
    status = store.status(st)
    if status == "stopped":
        raise Conflict(f"cannot exec in a stopped container: {container_id}")
    s = load_bundle(st.bundle)
    seccomp_filter = _seccomp(s)
    kinds = [ns.type for ns in s.linux.namespaces if ns.type != "pid"]
    kinds.sort(key=lambda k: k == "mount")  # the mount namespace last: it changes /proc
    ns_fds: list[int] = []
    try:
        for kind in kinds:
            ns_fds.append(
                os.open(
                    f"/proc/{st.pid}/ns/{process.NAMESPACE_FILES[kind]}", os.O_RDONLY | os.O_CLOEXEC
                )
            )
        cgroup = open_manager(st.cgroup_path) if st.cgroup_path else None
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        args = process.ExecArgs(
            proc, tuple(ns_fds), cgroup, write_fd, stdio, seccomp_filter, console_fd
        )
        has_pid = any(ns.type == "pid" for ns in s.linux.namespaces)
        pid_ns = spec.Namespace("pid", f"/proc/{st.pid}/ns/pid") if has_pid else None
        try:
            pid = fork_into(pid_ns, lambda: process.exec_in(args))
        finally:
            os.close(write_fd)
        try:
            report = process.read_report(read_fd)
        finally:
            os.close(read_fd)
    finally:
        for fd in ns_fds:
            os.close(fd)
    if report is not None:
        os.waitpid(pid, 0)
        _raise_report(report)
    return pid


def state(store: Store, container_id: str) -> Report:
    return store.report(store.load(container_id))


def list_states(store: Store) -> list[Report]:
    reports: list[Report] = []
    for container_id in store.ids():
        try:
            reports.append(store.report(store.load(container_id)))
        except NotFound:
            continue  # deleted meanwhile
    return reports
