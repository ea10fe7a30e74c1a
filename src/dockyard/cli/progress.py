"""JSON progress streams (pull, push, implicit pull of run) drawn as the docker CLI draws them
(CLI world).

A port of moby ``pkg/jsonmessage`` as docker CLI 28 uses it (``DisplayJSONMessagesStream``,
``JSONMessage.Display``, ``JSONProgress.String``), so the bytes match the Go CLI's:

* on a terminal every line that carries an ``id`` and a ``progressDetail`` owns one screen
  line; a new id prints ``\\n``, an update moves the cursor up to its line (``ESC[nA``), erases
  it (``ESC[2K``), rewrites it ending in ``\\r`` and moves back down (``ESC[nB``).  The bar is
  computed here from ``current``/``total`` (the daemon's own ``progress`` text is ignored) and
  drawn only when the terminal is wider than 110 columns;
* otherwise lines whose progress has numbers are dropped and the rest printed one per line
  ("<id>: Pull complete").

Any line without such an id forgets the screen lines (``pull -a``: each tag starts afresh).
``errorDetail`` ends the display with ``StreamError`` (the CLI prints its message bare).
Why not ``rich``: byte-for-byte output is the contract, and its import alone costs more than
the whole CLI's start-up.
"""

from __future__ import annotations

from dockyard.cli.units import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["StreamError", "display", "go_duration", "progress_string", "terminal_width"]


class StreamError(Exception):
    """An ``errorDetail`` inside a stream; ``str()`` is the daemon's message."""


def go_duration(seconds: int) -> str:
    """Go ``time.Duration.String`` for whole seconds: ``0s``, ``45s``, ``1m5s``, ``2h0m5s``."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _hs(n: int) -> str:
    return human_size(n, 4)  # go-units HumanSize: %.4g


def progress_string(detail: dict, width: int, now: float | None = None) -> str:  # type: ignore[type-arg]
    """``JSONProgress.String``: ``[===>   ]  1.2MB/3MB 5s`` (parts depending on width)."""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    start = int(detail.get("start") or 0)
    units = detail.get("units") or ""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{_hs(current):>8}" if not units else f"{current} {units}"
    percentage = min(int(int(current / total * 100) / 2), 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * max(percentage, 0) + ">" + " " * max(50 - percentage, 0) + "] "
    numbers = ""
    if detail.get("hidecounts"):
        pass
    elif not units:
        numbers = f"{_hs(current):>8}" if current > total else f"{_hs(current):>8}/{_hs(total)}"
    else:
        numbers = f"{current} {units}" if current > total else f"{current}/{total} {units}"
    left = ""
    if width > 50 and current > 0 and start > 0 and percentage < 50:
        import time

        elapsed_ns = int(((time.time() if now is None else now) - start) * 1e9)
        per_entry = elapsed_ns // current
        remaining_ns = (total - current) * per_entry
        left = " " + go_duration(int((remaining_ns + 500_000_000) // 1_000_000_000))
    return bar + numbers + left


def _timestamp(message: dict) -> str:  # type: ignore[type-arg]
    """``RFC3339NanoFixed`` of ``timeNano``/``time`` in local time, as Go prints it."""
    import time

    nanos = message.get("timeNano") or (message.get("time") or 0) * 1_000_000_000
    secs, frac = divmod(int(nanos), 1_000_000_000)
    t = time.localtime(secs)
    offset = t.tm_gmtoff
    zone = (
        "Z"
        if offset == 0
        else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    )
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}{zone} "


def _render(message: dict, terminal: bool, width: int) -> str:  # type: ignore[type-arg]
    """``JSONMessage.Display`` minus the error check."""
    detail = message.get("progressDetail")
    stream = message.get("stream") or ""
    status = message.get("status") or ""
    end = ""
    parts = []
    if terminal and not stream and detail is not None:
        end = "\r"
        parts.append("\x1b[2K\r")
    elif detail is not None and progress_string(detail, width):
        return ""  # no bars off a terminal
    if message.get("timeNano") or message.get("time"):
        parts.append(_timestamp(message))
    if message.get("id"):
        parts.append(f"{message['id']}: ")
    if message.get("from"):
        parts.append(f"(from {message['from']}) ")
    if detail is not None and terminal:
        parts.append(f"{status} {progress_string(detail, width)}{end}")
    elif message.get("progress"):
        parts.append(f"{status} {message['progress']}{end}")
    elif stream:
        parts.append(f"{stream}{end}")
    else:
        parts.append(f"{status}{end}\n")
    return "".join(parts)


def terminal_width(fd: int) -> int:
    """The width ``term.GetWinsize`` reports (0 on a sizeless pty), 200 when it fails."""
    import os

    try:
        return os.get_terminal_size(fd).columns
    except OSError:
        return 200


def display(
    messages: Iterable[dict],  # type: ignore[type-arg]
    out: object,
    terminal: bool,
    width: int = 200,
    aux: Callable[[dict], None] | None = None,  # type: ignore[type-arg]
) -> None:
    """``DisplayJSONMessagesStream`` onto ``out`` (a text stream, or None to discard).

    Raises ``StreamError`` at the first ``errorDetail``, after what came before it was drawn.
    """
    ids: dict[str, int] = {}
    write = out.write if out is not None else None  # type: ignore[attr-defined]
    for message in messages:
        if message.get("aux") is not None:
            if aux is not None:
                aux(message)
            continue
        diff = 0
        chunks = []
        ident = message.get("id") or ""
        if ident and (message.get("progressDetail") is not None or message.get("progress")):
            line = ids.get(ident)
            if line is None:
                line = ids[ident] = len(ids)
                if terminal:
                    chunks.append("\n")
            diff = len(ids) - line
            if terminal and diff:
                chunks.append(f"\x1b[{diff}A")
        else:
            ids = {}
        error = message.get("errorDetail")
        if error is None:
            chunks.append(_render(message, terminal, width))
        if ident and terminal and diff:
            chunks.append(f"\x1b[{diff}B")
        if write is not None and chunks:
            write("".join(chunks))
            out.flush()  # type: ignore[attr-defined]
        if error is not None:
            raise StreamError(error.get("message") or "")
