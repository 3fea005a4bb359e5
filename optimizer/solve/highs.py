"""The one solver adapter: Pyomo model -> standard-form matrices -> highspy.

Pyomo's standard-form compiler turns the model into sparse matrices, which go to
HiGHS in one ``passModel`` call. This is several times faster than Pyomo's
persistent interface at hall scale, and keeps HiGHS's own API in reach for warm
starts, callbacks and interrupts. The two objectives are solved lexicographically
on the same HiGHS model: first the primary, then, with a row holding the primary
at its optimum, the tie-break, warm-started from the first solution.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from scipy import sparse

from models.network import held_in_cable_replan
from models.relaxation import shared_columns
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import SECOND_STAGE, ProgressFn, SolveWatch

if TYPE_CHECKING:
    from optimizer.solve.packing_search import Packings

PRIMARY_TOLERANCE = 1e-6
SECOND_STAGE_UNIT = "cable m + tie-break"
"""What the second stage's objective counts (models/objective.py)."""


@dataclass
class SolveOutcome:
    """What the solver found: status, values per Pyomo variable, and proof of quality."""

    status: str
    """optimal, time_limit, infeasible, interrupted, or another HiGHS model status."""
    has_solution: bool
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    values: dict[int, float] = field(default_factory=dict)
    """id(VarData) -> value."""
    handoff_s: float = 0.0
    solve_s: float = 0.0
    """Both stages."""
    primary_s: float = 0.0
    """The first stage alone: how long the GPU count took to prove (or to stop)."""
    primary_done: float = 0.0
    """Wall-clock time (``time.time()``) at which the first stage ended, 0 if it did not
    run. A facility solved in parts has its GPU count proven when the last part's first
    stage ends, which parts run two at a time put later than any one part's
    ``primary_s``; a clock shared by the worker processes tells when that was."""
    tie_break_status: str = "not run"
    """How the second stage ended (docs/output-format.md section 5.1)."""
    second_stage_objective: float | None = None
    """Second-stage cost (cable metres plus tie-break) of the layout returned."""
    second_stage_bound: float | None = None
    """Proven lower bound on that cost with the primary held; None when the second stage
    did not run far enough to prove one."""
    second_stage_gap: float | None = None
    """Relative gap of the second stage, how far the cable plan may be from its best: the
    worst over the parts when the facility was solved in parts."""
    relaxed_bound: float | None = None
    """The pooled relaxation's proven bound on the primary (models.relaxation), added to
    the model as a row before the search; None when no relaxation was solved."""

    def record_second_stage(self, cost: float, bound: float | None) -> None:
        """Set the second stage's cost, bound and gap together."""
        self.second_stage_objective, self.second_stage_bound = cost, bound
        self.second_stage_gap = None if bound is None else relative_gap(cost, bound, True)


_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
    highspy.HighsModelStatus.kSolutionLimit: "solution_limit",
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
}


def relative_gap(objective: float, bound: float, minimize: bool = False) -> float:
    """Proven relative gap: |bound - objective| / |objective|, 0 once the bound is met."""
    if not math.isfinite(bound):
        return math.inf
    distance = max(objective - bound if minimize else bound - objective, 0.0)
    if distance <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return distance / abs(objective) if objective else math.inf


def status_text(h: highspy.Highs) -> str:
    """HiGHS's model status after a run in rackopt's words (:class:`SolveOutcome.status`):
    one spelling per status wherever HiGHS is run, so callers compare with one word."""
    model_status = h.getModelStatus()
    return _STATUS.get(model_status, h.modelStatusToString(model_status).lower())


@dataclass
class CompiledModel:
    """The model as HiGHS takes it, with the Pyomo objects behind each row and column."""

    lp: highspy.HighsLp
    objectives: np.ndarray
    """(2, columns): primary and second-stage (minimized) cost vectors."""
    columns: list
    """Pyomo VarData per column."""
    rows: list
    """(Pyomo ConstraintData, kind) per row; kind 1 is <=, -1 is >=, 0 is ==."""
    minimize: bool = False
    """Whether the primary objective is minimized (least facility power)."""
    replan_held: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    """Columns the cable re-plan holds at their first-stage values: the placements of
    every rack that is not a network rack (models.network.held_in_cable_replan); empty
    without a fabric."""
    column_of: dict[int, int] = field(init=False)
    """id(VarData) -> its column: where a value given per Pyomo variable goes."""

    def __post_init__(self) -> None:
        self.column_of = {id(v): j for j, v in enumerate(self.columns)}


