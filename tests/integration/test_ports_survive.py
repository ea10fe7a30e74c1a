"""Published ports keep answering while the daemon is killed (kill -9) and restarted, on
loopback and on the host's own non-loopback address, with the userland proxy on (helper
processes outside the daemon, adopted again at restart) and off (kernel DNAT only).
Each test starts its own daemon, removed with everything it made by ``Engine.stop``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from engines import REPO, make_busybox, network_config, start_dockyardd

HTTPD = "mkdir -p /www && echo alive > /www/index.html && exec httpd -f -p 80 -h /www"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _host_address(root: str) -> str:
    """A non-loopback address of this host: eth0's if any, else our bridge's gateway."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        words = line.split()
        if words[1] != "lo" and not words[1].startswith(("dy", "br-", "docker")):
            return words[3].split("/")[0]
    return network_config(root)["bip"].split("/")[0]


def _get(host: str, port: int) -> bytes:
    return urllib.request.urlopen(f"http://{host}:{port}/", timeout=3).read()


def _relaunch(engine) -> None:
    """A new daemon process with the same flags, data and exec roots."""
    with open(engine.log, "ab") as log:
        engine.proc = subprocess.Popen(
            engine.proc.args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    engine.wait_ready()


def _wait_answer(host: str, port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            assert _get(host, port) == b"alive\n"
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("userland_proxy", [True, False], ids=["proxy", "no-proxy"])
def test_published_ports_survive_kill_9(workdir, userland_proxy):
    root = os.path.join(workdir, f"ports-{int(userland_proxy)}")
    engine = start_dockyardd(root)
    try:
        if not userland_proxy:
            engine.proc.send_signal(signal.SIGTERM)
            assert engine.proc.wait(20) == 0
            path = os.path.join(root, "daemon.json")
            with open(path) as f:
                config = json.load(f)
            config["userland-proxy"] = False
            with open(path, "w") as f:
                json.dump(config, f)
            _relaunch(engine)
        make_busybox(engine)
        port = _free_port()
        engine.cli(
            "run", "-d", "--name", "web", "-p", f"{port}:80", "busybox", "sh", "-c", HTTPD,
            check=True,
        )  # fmt: skip
        targets = ["127.0.0.1", _host_address(root)]
        for host in targets:
            _wait_answer(host, port)

        failures: list[str] = []
        done: list[float] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                for host in targets:
                    try:
                        if _get(host, port) != b"alive\n":
                            failures.append(f"{host}: bad body")
                        else:
                            done.append(time.monotonic())
                    except OSError as exc:
                        failures.append(f"{host}: {exc!r}")
                time.sleep(0.01)

        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        try:
            time.sleep(0.5)
            engine.proc.send_signal(signal.SIGKILL)
            engine.proc.wait(10)
            killed = time.monotonic()
            time.sleep(1.0)  # the daemon is gone: the port must still answer
            _relaunch(engine)
            restarted = time.monotonic()
            time.sleep(1.0)  # and keep answering after the restore
        finally:
            stop.set()
            thread.join(10)
        assert failures == []
        assert sum(killed < t < restarted for t in done) >= 10, "no GETs while the daemon was down"
        assert sum(t > restarted for t in done) >= 10
        state = engine.cli("inspect", "-f", "{{.State.Status}}", "web", check=True).stdout
        assert state == b"running\n"
        # the restored daemon owns the port again: removing the container frees it
        engine.cli("rm", "-f", "web", check=True)
        for host in targets:
            with pytest.raises(OSError):
                _get(host, port)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))  # no helper process left holding it
    finally:
        engine.stop()
