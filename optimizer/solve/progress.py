"""Live progress of a solve, and Ctrl-C that stops it with the best layout kept.

HiGHS polls a "MIP interrupt" callback many times a second during branch and
bound. We use that poll for two things: reporting the incumbent, bound and gap
(throttled), and stopping the search when the user pressed Ctrl-C. The SIGINT
handler only sets a flag; HiGHS then returns normally with its incumbent, which
the caller writes as an interrupted layout instead of losing the run.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    """One snapshot of a running solve (objective values in the primary's units)."""

    stage: str
    elapsed_s: float
    incumbent: float | None
    bound: float | None
    gap: float | None


ProgressFn = Callable[[Progress], None]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) and abs(value) < 1e30 else None


class SolveWatch:
    """Subscribed to HiGHS's MIP interrupt poll: reports progress, honours Ctrl-C."""

    def __init__(self, progress: ProgressFn | None, every_s: float = 0.5) -> None:
        self.progress = progress
        self.every_s = every_s
        self.interrupted = False
        self.stage = "primary"
        self._started = time.perf_counter()
        self._last = -math.inf

    def __call__(self, event: Any) -> None:
        if self.interrupted:
            event.interrupt()
            return
        now = time.perf_counter()
        if self.progress is None or now - self._last < self.every_s:
            return
        self._last = now
        out = event.data_out
        self.progress(
            Progress(
                self.stage,
                now - self._started,
                _finite(out.mip_primal_bound),
                _finite(out.mip_dual_bound),
                _finite(out.mip_gap),
            )
        )

    @contextmanager
    def catching_ctrl_c(self) -> Iterator[None]:
        """While solving, Ctrl-C asks HiGHS to stop at its next poll instead of raising."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(_signum: int, _frame: Any) -> None:
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