def compile_model(m: pyo.ConcreteModel) -> CompiledModel:
    """Compile the model to standard-form matrices; no non-finite number gets through."""
    form = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=None)
    a = form.A.tocsc()
    n_rows, n_cols = a.shape
    inf = highspy.kHighsInf
    lower = np.full(n_rows, -inf)
    upper = np.full(n_rows, inf)
    for i, (_con, kind) in enumerate(form.rows):
        if kind >= 0:
            upper[i] = form.rhs[i]
        if kind <= 0:
            lower[i] = form.rhs[i]
    col_lower = np.array([v.lb if v.lb is not None else -inf for v in form.columns], float)
    col_upper = np.array([v.ub if v.ub is not None else inf for v in form.columns], float)
    for values in (col_lower, col_upper, lower, upper, a.data):
        if np.isnan(values).any() or (np.isinf(values) & (np.abs(values) != inf)).any():
            raise ValueError("a non-finite number reached the solver hand-off")
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    lp.col_cost_ = np.zeros(n_cols)
    lp.col_lower_ = col_lower
    lp.col_upper_ = col_upper
    lp.row_lower_ = lower
    lp.row_upper_ = upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(float)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if v.is_integer() else highspy.HighsVarType.kContinuous
        for v in form.columns
    ]
    objectives = np.zeros((2, n_cols))
    c = form.c.toarray() if form.c.shape[0] else np.zeros((0, n_cols))
    minimize = False
    for row, objective in zip(c, form.objectives, strict=True):
        primary = objective.local_name == "objective_primary"
        objectives[0 if primary else 1] = row
        minimize |= primary and objective.sense == pyo.minimize
    compiled = CompiledModel(lp, objectives, form.columns, form.rows, minimize)
    position = compiled.column_of
    held = sorted(position[id(v)] for v in held_in_cable_replan(m) if id(v) in position)
    compiled.replan_held = np.array(held, dtype=np.int32)
    return compiled


def new_highs(options: SolveOptions) -> highspy.Highs:
    """A HiGHS instance with ``options`` set."""
    h = _quiet_highs()
    for name, value in options.highs_options().items():
        h.setOptionValue(name, value)
    return h


