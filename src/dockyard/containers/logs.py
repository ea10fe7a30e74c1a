"""Reading the json-file logs the supervisor writes (blocking world, run in threads).

Entries come back as ``(stream, time_text, payload)``; rotated files (``.N``, oldest last)
are read oldest first.  ``follow`` is done by the caller polling ``read_new``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

__all__ = ["LogReader", "Entry"]

Entry = tuple[str, str, bytes]


class LogReader:
    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0
        self._inode = 0

    def _files(self) -> list[str]:
        rotated = []
        n = 1
        while os.path.exists(f"{self.path}.{n}"):
            rotated.append(f"{self.path}.{n}")
            n += 1
        return list(reversed(rotated)) + ([self.path] if os.path.exists(self.path) else [])

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
                for line in f:
                    if (e := self._parse(line)) is not None:
                        entries.append(e)
                if name == self.path:
                    self._offset = f.tell()
                    self._inode = os.fstat(f.fileno()).st_ino
        return entries

    def read_new(self) -> Iterator[Entry]:
        """Entries appended since the last read (restarting at 0 after a rotation)."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            st = os.fstat(f.fileno())
            if st.st_ino != self._inode or st.st_size < self._offset:
                self._offset, self._inode = 0, st.st_ino
            f.seek(self._offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break
                self._offset += len(line)
                if (e := self._parse(line)) is not None:
                    yield e
