"""After a kill -9 and restart, the API answers only what is true: a container that exited
while the daemon was away is never reported running, however early the client asks; the
supervisor keeps the others running and /_ping answers as soon as the daemon listens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from engines import REPO, api_request, make_busybox, ping, start_dockyardd


def test_requests_wait_for_restore_after_kill_9(workdir):
    root = os.path.join(workdir, "gate")
    engine = start_dockyardd(root)
    try:
        make_busybox(engine)
        for i in range(4):  # restore work: each one is re-attached, DNS served again
            engine.cli(
                "run", "-d", "--name", f"keep{i}", "-p", "127.0.0.1::80", "busybox",
                "sleep", "300", check=True,
            )  # fmt: skip
        engine.cli(
            "run", "-d", "--name", "quick", "busybox", "sh", "-c", "sleep 1; exit 7", check=True
        )
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        time.sleep(2.5)  # "quick" exits while no daemon runs
        with open(engine.log, "ab") as log:
            engine.proc = subprocess.Popen(
                engine.proc.args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        deadline = time.monotonic() + 30
        while not ping(engine.sock):  # the first moment the daemon answers at all
            assert engine.proc.poll() is None, engine.read_log()
            assert time.monotonic() < deadline, engine.read_log()
            time.sleep(0.005)
        status, body = api_request(engine, "GET", "/v1.41/containers/quick/json")
        assert status == 200
        state = json.loads(body)["State"]
        assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 7)
        status, body = api_request(engine, "GET", "/v1.41/containers/json")
        running = sorted(c["Names"][0] for c in json.loads(body))
        assert running == [f"/keep{i}" for i in range(4)]
    finally:
        engine.stop()