def _quiet_highs() -> highspy.Highs:
    """A HiGHS instance. The first one in a process prints a banner on the C stdout;
    it is sent to /dev/null so the CLI's output stays the summary alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def solve(
    m: pyo.ConcreteModel,
    options: SolveOptions,
    progress: ProgressFn | None = None,
    start: dict[int, float] | None = None,
    unit: str = "",
    packs: Packings | None = None,
    relaxed: pyo.ConcreteModel | None = None,
) -> SolveOutcome:
    """Solve the primary objective, then the second stage with the primary held at its
    optimum. ``relaxed`` is a relaxation of ``m`` (models.build.build_relaxed_model) whose
    proven bound, found first, is added to ``m`` as a row on the maximized primary: a
    valid inequality that lets HiGHS stop as soon as its incumbent meets that bound. Its
    optimum's whole-SU counts, fixed in ``m``, are completed by a short solve; the layout
    found, when better than ``start``, is the search's start instead.
    ``progress`` receives snapshots on a timer while HiGHS searches, its values
    in ``unit`` (the primary objective's); Ctrl-C stops the search within a second and
    returns the best layout found with status ``interrupted`` (:mod:`.progress`).
    ``start`` (id(VarData) -> value, possibly for only some variables) is a layout to
    start from; HiGHS completes the missing values itself. Before the search proper,
    the start is improved by cutting whole SUs, within :func:`pack_budget`, from each of
    the packings ``packs`` finds within :func:`search_budget`
    (:meth:`_Neighbourhoods.cut_from_pack`)."""
    started = time.perf_counter()
    relaxed_s = 0.0
    relaxed_watch = SolveWatch(None)
    cap, counts = None, {}
    if relaxed is not None:
        cap, counts = _solve_relaxed(relaxed, options, relaxed_watch)
        if cap is not None:
            m.relaxation_cap = pyo.Constraint(expr=m.objective_primary.expr <= cap + _hair(cap))
        relaxed_s = time.perf_counter() - started
        if options.time_limit is not None:
            options = replace(options, time_limit=max(options.time_limit - relaxed_s, 0.0))
        started = time.perf_counter()
    compiled = compile_model(m)
    lp, objectives, columns = compiled.lp, compiled.objectives, compiled.columns
    h = new_highs(options)
    h.passModel(lp)
    handoff_s = time.perf_counter() - started

    started = time.perf_counter()
    h.changeColsCost(lp.num_col_, np.arange(lp.num_col_, dtype=np.int32), objectives[0])
    sense = highspy.ObjSense.kMinimize if compiled.minimize else highspy.ObjSense.kMaximize
    h.changeObjectiveSense(sense)
    completed = None
    if counts and options.warm_start and not relaxed_watch.interrupted:
        fixed, values = _shared_counts(m, compiled, counts)
        completion = SolveWatch(None)
        completion.attach(h)
        if not completion.run(lambda: _complete(h, fixed, values, options)):
            # Ctrl-C, and HiGHS did not stop in time: its last layout is the result.
            return _left_behind(completion, compiled, handoff_s, started)
        completion.detach(h)
        relaxed_watch.interrupted |= completion.interrupted
        completed = _completed(h, compiled, fixed)
        # The completion ran under its own budget: the search proper gets what is left of
        # the time limit, or no limit at all without one.
        h.setOptionValue("time_limit", _time_left(options, started))
    watch = SolveWatch(progress, unit)
    watch.interrupted = relaxed_watch.interrupted  # Ctrl-C then stops the search at once
    watch.attach(h)
    position = compiled.column_of
    known = {position[key]: value for key, value in (start or {}).items() if key in position}
    start_value = sum(objectives[0][j] * v for j, v in known.items()) if known else -math.inf
    if completed is not None and float(objectives[0] @ completed) >= start_value:
        known = dict(enumerate(completed.tolist()))
    neighbourhoods = None
    if known:
        if packs is not None and pack_budget(options):
            neighbourhoods = _Neighbourhoods.of(compiled, options, known)
        if neighbourhoods is not None:
            seconds = min(pack_budget(options), _time_left(options, started))
            neighbourhoods.cut_from_packs(packs.spread, seconds)
            # Ctrl-C during the cuts: the search proper stops at once, from the best start.
            watch.interrupted |= neighbourhoods.watch.interrupted
            left = _time_left(options, started)
            h.setOptionValue("time_limit", min(left, probe_budget(options)))
            neighbourhoods.hand_over(h)
        else:
            _set_start(h, known)
    if not watch.run(h.run):
        return _left_behind(watch, compiled, handoff_s, started, _held(neighbourhoods))
    probe_bound = None
    if neighbourhoods is not None and _probe_ended(h, watch, options, started):
        # The probe did not prove the count: search the packings, cut whole SUs from the
        # best one, and search again from the best layout known, for the time left. The
        # probe's bound stays proven (the search again may end before it has one).
        probe_bound = float(h.getInfo().mip_dual_bound)
        probe_bound = probe_bound if math.isfinite(probe_bound) else None
        neighbourhoods.offer(h)
        if probe_bound is not None:
            _cap_primary(h, compiled, probe_bound)
        seconds = min(search_budget(options), _time_left(options, started))
        # The solve's own watch runs the search: its progress lines go on (with the
        # probe's figures), and Ctrl-C stops the search and the cuts after it.
        searched = _searched(packs, watch, seconds)
        neighbourhoods.watch.interrupted |= watch.interrupted
        seconds = min(pack_budget(options), _time_left(options, started))
        neighbourhoods.cut_from_packs(searched, seconds)
        # A whole layout: HiGHS keeps it even if the time limit stops it at once, and the
        # solve keeps it (_held) if Ctrl-C stops HiGHS before it took it.
        neighbourhoods.hand_over(h)
        watch.interrupted |= neighbourhoods.watch.interrupted
        h.setOptionValue("time_limit", _time_left(options, started))
        if not watch.run(h.run):
            return _left_behind(watch, compiled, handoff_s, started, _held(neighbourhoods))
    held = _held(neighbourhoods)
    status = "interrupted" if watch.interrupted else status_text(h)
    info = h.getInfo()
    found = info.primal_solution_status == 2  # kSolutionStatusFeasible
    x = _better(compiled, np.array(h.getSolution().col_value) if found else None, held)
    outcome = SolveOutcome(status=status, has_solution=x is not None, handoff_s=handoff_s)
    outcome.relaxed_bound = cap
    if x is None:
        outcome.solve_s = time.perf_counter() - started
        return outcome
    primary = float(objectives[0] @ x) if x is held else float(info.objective_function_value)

    if known and abs(float(objectives[0] @ x) - primary) > PRIMARY_TOLERANCE * max(1.0, primary):
        # HiGHS's own account of the solution disagrees with the solution itself: do not
        # trust a search that may have pruned on it; solve again without the start (the
        # relaxation's row stays in the model, and its bound and time in the outcome).
        again = solve(m, options, progress, unit=unit)
        again.relaxed_bound = cap
        again.primary_s += relaxed_s
        again.solve_s += relaxed_s
        if again.has_solution:
            _proven(again, again.objective, _capped(again.bound, cap), compiled.minimize)
        return again
    bound = _capped(_capped(float(info.mip_dual_bound), cap), probe_bound)
    _proven(outcome, primary, bound, compiled.minimize)
    outcome.primary_s = time.perf_counter() - started + relaxed_s
    outcome.primary_done = time.time()

    outcome.record_second_stage(float(objectives[1] @ x), None)
    if watch.interrupted:
        outcome.tie_break_status = "skipped: interrupted"
    else:
        x = _second_stage(h, compiled, x, primary, options, outcome, started, watch)
    outcome.values = {id(v): float(val) for v, val in zip(columns, x, strict=True)}
    outcome.solve_s = time.perf_counter() - started + relaxed_s
    return outcome


RELAXED_SHARE = 0.1
"""Share of the time limit the pooled relaxation may take before the search proper."""
RELAXED_MAX_S = 30.0
"""Seconds the pooled relaxation may take at most (also without a time limit); on
campus-8000-mixed it is solved exactly in under a second (docs/benchmarks.md)."""


def _relaxed_budget(options: SolveOptions) -> float:
    """Seconds the relaxation, and then its completion, may take each."""
    return _budget(options, RELAXED_SHARE, RELAXED_MAX_S)


def _budget(options: SolveOptions, share: float, most: float) -> float:
    """Seconds a step before the search proper may take: ``share`` of the time limit, at
    most ``most`` (also without a time limit)."""
    if options.time_limit is None:
        return most
    return min(most, share * options.time_limit)


def relaxation_bound(relaxed: pyo.ConcreteModel, options: SolveOptions) -> float | None:
    """The proven bound on the maximized primary of ``relaxed`` (models.relaxation), for a
    path that cannot take it as a row (the campus frontiers): None when none came out.
    Ctrl-C here comes before any layout, so it ends the solve as Ctrl-C before a solve
    does (KeyboardInterrupt, exit code 130 in the CLI)."""
    watch = SolveWatch(None)
    bound = _solve_relaxed(relaxed, options, watch)[0]
    if watch.interrupted:
        raise KeyboardInterrupt
    return bound


def _solve_relaxed(
    relaxed: pyo.ConcreteModel, options: SolveOptions, watch: SolveWatch
) -> tuple[float | None, dict[str, float]]:
    """The proven bound on ``relaxed``'s maximized primary (None when it is minimized or
    no bound came out), solved to a zero gap within its time budget: a bound cut short
    by the budget (or by Ctrl-C, which ``watch`` records) is still valid, only weaker.
    With it, the values of the columns the relaxation shares with the model (by name,
    models.relaxation.shared_columns) in its best layout, empty when it has none."""
    compiled = compile_model(relaxed)
    if compiled.minimize:
        return None, {}
    h = new_highs(replace(options, time_limit=_relaxed_budget(options)))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.passModel(compiled.lp)
    n_cols = compiled.lp.num_col_
    h.changeColsCost(n_cols, np.arange(n_cols, dtype=np.int32), compiled.objectives[0])
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    watch.attach(h)
    if not watch.run(h.run):  # Ctrl-C, and HiGHS did not stop in time: not to be touched
        return None, {}
    info = h.getInfo()
    bound = float(info.mip_dual_bound)
    if status_text(h) == "infeasible" or not math.isfinite(bound):
        return None, {}  # an infeasible relaxation: the model's own solve says so
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        return bound, {}
    x = h.getSolution().col_value
    position = compiled.column_of
    shared = shared_columns(relaxed)
    return bound, {v.name: float(round(x[position[id(v)]])) for v in shared if id(v) in position}


def _shared_counts(
    m: pyo.ConcreteModel, compiled: CompiledModel, counts: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The model's columns named in ``counts`` (models.relaxation.shared_columns, found
    through the model's own variables rather than by reading every column's name: 0.26 s
    a scan on campus-8000-mixed) and their values there."""
    shared = [v for v in shared_columns(m) if v.name in counts and id(v) in compiled.column_of]
    fixed = np.array([compiled.column_of[id(v)] for v in shared], dtype=np.int32)
    return fixed, np.array([counts[v.name] for v in shared])


