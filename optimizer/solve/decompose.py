"""Independent parts of a facility, solved separately and in parallel.

Two slot classes belong to the same part when any constraint links them: a power
device that carries load from both (in normal operation or after a failure), a CDU,
an air zone, a cable pair (an SU cell and its network-rack class), an inlet-temperature
row (a hot slot and the slots whose exhaust reaches it), the utility limit
(which links everything), or a demand bound that caps a rack type across the site.
Parts share no constraint, so the optimum of the whole is the union of the parts'
optima; each part is a smaller MILP, and two cores solve two parts at once. This is
the usual shape of a campus whose halls have their own power and cooling.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from models.build import build_model
from models.data import CablePair, FailoverRow, ModelData
from optimizer.site.arrays import NO_INDEX
from optimizer.site.placement import Assignment
from optimizer.solve.assign import assign
from optimizer.solve.greedy import greedy_start
from optimizer.solve.highs import SolveOutcome, relative_gap, solve
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import (
    PRIMARY,
    REPORT_EVERY_S,
    Progress,
    ProgressFn,
    note_ctrl_c,
    stop_also_when,
)

SHARE_EPS = 1e-12


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def join(self, members: np.ndarray | list[int]) -> None:
        members = [int(k) for k in members]
        for k in members[1:]:
            ra, rb = self.find(members[0]), self.find(k)
            if ra != rb:
                self.parent[max(ra, rb)] = min(ra, rb)


def _capped_types(data: ModelData) -> list[int]:
    """Rack types whose demand bounds link every class that may take them."""
    site = data.site
    installed = np.bincount(list(site.installed.values()), minlength=len(site.rack_types))
    return [
        t
        for t in range(len(site.rack_types))
        if site.demand_min[t] > 0
        or (site.demand_max[t] != NO_INDEX and site.demand_max[t] > installed[t])
    ]


def parts(data: ModelData, utility_joins: bool = True) -> list[list[int]]:
    """Slot classes grouped into parts that share no constraint, in class order. With
    ``utility_joins`` off, the utility limit is left out: the parts then share at most
    that one row, the case optimizer.solve.campus solves through per-part frontiers."""
    site = data.site
    n = len(data.classes)
    union = _Union(n)
    if utility_joins and site.utility_limit_kw is not None:
        union.join(list(range(n)))
    for d in range(len(site.device_ids)):
        union.join(np.flatnonzero(data.normal_share[:, d] > SHARE_EPS))
    for row in data.failover_rows:
        union.join(np.flatnonzero(row.share > SHARE_EPS))
    for attribute in ("cdu", "air_zone"):
        groups: dict[int, list[int]] = {}
        for k, c in enumerate(data.classes):
            if getattr(c, attribute) != NO_INDEX:
                groups.setdefault(getattr(c, attribute), []).append(k)
        for members in groups.values():
            union.join(members)
    for p in data.cable_pairs:
        union.join([p.cell, p.hub])
    for row in data.inlet_rows:
        union.join([row.own, *row.sources])
    for t in _capped_types(data):
        union.join(
            [
                k
                for k, c in enumerate(data.classes)
                if t in ((c.installed_type,) if c.installed_type != NO_INDEX else c.types)
            ]
        )
    found: dict[int, list[int]] = {}
    for k in range(n):
        found.setdefault(union.find(k), []).append(k)
    return list(found.values())


def restrict(data: ModelData, members: list[int]) -> ModelData:
    """The model data of one part: its classes, their rows, its own demand bounds."""
    site = data.site
    index = {k: i for i, k in enumerate(members)}
    capped = set(_capped_types(data))
    demand_max = site.demand_max.copy()
    for t in range(len(site.rack_types)):
        if t not in capped and demand_max[t] != NO_INDEX:
            # No new racks of this type anywhere: the part keeps its own installed ones.
            demand_max[t] = sum(1 for k in members if data.classes[k].installed_type == t)
    part_site = replace(site, demand_max=demand_max)
    rows = tuple(
        FailoverRow(r.failed, r.device, r.share[members])
        for r in data.failover_rows
        if (r.share[members] > SHARE_EPS).any()
    )
    pairs = tuple(
        CablePair(index[p.cell], index[p.hub], p.rack_type, p.mean_m)
        for p in data.cable_pairs
        if p.cell in index and p.hub in index
    )
    inlets = tuple(
        replace(
            row,
            own=index[row.own],
            sources=np.array([index[k] for k in row.sources], dtype=np.int64),
        )
        for row in data.inlet_rows
        if row.own in index
    )
    return ModelData(
        part_site,
        tuple(data.classes[k] for k in members),
        data.normal_share[members],
        rows,
        pairs,
        inlets,
    )


@dataclass
class PartResult:
    layout: Assignment
    outcome: SolveOutcome
    build_s: float
    variables: int


def solve_part(data: ModelData, options: SolveOptions, part: int | None = None) -> PartResult:
    """Build, solve and assign one part (run in a worker process). In a part worker of
    :func:`solve_parts`, the solve's progress goes back to it as (``part``, snapshot)."""
    started = time.perf_counter()
    m = build_model(data)
    build_s = time.perf_counter() - started
    report = _reports

    def progress(p: Progress) -> None:
        report.put((part, p))

    outcome = solve(
        m,
        options,
        progress if report is not None and part is not None else None,
        greedy_start(data, m) if options.warm_start else None,
        data.site.objective.unit,
    )
    layout = (
        assign(data, m, outcome.values)
        if outcome.has_solution
        else Assignment(np.full(data.site.n_slots, NO_INDEX), np.full(data.site.n_slots, NO_INDEX))
    )
    outcome.values = {}
    return PartResult(layout, outcome, build_s, len(m.place))


