"""The json-file log writer (synchronous world: runs inside the supervisor).

Format as Docker's json-file driver (moby daemon/logger/jsonfilelog): one JSON object per
line, ``{"log": "text\\n", "stream": "stdout", "time": "RFC3339Nano"}``.  Output is split at
newlines; a partial line is kept until its newline arrives, the buffer passes 16 KiB
(Docker's limit, the entry then has no trailing newline) or the stream closes.
Rotation is on by default (dockyard's better default): when the file would pass
``max_size`` it becomes ``.1``, older files shift up, at most ``max_file`` files are kept.
"""

from __future__ import annotations

import os
import time

import msgspec

__all__ = ["DEFAULT_MAX_FILE", "DEFAULT_MAX_SIZE", "JsonLog", "rfc3339nano"]

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILE = 3
_PARTIAL_LIMIT = 16 * 1024
_encode = msgspec.json.Encoder().encode


def rfc3339nano(ns: int) -> str:
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}.{ns % 1_000_000_000:09d}Z"


class JsonLog:
    def __init__(
        self, path: str, max_size: int = DEFAULT_MAX_SIZE, max_file: int = DEFAULT_MAX_FILE
    ) -> None:
        if max_size <= 0:
            raise ValueError("max-size must be positive")
        if max_file < 1:
            raise ValueError("max-file must be at least 1")
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        """One read's worth of output: its lines share a timestamp and reach the file in
        one write per rotation segment (a syscall per line capped throughput at ~15 MB/s)."""
        buf = self._partial.pop(stream, b"") + data
        chunks = buf.split(b"\n")
        rest = chunks.pop()  # after the last newline: a partial line, maybe empty
        pieces = [c + b"\n" for c in chunks]
        while len(rest) >= _PARTIAL_LIMIT:
            pieces.append(rest[:_PARTIAL_LIMIT])
            rest = rest[_PARTIAL_LIMIT:]
        if rest:
            self._partial[stream] = rest
        if pieces:
            self._entries(stream, pieces)

    def flush_partial(self, stream: str) -> None:
        buf = self._partial.pop(stream, b"")
        if buf:
            self._entries(stream, [buf])

    def _entries(self, stream: str, pieces: list[bytes]) -> None:
        tail = f',"stream":"{stream}","time":"{rfc3339nano(time.time_ns())}"}}\n'.encode()
        out: list[bytes] = []
        size = 0
        for piece in pieces:
            line = b'{"log":' + _encode(piece.decode("utf-8", "replace")) + tail
            if self._size + size and self._size + size + len(line) > self.max_size:
                self._flush(out, size)
                out, size = [], 0
                self._rotate()
            out.append(line)
            size += len(line)
        self._flush(out, size)

    def _flush(self, lines: list[bytes], size: int) -> None:
        if not lines:
            return
        data = b"".join(lines)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += size

    def _rotate(self) -> None:
        """path.(n-1) -> path.n, ..., path -> path.1; keeps ``max_file`` files in all."""
        os.close(self._fd)
        if self.max_file == 1:
            os.truncate(self.path, 0)
        else:
            for n in range(self.max_file - 1, 1, -1):
                older = f"{self.path}.{n - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{n}")
            os.replace(self.path, f"{self.path}.1")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        for stream in list(self._partial):
            self.flush_partial(stream)
        os.close(self._fd)
