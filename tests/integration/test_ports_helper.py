"""Issue 14: every published port of a daemon is served by one userland proxy helper, which
outlives a ``kill -9`` of the daemon, is adopted (not replaced) by the restarted daemon, and
exits once the last port is gone.  The daemon is removed with everything it made by
``Engine.stop``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

from engines import REPO, make_busybox, start_dockyardd

HTTPD = (
    "mkdir -p /www && echo alive > /www/index.html && httpd -p 80 -h /www && "
    "exec httpd -f -p 81 -h /www"
)


def _helpers(root: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"proxyhost.py .* {root}"], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


def _host_port(engine, name: str, port: int) -> int:
    out = engine.cli("port", name, f"{port}/tcp", check=True).stdout.decode()
    return int(out.splitlines()[0].rpartition(":")[2])


def _get(port: int) -> bytes:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3).read()


def _wait(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except OSError:
            pass  # not answering yet
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_one_helper_for_all_ports_adopted_across_kill_9(workdir):
    root = os.path.join(workdir, "helper")
    engine = start_dockyardd(root)
    try:
        make_busybox(engine)
        for name in ("web1", "web2"):
            engine.cli(
                "run", "-d", "--name", name, "-p", "127.0.0.1::80", "-p", "81", "busybox",
                "sh", "-c", HTTPD, check=True,
            )  # fmt: skip
        ports = [_host_port(engine, n, p) for n in ("web1", "web2") for p in (80, 81)]
        for port in ports:
            _wait(lambda port=port: _get(port) == b"alive\n")
        helpers = _helpers(root)
        assert len(helpers) == 1, helpers  # four ports, one process

        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        assert [_get(port) for port in ports] == [b"alive\n"] * 4  # no daemon
        with open(engine.log, "ab") as log:
            engine.proc = subprocess.Popen(
                engine.proc.args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        engine.wait_ready()
        assert _helpers(root) == helpers  # adopted, not replaced
        assert [_get(port) for port in ports] == [b"alive\n"] * 4

        engine.cli("rm", "-f", "web1", check=True)
        assert _helpers(root) == helpers
        assert [_get(port) for port in ports[2:]] == [b"alive\n"] * 2
        engine.cli("rm", "-f", "web2", check=True)
        _wait(lambda: _helpers(root) == [])  # no port left: the helper is gone
        # a new port starts a new helper
        engine.cli(
            "run", "-d", "--name", "web3", "-p", "127.0.0.1::80", "busybox", "sh", "-c", HTTPD,
            check=True,
        )  # fmt: skip
        port = _host_port(engine, "web3", 80)
        _wait(lambda: _get(port) == b"alive\n")
        assert len(_helpers(root)) == 1
    finally:
        engine.stop()
    assert _helpers(root) == []
