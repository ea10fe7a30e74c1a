"""Detach keys (pure logic, shared by the daemon and the CLI).

``parse`` is moby/term ``ToBytes``: a comma list where each item is one byte (``x``), a
control name (``ctrl-a`` … ``ctrl-z``, ``ctrl-@``, ``ctrl-[``, ``ctrl-\\``, ``ctrl-]``,
``ctrl-^``, ``ctrl-_``; lower case only) or ``DEL``.  ``EscapeScanner`` is moby/term's
escape proxy as a push parser: the daemon feeds it a TTY attach's stdin (moby scans only
with a TTY), the CLI its terminal input.  Both sides must agree byte for byte with moby,
quirks included, so a user sees the same detach with either daemon or either CLI.
"""

from __future__ import annotations

__all__ = ["DEFAULT", "EscapeScanner", "parse"]

DEFAULT = b"\x10\x11"  # ctrl-p, ctrl-q

_CONTROL = {f"ctrl-{ch}": code for code, ch in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_")}


def parse(keys: str) -> bytes:
    """``"ctrl-p,ctrl-q"`` → ``b"\\x10\\x11"``; ValueError (moby's wording) when an item is
    neither one byte nor a known name.  An item is measured in UTF-8 bytes, as Go's
    ``len`` does: ``é`` is refused."""
    out = bytearray()
    for key in keys.split(","):
        raw = key.encode()
        if len(raw) == 1:
            out += raw
        elif key in _CONTROL:
            out.append(_CONTROL[key])
        elif key == "DEL":
            out.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)


class EscapeScanner:
    """Find the detach sequence in a byte stream that arrives in arbitrary pieces.

    ``feed`` returns the bytes to pass on.  Bytes that could start the sequence are held
    back until the next byte decides: the sequence breaks → they are passed on in front of
    it; it completes → ``detached`` turns True, the bytes before the sequence are returned
    and the rest of that piece is dropped (nothing may reach the container after a detach).

    Two of moby's quirks are kept on purpose: the byte that breaks a partial match is not
    tried as the start of a new one (``ctrl-p ctrl-p ctrl-q`` does not detach), and bytes
    held back when the stream ends are dropped.  One is not: when a match of three or more
    keys that began in an earlier piece breaks, moby repeats the bytes of it that were in
    the current piece (``^A`` then ``xz`` with keys ``ctrl-a,x,y`` reaches the container as
    ``^Axxz``); here every byte is passed on exactly once.
    """

    def __init__(self, keys: bytes = DEFAULT) -> None:
        if not keys:
            raise ValueError("empty detach sequence")
        self.keys = keys
        self.held = 0  # how many bytes of ``keys`` are matched and held back
        self.detached = False

    def feed(self, data: bytes) -> bytes:
        if self.detached:
            return b""
        keys, held = self.keys, self.held
        if not held and keys[0] not in data:
            return data  # the common case: nothing to look at byte by byte
        out = bytearray()
        for byte in data:
            if byte == keys[held]:
                held += 1
                if held == len(keys):
                    self.detached, self.held = True, 0
                    return bytes(out)
                continue
            if held:
                out += keys[:held]
                held = 0
            out.append(byte)
        self.held = held
        return bytes(out)
