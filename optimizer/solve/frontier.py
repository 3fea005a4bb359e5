"""The efficient frontier of one part of a campus: its most GPUs for each facility-power budget.

A part's frontier G(b) (the most GPUs, or value, a layout of the part reaches while
drawing at most b kW of facility power) is a non-decreasing step function with finitely
many steps, since racks are whole. It is traced one step per call of
:meth:`PartSolver.step`, at budgets the campus master asks for (optimizer.solve.campus):

1. at budget B, maximize the objective: G* = G(B);
2. with the objective held at G*, minimize facility power: P* = the least power of any
   layout reaching G*, so that G(b) = G* for every b in [P*, B] and G(b) < G* below P*;
3. a step below this one is at B = P* - epsilon or lower.

Epsilon is ``POWER_RESOLUTION`` times the utility limit: the independent check accepts
a facility load up to that far over the limit (optimizer.verify.check.TOLERANCE), so two
layouts of one part whose facility power differs by less are not told apart by the
limit itself; HiGHS's feasibility tolerance on the budget row is far below it.

The Pyomo model is built and compiled once per part; each step only moves the bounds of
two rows (the budget, and the objective floor of stage 2) and swaps the cost vector on
the same HiGHS instance. :meth:`PartSolver.lagrange` maximizes G - price * F on the same
instance: a line above the whole frontier. Steps run in worker processes, each of which
keeps the solvers of the parts it was given (:func:`install`, :func:`frontier_step`).
"""

from __future__ import annotations

import hashlib
import math
import signal
import time
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import highspy
import numpy as np

from models.build import build_model
from models.data import ModelData
from models.facility import facility_kw
from models.objective import primary_weights
from optimizer.site.placement import Assignment
from optimizer.solve.assign import assign
from optimizer.solve.decompose import PartResult, solve_part, stop_flag_handler
from optimizer.solve.highs import compile_model, new_highs, status_text
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import SolveWatch, stop_also_when

POWER_RESOLUTION = 1e-6
"""Relative to the utility limit: the step below a frontier point's facility power. Equal
to the independent check's tolerance on a load over its limit."""

NO_TIME = "no time"
"""A solve's status when no time was left to start it."""

STAGE_2_RAN = ("optimal", "time_limit")
"""Statuses of the power-minimizing stage whose solution may be read."""


@dataclass(frozen=True)
class FrontierPoint:
    """One step of a part's frontier: ``objective`` = G(b) for every b in
    [``facility_kw``, ``budget_kw``], and the layout that reaches it."""

    facility_kw: float
    """Facility power of ``layout`` (IT plus cooling), recomputed from its whole racks."""
    objective: float
    """Primary objective of ``layout`` (GPUs by default), recomputed from its racks."""
    budget_kw: float
    layout: Assignment
    solution: np.ndarray | None = None
    """The part's model columns at ``layout``: a part with the same model
    (:attr:`PartSolver.fingerprint`) takes this point as its own layout (:func:`transplant`)."""
    part: int | None = None
    """The campus part whose model found it (``layout`` is that part's)."""


@dataclass(frozen=True)
class Step:
    """What one step at a budget found."""

    point: FrontierPoint | None
    """None when no layout was found: none exists at this budget (status infeasible), or
    the time ran out first."""
    bound: float
    """Proven upper bound on G(budget); -inf when no layout of the part fits the budget."""
    status: str
    """HiGHS's status of stage 1 (optimal, time_limit, infeasible, interrupted, ...), or
    'stopped' when the campus no longer needed the step."""