def _complete(
    h: highspy.Highs, fixed: np.ndarray, values: np.ndarray, options: SolveOptions
) -> None:
    """Search ``h`` for a layout of the model with the columns ``fixed`` at ``values``
    (the relaxation's whole-SU counts per hall and type), within the relaxation's time
    budget. Where cable reach does not decide the optimum this finds the optimum in
    seconds (1.4 s on campus-8000-mixed, where the model unguided found no layout that
    good within 300 s). Run in a :class:`SolveWatch`, which honours Ctrl-C."""
    h.changeColsBounds(len(fixed), fixed, values, values)
    h.setOptionValue("time_limit", _relaxed_budget(options))
    h.run()


def _completed(h: highspy.Highs, compiled: CompiledModel, fixed: np.ndarray) -> np.ndarray | None:
    """The layout :func:`_complete` found (None when none), with the bounds of the
    columns it ``fixed`` restored for the search proper."""
    lower = np.asarray(compiled.lp.col_lower_)[fixed]
    upper = np.asarray(compiled.lp.col_upper_)[fixed]
    found = h.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    x = np.array(h.getSolution().col_value) if found else None
    h.changeColsBounds(len(fixed), fixed, lower, upper)
    return x


PROBE_SHARE = 0.5
"""Share of the time limit the search proper first gets on a hall where inlet rows bind,
before the local search over packings (optimizer.solve.packing_search): a hall it proves
in that time never waits for the local search. At 10%, the 1,000-slot air hall (proven
in about 3 s) ended a 10 s limit 0.54% short of its proof (the search again had to redo
its root); at half the limit, up to :data:`PROBE_MAX_S`, it is proven there."""
PROBE_MAX_S = 5.0
"""Seconds the first search proper gets at most (also without a time limit): the
1,000-slot air hall of docs/benchmarks.md is proven in about 3 s from its start."""
SEARCH_SHARE = 0.2
"""Share of the time limit the local search over packings may take before the search
proper starts again (optimizer.solve.packing_search): at 10%, a 10 s limit left it too
few moves on hall-300-thermal (8,448 GPUs; at 20%, 8,704)."""
SEARCH_MAX_S = 8.0
"""Seconds the local search over packings may take at most (also without a time limit);
on hall-300-thermal it holds 7 DGX H100 SUs' racks beside 12 GB300 SUs after 1,305 moves
(0.8 s; docs/benchmarks.md, 'Local search over packings')."""
PACK_SHARE = 0.2
"""Share of the time limit the cuts from the packings may take before the search proper."""
PACK_MAX_S = 10.0
"""Seconds the cuts from the packings may take at most (also without a time limit)."""
PACK_STEP_S = 2.0
"""Seconds one packing's cut may take: a pack of the 1,000-slot air hall is cut in 0.5 s
(docs/benchmarks.md)."""


def _time_left(options: SolveOptions, started: float) -> float:
    """Seconds left of the time limit since ``started`` (``perf_counter``), or no limit:
    for a HiGHS copy whose limit a step before the search proper has changed."""
    if options.time_limit is None:
        return math.inf
    return max(options.time_limit - (time.perf_counter() - started), 0.0)


def probe_budget(options: SolveOptions) -> float:
    """Seconds the search proper first gets where a local search over packings may
    follow: at most :data:`PROBE_MAX_S` and at most :data:`PROBE_SHARE` of the time
    limit."""
    return _budget(options, PROBE_SHARE, PROBE_MAX_S)


