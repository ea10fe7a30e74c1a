"""``atomic_write``: readers see the old or the new bytes, never a mix, and threads of one
process replacing the same file at once do not share a temp file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from dockyard.fsutil import atomic_write


def test_threads_replacing_one_file_at_once(tmp_path: Path) -> None:
    target = tmp_path / "tag"
    payloads = [bytes([65 + i]) * 65536 for i in range(16)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(payloads))

    def write(data: bytes) -> None:
        start.wait()
        try:
            for _ in range(20):
                atomic_write(str(target), data, durable=False)
        except BaseException as exc:  # collected: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert target.read_bytes() in payloads  # whole, one writer's bytes
    assert os.listdir(tmp_path) == ["tag"]  # no temp file left behind
