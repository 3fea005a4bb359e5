"""Live status on stderr: lines redrawn in place on a terminal, plain log lines otherwise.

On a terminal the status (one line for ``solve`` and ``explain``, a bar plus one line
per running scenario for ``batch``) is redrawn whenever a snapshot comes, which the
solve stage sends on a timer (every 0.5 s, :mod:`optimizer.solve.progress`), so the
elapsed time moves even while HiGHS is busy. Every line is cut to the terminal's width
minus one column, so nothing wraps (a wrapped line cannot be redrawn in place and
leaves stale copies); lines that were drawn and are no longer needed are cleared.
When stderr is not a terminal (a log file, CI), a plain line is written every
:data:`LOG_EVERY_S` seconds and whenever something notable happens (Ctrl-C, a
scenario finishing), never a carriage return or escape sequence.

Our own few lines rather than rich or tqdm: what is drawn is a handful of text lines
fed by our timer, and the two behaviours above are all that is needed; neither library
would remove the timer, the width rule or the plain-log mode, and each adds a
dependency to every worker process.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

from optimizer.solve.progress import PRIMARY, Progress

if TYPE_CHECKING:
    from optimizer.studies.batch import BatchProgress

LOG_EVERY_S = 5.0
"""Seconds between plain log lines when stderr is not a terminal."""
SHORT_UNIT = 12
"""Units up to this long follow each value; a longer one is written once."""
BAR = 20
"""Characters of the batch bar."""
REDRAW_S = 0.5
"""The batch display is redrawn at least this often."""
NAME = 24
"""Columns a scenario name may take in the batch display; longer names are cut."""
_CLEAR_LINE = "\033[K"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value + 0.0:,.0f}" if abs(value) >= 100 else f"{value + 0.0:,.4g}"  # no "-0"
    return f"{text} {unit}" if unit else text


def progress_text(p: Progress) -> str:
    """One progress line: stage, elapsed time, incumbent and bound with units, gap. A
    long unit (the second stage's) is written once, after both values."""
    gap = "-" if p.gap is None else f"{p.gap:.2%}"
    each = p.unit if len(p.unit) <= SHORT_UNIT else ""
    values = f"best {_number(p.incumbent, each)}  bound {_number(p.bound, each)}"
    if p.unit and not each:
        values += f" ({p.unit})"
    text = f"{p.stage} {p.elapsed_s:6.1f}s  {values}  gap {gap}"
    if p.stopping:
        text += "  stopping"
    return text


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, the cut marked with '~'."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "~"


class StatusLines:
    """A block of status lines on ``stream`` (stderr by default): redrawn in place on a
    terminal, logged plainly otherwise. ``show`` draws the block; ``close`` ends it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self._drawn = 0
        self._logged = -float("inf")

    def size(self) -> os.terminal_size:
        """The terminal's size: that of the stream's own terminal (stdout may be
        redirected while stderr is not), else COLUMNS and LINES, else 80 x 24."""
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, OSError, ValueError):  # no file descriptor or no terminal
            size = os.terminal_size((0, 0))
        # A pseudo-terminal nobody sized reports 0 x 0.
        return size if size.columns and size.lines else shutil.get_terminal_size((80, 24))

    def width(self) -> int:
        """Columns a line may use: the terminal's width less one, so no line wraps."""
        return max(self.size().columns - 1, 20)

    def show(self, lines: list[str], notable: bool = False) -> None:
        """Draw ``lines``. Not on a terminal, they are logged only every
        :data:`LOG_EVERY_S` seconds, or at once when ``notable``."""
        if not self.terminal:
            now = time.monotonic()
            if notable or now - self._logged >= LOG_EVERY_S:
                self._logged = now
                self.stream.write("".join(f"{line}\n" for line in lines))
                self.stream.flush()
            return
        width = self.width()
        out = [f"\033[{self._drawn - 1}A" if self._drawn > 1 else "", "\r"]
        out.append("\n".join(fit(line, width) + _CLEAR_LINE for line in lines))
        if len(lines) < self._drawn:  # clear what the longer block left below
            out.append("\n\033[J\033[1A")
        self._drawn = len(lines)
        self.stream.write("".join(out))
        self.stream.flush()

    def close(self) -> None:
        """End the block: what follows starts on a fresh line below it."""
        if self.terminal and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = 0


class SolveStatus:
    """The one progress line of ``solve`` and ``explain`` (a :data:`ProgressFn`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.lines = StatusLines(stream)
        self._stopping = False

    def __call__(self, p: Progress) -> None:
        notable = p.stopping and not self._stopping
        self._stopping = p.stopping
        self.lines.show([progress_text(p)], notable)

    def close(self) -> None:
        self.lines.close()


def clock(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour), ``--:--`` when unknown."""
    if seconds is None:
        return "--:--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _scenario_line(name: str, p: Progress | None) -> str:
    """A running scenario: its name (cut to :data:`NAME`), then what its solve reached,
    compactly (incumbent / bound unit): the full progress line would not fit."""
    shown = fit(name, NAME).ljust(NAME)
    if p is None:
        return f"  {shown} starting"
    gap = "-" if p.gap is None else f"{p.gap:.2%}"
    stage = "" if p.stage == PRIMARY else f"{p.stage}: "
    values = f"{_number(p.incumbent, '')} / {_number(p.bound, p.unit)}"
    stopping = "  stopping" if p.stopping else ""
    return f"  {shown} {p.elapsed_s:6.1f}s  {stage}{values}  gap {gap}{stopping}"


class BatchStatus:
    """The display of ``batch``: a bar with counts and times, then one line per running
    scenario with its incumbent and bound; a line per finished scenario in a log.

    A thread of its own redraws the last state every :data:`REDRAW_S` with the clocks
    moved on, so the display keeps moving while the main thread writes a layout or
    waits for the worker processes to start."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.lines = StatusLines(stream)
        self._lock = threading.Lock()
        self._latest: tuple[BatchProgress, float] | None = None
        self._drawn_at = -math.inf
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="batch display", daemon=True)
        self._ticker.start()

    def __call__(self, p: BatchProgress) -> None:
        with self._lock:
            self._latest = (p, time.monotonic())
            self._draw(p, 0.0, notable=p.last is not None or p.done == p.total)

    def _tick(self) -> None:
        while not self._closed.wait(REDRAW_S / 5):
            with self._lock:
                now = time.monotonic()
                if self._latest is not None and now - self._drawn_at >= REDRAW_S:
                    p, received = self._latest
                    self._draw(p, now - received, notable=False)

    def _draw(self, p: BatchProgress, since_s: float, notable: bool) -> None:
        """Draw ``p`` as it stands ``since_s`` seconds after it was sent."""
        self._drawn_at = time.monotonic()
        filled = BAR * p.done // max(p.total, 1)
        bar = "#" * filled + "-" * (BAR - filled)
        eta = None if p.eta_s is None else max(p.eta_s - since_s, 0.0)
        head = (
            f"batch [{bar}] {p.done}/{p.total} done, {p.failed} failed, {p.reused} reused"
            f"  {clock(p.elapsed_s + since_s)}  ETA {clock(eta)}"
        )
        if p.last is not None and not self.lines.terminal:
            head += f"  last: {p.last.name} {p.last.status} {p.last.seconds:.1f}s"
        rows = max(self.lines.size().lines - 2, 2)
        running = [
            _scenario_line(n, None if s is None else replace(s, elapsed_s=s.elapsed_s + since_s))
            for n, s in p.running.items()
        ]
        if len(running) > rows:
            running = [*running[: rows - 1], f"  ... and {len(running) - rows + 1} more running"]
        self.lines.show([head, *running], notable)

    def close(self) -> None:
        """Stop redrawing and end the display."""
        self._closed.set()
        self._ticker.join()
        with self._lock:
            self.lines.close()