def stop_flag_handler(stop: Any) -> Callable[[int, Any], None]:
    """A SIGINT handler that only raises the shared stop flag."""

    def raise_flag(_signum: int, _frame: Any) -> None:
        stop.value = 1

    return raise_flag


_reports: Any = None
"""In a part worker: the queue its solves' progress goes back on."""


def _part_worker_start(stop: Any, reports: Any) -> None:
    """Part worker set-up: Ctrl-C raises the shared flag, and every solve in this process
    stops once it is raised; progress goes back on ``reports``."""
    global _reports
    _reports = reports
    signal.signal(signal.SIGINT, stop_flag_handler(stop))
    stop_also_when(lambda: bool(stop.value))


class _PartsWatch:
    """The progress of the whole facility from its parts' progress: parts share no
    constraint, so the whole's incumbent and bound are the sums of the parts' (known
    once every part has reported one)."""

    def __init__(self, n: int, minimize: bool, unit: str) -> None:
        self.values: list[tuple[float | None, float | None]] = [(None, None)] * n
        self.done = 0
        self.minimize = minimize
        self.unit = unit
        self.started = time.perf_counter()

    def report(self, part: int, p: Progress) -> None:
        if p.stage == PRIMARY:  # a part's second stage leaves its primary as it was
            self.values[part] = (p.incumbent, p.bound)

    def finish(self, part: int, outcome: SolveOutcome) -> None:
        self.done += 1
        bound = (
            outcome.bound if outcome.bound is not None and math.isfinite(outcome.bound) else None
        )
        self.values[part] = (outcome.objective, bound)

    def snapshot(self, stopping: bool) -> Progress:
        incumbents = [v for v, _ in self.values if v is not None]
        bounds = [b for _, b in self.values if b is not None]
        incumbent = sum(incumbents) if len(incumbents) == len(self.values) else None
        bound = sum(bounds) if len(bounds) == len(self.values) else None
        gap = None
        if incumbent is not None and bound is not None:
            gap = relative_gap(incumbent, bound, self.minimize)
        return Progress(
            f"parts {self.done}/{len(self.values)}",
            time.perf_counter() - self.started,
            incumbent,
            bound,
            gap if gap is not None and math.isfinite(gap) else None,
            self.unit,
            stopping,
        )