def _probe_ended(
    h: highspy.Highs, watch: SolveWatch, options: SolveOptions, started: float
) -> bool:
    """Whether the search proper stopped at the probe's time limit (not at the solve's,
    not by Ctrl-C, not with a proof)."""
    return (
        status_text(h) == "time_limit"
        and not watch.interrupted
        and _time_left(options, started) > 0
    )


def _set_start(h: highspy.Highs, known: dict[int, float]) -> None:
    h.setSolution(
        len(known),
        np.array(list(known), dtype=np.int32),
        np.array(list(known.values()), dtype=float),
    )


def _searched(packs: Packings, watch: SolveWatch, seconds: float) -> list[dict[int, float]]:
    """The packing ``packs`` searches for at most ``seconds`` (the local search of
    optimizer.solve.packing_search), in a worker thread that ``watch`` runs so that Ctrl-C
    stops it: what it found by then, or nothing when it did not stop in time."""
    found: list[dict[int, float]] = []
    deadline = time.perf_counter() + seconds
    stop = lambda: watch.interrupted  # noqa: E731
    watch.run(lambda: found.extend(packs.searched(deadline, stop)))
    return found


def _cap_primary(h: highspy.Highs, compiled: CompiledModel, bound: float) -> None:
    """A row holding the maximized primary at ``bound`` (proven by an earlier search of
    the same model), a hair above it: the search again starts from that bound, shows it
    and stops when its incumbent meets it."""
    _primary_row(h, compiled, -highspy.kHighsInf, bound + _hair(bound))


def _primary_row(h: highspy.Highs, compiled: CompiledModel, lower: float, upper: float) -> None:
    """A row ``lower`` <= primary objective <= ``upper`` added to ``h``."""
    costs = compiled.objectives[0]
    nz = np.flatnonzero(costs)
    h.addRow(lower, upper, len(nz), nz.astype(np.int32), costs[nz])


def _hair(value: float) -> float:
    """How far past ``value`` a row on the primary is set, so that HiGHS's own tolerances
    never cut off a layout at ``value``."""
    return PRIMARY_TOLERANCE * max(1.0, abs(value))


def search_budget(options: SolveOptions) -> float:
    """Seconds the local search over packings may take: at most :data:`SEARCH_MAX_S` and
    at most :data:`SEARCH_SHARE` of the time limit."""
    return _budget(options, SEARCH_SHARE, SEARCH_MAX_S)


def pack_budget(options: SolveOptions) -> float:
    """Seconds the cuts from the packings may take: at most :data:`PACK_MAX_S` and at
    most :data:`PACK_SHARE` of the time limit."""
    return _budget(options, PACK_SHARE, PACK_MAX_S)


