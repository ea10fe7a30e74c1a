"""Ways the supervisor starts a container's first process (synchronous, child path).

``exec_process`` forks and execs ``argv`` with the given stdio and no isolation: the
supervisor's own tests use it, and it is the seam where the native runtime's
``create``/``start`` plugs in (namespaces, pivot_root, cgroups) for real containers.
Exec failures travel back on a close-on-exec pipe, so a missing binary is an error of
``start``, not a mysterious exit code.
"""

from __future__ import annotations

import os

__all__ = ["cleanup", "exec_process", "launch", "native_process", "oci_process"]


def exec_process(req: dict, stdio: tuple[int, int, int]) -> int:
    argv = list(req["argv"])
    env = {k: v for k, _, v in (e.partition("=") for e in req.get("env") or [])}
    cwd = req.get("cwd") or "/"
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe-ish work, then exec or _exit
        try:
            os.close(err_r)
            os.setsid()
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            if req.get("tty"):
                import fcntl
                import termios

                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as exc:  # reported to the parent, never raised here
            try:
                os.write(err_w, f"{type(exc).__name__}: {exc}".encode()[:4096])
            finally:
                os._exit(127)
    os.close(err_w)
    message = b""
    while chunk := os.read(err_r, 4096):
        message += chunk
    os.close(err_r)
    if message:
        os.waitpid(pid, 0)
        raise OSError(f'exec: "{argv[0]}": {message.decode(errors="replace")}')
    return pid


def is_oci(req: dict) -> bool:
    """Whether ``req`` runs under an OCI command-line runtime rather than the native one."""
    return (req.get("runtime") or "dockyard") != "dockyard"


def oci_argv(req: dict) -> list[str]:
    """The OCI runtime's command prefix: binary, its own arguments, its state root."""
    path = req.get("runtime_path") or req.get("runtime") or "runc"
    return [
        path,
        *(req.get("runtime_args") or []),
        "--root",
        req.get("runtime_root") or "/run/dockyard/runc",
    ]


def oci_process(req: dict, stdio: tuple[int, int, int]) -> int:
    """Run the bundle with an external OCI runtime in the foreground (``runc run``).

    The runtime process stays the container's parent and forwards signals to it; its exit
    status is the container's.  With ``terminal: true`` in the spec, runc makes the pty and
    copies it to its own stdio, which is our pty.
    """
    argv = [*oci_argv(req), "run", "--bundle", req["bundle"], req["id"]]
    return exec_process(
        {
            "argv": argv,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": req["bundle"],
            "tty": req.get("tty"),
        },
        stdio,
    )


def native_process(req: dict, stdio: tuple[int, int, int]) -> int:
    """The fast path: the native runtime forks the container from this (single-threaded,
    already warm) process; no interpreter starts per container."""
    from dockyard.runtime import native
    from dockyard.runtime.state import Store

    return native.run(Store(req["runtime_root"]), req["id"], req["bundle"], stdio).pid


def _oom_kills(cgroup_path: str) -> int:
    """The memory cgroup's OOM-kill count (v1 memory.oom_control, v2 memory.events)."""
    for path in (
        f"/sys/fs/cgroup/memory{cgroup_path}/memory.oom_control",
        f"/sys/fs/cgroup{cgroup_path}/memory.events",
    ):
        try:
            with open(path, encoding="ascii") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except OSError:
            continue
    return 0


def cleanup(req: dict) -> dict:
    """After the container's init was reaped: read what its cgroup knows (OOM kills), then
    drop the native runtime's state and cgroup.  Returns facts for the exit record."""
    facts: dict = {}
    if req.get("bundle") and not is_oci(req):
        from dockyard.runtime import native
        from dockyard.runtime.state import Store

        store = Store(req["runtime_root"])
        try:
            cgroup = store.load(req["id"]).cgroup_path
            facts["oom_killed"] = bool(cgroup) and _oom_kills(cgroup) > 0
        except Exception:
            pass
        try:
            native.delete(store, req["id"], force=True)
        except Exception:
            pass
    elif req.get("bundle") and req.get("config"):
        # An OCI runtime used the spec's cgroupsPath (cgroupfs driver); it removed the
        # cgroup itself, so a count survives only while it lingers.
        import json

        try:
            with open(req["config"], encoding="utf-8") as f:
                cgroup = (json.load(f).get("linux") or {}).get("cgroupsPath") or ""
            facts["oom_killed"] = bool(cgroup) and _oom_kills(cgroup) > 0
        except (OSError, ValueError):
            pass
    return facts


def native_exec(req: dict, stdio: tuple[int, int, int]) -> int:
    """``docker exec``: a process joined to a running container's namespaces and cgroup."""
    import msgspec

    from dockyard.runtime import native
    from dockyard.runtime.spec.process import Process
    from dockyard.runtime.state import Store

    proc = msgspec.convert(req["process"], Process)
    return native.exec_process(Store(req["runtime_root"]), req["exec_of"], proc, stdio)


def oci_exec(req: dict, stdio: tuple[int, int, int]) -> int:
    """``docker exec`` under an OCI runtime: ``runc exec --process`` in the foreground; like
    ``run``, the runtime stays the process's parent and its exit status is the process's."""
    # The daemon wrote the process (with ``terminal`` as asked: in the foreground the
    # runtime copies its pty to our stdio) and removes the file when the exec ends.
    argv = [*oci_argv(req), "exec", "--process", req["process_file"], req["exec_of"]]
    return exec_process(
        {
            "argv": argv,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "tty": req.get("tty"),
        },
        stdio,
    )


def launch(req: dict, stdio: tuple[int, int, int]) -> int:
    """A bundle runs under the native runtime (or runc when asked); an exec joins one; a bare
    argv (the supervisor's own tests) is exec'd."""
    oci = is_oci(req)
    if req.get("exec_of"):
        return oci_exec(req, stdio) if oci else native_exec(req, stdio)
    if req.get("bundle"):
        if oci:
            return oci_process(req, stdio)
        return native_process(req, stdio)
    return exec_process(req, stdio)
