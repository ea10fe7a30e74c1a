"""Tar headers whose mode field keeps the file-type bits, as dockerd writes them (blocking
world: used by the tar writers of ``docker cp`` and ``docker export``).

moby's pkg/archive ``FileInfoHeader`` ORs the ``c_ISDIR``/``c_ISREG``/``c_ISLNK``… bits into
each header's mode (``fillGo18FileTypeBits``: ``bin/`` is 040755, ``bin/busybox`` 0100755, a
symlink 0120777), and tools that read the raw field (``tar tvf`` of some builds, Python's
``tarfile`` ``mode``) see them.  Python's ``tarfile`` masks the field to 0o7777 on write; this
``TarInfo`` writes ``mode`` whole, so an entry made by ``gettarinfo`` (which keeps
``st_mode``) or given ``st_mode`` carries the same bits (Linux's ``S_IF*`` values are tar's
``c_IS*``).  Entries that moby writes without type bits (overlay whiteouts 0600, opaque
markers) simply set a mode without them.
"""

from __future__ import annotations

import tarfile
from typing import Any

__all__ = ["TypedTarInfo"]

_MODE = slice(100, 108)  # the ustar header's mode field
_CHKSUM = slice(148, 156)


class TypedTarInfo(tarfile.TarInfo):
    """``tarfile.TarInfo`` that writes ``mode`` with its file-type bits: pass it as
    ``tarfile.open(..., tarinfo=TypedTarInfo)`` so ``gettarinfo`` makes these too."""

    def get_info(self) -> dict[str, Any]:
        info = super().get_info()
        if self.mode is not None:
            info["mode"] = self.mode
        return info

    @staticmethod
    def _create_header(info: dict[str, Any], format: int, encoding: str, errors: str) -> bytes:
        buf = tarfile.TarInfo._create_header(info, format, encoding, errors)  # type: ignore[attr-defined]
        mode = info.get("mode") or 0
        if mode <= 0o7777:
            return buf
        block = bytearray(buf[-tarfile.BLOCKSIZE :])
        block[_MODE] = tarfile.itn(mode, 8, format)  # type: ignore[attr-defined]
        block[_CHKSUM] = b" " * 8  # the checksum counts its own field as spaces
        block[_CHKSUM] = b"%06o\0 " % sum(block)
        return buf[: -tarfile.BLOCKSIZE] + bytes(block)
