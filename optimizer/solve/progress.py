"""Live progress of a solve, and Ctrl-C that stops it with the best layout kept.

HiGHS runs in a worker thread (it releases the GIL), so the calling thread keeps
control: it reports progress on a timer, whatever HiGHS is doing, and it sees Ctrl-C
at once. HiGHS's callbacks, run in the worker thread, only record: the "MIP interrupt"
poll the incumbent, bound and gap, the "improving solution" callback the incumbent
itself. The poll is also where HiGHS can be asked to stop.

HiGHS does not poll while it is inside some phases (a long LP, a sub-MIP heuristic):
on a 300-slot thermal hall it went 5-10 s without a poll. So Ctrl-C does not wait for
the next poll: the SIGINT handler only sets a flag; HiGHS gets :data:`GRACE_S` to stop
on its own (then its own status, objective and bound are used), after which the solve
ends with the last incumbent the callback recorded, and the worker thread is left to
stop at its next poll (:func:`solver_still_running`). Once Ctrl-C has been pressed in
a command (:func:`ctrl_c_restored`), further Ctrl-C are ignored until the command ends,
so the best layout is always written: a second press while it is checked and written
loses nothing. Outside a command (the Python API), the caller's handler comes back as
soon as the solve returns.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module at start-up; numpy comes with the solver
    import numpy as np

REPORT_EVERY_S = 0.5
"""How often a running solve's progress is reported."""
TICK_S = 0.1
"""How often the calling thread wakes while HiGHS runs."""
GRACE_S = 0.5
"""After Ctrl-C, how long HiGHS may take to stop by itself before its last incumbent is
taken without it: Ctrl-C acts within a second."""

PRIMARY = "primary"
SECOND_STAGE = "second stage"


@dataclass(frozen=True)
class Progress:
    """One snapshot of a running solve (objective values in the stage's ``unit``)."""

    stage: str
    """``primary`` (the GPU count or other primary objective), ``second stage``
    (cable metres plus the tie-break cost, with the primary held), or ``frontiers`` (a
    campus's per-part frontiers: the master's incumbent and bound, optimizer.solve.campus)."""
    elapsed_s: float
    incumbent: float | None
    bound: float | None
    gap: float | None
    unit: str = ""
    """What the values count: ``GPUs``, ``kW IT``, ``kW facility``, ``cable m +
    tie-break``, or empty (the rack types' own ``value``)."""
    stopping: bool = False
    """Ctrl-C was pressed: the best layout found so far is being kept."""


ProgressFn = Callable[[Progress], None]

_stop_requests: list[Callable[[], bool]] = []
"""Further ways this process is told to stop its solves (:func:`stop_also_when`)."""
_running: list[threading.Thread] = []
"""Solver threads left behind after Ctrl-C, still inside HiGHS until its next poll."""
_commands_running = [0]
"""Commands inside :func:`ctrl_c_restored`: only within one does a Ctrl-C that stopped a
solve leave SIGINT ignored (a notebook calling the API gets its handler back at once)."""
_pressed = threading.Event()
"""Set once Ctrl-C stopped a solve in this command (:func:`ctrl_c_stopped_a_solve`)."""


def ctrl_c_stopped_a_solve() -> bool:
    """Whether Ctrl-C stopped a solve during this command, in either stage or in a part
    worker: the command then writes its layout and exits with the Ctrl-C code."""
    return _pressed.is_set()


def note_ctrl_c() -> None:
    """Record that Ctrl-C stopped a solve (one in a worker process, say). Inside a
    command, further Ctrl-C are then ignored until it ends, so its layout is written."""
    _pressed.set()
    if _commands_running[0] and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_also_when(requested: Callable[[], bool]) -> None:
    """In a worker process: every later solve here also stops, as on Ctrl-C, once
    ``requested()`` is true (a flag another process raises on Ctrl-C)."""
    _stop_requests.append(requested)


def solver_still_running() -> bool:
    """Whether a solver thread left behind after Ctrl-C is still inside HiGHS. The
    process should then end with ``os._exit`` once its layout is written: interpreter
    shutdown around a thread running C++ code can crash."""
    _running[:] = [t for t in _running if t.is_alive()]
    return bool(_running)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) and abs(value) < 1e30 else None