def solve_parts(
    data: ModelData,
    groups: list[list[int]],
    options: SolveOptions,
    progress: ProgressFn | None = None,
) -> tuple[Assignment, SolveOutcome, dict[str, float], int]:
    """Solve every part, two at a time on two cores, and merge the layouts.
    ``progress`` receives the whole facility's progress every half second."""
    workers = max(1, min(len(groups), os.cpu_count() or 1))
    rounds = math.ceil(len(groups) / workers)
    part_options = options
    if options.time_limit is not None:
        part_options = replace(options, time_limit=options.time_limit / rounds)
    started, clock = time.perf_counter(), time.time()
    subsets = [restrict(data, members) for members in groups]
    context = multiprocessing.get_context("fork")
    # Ctrl-C, whichever process sees it, raises one shared flag (a plain byte a signal
    # handler may set without a lock): a part solving then stops with its best layout
    # within a second (optimizer.solve.progress), and a part not yet at its solve stops
    # as soon as it gets there, with the greedy layout it starts from.
    stop = context.RawValue("b", 0)
    reports = context.Queue()
    watch = _PartsWatch(len(subsets), data.site.objective.minimizes, data.site.objective.unit)
    results: list[PartResult | None] = [None] * len(subsets)
    previous = signal.signal(signal.SIGINT, stop_flag_handler(stop))
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_part_worker_start,
            initargs=(stop, reports),
        ) as pool:
            futures = {
                pool.submit(solve_part, subset, part_options, k): k
                for k, subset in enumerate(subsets)
            }
            pending = set(futures)
            while pending:
                finished, pending = wait(
                    pending, timeout=REPORT_EVERY_S, return_when=FIRST_COMPLETED
                )
                while not reports.empty():
                    watch.report(*reports.get())
                for future in finished:
                    k = futures[future]
                    results[k] = future.result()
                    watch.finish(k, results[k].outcome)
                if progress is not None:
                    progress(watch.snapshot(bool(stop.value)))
    finally:
        signal.signal(signal.SIGINT, previous)
        reports.close()
    done = [r for r in results if r is not None]
    if stop.value or any(r.outcome.status == "interrupted" for r in done):
        note_ctrl_c()  # further Ctrl-C cannot lose the merged layout
    wall = time.perf_counter() - started
    return _merge(data, done, wall, clock)


def _merge(
    data: ModelData, results: list[PartResult], wall: float, clock: float
) -> tuple[Assignment, SolveOutcome, dict[str, float], int]:
    """The parts' layouts as one, with the whole facility's outcome. The GPU count is
    proven when the last part's first stage ends (``clock`` is when the parts started),
    not after the longest part's first stage alone: parts queue for the two workers."""
    outcomes = [r.outcome for r in results]
    ended = [o.primary_done for o in outcomes if o.primary_done]
    order = ("interrupted", "time_limit")
    status = next((s for s in order if any(o.status == s for o in outcomes)), None)
    if status is None:
        odd = [o.status for o in outcomes if o.status != "optimal"]
        status = odd[0] if odd else "optimal"
    has_solution = all(o.has_solution for o in outcomes)
    objective = sum(o.objective or 0.0 for o in outcomes) if has_solution else None
    minimize = data.site.objective.minimizes
    unbounded = -math.inf if minimize else math.inf
    bound = sum(o.bound if o.bound is not None else unbounded for o in outcomes)
    ends = sorted({o.tie_break_status for o in outcomes})
    second_gaps = [o.second_stage_gap for o in outcomes if o.second_stage_gap is not None]
    outcome = SolveOutcome(
        status=status,
        has_solution=has_solution,
        objective=objective,
        bound=bound if has_solution else None,
        gap=relative_gap(objective, bound, minimize) if has_solution else None,
        handoff_s=max(o.handoff_s for o in outcomes),
        solve_s=wall,
        primary_s=max(0.0, min(max(ended) - clock, wall)) if ended else wall,
        primary_done=max(ended, default=0.0),
        tie_break_status=f"{len(results)} parts: " + "; ".join(ends),
        second_stage_gap=max(second_gaps) if second_gaps else None,  # the worst part's
    )
    if has_solution:
        merge_second_stage(outcome, outcomes)
    timings = {"build_s": max(r.build_s for r in results)}
    layout = merge_layouts(data.site.n_slots, [r.layout for r in results])
    return layout, outcome, timings, sum(r.variables for r in results)


def merge_second_stage(outcome: SolveOutcome, parts: list[SolveOutcome]) -> None:
    """The facility's second-stage cost and bound: they add up over the parts (its gap is
    the worst part's, set by :func:`_merge`). A part without a bound leaves the facility
    without one."""
    outcome.second_stage_objective = sum(o.second_stage_objective or 0.0 for o in parts)
    if all(o.second_stage_bound is not None for o in parts):
        outcome.second_stage_bound = sum(o.second_stage_bound or 0.0 for o in parts)


def merge_layouts(n_slots: int, layouts: list[Assignment]) -> Assignment:
    """One layout of the facility from its parts' layouts (on disjoint slots), the SUs
    renumbered in part order."""
    placement = np.full(n_slots, NO_INDEX, dtype=np.int64)
    su = np.full(n_slots, NO_INDEX, dtype=np.int64)
    hubs: list[int] = []
    for layout in layouts:
        placed = layout.placement != NO_INDEX
        placement[placed] = layout.placement[placed]
        member = layout.su != NO_INDEX
        su[member] = layout.su[member] + len(hubs)
        hubs.extend(layout.su_network_slot)
    return Assignment(placement, su, hubs)
