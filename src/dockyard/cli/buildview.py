"""The live step display of ``dockyard build`` on a terminal (CLI world).

The legacy builder's stream is text made for a log (``Step N/M : ...``, the step's output,
`` ---> <id>``); on a terminal it scrolls the step that matters off the screen.  This view
redraws one frame instead, as BuildKit's tty progress does: a header with the total time
and steps done, one line per step (``CACHED`` or its elapsed time), and under the step
that is running its last few output lines.  A frame is redrawn when a message comes and
by a ticker thread, so the clocks move while a step is silent; everything that is not a
step (warnings, ``Successfully built``) is printed under the final frame.

Only imported when the display is used: the CLI's start-up stays cheap.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

__all__ = ["Step", "StepView"]

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12})?$")
_TAIL = 6  # output lines shown under the running step
_TICK = 0.1


@dataclass(slots=True)
class Step:
    number: int
    total: int
    text: str
    started: float
    ended: float | None = None
    cached: bool = False
    failed: bool = False
    lines: list[str] = field(default_factory=list)
    partial: str = ""

    def add_output(self, text: str) -> None:
        text = self.partial + text.replace("\r\n", "\n")
        *done, self.partial = text.split("\n")
        for line in done:
            self.lines.append(line.rsplit("\r", 1)[-1])
        del self.lines[:-_TAIL]

    def tail(self) -> list[str]:
        last = [self.partial.rsplit("\r", 1)[-1]] if self.partial else []
        return (self.lines + last)[-_TAIL:]


class StepView:
    """Feed it the build's messages (``feed``); ``close`` draws the final frame and prints
    what came after the steps.  ``clock`` and ``size`` are injectable for tests."""

    def __init__(
        self,
        out: TextIO,
        size: Callable[[], tuple[int, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick: bool = True,
    ) -> None:
        self.out = out
        self.size = size or _terminal_size
        self.clock = clock
        self.started = clock()
        self.steps: list[Step] = []
        self.trailer: list[str] = []  # text after the steps (or before the first)
        self.drawn = 0  # lines of the last frame, to move back over
        self.last: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.ticker: threading.Thread | None = None
        if tick:
            self.ticker = threading.Thread(target=self._tick, daemon=True)
            self.ticker.start()

    # ---- input -------------------------------------------------------------------------
    def feed(self, text: str) -> None:
        """One ``stream`` message of the legacy builder."""
        with self.lock:
            self._parse(text)
            self._draw()

    def _parse(self, text: str) -> None:
        now = self.clock()
        current = self.steps[-1] if self.steps else None
        for line in text.splitlines(keepends=True):
            bare = line.rstrip("\n")
            match = _STEP.match(bare)
            if match:
                if current is not None and current.ended is None:
                    current.ended = now
                current = Step(int(match[1]), int(match[2]), match[3], now)
                self.steps.append(current)
                continue
            if current is None or current.ended is not None:
                self.trailer.append(line)
                continue
            if bare == " ---> Using cache":
                current.cached = True
            elif _IMAGE.match(bare):
                current.ended = now
            elif bare.startswith((" ---> Running in ", "Removing intermediate container ")):
                pass
            elif bare.startswith(" ---> Cache "):  # --explain-cache
                current.lines.append(bare.removeprefix(" ---> "))
            else:
                current.add_output(line)

    def status(self, message: dict) -> None:  # type: ignore[type-arg]
        """A pull's progress message: one line per layer id, updated in place."""
        ident = str(message.get("id") or "")
        text = str(message.get("status") or "")
        if message.get("progress"):
            text += " " + str(message["progress"])
        line = f"{ident}: {text}" if ident else text
        with self.lock:
            current = self.steps[-1] if self.steps else None
            if current is None or current.ended is not None:
                self.trailer.append(line + "\n")
            else:
                prefix = f"{ident}: "
                for i, old in enumerate(current.lines):
                    if ident and old.startswith(prefix):
                        current.lines[i] = line
                        break
                else:
                    current.lines.append(line)
                    del current.lines[:-_TAIL]
            self._draw()

    def fail(self) -> None:
        """The build failed: the running step is marked so and keeps its output shown."""
        with self.lock:
            if self.steps and self.steps[-1].ended is None:
                self.steps[-1].failed = True
                self.steps[-1].ended = self.clock()

    def close(self) -> None:
        self.done.set()
        if self.ticker is not None:
            self.ticker.join()
        with self.lock:
            self._draw(final=True)
            self.out.write("".join(self.trailer))
            self.out.flush()

    # ---- output ------------------------------------------------------------------------
    def _tick(self) -> None:
        while not self.done.wait(_TICK):
            with self.lock:
                self._draw()

    def frame(self, final: bool = False) -> list[str]:
        """The lines of one frame (no colours, no escapes)."""
        now = self.clock()
        height, width = self.size()
        finished = sum(1 for s in self.steps if s.ended is not None and not s.failed)
        total = self.steps[-1].total if self.steps else 0
        state = "Building" if not final else "Finished"
        lines = [f"[+] {state} {now - self.started:.1f}s ({finished}/{total})"]
        body: list[str] = []
        for step in self.steps:
            elapsed = (step.ended if step.ended is not None else now) - step.started
            mark = "CACHED " if step.cached else ("ERROR " if step.failed else "")
            name = f" => {mark}[{step.number}/{step.total}] {step.text}"
            clock = "" if step.cached else f"{elapsed:.1f}s"
            body.append(_fit(name, clock, width))
            if step.failed or (step.ended is None and not final):
                body.extend(_cut(f" => => {line}", width) for line in step.tail())
        room = max(height - 2, 3)
        if len(body) > room:
            body = body[-room:]
        return lines + body

    def _draw(self, final: bool = False) -> None:
        lines = self.frame(final)
        if lines == self.last and not final:
            return  # a tick with nothing new: no bytes to a slow terminal
        self.last = lines
        out = []
        if self.drawn:
            out.append(f"\x1b[{self.drawn}A")
        out.extend(f"\x1b[2K{line}\n" for line in lines)
        if len(lines) < self.drawn:  # the frame shrank: clear what the old one left below
            out.append("\x1b[J")
        self.drawn = len(lines)
        self.out.write("".join(out))
        self.out.flush()


def _fit(left: str, right: str, width: int) -> str:
    room = width - 1 - len(right) - 1
    if len(left) > room:
        left = left[: max(room - 1, 0)] + "…"
    return f"{left:<{room}} {right}".rstrip() if right else left[: width - 1]


def _cut(line: str, width: int) -> str:
    return line if len(line) < width else line[: width - 2] + "…"


def _terminal_size() -> tuple[int, int]:
    import os

    try:
        size = os.get_terminal_size(1)
    except OSError:
        return 24, 80
    return size.lines or 24, size.columns or 80
