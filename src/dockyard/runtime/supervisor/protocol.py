"""Wire format between the daemon and the supervisor (both worlds import it; stdlib only).

Control messages are JSON objects, one per line, a reply per request.  After a successful
``attach`` reply the connection carries frames both ways: a 5-byte header (stream: 0 stdin,
1 stdout, 2 stderr; then a big-endian uint32 length) and the payload.  A stdin frame of
length 0 closes the container's stdin.  The supervisor closes the connection when the
container's output has ended.
"""

from __future__ import annotations

import struct

__all__ = ["FRAME", "STDERR", "STDIN", "STDOUT", "frame"]

FRAME = struct.Struct(">BI")
STDIN, STDOUT, STDERR = 0, 1, 2


def frame(stream: int, data: bytes) -> bytes:
    return FRAME.pack(stream, len(data)) + data