class _Neighbourhoods:
    """Restricted re-solves of the primary objective around a start, on one HiGHS copy
    of the compiled model: each narrows the start columns' bounds (to a packing's counts,
    :meth:`cut_from_pack`). A layout is kept only when it scores more and satisfies every
    row and bound (checked here, not taken on HiGHS's word), so the incumbent is never
    worse than the start. Ctrl-C stops it (``watch.interrupted``)."""

    def __init__(self, compiled: CompiledModel, options: SolveOptions, start: dict[int, float]):
        self.fixed = np.array(sorted(start), dtype=np.int32)
        self.incumbent = np.array([start[j] for j in self.fixed], dtype=float)
        self.costs = compiled.objectives[0]
        self.lp = lp = compiled.lp
        self.lower, self.upper = np.array(lp.col_lower_), np.array(lp.col_upper_)
        self.matrix = sparse.csc_array(
            (lp.a_matrix_.value_, lp.a_matrix_.index_, lp.a_matrix_.start_),
            shape=(lp.num_row_, lp.num_col_),
        )
        self.column_of = compiled.column_of
        self.h = new_highs(replace(options, time_limit=None))
        self.h.passModel(lp)
        self.h.changeColsCost(lp.num_col_, np.arange(lp.num_col_, dtype=np.int32), self.costs)
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self.watch = SolveWatch(None)  # Ctrl-C only: a neighbourhood's bound proves nothing
        self.watch.attach(self.h)
        self.best = float(self.costs[self.fixed] @ self.incumbent)
        self.layout: np.ndarray | None = None
        """Every column of the best layout once one is known whole (from a cut or from
        HiGHS's own search): HiGHS takes a whole layout as its incumbent at once, where
        a start of only the placement columns must first be completed, which a short
        time limit or Ctrl-C may cut off."""

    @classmethod
    def of(
        cls, compiled: CompiledModel, options: SolveOptions, start: dict[int, float]
    ) -> _Neighbourhoods | None:
        """The search from ``start`` (column -> value), or None where it cannot judge a
        layout by the start columns alone: only maximizing objectives whose every cost
        falls on a start column are searched."""
        free_cost = compiled.objectives[0].copy()
        free_cost[list(start)] = 0.0
        if compiled.minimize or free_cost.any() or not start:
            return None
        return cls(compiled, options, start)

    def best_start(self) -> dict[int, float]:
        """The best layout found (column -> value)."""
        return dict(zip(self.fixed.tolist(), self.incumbent.tolist(), strict=True))

    def _resolve(self, lower: np.ndarray, upper: np.ndarray, seconds: float) -> None:
        """Re-solve with the start columns within ``lower``..``upper``; keep the layout
        when it is better."""
        self.h.changeColsBounds(len(self.fixed), self.fixed, lower, upper)
        self.h.setOptionValue("time_limit", seconds)
        if np.all(lower <= self.incumbent) and np.all(self.incumbent <= upper):
            self.h.setSolution(len(self.fixed), self.fixed, self.incumbent)
        if not self.watch.run(self.h.run):  # Ctrl-C, and HiGHS did not stop in time
            return
        if self.h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            return
        x = np.array(self.h.getSolution().col_value)
        x[self.fixed] = np.round(x[self.fixed])
        value = float(self.costs @ x)
        if value > self.best + PRIMARY_TOLERANCE * max(1.0, self.best) and _satisfies(
            self.lp, self.matrix, self.lower, self.upper, x
        ):
            self.best, self.incumbent, self.layout = value, x[self.fixed], x

    def offer(self, h: highspy.Highs) -> None:
        """Take HiGHS's incumbent as the best layout when it scores no less (it is whole)."""
        if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            return
        x = np.array(h.getSolution().col_value)
        value = float(self.costs @ x)
        if value >= self.best - PRIMARY_TOLERANCE * max(1.0, self.best):
            self.best, self.incumbent, self.layout = value, np.round(x[self.fixed]), x

    def hand_over(self, h: highspy.Highs) -> None:
        """Give ``h`` the best layout as its start: whole where one is known."""
        if self.layout is None:
            _set_start(h, self.best_start())
            return
        solution = highspy.HighsSolution()
        solution.col_value = self.layout.tolist()
        h.setSolution(solution)

    def cut_from_packs(self, packs: list[dict[int, float]], seconds: float) -> None:
        """Whole SUs cut from each of ``packs`` (id(VarData) -> most racks) within
        ``seconds``; the best layout is kept (:meth:`hand_over`)."""
        deadline = time.perf_counter() + seconds
        for pack in packs:
            self.cut_from_pack(
                {self.column_of[key]: most for key, most in pack.items() if key in self.column_of},
                deadline,
            )

    def cut_from_pack(self, most: dict[int, float], deadline: float) -> None:
        """SU completion from a packing (optimizer.solve.greedy ``packed_layout``):
        every start column may take at most the pack's count (0 where the pack has
        none), so racks can only be taken away from the packing; HiGHS chooses which,
        and which network rack cables each SU, so that every SU is whole. Taking racks
        away never breaks an inlet or a feed, so this small problem (a cabling with
        racks dropped) is usually solved at once."""
        left = deadline - time.perf_counter()
        if left <= 0 or self.watch.interrupted:
            return
        upper = np.minimum(self.upper[self.fixed], [most.get(j, 0.0) for j in self.fixed])
        lower = self.lower[self.fixed]
        if np.all(lower <= upper):
            self._resolve(lower, upper, min(PACK_STEP_S, left))


def _satisfies(
    lp: highspy.HighsLp,
    matrix: sparse.csc_array,
    lower: np.ndarray,
    upper: np.ndarray,
    x: np.ndarray,
) -> bool:
    """Whether ``x`` keeps every row and column of ``lp`` within its bounds (to 1e-6)."""
    ax = matrix @ x
    tolerance = 1e-6
    return bool(
        np.all(ax >= np.array(lp.row_lower_) - tolerance)
        and np.all(ax <= np.array(lp.row_upper_) + tolerance)
        and np.all(x >= lower - tolerance)
        and np.all(x <= upper + tolerance)
    )


def _held(neighbourhoods: _Neighbourhoods | None) -> np.ndarray | None:
    """The whole layout the search proper was handed, if any (``_Neighbourhoods.layout``:
    checked against every row by a cut, or HiGHS's own from the probe): the answer should
    HiGHS be stopped before it took it."""
    return None if neighbourhoods is None else neighbourhoods.layout


def _better(
    compiled: CompiledModel, x: np.ndarray | None, held: np.ndarray | None
) -> np.ndarray | None:
    """HiGHS's layout ``x``, or ``held`` where HiGHS has none or ``held`` scores more on
    the maximized primary (HiGHS was stopped before it took ``held``)."""
    if held is None:
        return x
    costs = compiled.objectives[0]
    if x is None or costs @ held > costs @ x + _hair(float(costs @ x)):
        return held
    return x


def _capped(bound: float, cap: float | None) -> float:
    """HiGHS's bound on the maximized primary, or ``cap`` (the relaxation's, or an
    earlier search's) where that is lower or HiGHS proved none: both are proven."""
    if cap is None:
        return bound
    return min(bound, cap) if math.isfinite(bound) else cap


def _proven(outcome: SolveOutcome, objective: float, bound: float, minimize: bool) -> None:
    """Set the outcome's objective, bound (unbounded when HiGHS has none) and gap."""
    outcome.objective = objective
    outcome.bound = bound if math.isfinite(bound) else (-math.inf if minimize else math.inf)
    outcome.gap = relative_gap(objective, outcome.bound, minimize)


