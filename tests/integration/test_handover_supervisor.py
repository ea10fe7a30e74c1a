"""An upgrade hands the supervisor over: the daemon restarted on changed code finds the
running supervisor on the old code and has it re-execute as the new one.  Containers keep
running, their logs keep flowing without a gap, and exits after the handover (their own
and kills) are still recorded with their codes.

The two "versions" are a copy of this tree's sources, changed between the two daemons."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from engines import REPO, make_busybox, start_dockyardd

from dockyard.runtime.supervisor.client import SupervisorClient, SupervisorError

TICKER = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"


def _numbers(engine, name: str) -> list[int]:
    out = engine.cli("logs", name, check=True).stdout.decode().split()
    return [int(x) for x in out]


def test_upgrade_hands_the_supervisor_over(workdir, monkeypatch):
    root = os.path.join(workdir, "handover")
    code = os.path.join(workdir, "handover-code")
    shutil.copytree(os.path.join(REPO, "src"), code, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", code)  # daemon and supervisor run "version A"
    engine = start_dockyardd(root)
    try:
        make_busybox(engine)
        engine.cli("run", "-d", "--name", "ticker", "busybox", "sh", "-c", TICKER, check=True)
        engine.cli(
            "run", "-d", "--name", "later", "busybox", "sh", "-c", "sleep 5; exit 5", check=True
        )
        sup = SupervisorClient(os.path.join(root, "exec", "supervisor", "supervisor.sock"))
        before = sup.call("ping")

        # install "version B" while the daemon is stopped, then start it again
        engine.proc.send_signal(signal.SIGTERM)
        assert engine.proc.wait(20) == 0
        with open(os.path.join(code, "dockyard/runtime/supervisor/server.py"), "a") as f:
            f.write("\nVERSION_B = True  # the upgrade\n")
        with open(engine.log, "ab") as log:
            engine.proc = subprocess.Popen(
                engine.proc.args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        engine.wait_ready()
        # /_ping answers before restore is done, and the handover is part of the restore:
        # wait for it (a loaded CI host takes longer) instead of asking once.
        deadline = time.monotonic() + 30
        after = sup.call("ping")
        while after["stamp"] == before["stamp"] and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                after = sup.call("ping")
            except (OSError, SupervisorError):  # gone for a moment while it re-executes
                continue
        assert after["pid"] == before["pid"]  # the same process, re-executed
        assert after["stamp"] != before["stamp"]
        with open(f"/proc/{after['pid']}/cmdline", "rb") as f:
            assert b"--handover" in f.read()

        # containers kept running; output went on through the exec, nothing lost
        status = engine.cli("inspect", "-f", "{{.State.Status}}", "ticker", check=True).stdout
        assert status == b"running\n"
        seen = _numbers(engine, "ticker")
        time.sleep(1)
        more = _numbers(engine, "ticker")
        assert len(more) > len(seen) + 5
        assert more == list(range(len(more)))

        # exits after the handover are still reaped and recorded
        assert engine.cli("wait", "later", check=True).stdout == b"5\n"
        engine.cli("kill", "ticker", check=True)
        assert engine.cli("wait", "ticker", check=True).stdout == b"137\n"
        codes = engine.cli(
            "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "later", "ticker", check=True
        ).stdout
        assert codes == b"exited 5\nexited 137\n"
        final = _numbers(engine, "ticker")
        assert final == list(range(len(final)))

        # a restart on unchanged code hands nothing over
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        with open(engine.log, "ab") as log:
            engine.proc = subprocess.Popen(
                engine.proc.args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        engine.wait_ready()
        assert sup.call("ping") == after
    finally:
        engine.stop()
        shutil.rmtree(code, ignore_errors=True)