class SolveWatch:
    """Watches one HiGHS instance: records its progress and incumbent from its callbacks,
    runs it in a worker thread, reports on a timer and honours Ctrl-C."""

    def __init__(
        self, progress: ProgressFn | None, unit: str = "", every_s: float = REPORT_EVERY_S
    ) -> None:
        self.progress = progress
        self.unit = unit
        self.every_s = every_s
        self.interrupted = False
        self.stage = PRIMARY
        self._pressed_at = math.inf
        self._started = time.perf_counter()
        self._values: tuple[float | None, float | None, float | None] = (None, None, None)
        self.incumbent: np.ndarray | None = None
        """The last improving solution HiGHS reported (column values), for a stop that
        cannot wait for HiGHS."""
        self.bound: float | None = None

    def attach(self, h: Any) -> None:
        """Subscribe to ``h``'s MIP poll and improving-solution callbacks."""
        h.cbMipInterrupt.subscribe(self._poll)
        h.cbMipImprovingSolution.subscribe(self._improved)

    def detach(self, h: Any) -> None:
        """Stop watching ``h``: another watch takes over its next search."""
        h.cbMipInterrupt.unsubscribe(self._poll)
        h.cbMipImprovingSolution.unsubscribe(self._improved)

    def new_stage(self, stage: str, unit: str) -> None:
        """The second stage starts: forget the first stage's incumbent and values."""
        self.stage, self.unit = stage, unit
        self._values = (None, None, None)
        self.incumbent = None
        self.bound = None

    def _poll(self, event: Any) -> None:
        if self.interrupted:
            event.interrupt()
            return
        out = event.data_out
        self.bound = _finite(out.mip_dual_bound)
        self._values = (_finite(out.mip_primal_bound), self.bound, _finite(out.mip_gap))

    def _improved(self, event: Any) -> None:
        import numpy as np

        out = event.data_out
        self.incumbent = np.array(out.mip_solution, dtype=float)
        self.bound = _finite(out.mip_dual_bound)
        _, bound, gap = self._values
        self._values = (_finite(out.objective_function_value), bound, gap)

    def snapshot(self) -> Progress:
        incumbent, bound, gap = self._values
        elapsed = time.perf_counter() - self._started
        return Progress(self.stage, elapsed, incumbent, bound, gap, self.unit, self.interrupted)

    def run(self, solve: Callable[[], Any]) -> bool:
        """Run ``solve`` (HiGHS's ``run``) in a worker thread while this thread reports
        progress every ``every_s`` and watches for Ctrl-C. Returns False when Ctrl-C
        ended the wait before HiGHS stopped (HiGHS must then not be touched: its last
        incumbent is :attr:`incumbent`), True when HiGHS returned."""
        worker = threading.Thread(target=solve, name="highs", daemon=True)
        last = -math.inf
        told_stopping = False
        with self._catching_ctrl_c():
            worker.start()
            while True:
                worker.join(TICK_S)
                if not worker.is_alive():
                    return True
                if not self.interrupted and any(requested() for requested in _stop_requests):
                    self._press(signal.SIGINT, None)
                now = time.perf_counter()
                due = now - last >= self.every_s or self.interrupted != told_stopping
                if self.progress is not None and due:
                    last, told_stopping = now, self.interrupted
                    self.progress(self.snapshot())
                if now - self._pressed_at > GRACE_S:
                    _running.append(worker)
                    return False

    def _press(self, _signum: int, _frame: Any) -> None:
        if not self.interrupted:
            self.interrupted = True
            self._pressed_at = time.perf_counter()

    @contextmanager
    def _catching_ctrl_c(self) -> Iterator[None]:
        """While solving, Ctrl-C asks HiGHS to stop instead of raising. Once pressed, it
        stays ignored after the solve too (see the module docstring)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._press)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            if self.interrupted:
                note_ctrl_c()


@contextmanager
def ctrl_c_restored() -> Iterator[None]:
    """Restore the SIGINT handler a command started with when it ends: a Ctrl-C that
    stopped a solve leaves it ignored until then (so the layout is written). The next
    command in this process starts with no Ctrl-C noted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    _commands_running[0] += 1
    try:
        yield
    finally:
        _commands_running[0] -= 1
        signal.signal(signal.SIGINT, previous)
        _pressed.clear()