def _left_behind(
    watch: SolveWatch,
    compiled: CompiledModel,
    handoff_s: float,
    started: float,
    held: np.ndarray | None = None,
) -> SolveOutcome:
    """The outcome of a first stage that Ctrl-C ended before HiGHS stopped: its last
    incumbent, or the whole layout ``held`` out of HiGHS where that scores more (HiGHS
    may be stopped before it took it), valued by the objective itself, with the last
    bound HiGHS reported."""
    x = _better(compiled, watch.incumbent, held)
    outcome = SolveOutcome("interrupted", x is not None, handoff_s=handoff_s)
    outcome.tie_break_status = "skipped: interrupted"
    if x is not None:
        bound = watch.bound if watch.bound is not None else math.nan
        _proven(outcome, float(compiled.objectives[0] @ x), bound, compiled.minimize)
        outcome.record_second_stage(float(compiled.objectives[1] @ x), None)
        outcome.values = {id(v): float(val) for v, val in zip(compiled.columns, x, strict=True)}
    outcome.primary_s = outcome.solve_s = time.perf_counter() - started
    outcome.primary_done = time.time()
    return outcome


SECOND_STAGE_FLOOR_S = 0.25
"""The least time the share of the first stage's time gives the second stage: enough for
the cable re-plan, which took 0.08-0.25 s on the benchmark halls and finds most of what
the stage gains (gb300-hall 2,757 to 969 in second-stage cost, the whole stage's 1 s
reached 701). A longer floor kept answers whose GPU count was proven in 0.03 s waiting a
second for the rest (issue 14: at most 1.5 x the proof + 1 s end to end, docs/benchmarks.md)."""

_STAGE_ENDS = {
    "optimal": "optimal",
    "solution_limit": "node budget reached",
    "time_limit": "time limit reached",
    "interrupted": "interrupted",
}


def second_stage_budget(
    options: SolveOptions, started: float, primary_s: float
) -> tuple[float, str]:
    """Seconds the second stage may run and what sets them: its share of the first
    stage's time, or what is left of the time limit, whichever is less."""
    budget, reason = math.inf, "time limit reached"
    if options.second_stage_share > 0:
        budget = max(options.second_stage_share * primary_s, SECOND_STAGE_FLOOR_S)
        reason = "time share reached"
    if options.time_limit is not None:
        remaining = options.time_limit - (time.perf_counter() - started)
        if remaining <= budget:
            budget, reason = remaining, "time limit reached"
    return budget, reason


def _second_stage(
    h: highspy.Highs,
    compiled: CompiledModel,
    x: np.ndarray,
    primary: float,
    options: SolveOptions,
    outcome: SolveOutcome,
    started: float,
    watch: SolveWatch,
) -> np.ndarray:
    """Second stage: minimize cables and tie-break with the primary held at its
    first-stage value (no lower for a maximum, no higher for a minimum). Records its
    status, cost and bound in ``outcome`` and returns the layout to keep.

    It runs in three steps on the same HiGHS model. First the cable re-plan
    (:func:`_cable_replan`): the first-stage layout's cabling, SUs and network racks
    re-planned with every other rack held where it stands, a small MIP that HiGHS solves
    long before it finds a better plan in the whole model. Then the LP bound
    (:func:`_relaxation_bound`), which ends the stage when the layout kept is within the
    stage's gap of it, and otherwise gives the stage a bound even if the time share ends
    before HiGHS's own. Then the whole second stage, which must beat the best cost known
    by more than the stage's gap.

    The stage ends at the first of: its own gap (``second_stage_gap``), its node budget,
    its share of the first stage's time, the time limit. HiGHS is told to prune every
    layout that does not beat the best cost known (first stage or re-plan) by more than
    that gap (its ``objective_bound``), so when that layout cannot be improved by more
    than the gap the root bound proves it and the stage ends there, as ``first stage
    within gap`` or ``cable re-plan within gap``.

    No warm start is passed: with HiGHS 1.16, a start given after the row and costs
    change came back with a wrongly evaluated objective under presolve. Instead the best
    layout known, feasible here by construction, is kept whenever the whole second stage
    ends with nothing better. The objective bound is a number, not a layout, so it does
    not meet that fault.
    """
    lp, objectives = compiled.lp, compiled.objectives
    cost = float(objectives[1] @ x)
    if not objectives[1].any():
        outcome.tie_break_status = "not needed"
        outcome.record_second_stage(cost, cost)
        return x
    budget, time_end = second_stage_budget(options, started, outcome.primary_s)
    if budget <= 0:
        outcome.tie_break_status = "skipped: time limit"
        return x
    deadline = time.perf_counter() + budget
    h.setOptionValue("mip_max_nodes", int(options.second_stage_nodes))
    h.setOptionValue("mip_rel_gap", float(options.second_stage_gap))
    if compiled.minimize:
        _primary_row(h, compiled, -highspy.kHighsInf, primary + _hair(primary))
    else:
        _primary_row(h, compiled, primary - _hair(primary), highspy.kHighsInf)
    h.changeColsCost(lp.num_col_, np.arange(lp.num_col_, dtype=np.int32), objectives[1])
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    watch.new_stage(SECOND_STAGE, SECOND_STAGE_UNIT)
    kept = "first stage"
    replanned = _cable_replan(h, compiled, x, cost, options, deadline, watch)
    if replanned is not None:
        x, cost, kept = replanned, float(objectives[1] @ replanned), "cable re-plan"
    relaxed = _relaxation_bound(h, options, started, watch)
    worth_beating = cost - options.second_stage_gap * abs(cost)
    if relaxed >= worth_beating:
        # The LP bound proves that nothing beats the layout kept by more than the gap.
        outcome.tie_break_status = f"{kept} within gap"
        outcome.record_second_stage(cost, min(relaxed, cost))
        return x
    remaining = deadline - time.perf_counter()
    if watch.interrupted or remaining <= 0:
        ending = "interrupted" if watch.interrupted else time_end
        outcome.record_second_stage(cost, _known(relaxed, cost))
        outcome.tie_break_status = f"kept {kept}: {ending}"
        return x
    watch.new_stage(SECOND_STAGE, SECOND_STAGE_UNIT)  # the re-plan's bound is not the stage's
    h.setOptionValue("time_limit", max(remaining, 0.1) if math.isfinite(remaining) else math.inf)
    h.setOptionValue("objective_bound", worth_beating)
    if watch.run(h.run):
        info = h.getInfo()
        status = status_text(h)
        if status == "infeasible":
            # Nothing beats the layout kept by more than the gap: proven, not a failure.
            outcome.tie_break_status = f"{kept} within gap"
            outcome.record_second_stage(cost, min(max(worth_beating, relaxed), cost))
            return x
        ending = time_end if status == "time_limit" else _STAGE_ENDS.get(status, status)
        dual = float(info.mip_dual_bound)
        found = np.array(h.getSolution().col_value) if info.primal_solution_status == 2 else None
    else:  # Ctrl-C, and HiGHS did not stop in time: its last incumbent and bound
        status = ending = "interrupted"
        dual = watch.bound if watch.bound is not None else math.nan
        found = watch.incumbent
    if found is not None and float(objectives[1] @ found) < cost - 1e-9:
        x, cost = found, float(objectives[1] @ found)
    else:
        ending = f"kept {kept}: {ending}"
    # Both are lower bounds: the better one counts.
    outcome.record_second_stage(
        cost, _known(max(dual, relaxed) if math.isfinite(dual) else relaxed, cost)
    )
    if status != "optimal" and outcome.second_stage_gap is not None:
        ending = f"{ending}, gap {outcome.second_stage_gap:.1%}"
    outcome.tie_break_status = ending
    return x


