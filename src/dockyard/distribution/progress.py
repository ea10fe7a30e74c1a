"""The JSON progress stream of pull and push, as dockerd 20.10 writes it (pure logic).

Records are moby's ``jsonmessage.JSONMessage`` in its field order; absent fields are left
out (``msgspec.UNSET``).  ``bar`` is ``JSONProgress.String()`` as the daemon renders it
(width 200: the bar is always drawn; no time left, the daemon sets no start time), with
go-units ``HumanSize``.  ``encode`` escapes ``<``, ``>`` and ``&`` as Go's encoder does, so
the bytes match dockerd's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

__all__ = ["Message", "ProgressDetail", "Throttle", "bar", "encode", "human_size"]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


class ProgressDetail(msgspec.Struct, omit_defaults=True):
    current: int | msgspec.UnsetType = msgspec.UNSET
    total: int | msgspec.UnsetType = msgspec.UNSET


class ErrorDetail(msgspec.Struct):
    message: str


class Message(msgspec.Struct, omit_defaults=True):
    status: str | msgspec.UnsetType = msgspec.UNSET
    progressDetail: ProgressDetail | msgspec.UnsetType = msgspec.UNSET
    progress: str | msgspec.UnsetType = msgspec.UNSET
    id: str | msgspec.UnsetType = msgspec.UNSET
    errorDetail: ErrorDetail | msgspec.UnsetType = msgspec.UNSET
    error: str | msgspec.UnsetType = msgspec.UNSET
    aux: dict[str, object] | msgspec.UnsetType = msgspec.UNSET

    @classmethod
    def text(cls, status: str, id: str | None = None) -> Message:
        """A status line (``Pulling from``, ``Digest:``): no progressDetail, as moby."""
        return cls(status=status, id=id if id is not None else msgspec.UNSET)

    @classmethod
    def layer(cls, id: str, status: str) -> Message:
        """A per-layer status (``Pulling fs layer``, ``Pull complete``): empty detail."""
        return cls(status=status, progressDetail=ProgressDetail(), id=id)

    @classmethod
    def moving(cls, id: str, status: str, current: int, total: int) -> Message:
        return cls(
            status=status,
            progressDetail=ProgressDetail(current, total),
            progress=bar(current, total),
            id=id,
        )

    @classmethod
    def failure(cls, message: str) -> Message:
        return cls(errorDetail=ErrorDetail(message), error=message)


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits (``%.4g``)."""
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{_UNITS[i]}"


def bar(current: int, total: int) -> str:
    """jsonmessage.JSONProgress.String() at the daemon's width (200 columns)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    percentage = min(int(current / total * 100) // 2, 50)
    box = f"[{'=' * percentage}>{' ' * (50 - percentage)}] "
    if current > total:
        return box + f"{human_size(current):>8}"
    return box + f"{human_size(current):>8}/{human_size(total)}"


_ENCODER = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    """One stream line, with Go's HTML escaping (only ever inside JSON strings)."""
    data = _ENCODER.encode(message)
    return (
        data.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026") + b"\r\n"
    )


class Throttle:
    """At most one progress update per ``interval`` seconds (moby's progressreader limiter),
    plus the first and the last."""

    def __init__(self, emit: Callable[[int], None], interval: float = 0.1) -> None:
        self._emit = emit
        self._interval = interval
        self._last = 0.0
        self._sent = -1

    def update(self, current: int, final: bool = False) -> None:
        now = time.monotonic()
        if current == self._sent:
            return
        if final or self._sent < 0 or now - self._last >= self._interval:
            self._last = now
            self._sent = current
            self._emit(current)
