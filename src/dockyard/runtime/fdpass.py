"""Length-prefixed messages with file descriptors over unix stream sockets (synchronous).

The framing ``dockyard-runtime``'s client (``cli/client.c``), its server and the parked
inits (``spare.py``) share: a little-endian u32 length, the bytes, and the fds sent with
them (``SCM_RIGHTS``), received close-on-exec.
"""

from __future__ import annotations

import array
import os
import socket
import struct

__all__ = ["MAX_MESSAGE", "receive", "send"]

MAX_MESSAGE = 4 << 20


def send(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    header = struct.pack("<I", len(data))
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    sent = sock.sendmsg([header, data], rights if fds else [])
    if sent < len(header) + len(data):
        sock.sendall((header + data)[sent:])


def receive(sock: socket.socket, max_fds: int) -> tuple[bytes, list[int]]:
    """One message and its fds; ValueError if the peer hangs up first or lies about the
    length (the fds received so far are closed then)."""
    fds = array.array("i")
    data = bytearray()
    need = 4
    try:
        while len(data) < need:
            chunk, ancdata, _flags, _addr = sock.recvmsg(
                65536, socket.CMSG_SPACE(max_fds * fds.itemsize), socket.MSG_CMSG_CLOEXEC
            )
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[: len(cdata) - len(cdata) % fds.itemsize])
            if not chunk:
                raise ValueError("the peer hung up")
            data += chunk
            if need == 4 and len(data) >= 4:
                (length,) = struct.unpack("<I", data[:4])
                if length > MAX_MESSAGE:
                    raise ValueError("message too large")
                need = 4 + length
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return bytes(data[4:need]), list(fds)