class PartSolver:
    """One part's model on one HiGHS instance, re-solved at budget after budget."""

    def __init__(self, data: ModelData, options: SolveOptions) -> None:
        self.data = data
        self.options = options
        self.m = build_model(data)
        compiled = compile_model(self.m)
        self.n_cols = compiled.lp.num_col_
        self.gpu_cost = compiled.objectives[0]
        budget_rows = [
            i for i, (con, _) in enumerate(compiled.rows) if con is self.m.facility_power
        ]
        if len(budget_rows) != 1 or compiled.minimize:
            raise ValueError("a frontier needs a maximized objective and the utility row")
        self.budget_row = budget_rows[0]
        a = compiled.lp.a_matrix_
        starts = np.asarray(a.start_)
        column_of_entry = np.repeat(np.arange(self.n_cols), np.diff(starts))
        on_row = np.asarray(a.index_) == self.budget_row
        self.power_cost = np.zeros(self.n_cols)
        self.power_cost[column_of_entry[on_row]] = np.asarray(a.value_)[on_row]
        self.columns = compiled.columns
        position = compiled.column_of
        pairs = list(self.m.pairs)
        self.place_columns = np.array([position[id(self.m.place[k, t])] for k, t in pairs])
        per_rack = facility_kw(data)
        weights = primary_weights(data)
        self.place_kw = np.array([per_rack[k, t] for k, t in pairs])
        self.place_value = np.array([weights[t] for _, t in pairs])
        self.fingerprint = _fingerprint(compiled.lp, self.budget_row, self.gpu_cost)
        """Digest of the compiled model: parts with equal digests have equal frontiers."""
        self.found: list[tuple[float, float, np.ndarray]] = []
        """(facility kW, objective, columns) of every layout found: the solves' starts."""
        self.h = new_highs(replace(options, time_limit=None))
        self.h.passModel(compiled.lp)
        nz = np.flatnonzero(self.gpu_cost)
        self.h.addRow(
            -highspy.kHighsInf, highspy.kHighsInf, len(nz), nz.astype(np.int32), self.gpu_cost[nz]
        )
        self.floor_row = compiled.lp.num_row_
        self.watch = SolveWatch(None)
        self.watch.attach(self.h)  # Ctrl-C
        self.h.cbMipInterrupt.subscribe(self._poll)
        self.abandoned = False
        """Ctrl-C left HiGHS running in its thread: this solver must not be used again."""

    def _poll(self, event: Any) -> None:
        """HiGHS's interrupt poll: stop once the campus no longer needs this step (the
        stop event, set when the incumbent is proven optimal)."""
        if _stopped():
            event.interrupt()

    def _run(self, cost: np.ndarray, sense: highspy.ObjSense, deadline: float | None) -> str:
        """Solve with ``cost``; the status, or 'no time' when no time was left to start
        (HiGHS's info then still holds the previous solve's and must not be read)."""
        if self.abandoned or self.watch.interrupted:
            return NO_TIME
        if deadline is not None:
            left = deadline - time.perf_counter()
            if left <= 0:
                return NO_TIME
            self.h.setOptionValue("time_limit", left)
        self.h.changeColsCost(self.n_cols, np.arange(self.n_cols, dtype=np.int32), cost)
        self.h.changeObjectiveSense(sense)
        self.abandoned = not self.watch.run(self.h.run)
        if self.abandoned or self.watch.interrupted:
            return "interrupted"
        if _stopped():
            return "stopped"
        return status_text(self.h)

    def _solution(self) -> np.ndarray | None:
        if self.h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            return None
        return np.array(self.h.getSolution().col_value)

    def _start_from(self, price: float, budget_kw: float) -> None:
        """Give HiGHS the layout found so far with the most objective - ``price`` x kW
        within ``budget_kw`` as its first incumbent (none when no layout fits)."""
        fitting = [(value - price * kw, x) for kw, value, x in self.found if kw <= budget_kw]
        if fitting:
            x = max(fitting, key=lambda f: f[0])[1]
            self.h.setSolution(self.n_cols, np.arange(self.n_cols, dtype=np.int32), x)

    def _keep(self, x: np.ndarray, counts: np.ndarray) -> FrontierPoint:
        """The point of columns ``x`` (with ``counts`` racks per placement column),
        remembered as a start for later solves."""
        kw, objective = float(counts @ self.place_kw), float(counts @ self.place_value)
        self.found.append((kw, objective, x))
        values = {id(v): float(value) for v, value in zip(self.columns, x, strict=True)}
        return FrontierPoint(kw, objective, kw, assign(self.data, self.m, values), x)

    def step(self, budget_kw: float, deadline: float | None) -> Step:
        """G(budget_kw) and the least facility power reaching it (module docstring)."""
        inf = highspy.kHighsInf
        self.h.changeRowBounds(self.budget_row, -inf, budget_kw)
        self.h.changeRowBounds(self.floor_row, -inf, inf)
        self._start_from(0.0, budget_kw)
        status = self._run(self.gpu_cost, highspy.ObjSense.kMaximize, deadline)
        if status == "infeasible":
            return Step(None, -math.inf, status)
        if status in (NO_TIME, "stopped"):
            return Step(None, math.inf, status)
        x = self._solution()
        bound = float(self.h.getInfo().mip_dual_bound)
        bound = bound if math.isfinite(bound) and abs(bound) < 1e30 else math.inf
        if x is None:
            return Step(None, bound, status)
        counts = np.round(x[self.place_columns])
        objective = float(counts @ self.place_value)
        if status == "optimal":
            # Stage 2 may only lower the power: a cut-short or failed run keeps x.
            self.h.changeRowBounds(self.floor_row, objective - 1e-6 * max(1.0, objective), inf)
            self.h.setSolution(self.n_cols, np.arange(self.n_cols, dtype=np.int32), x)
            if self._run(self.power_cost, highspy.ObjSense.kMinimize, deadline) in STAGE_2_RAN:
                lower = self._solution()
                if lower is not None:
                    lower_counts = np.round(lower[self.place_columns])
                    if lower_counts @ self.place_value >= objective - 1e-9 and (
                        lower_counts @ self.place_kw < counts @ self.place_kw
                    ):
                        x, counts = lower, lower_counts
        point = replace(self._keep(x, counts), budget_kw=budget_kw)
        return Step(point, max(bound, objective), status)

    def lagrange(self, price: float, deadline: float | None) -> Tangent:
        """The most of G - price * F over the part's layouts within the utility limit
        (its own budget row at the limit): every layout x of the part has
        G(x) <= bound + price * F(x), so g(b) <= bound + price * b for every budget b."""
        inf = highspy.kHighsInf
        self.h.changeRowBounds(self.budget_row, -inf, self.data.site.utility_limit_kw)
        self.h.changeRowBounds(self.floor_row, -inf, inf)
        cost = self.gpu_cost - price * self.power_cost
        self._start_from(price, self.data.site.utility_limit_kw)
        status = self._run(cost, highspy.ObjSense.kMaximize, deadline)
        if status == "infeasible":
            return Tangent(price, -math.inf, None, status)
        if status in (NO_TIME, "stopped"):
            return Tangent(price, math.inf, None, status)
        bound = float(self.h.getInfo().mip_dual_bound)
        bound = bound if math.isfinite(bound) and abs(bound) < 1e30 else math.inf
        x = self._solution()
        if x is None:
            return Tangent(price, bound, None, status)
        point = self._keep(x, np.round(x[self.place_columns]))
        bound = max(bound, point.objective - price * point.facility_kw)
        return Tangent(price, bound, point, status)

    def off_lattice(self, price: float, modulus: int, step: int, deadline: float | None) -> Tangent:
        """The most G - price * F over the part's layouts within the utility limit whose
        objective G is not a multiple of ``modulus`` (G itself is a multiple of
        ``step``, which divides ``modulus``): the model once more, on a HiGHS instance
        of its own, with G = modulus * q + step * w, q and w whole, 1 <= w <=
        modulus / step - 1. Its bound says how far below the Lagrangian line every such
        layout lies (optimizer.solve.campus, the lattice bound)."""
        inf = highspy.kHighsInf
        h = new_highs(replace(self.options, time_limit=None))
        h.passModel(self.h.getLp())
        h.changeRowBounds(self.budget_row, -inf, self.data.site.utility_limit_kw)
        h.changeRowBounds(self.floor_row, -inf, inf)
        h.changeColsCost(
            self.n_cols,
            np.arange(self.n_cols, dtype=np.int32),
            self.gpu_cost - price * self.power_cost,
        )
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        h.setOptionValue("mip_rel_gap", 0.0)  # the bound is what counts, not a gap
        h.addVars(2, np.array([-inf, 1.0]), np.array([inf, modulus // step - 1.0]))
        q, w = self.n_cols, self.n_cols + 1
        h.changeColsIntegrality(
            2, np.array([q, w], dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * 2)
        )
        nz = np.flatnonzero(self.gpu_cost)
        h.addRow(
            0.0,
            0.0,
            len(nz) + 2,
            np.concatenate([nz, [q, w]]).astype(np.int32),
            np.concatenate([self.gpu_cost[nz], [-float(modulus), -float(step)]]),
        )
        if deadline is not None:
            left = deadline - time.perf_counter()
            if left <= 0:
                return Tangent(price, math.inf, None, NO_TIME)
            h.setOptionValue("time_limit", left)
        watch = SolveWatch(None)
        watch.attach(h)  # Ctrl-C
        h.cbMipInterrupt.subscribe(self._poll)
        if not watch.run(h.run) or watch.interrupted:
            return Tangent(price, math.inf, None, "interrupted")
        status = status_text(h)
        if status == "infeasible":
            return Tangent(price, -math.inf, None, status)
        bound = float(h.getInfo().mip_dual_bound)
        bound = bound if math.isfinite(bound) and abs(bound) < 1e30 else math.inf
        if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            return Tangent(price, bound, None, status)
        x = np.array(h.getSolution().col_value)[: self.n_cols]
        point = self._keep(x, np.round(x[self.place_columns]))
        bound = max(bound, point.objective - price * point.facility_kw)
        return Tangent(price, bound, point, status)

    def layout_of(self, point: FrontierPoint) -> Assignment:
        """This part's layout at a point found on a part with the same fingerprint."""
        values = {id(v): float(x) for v, x in zip(self.columns, point.solution, strict=True)}
        return assign(self.data, self.m, values)


def _fingerprint(lp: highspy.HighsLp, budget_row: int, gpu_cost: np.ndarray) -> str:
    """A digest of everything that defines a part's frontier: the compiled model's
    columns (bounds, integrality, costs), rows (bounds, coefficients), which row is the
    facility-power budget and the objective's costs. Names are not in it."""
    a = lp.a_matrix_
    digest = hashlib.sha256()
    for array in (
        np.array([lp.num_col_, lp.num_row_, budget_row]),
        np.asarray(lp.col_cost_),
        np.asarray(lp.col_lower_),
        np.asarray(lp.col_upper_),
        np.array([int(v) for v in lp.integrality_]),
        np.asarray(lp.row_lower_),
        np.asarray(lp.row_upper_),
        np.asarray(a.start_),
        np.asarray(a.index_),
        np.asarray(a.value_),
        gpu_cost,
    ):
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


@dataclass(frozen=True)
class Tangent:
    """What one Lagrangian solve at a price per kW found: g(b) <= ``bound`` + ``price`` * b
    for every budget b (a line above the part's frontier), and a layout of the part."""

    price: float
    bound: float
    """Proven upper bound on max G - price * F; -inf when the part has no layout."""
    point: FrontierPoint | None
    """The layout found, at its own power (``budget_kw`` = its facility power); not
    proven to be on the frontier."""
    status: str


_SOLVERS: dict[int, PartSolver] = {}
"""In a worker process: the solver of each part it was given, built on first use."""
_PARTS: dict[int, ModelData] = {}
_OPTIONS: list[SolveOptions] = []
_STOP: list[Any] = []
"""The campus's stop event (a multiprocessing.Event), when one was given."""


def _stopped() -> bool:
    """Whether the campus no longer needs the running step."""
    return bool(_STOP) and _STOP[0] is not None and _STOP[0].is_set()


def install(
    parts: dict[int, ModelData], options: SolveOptions, stop: Any | None, ctrl_c: Any | None
) -> None:
    """Worker initializer: the parts this worker steps through, the solve settings, the
    event that tells a running step it is no longer needed, and the shared Ctrl-C flag
    (as for independent parts: whichever process sees Ctrl-C raises it, and every solve
    here stops with its best layout). A dask worker gets neither (None): it shares no
    memory with the campus, and its solves end at their time limits."""
    if ctrl_c is not None:
        signal.signal(signal.SIGINT, stop_flag_handler(ctrl_c))
        stop_also_when(lambda: bool(ctrl_c.value))
    _PARTS.clear()
    _PARTS.update(parts)
    _SOLVERS.clear()
    _OPTIONS[:] = [options]
    _STOP[:] = [stop]


def _deadline(until: float | None, seconds: float | None = None) -> float | None:
    """A wall-clock deadline (``time.time()``), given when the step was queued, as this
    process's ``perf_counter`` deadline: a step that waited behind others in its worker
    gets only the time left, not the time left when it was queued. ``seconds`` caps the
    step from its start, whichever comes first."""
    deadline = None if until is None else time.perf_counter() + (until - time.time())
    if seconds is None:
        return deadline
    cap = time.perf_counter() + seconds
    return cap if deadline is None else min(deadline, cap)


def _solver(part: int) -> PartSolver:
    """The worker's solver of ``part``, built on first use."""
    if part not in _SOLVERS:
        _SOLVERS[part] = PartSolver(_PARTS[part], _OPTIONS[0])
    return _SOLVERS[part]


_Found = TypeVar("_Found", Step, Tangent)


def _tagged(result: _Found, part: int) -> _Found:
    """``result`` with its layout, if any, marked as found on ``part``'s model (the campus
    merges the chosen layouts part by part)."""
    if result.point is None:
        return result
    return replace(result, point=replace(result.point, part=part))


def frontier_step(part: int, budget_kw: float, until: float | None) -> Step:
    """One frontier step of ``part`` (run in the worker that holds it) that ends by the
    wall-clock time ``until``."""
    return _tagged(_solver(part).step(budget_kw, _deadline(until)), part)


def lagrange_step(part: int, price: float, until: float | None, seconds: float) -> Tangent:
    """One Lagrangian solve of ``part`` at ``price`` (GPUs per kW), run in its worker,
    for at most ``seconds`` from its start (its bound is valid when cut short)."""
    return _tagged(_solver(part).lagrange(price, _deadline(until, seconds)), part)


def off_lattice_step(
    part: int, price: float, modulus: int, step: int, until: float | None, seconds: float
) -> Tangent:
    """:meth:`PartSolver.off_lattice` of ``part``, run in its worker, for at most
    ``seconds`` (its bound is valid when cut short)."""
    deadline = _deadline(until, seconds)
    return _tagged(_solver(part).off_lattice(price, modulus, step, deadline), part)


def fingerprint(part: int) -> str:
    """The digest of ``part``'s model (its solver is built here, in its worker)."""
    return _solver(part).fingerprint


def transplant(part: int, point: FrontierPoint) -> Assignment:
    """``part``'s layout at ``point``, found on a part with the same fingerprint."""
    return _solver(part).layout_of(point)


def polish(part: int, budget_kw: float, until: float | None) -> PartResult | None:
    """The chosen point's layout again, through the whole lexicographic solve (shorter
    cables, the tie-break) at the point's own facility power as the part's limit; None
    when the wall-clock time ``until`` has passed."""
    deadline = _deadline(until)
    time_limit = None if deadline is None else deadline - time.perf_counter()
    if time_limit is not None and time_limit <= 0:
        return None
    data = _PARTS[part]
    limited = replace(data, site=replace(data.site, utility_limit_kw=budget_kw))
    return solve_part(limited, replace(_OPTIONS[0], time_limit=time_limit))
