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
from dataclasses import dataclass, field

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import SECOND_STAGE, ProgressFn, SolveWatch

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
    tie_break_status: str = "not run"
    second_stage_gap: float | None = None
    """Proven relative gap of the second stage (cables, tie-break) on the layout kept:
    how much shorter its cable plan could still be; None when the stage did not run."""


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


def _status(h: highspy.Highs) -> str:
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
    return CompiledModel(lp, objectives, form.columns, form.rows, minimize)


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
) -> SolveOutcome:
    """Solve the primary objective, then the second stage with the primary held at its
    optimum. ``progress`` receives snapshots on a timer while HiGHS searches, its values
    in ``unit`` (the primary objective's); Ctrl-C stops the search within a second and
    returns the best layout found with status ``interrupted`` (:mod:`.progress`).
    ``start`` (id(VarData) -> value, possibly for only some variables) is a layout to
    start from; HiGHS completes the missing values itself."""
    started = time.perf_counter()
    compiled = compile_model(m)
    lp, objectives, columns = compiled.lp, compiled.objectives, compiled.columns
    h = new_highs(options)
    h.passModel(lp)
    handoff_s = time.perf_counter() - started

    started = time.perf_counter()
    watch = SolveWatch(progress, unit)
    watch.attach(h)
    h.changeColsCost(lp.num_col_, np.arange(lp.num_col_, dtype=np.int32), objectives[0])
    sense = highspy.ObjSense.kMinimize if compiled.minimize else highspy.ObjSense.kMaximize
    h.changeObjectiveSense(sense)
    if start:
        position = {id(v): j for j, v in enumerate(columns)}
        known = [(position[key], value) for key, value in start.items() if key in position]
        h.setSolution(
            len(known),
            np.array([j for j, _ in known], dtype=np.int32),
            np.array([value for _, value in known], dtype=float),
        )
    if not watch.run(h.run):
        return _left_behind(watch, compiled, handoff_s, started)
    status = "interrupted" if watch.interrupted else _status(h)
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    outcome = SolveOutcome(status=status, has_solution=has_solution, handoff_s=handoff_s)
    if not has_solution:
        outcome.solve_s = time.perf_counter() - started
        return outcome

    primary = float(info.objective_function_value)
    x = np.array(h.getSolution().col_value)
    if start and abs(float(objectives[0] @ x) - primary) > PRIMARY_TOLERANCE * max(1.0, primary):
        # HiGHS's own account of the solution disagrees with the solution itself: do not
        # trust a search that may have pruned on it; solve again without the start.
        return solve(m, options, progress, unit=unit)
    _proven(outcome, primary, float(info.mip_dual_bound), compiled.minimize)
    outcome.primary_s = time.perf_counter() - started

    if watch.interrupted:
        outcome.tie_break_status = "skipped: interrupted"
    else:
        x, outcome.tie_break_status, outcome.second_stage_gap = _tie_break(
            h, compiled, x, primary, options, started, watch
        )
    outcome.values = {id(v): float(val) for v, val in zip(columns, x, strict=True)}
    outcome.solve_s = time.perf_counter() - started
    return outcome


def _proven(outcome: SolveOutcome, objective: float, bound: float, minimize: bool) -> None:
    """Set the outcome's objective, bound (unbounded when HiGHS has none) and gap."""
    outcome.objective = objective
    outcome.bound = bound if math.isfinite(bound) else (-math.inf if minimize else math.inf)
    outcome.gap = relative_gap(objective, outcome.bound, minimize)


def _left_behind(
    watch: SolveWatch, compiled: CompiledModel, handoff_s: float, started: float
) -> SolveOutcome:
    """The outcome of a first stage that Ctrl-C ended before HiGHS stopped: its last
    incumbent, valued by the objective itself, with the last bound HiGHS reported."""
    outcome = SolveOutcome("interrupted", watch.incumbent is not None, handoff_s=handoff_s)
    outcome.tie_break_status = "skipped: interrupted"
    if watch.incumbent is not None:
        x = watch.incumbent
        bound = watch.bound if watch.bound is not None else math.nan
        _proven(outcome, float(compiled.objectives[0] @ x), bound, compiled.minimize)
        outcome.values = {id(v): float(val) for v, val in zip(compiled.columns, x, strict=True)}
    outcome.primary_s = outcome.solve_s = time.perf_counter() - started
    return outcome


_STAGE_ENDS = {
    "optimal": "optimal",
    "solution_limit": "node budget reached",
    "time_limit": "time limit reached",
    "interrupted": "interrupted",
}


def _tie_break(
    h: highspy.Highs,
    compiled: CompiledModel,
    x: np.ndarray,
    primary: float,
    options: SolveOptions,
    started: float,
    watch: SolveWatch,
) -> tuple[np.ndarray, str, float | None]:
    """Second stage: minimize cables and tie-break with the primary held at its
    first-stage value (no lower for a maximum, no higher for a minimum). Returns the
    layout kept, the stage's ending and its proven gap on that layout (None when the
    stage did not run).

    No warm start is passed: with HiGHS 1.16, a start given after the row and costs
    change came back with a wrongly evaluated objective under presolve. Instead the
    first-stage layout, which is feasible here by construction, is kept whenever the
    second stage ends with nothing better.
    """
    lp, objectives = compiled.lp, compiled.objectives
    if not objectives[1].any():
        return x, "not needed", None
    if options.time_limit is not None:
        remaining = options.time_limit - (time.perf_counter() - started)
        if remaining <= 0:
            return x, "skipped: time limit", None
        h.setOptionValue("time_limit", max(remaining, 0.1))
    h.setOptionValue("mip_max_nodes", int(options.second_stage_nodes))
    nz = np.flatnonzero(objectives[0])
    slack = PRIMARY_TOLERANCE * max(1.0, abs(primary))
    if compiled.minimize:
        lower, upper = -highspy.kHighsInf, primary + slack
    else:
        lower, upper = primary - slack, highspy.kHighsInf
    h.addRow(lower, upper, len(nz), nz.astype(np.int32), objectives[0][nz])
    h.changeColsCost(lp.num_col_, np.arange(lp.num_col_, dtype=np.int32), objectives[1])
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    watch.new_stage(SECOND_STAGE, SECOND_STAGE_UNIT)
    if not watch.run(h.run):  # Ctrl-C, and HiGHS did not stop in time: its last incumbent
        found = watch.incumbent
        better = found is not None and float(objectives[1] @ found) <= float(objectives[1] @ x)
        kept, ending = (found, "interrupted") if better else (x, "kept first stage: interrupted")
        bound = watch.bound
        gap = None if bound is None else relative_gap(float(objectives[1] @ kept), bound, True)
        if better and gap is not None:
            ending = f"{ending}, gap {gap:.1%}"  # as when HiGHS stops by itself
        return kept, ending, gap
    info = h.getInfo()
    status = _status(h)
    ending = _STAGE_ENDS.get(status, status)
    bound = float(info.mip_dual_bound)
    if info.primal_solution_status != 2:
        return x, f"kept first stage: {ending}", relative_gap(float(objectives[1] @ x), bound, True)
    found = np.array(h.getSolution().col_value)
    if float(objectives[1] @ found) > float(objectives[1] @ x) + 1e-9:
        kept = f"kept first stage: {ending} with nothing better"
        return x, kept, relative_gap(float(objectives[1] @ x), bound, True)
    if status != "optimal":
        ending = f"{ending}, gap {info.mip_gap:.1%}"
    return found, ending, relative_gap(float(objectives[1] @ found), bound, True)
