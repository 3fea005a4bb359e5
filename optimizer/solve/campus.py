"""A campus whose halls share only the utility limit: per-part frontiers and an exact master.

When the parts of a facility (optimizer.solve.decompose) would be independent but for
the one utility limit, the campus optimum is a choice of one point on each part's
frontier (optimizer.solve.frontier: the most GPUs for each facility-power budget) whose
facility powers fit under the limit together. Any layout of the campus is a layout per
part; each part's layout is matched or beaten by the frontier point at its own power,
and the points' powers are no higher; so the best choice of points is the optimum
(docs/formulation.md, "Campus frontiers").

Asked for with ``--campus-frontiers`` (off by default: on the benchmark campuses the
single model proves a binding utility sooner, docs/benchmarks.md). Applies when
(:func:`campus_parts`): a utility limit is set, the objective is maximized,
and leaving the utility limit out splits the facility into two or more parts. Demand
bounds that cap a rack type across parts join those parts (as in decompose), since a
frontier in power alone cannot say how many racks of each type a point holds; such a
campus, like one whose halls share a power device, a CDU or an air zone, is solved as
one model.

The frontiers are traced top down, only as far as the optimum can need: part p never
needs a budget below U - sum_q!=p Pmax_q (the others cannot use more than their
unconstrained optimum's power Pmax_q), nor points whose objective plus the others'
maxima cannot beat the best choice found so far. After every step the master (a
multiple-choice knapsack, solved exactly by dynamic programming over Pareto sets) gives
the incumbent, and the same master with each part's untraced region counted at its
proven bound at zero power gives the upper bound; both are reported as progress, and a
time limit or Ctrl-C ends with the incumbent and that proven gap.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import reduce

from models.data import ModelData, allowed_types
from optimizer.site.placement import Assignment
from optimizer.solve.decompose import (
    PartResult,
    _merge_second_stage,
    _raiser,
    merge_layouts,
    parts,
    restrict,
)
from optimizer.solve.frontier import (
    POWER_RESOLUTION,
    FrontierPoint,
    Step,
    frontier_step,
    install,
    polish,
)
from optimizer.solve.highs import SolveOutcome, relative_gap
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import Progress, ProgressFn, note_ctrl_c

SOLVED_AS_SINGLE = "single model"
SOLVED_AS_PARTS = "independent parts"
SOLVED_AS_CAMPUS = "campus frontiers"
"""The three paths a solve takes (the layout's ``solved_as`` attribute)."""

MASTER_SLACK = 1e-7
"""Relative room over the utility limit for the master's sum of the points' recomputed
powers (each at most its budget up to HiGHS's feasibility tolerance); a tenth of the
check's tolerance."""


def campus_parts(data: ModelData) -> list[list[int]] | None:
    """The parts to trace frontiers for, or None when the campus path does not apply."""
    site = data.site
    if site.utility_limit_kw is None or site.objective.minimizes:
        return None
    groups = parts(data, utility_joins=False)
    return groups if len(groups) > 1 else None


def objective_step(data: ModelData) -> float:
    """The least positive difference between two objective values of a part: the gcd of
    its rack types' weights when they are whole numbers (GPUs are), else 0 (no gap
    between values can be assumed)."""
    from models.objective import primary_weights

    weights = primary_weights(data)
    used = {t for c in data.classes for t in allowed_types(c)}
    values = [weights[t] for t in used if weights[t] != 0]
    if not values or any(w != int(w) for w in values):
        return 0.0
    return float(reduce(math.gcd, (abs(int(w)) for w in values)))


@dataclass
class PartFrontier:
    """What is known of one part's frontier."""

    step: float
    """Least difference between two objective values (:func:`objective_step`)."""
    points: list[FrontierPoint] = field(default_factory=list)
    """Proven frontier points, by falling power."""
    feasible: list[FrontierPoint] = field(default_factory=list)
    """Layouts found by a step cut short: usable, not proven to be on the frontier."""
    next_budget: float | None = None
    """Budget of the next step; the frontier is exact above it."""
    below_bound: float = math.inf
    """Proven bound on the objective at ``next_budget`` and below."""
    exhausted: bool = False
    """No layout below ``next_budget`` exists, or none can be of use."""
    stopped: bool = False
    """Tracing ended early (time limit, Ctrl-C, or a step not proven)."""
    pending: bool = False

    @property
    def top(self) -> FrontierPoint | None:
        return self.points[0] if self.points else None

    def record(self, result: Step, resolution_kw: float) -> None:
        """Take in one step's result."""
        self.pending = False
        point = result.point
        if result.status == "infeasible" or (point is None and result.bound == -math.inf):
            self.exhausted = True
            self.below_bound = -math.inf
            return
        proven = point is not None and result.bound < point.objective + max(self.step, 1e-9)
        if point is None or not proven or result.status not in ("optimal",):
            if point is not None:
                self.feasible.append(point)
            self.below_bound = min(self.below_bound, result.bound)
            self.stopped = True
            return
        if self.points and point.facility_kw >= self.points[-1].facility_kw:
            # Within the solver's tolerance of the previous point: step further down.
            self.next_budget = self.points[-1].facility_kw - 2 * resolution_kw
            return
        self.points.append(point)
        self.next_budget = point.facility_kw - resolution_kw
        self.below_bound = point.objective - self.step if self.step else point.objective
        if self.next_budget < 0:
            self.exhausted = True

    def seed(self, result: Step) -> None:
        """Take in a step made out of turn (a seed): its layout is usable at once; the
        trace from the top finds its point again when it gets there."""
        if result.point is not None:
            self.feasible.append(result.point)

    def options(self, upper: bool) -> list[tuple[float, float, FrontierPoint | None]]:
        """(power, objective, point) choices for the master. With ``upper``, the untraced
        region is one more choice, at zero power and its proven bound."""
        found = [(p.facility_kw, p.objective, p) for p in self.points + self.feasible]
        if upper and not self.exhausted and self.below_bound > -math.inf:
            found.append((0.0, self.below_bound, None))
        return found


def best_choice(
    choices: list[list[tuple[float, float, FrontierPoint | None]]], capacity_kw: float
) -> tuple[float, list[int]] | None:
    """The most total objective choosing one option per part within ``capacity_kw``, and
    the option chosen per part; None if no choice fits. Exact: dynamic programming over
    the Pareto set of (power, objective) of the parts so far."""
    states = [(0.0, 0.0)]
    back: list[list[tuple[int, int]]] = []
    for options in choices:
        grown = [
            (kw + o_kw, value + o_value, (s, i))
            for s, (kw, value) in enumerate(states)
            for i, (o_kw, o_value, _) in enumerate(options)
            if kw + o_kw <= capacity_kw
        ]
        grown.sort(key=lambda g: (g[0], -g[1]))
        kept: list[tuple[float, float, tuple[int, int]]] = []
        for g in grown:
            if not kept or g[1] > kept[-1][1]:
                kept.append(g)
        if not kept:
            return None
        states = [(kw, value) for kw, value, _ in kept]
        back.append([link for _, _, link in kept])
    best = max(range(len(states)), key=lambda s: states[s][1])
    chosen: list[int] = []
    s = best
    for links in reversed(back):
        s, i = links[s]
        chosen.append(i)
    return states[best][1], chosen[::-1]


@dataclass
class CampusResult:
    layout: Assignment
    outcome: SolveOutcome
    build_s: float
    variables: int
    frontier_points: int


class _Tracer:
    """Schedules the frontier steps of every part and keeps the two masters."""

    def __init__(self, frontiers: list[PartFrontier], limit_kw: float, unit: str) -> None:
        self.frontiers = frontiers
        self.unit = unit
        """What the objective counts (Progress.unit)."""
        self.limit_kw = limit_kw
        self.capacity_kw = limit_kw * (1 + MASTER_SLACK)
        self.lower: float | None = None
        self.upper: float = math.inf
        self.chosen: list[FrontierPoint] | None = None
        steps = [int(f.step) for f in frontiers]
        self.resolution = float(reduce(math.gcd, steps)) if all(steps) else 0.0
        """No two campus objective values are closer than this (0 when not known)."""

    @property
    def proven(self) -> bool:
        """Whether the bound meets the incumbent: no choice of points can do better."""
        if self.lower is None:
            return False
        return self.upper - self.lower < max(self.resolution, 1e-9 * max(1.0, abs(self.lower)))

    def update(self) -> None:
        """Incumbent and bound from what is known now."""
        f = self.frontiers
        found = best_choice([p.options(upper=False) for p in f], self.capacity_kw)
        if found is not None and (self.lower is None or found[0] >= self.lower):
            self.lower = found[0]
            self.chosen = [p.options(False)[i][2] for p, i in zip(f, found[1], strict=True)]
        if all(p.points or p.feasible or p.exhausted for p in f):
            bound = best_choice([p.options(upper=True) for p in f], self.capacity_kw)
            upper = -math.inf if bound is None else bound[0]
            self.upper = min(self.upper, max(upper, self.lower or -math.inf))

    def needs_step(self, p: int) -> bool:
        """Whether part p's frontier below its next budget can still matter."""
        part = self.frontiers[p]
        if part.exhausted or part.stopped or part.pending or part.next_budget is None:
            return False
        tops = [q.top for q in self.frontiers]
        if all(t is not None for t in tops):
            others_kw = sum(t.facility_kw for q, t in enumerate(tops) if q != p)
            if part.points and part.points[-1].facility_kw <= self.limit_kw - others_kw:
                part.exhausted = True  # more budget than the others leave is never needed
                return False
            others = sum(t.objective for q, t in enumerate(tops) if q != p)
            if self.lower is not None and part.below_bound + others <= self.lower:
                part.exhausted = True  # nothing down there beats the incumbent
                return False
        return True


def solve_campus(
    data: ModelData,
    groups: list[list[int]],
    options: SolveOptions,
    progress: ProgressFn | None = None,
) -> CampusResult:
    """Trace the parts' frontiers in parallel, choose the best points under the utility
    limit, and merge their layouts (re-solved at the chosen power for the second stage
    when time allows)."""
    started = time.perf_counter()
    deadline = None if options.time_limit is None else started + options.time_limit
    limit_kw = float(data.site.utility_limit_kw)
    resolution_kw = POWER_RESOLUTION * max(1.0, limit_kw)
    subsets = [restrict(data, members) for members in groups]
    frontiers = [PartFrontier(objective_step(s)) for s in subsets]
    for f in frontiers:
        f.next_budget = limit_kw
    tracer = _Tracer(frontiers, limit_kw, data.site.objective.unit)
    workers = max(1, min(len(groups), options.workers or os.cpu_count() or 1))
    context = multiprocessing.get_context("fork")
    interrupted = False

    until = None if options.time_limit is None else time.time() + options.time_limit

    # Ctrl-C: as for independent parts, whichever process sees it raises one shared flag,
    # and the workers' solves stop with what they have.
    ctrl_c = context.RawValue("b", 0)
    previous = signal.signal(signal.SIGINT, _raiser(ctrl_c))
    stop = context.Event()
    pools = [
        ProcessPoolExecutor(
            1,
            mp_context=context,
            initializer=install,
            initargs=(
                {p: subsets[p] for p in range(w, len(subsets), workers)},
                options,
                stop,
                ctrl_c,
            ),
        )
        for w in range(workers)
    ]
    try:
        running: dict[Future, tuple[int, bool]] = {}  # -> (part, whether a seed)

        def submit(p: int, budget_kw: float | None = None) -> None:
            seed = budget_kw is not None
            frontiers[p].pending |= not seed
            budget_kw = frontiers[p].next_budget if budget_kw is None else budget_kw
            future = pools[p % workers].submit(frontier_step, p, budget_kw, until)
            running[future] = (p, seed)

        for p in range(len(frontiers)):
            submit(p)
        seeded = False
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                p, seed = running.pop(future)
                result = future.result()
                if tracer.proven:
                    frontiers[p].pending &= seed
                    continue
                interrupted |= result.status == "interrupted" or bool(ctrl_c.value)
                if seed:
                    frontiers[p].seed(result)
                else:
                    frontiers[p].record(result, resolution_kw)
            tracer.update()
            if progress is not None:
                progress(_snapshot(tracer, started))
            if tracer.proven:
                stop.set()  # steps still running are no longer needed
                continue
            out_of_time = deadline is not None and time.perf_counter() >= deadline
            if not seeded and not interrupted and all(f.top or f.exhausted for f in frontiers):
                seeded = True
                for p, budget_kw in enumerate(_proportional_split(frontiers, limit_kw)):
                    if budget_kw is not None:
                        submit(p, budget_kw)
            for p, part in enumerate(frontiers):
                if interrupted or out_of_time:
                    part.stopped |= not part.exhausted and not part.pending
                elif seeded and tracer.needs_step(p):
                    # Only once every top is known and the seeds are queued ahead.
                    submit(p)
        traced_s = time.perf_counter() - started
        if tracer.chosen is None:
            return CampusResult(
                merge_layouts(data.site.n_slots, []),
                _outcome(tracer, interrupted, traced_s, traced_s),
                0.0,
                0,
                sum(len(f.points) for f in frontiers),
            )
        stop.clear()  # the second stage's solves must not see it
        interrupted |= bool(ctrl_c.value)
        polished: list[PartResult | None] = [None] * len(frontiers)
        if not interrupted and (deadline is None or time.perf_counter() < deadline):
            jobs = {
                pools[p % workers].submit(polish, p, point.facility_kw, until): p
                for p, point in enumerate(tracer.chosen)
            }
            for future, p in jobs.items():
                polished[p] = future.result()
    finally:
        for pool in pools:
            pool.shutdown(cancel_futures=True)
        signal.signal(signal.SIGINT, previous)
    if interrupted or ctrl_c.value:
        note_ctrl_c()  # further Ctrl-C cannot lose the merged layout
    wall = time.perf_counter() - started
    layouts, ends, second = [], [], []
    for point, result in zip(tracer.chosen, polished, strict=True):
        better = (
            result is not None
            and result.outcome.has_solution
            and result.outcome.objective is not None
            and result.outcome.objective >= point.objective - 1e-9
        )
        layouts.append(result.layout if better else point.layout)
        if better:
            second.append(result.outcome)
        if result is None:
            ends.append("skipped: interrupted" if interrupted else "skipped: time limit")
        else:
            interrupted |= result.outcome.status == "interrupted"
            ends.append(result.outcome.tie_break_status if better else "kept frontier layout")
    outcome = _outcome(tracer, interrupted, traced_s, wall)
    outcome.tie_break_status = f"{len(layouts)} parts: " + "; ".join(sorted(set(ends)))
    if len(second) == len(layouts):  # every part's second stage ran: they add up
        _merge_second_stage(outcome, second)
        gaps = [o.second_stage_gap for o in second if o.second_stage_gap is not None]
        outcome.second_stage_gap = max(gaps) if gaps else None  # the worst part's
    variables = sum(r.variables for r in polished if r is not None)
    build_s = max((r.build_s for r in polished if r is not None), default=0.0)
    return CampusResult(
        merge_layouts(data.site.n_slots, layouts),
        outcome,
        build_s,
        variables,
        sum(len(f.points) for f in frontiers),
    )


def _proportional_split(frontiers: list[PartFrontier], limit_kw: float) -> list[float | None]:
    """Budgets that share the utility limit in proportion to each part's top power, when
    the tops do not fit together: one step at each gives an incumbent early, long before
    the traces from the top reach the budgets the optimum uses."""
    tops = [f.top.facility_kw if f.top else 0.0 for f in frontiers]
    if sum(tops) <= limit_kw:
        return [None] * len(tops)
    return [limit_kw * kw / sum(tops) for kw in tops]


def _snapshot(tracer: _Tracer, started: float) -> Progress:
    lower, upper = tracer.lower, tracer.upper
    finite = math.isfinite(upper)
    gap = relative_gap(lower, upper) if lower is not None and finite else None
    return Progress(
        "frontiers",
        time.perf_counter() - started,
        lower,
        upper if finite else None,
        gap,
        tracer.unit,
    )


def _outcome(tracer: _Tracer, interrupted: bool, traced_s: float, wall: float) -> SolveOutcome:
    """Status, incumbent and proven bound of the campus: optimal once the bound meets the
    incumbent, or every part's frontier is traced as far as it can matter. ``traced_s``
    (the frontiers and the master) is the first stage's time; ``wall`` adds the second."""
    lower = tracer.lower
    if lower is None:
        stopped = any(f.stopped for f in tracer.frontiers)
        status = ("interrupted" if interrupted else "time_limit") if stopped else "infeasible"
        return SolveOutcome(status=status, has_solution=False, solve_s=wall, primary_s=traced_s)
    complete = tracer.proven or all(f.exhausted and not f.stopped for f in tracer.frontiers)
    bound = lower if complete else tracer.upper
    status = "optimal" if complete else ("interrupted" if interrupted else "time_limit")
    return SolveOutcome(
        status=status,
        has_solution=True,
        objective=lower,
        bound=bound,
        gap=relative_gap(lower, bound),
        solve_s=wall,
        primary_s=traced_s,
    )
