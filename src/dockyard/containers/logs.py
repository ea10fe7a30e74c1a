"""Reading the json-file logs the supervisor writes (blocking world, run in threads).

Entries come back as ``(stream, time_text, payload)``; rotated files (``.N``, oldest last)
are read oldest first.  ``follow`` is done by the caller polling ``read_new``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["Entry", "LogReader"]

Entry = tuple[str, str, bytes]


class LogReader:
    """Holds the current log file open while following, like moby's follower: a rotation
    (new inode at ``path``) switches files once the old one is drained, and a removed
    container's file can still be read to its end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._f: BinaryIO | None = None

    def _files(self) -> list[str]:
        rotated = []
        n = 1
        while os.path.exists(f"{self.path}.{n}"):
            rotated.append(f"{self.path}.{n}")
            n += 1
        return list(reversed(rotated))

    @staticmethod
    def _parse(line: bytes) -> Entry | None:
        try:
            entry = json.loads(line)
            return entry["stream"], entry["time"], entry["log"].encode("utf-8")
        except (ValueError, KeyError, TypeError):
            return None

    def read_all(self) -> list[Entry]:
        entries: list[Entry] = []
        for name in self._files():
            with open(name, "rb") as f:
                entries.extend(e for line in f if (e := self._parse(line)) is not None)
        try:
            self._f = open(self.path, "rb")
        except FileNotFoundError:
            return entries
        entries.extend(self.read_new())
        return entries

    def read_new(self) -> Iterator[Entry]:
        """Complete entries appended since the last read."""
        if self._f is None:
            try:
                self._f = open(self.path, "rb")
            except FileNotFoundError:
                return
        while True:
            pos = self._f.tell()
            line = self._f.readline()
            if not line:
                break
            if not line.endswith(b"\n"):
                self._f.seek(pos)
                break
            if (e := self._parse(line)) is not None:
                yield e
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            return
        if current != os.fstat(self._f.fileno()).st_ino:
            self._f.close()
            self._f = open(self.path, "rb")
            yield from self.read_new()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