def _known(bound: float, cost: float) -> float | None:
    """``bound`` capped at ``cost`` (above it only by HiGHS's tolerances), or None for
    no bound (-inf or NaN)."""
    return min(bound, cost) if math.isfinite(bound) else None


def _relaxation_bound(
    h: highspy.Highs, options: SolveOptions, started: float, watch: SolveWatch
) -> float:
    """The second stage's LP relaxation optimum, a lower bound on its cost with the
    primary held (-inf when none is known: Ctrl-C, no time left, or the LP did not solve).

    It is cheap (0.004 s on gb300-hall, 0.1 s on a 1,000-slot hall under load) where the
    whole stage reaches its own first bound only after presolve and the root's cuts,
    often after the time share: the summary then had no gap to give. And when the layout
    kept is already within the stage's gap of it, the whole stage is not run at all.
    It runs beyond the stage's time share (that is the point), within the time limit."""
    limit = _time_left(options, started)
    if watch.interrupted or limit <= 0:
        return -math.inf
    h.setOptionValue("time_limit", limit)
    h.setOptionValue("objective_bound", math.inf)  # a bound would stop the LP early
    h.setOptionValue("solve_relaxation", True)
    if not watch.run(h.run):  # Ctrl-C, and HiGHS did not stop in time: not to be touched
        return -math.inf
    h.setOptionValue("solve_relaxation", False)
    if watch.interrupted or status_text(h) != "optimal":
        return -math.inf
    return float(h.getInfo().objective_function_value)


def _cable_replan(
    h: highspy.Highs,
    compiled: CompiledModel,
    x: np.ndarray,
    cost: float,
    options: SolveOptions,
    deadline: float,
    watch: SolveWatch,
) -> np.ndarray | None:
    """The first-stage layout with a shorter cable plan, or None when none is found by
    more than the stage's gap.

    The first stage's layout ignores cables, so its SUs may hang off far network racks.
    With every rack that is not a network rack held where it stands
    (``compiled.replan_held``), what is left is which network rack serves which racks, in
    whole SUs within reach and port limits, and where the network racks stand. It is
    solved on the second stage's own rows and costs, so whatever it returns is a layout
    of the whole model with the primary held, valued by the second stage's own cost
    (cable metres plus tie-break). Presolve leaves a small assignment MIP (0.1-0.25 s on
    docs/benchmarks.md's halls). HiGHS's model is left as it was found, unless Ctrl-C
    left HiGHS running (the caller then ends the stage without touching it).
    """
    held = compiled.replan_held
    remaining = deadline - time.perf_counter()
    if not len(held) or remaining <= 0:
        return None
    if math.isfinite(remaining):
        h.setOptionValue("time_limit", remaining)
    h.setOptionValue("objective_bound", cost - options.second_stage_gap * abs(cost))
    lower = np.asarray(compiled.lp.col_lower_)[held]
    upper = np.asarray(compiled.lp.col_upper_)[held]
    standing = np.round(x[held])
    h.changeColsBounds(len(held), held, standing, standing)
    if watch.run(h.run):
        solved = h.getInfo().primal_solution_status == 2
        found = np.array(h.getSolution().col_value) if solved else None
        h.changeColsBounds(len(held), held, lower, upper)
    else:  # Ctrl-C, and HiGHS did not stop in time: not to be touched again
        found = watch.incumbent
    if found is None or float(compiled.objectives[1] @ found) >= cost - 1e-9:
        return None
    return found
