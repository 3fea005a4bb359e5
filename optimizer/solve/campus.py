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

Each part's frontier is bounded above before it is traced: a few Lagrangian rounds (each
part alone maximizes G - price * F) give lines g(b) <= bound + price * b and layouts.
Every untraced budget range becomes relaxed choices for the master (one per objective
value the bounds allow, at the least budget allowing it); choices whose Lagrangian
promise cannot beat the incumbent are dropped, the exact master (dynamic programming
over Pareto sets) over the rest gives the upper bound, and each part is stepped where
that bound's own choice for it is relaxed. Incumbent and bound are reported as
progress, and a time limit or Ctrl-C ends with the incumbent and that proven gap
(docs/formulation.md section 9.4).

Parts whose compiled models are the same arrays (copies of one hall) share one frontier
(:func:`twins`). Once an incumbent is known, the lattice bound (:class:`_Lattice`) may
round the Lagrangian bound down to a multiple of the GPU count every near-optimal
layout of every part is a multiple of, which is what proves the mixed benchmark campus
whose frontiers hug one line. The parts' solves run on local processes, or on a dask
cluster's workers (:class:`_Workers`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any

import numpy as np

from models.data import ModelData, allowed_types
from models.facility import facility_kw
from models.objective import primary_weights
from optimizer.errors import UnavailableError
from optimizer.site.placement import Assignment
from optimizer.solve.decompose import (
    PartResult,
    merge_layouts,
    merge_second_stage,
    parts,
    restrict,
    stop_flag_handler,
)
from optimizer.solve.frontier import (
    POWER_RESOLUTION,
    FrontierPoint,
    Step,
    Tangent,
    fingerprint,
    frontier_step,
    install,
    lagrange_step,
    off_lattice_step,
    polish,
    transplant,
)
from optimizer.solve.highs import SolveOutcome, relative_gap
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import Progress, ProgressFn, note_ctrl_c

SOLVED_AS_SINGLE = "single model"
SOLVED_AS_PARTS = "independent parts"
SOLVED_AS_CAMPUS = "campus frontiers"
"""The three paths a solve takes (the layout's ``solved_as`` attribute)."""

PRICE_ROUNDS = 4
"""Lagrangian rounds (one solve per part each) before the trace (_Prices)."""

PRICE_TIME_S = 10.0
"""Most seconds of one Lagrangian solve: its proven bound is valid when cut short."""

MASTER_CHOICES = 4000
"""Most relaxed and known choices over all parts for the exact master's bound: past it
(only before the first incumbent prunes them) the Lagrangian bound alone is used."""

LATTICE = -1.0
"""In place of a step's budget: the job is a lattice check (:class:`_Lattice`)."""

LATTICE_TIME_S = 30.0
"""Most seconds of one lattice check: one cut short fails its attempt unless its proven
bound already shows enough, and frees the worker for steps."""

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
    weights = primary_weights(data)
    used = {t for c in data.classes for t in allowed_types(c)}
    values = [weights[t] for t in used if weights[t] != 0]
    if not values or any(w != int(w) for w in values):
        return 0.0
    return float(reduce(math.gcd, (abs(int(w)) for w in values)))


Option = tuple[float, float, FrontierPoint | None]
"""(power, objective, layout) of one choice of a part in the master."""


@dataclass
class PartFrontier:
    """What is known of one part's frontier g(b): proven steps, layouts found, and upper
    bounds (lines from Lagrangian solves, bounds of steps at a budget)."""

    step: float
    """Least difference between two objective values (:func:`objective_step`)."""
    limit_kw: float
    resolution_kw: float
    """The step below a proven point's power (frontier.POWER_RESOLUTION)."""
    points: list[FrontierPoint] = field(default_factory=list)
    """Proven frontier points: g = objective on [start, budget_kw] of its span."""
    spans: list[tuple[float, float, float]] = field(default_factory=list)
    """(start, budget, objective) per proven point: g(b) = objective on [start, budget]
    and g(b) < objective below start."""
    feasible: list[FrontierPoint] = field(default_factory=list)
    """Layouts found by Lagrangian solves and steps cut short: usable, not proven to be
    on the frontier."""
    tangents: list[tuple[float, float]] = field(default_factory=list)
    """(price, bound): g(b) <= bound + price * b for every b."""
    caps: list[tuple[float, float]] = field(default_factory=list)
    """(budget, bound): g(b) <= bound for every b <= budget."""
    stopped: bool = False
    """Tracing ended early (time limit, Ctrl-C, or a step not proven)."""

    def record(self, result: Step, budget_kw: float) -> None:
        """Take in one step at ``budget_kw``."""
        self.caps.append((budget_kw, result.bound))
        point = result.point
        if result.status == "infeasible" or result.bound == -math.inf:
            return
        proven = point is not None and result.bound < point.objective + max(self.step, 1e-9)
        if point is None or not proven or result.status != "optimal":
            if point is not None:
                self.feasible.append(point)
            self.stopped = True
            return
        # At least one resolution wide, so the next step is below this one even when
        # the point's recomputed power is within the solver's tolerance over the budget.
        start = min(point.facility_kw, budget_kw - self.resolution_kw)
        self.points.append(point)
        self.spans.append((start, budget_kw, point.objective))

    def take(self, tangent: Tangent) -> None:
        """Take in one Lagrangian solve."""
        self.tangents.append((tangent.price, tangent.bound))
        if tangent.point is not None:
            self.feasible.append(tangent.point)

    def bound_at(self, b: float, below: bool = False) -> float:
        """Proven upper bound on g(b) (with ``below``, on g just below b)."""
        u = math.inf
        for price, bound in self.tangents:
            u = min(u, bound + price * b)
        for budget, bound in self.caps:
            if b <= budget:
                u = min(u, bound)
        for start, budget, objective in self.spans:
            if b < start or (below and b == start):
                u = min(u, objective - self.step)
            elif b <= budget:
                return objective
        return u

    def gaps(self) -> list[tuple[float, float, bool]]:
        """Untraced budget ranges within [0, limit]: (low, high, whether high itself is
        untraced) -- high is the limit, or the start of a proven span."""
        found: list[tuple[float, float, bool]] = []
        low = 0.0
        for start, budget, _ in sorted(self.spans):
            if start > low:
                found.append((low, start, False))
            low = max(low, budget)
        if low < self.limit_kw:
            found.append((low, self.limit_kw, True))
        return found

    def relaxed(self) -> list[tuple[float, float, float, float]]:
        """Relaxed choices standing for the untraced budgets: (power, objective, budget,
        gap), one per objective value the bound allows within a gap, at the least budget
        where the bound allows it; budget is the top of the budgets it stands for (just
        below the next choice's power, or the gap's top), and gap the gap's top."""
        found: list[tuple[float, float, float]] = []
        for low, high, closed in self.gaps():
            top_value = self.bound_at(high, below=not closed)
            if top_value == -math.inf:
                continue
            if not self.step or not math.isfinite(top_value):
                found.append((low, top_value, high))
                continue
            value = math.floor(self.bound_at(low) / self.step + 1e-9) * self.step
            value = max(value, 0.0)
            top_value = math.floor(top_value / self.step + 1e-9) * self.step
            while value <= top_value:
                kw = max(low, self._least_budget(value))
                if kw > high or (kw == high and not closed):
                    break
                found.append((kw, value, high))
                value += self.step
        relaxed = []
        for (kw, value, high), nxt in zip(found, [*found[1:], None], strict=True):
            top, closed = high, high == self.limit_kw
            if nxt is not None and nxt[2] == high and nxt[0] < high:
                top, closed = nxt[0], False
            budget = top if closed else max(kw, top - self.resolution_kw)
            relaxed.append((kw, value, budget, high))
        return relaxed

    def _least_budget(self, value: float) -> float:
        """The least budget at which the bounds allow ``value`` (a lower bound on it)."""
        kw = 0.0
        for price, bound in self.tangents:
            if bound < value:
                kw = max(kw, (value - bound) / price if price > 0 else math.inf)
        for budget, bound in self.caps:
            if bound < value:
                kw = max(kw, budget)
        for start, _, objective in self.spans:
            if objective - self.step < value:
                kw = max(kw, start)
        return kw

    def options(self) -> list[Option]:
        """Choices for the master: the layouts known (the relaxed choices for untraced
        budgets are :meth:`relaxed`)."""
        return [(p.facility_kw, p.objective, p) for p in self.points + self.feasible]


def best_choice(
    choices: Sequence[Sequence[Any]], capacity_kw: float
) -> tuple[float, list[int]] | None:
    """The most total objective choosing one option per part within ``capacity_kw``, and
    the option chosen per part; None if no choice fits. Each option is a row whose first
    two entries are its facility kW and objective (an array row, or a
    :meth:`PartFrontier.options` triple). Exact: dynamic programming over the Pareto set
    of (power, objective) of the parts so far."""
    kw, value = np.zeros(1), np.zeros(1)
    back: list[tuple[np.ndarray, np.ndarray]] = []
    for options in choices:
        c = np.array([o[:2] for o in options], dtype=float).reshape(-1, 2)
        state, row = np.divmod(np.arange(len(kw) * len(c)), len(c))
        kw, value = kw[state] + c[row, 0], value[state] + c[row, 1]
        fits = np.flatnonzero(kw <= capacity_kw)
        if not len(fits):
            return None
        order = fits[np.lexsort((-value[fits], kw[fits]))]
        best_before = np.maximum.accumulate(np.concatenate([[-np.inf], value[order][:-1]]))
        order = order[value[order] > best_before]
        kw, value = kw[order], value[order]
        back.append((state[order], row[order]))
    s = int(np.argmax(value))
    chosen: list[int] = []
    for state, row in reversed(back):
        chosen.append(int(row[s]))
        s = int(state[s])
    return float(value.max()), chosen[::-1]


@dataclass
class CampusResult:
    layout: Assignment
    outcome: SolveOutcome
    build_s: float
    variables: int
    frontier_points: int
    frontiers: int
    """Frontiers traced: one per group of parts with the same model."""


class _Tracer:
    """Keeps the incumbent and the proven bound over every part's knowledge, and says
    which budget each part should be traced at next."""

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
        self.wanted: list[float | None] = [None] * len(frontiers)
        """Per part, the budget of its most promising untraced choice (None: none can
        beat the incumbent)."""

    @property
    def proven(self) -> bool:
        """Whether the bound meets the incumbent: no choice of points can do better."""
        if self.lower is None:
            return False
        return self.upper - self.lower < self._margin()

    def _margin(self) -> float:
        """How much more than the incumbent a choice must promise to be worth tracing."""
        return max(self.resolution, 1e-9 * max(1.0, abs(self.lower or 0.0)))

    def update(self) -> None:
        """Incumbent, bound and the next budget of every part from what is known now."""
        f = self.frontiers
        known = [p.options() for p in f]
        found = best_choice(known, self.capacity_kw)
        if found is not None and (self.lower is None or found[0] >= self.lower):
            self.lower = found[0]
            self.chosen = [o[i][2] for o, i in zip(known, found[1], strict=True)]
        relaxed = [p.relaxed() for p in f]
        choices = [
            np.array(
                [(o[0], o[1]) for o in options] + [(kw, v) for kw, v, _, _ in r], dtype=float
            ).reshape(-1, 2)
            for options, r in zip(known, relaxed, strict=True)
        ]
        if any(len(c) == 0 for c in choices):
            self.upper = min(self.upper, self.lower if self.lower is not None else -math.inf)
            self.wanted = [None] * len(f)
            return
        promise, dual = _promise(choices, self.capacity_kw, [p.tangents for p in f])
        floor = -math.inf if self.lower is None else self.lower + self._margin()
        kept = [np.flatnonzero(pr >= floor) for pr in promise]
        front = None
        if sum(len(k) for k in kept) > MASTER_CHOICES:
            # Too many to enumerate the Pareto sets (before the first incumbent prunes
            # them): the Lagrangian bound, and each part's most promising choice.
            self.upper = min(self.upper, dual)
            self.wanted = [
                r[int(np.argmax(pr[len(c) - len(r) :]))][2] if r else None
                for c, r, pr in zip(choices, relaxed, promise, strict=True)
            ]
            return
        if all(len(k) for k in kept):
            front = best_choice(
                [c[k] for c, k in zip(choices, kept, strict=True)], self.capacity_kw
            )
        upper = min(dual, -math.inf if front is None else front[0])
        self.upper = min(self.upper, max(upper, self.lower if self.lower is not None else upper))
        # Trace each part where the bound's own choice is a relaxed one, at the middle of
        # the run of promising relaxed choices from it up to the gap's top: the step
        # either confirms that choice or lowers the bound there, and one step covers
        # many choices when the frontier is flat.
        self.wanted = [None] * len(f)
        if front is not None:
            for p, (part, r, k, row) in enumerate(zip(f, relaxed, kept, front[1], strict=True)):
                first = len(part.points) + len(part.feasible)
                i = int(k[row]) - first
                if i < 0:
                    continue
                promising = set((k - first).tolist())
                last = i
                while last + 1 < len(r) and last + 1 in promising and r[last + 1][3] == r[i][3]:
                    last += 1
                self.wanted[p] = r[i][2] if last == i else (r[i][0] + r[last][2]) / 2

    def needs_step(self, p: int) -> bool:
        """Whether part p has an untraced budget range that can still matter."""
        return not self.frontiers[p].stopped and self.wanted[p] is not None


class _Lattice:
    """The lattice bound (docs/formulation.md section 9.4). At a price mu where every
    part p has a Lagrangian line with proven bound phi_p, any campus layout with
    objective T has sum_p (phi_p - (G_p - mu F_p)) <= D - T, where D = sum_p phi_p + mu U
    and every term is >= 0. So in a layout beating the incumbent L by the campus's least
    objective difference, every part's layout lies within slack = D - L - that difference
    of its line. If no layout of any part within the slack has G off the multiples of a
    modulus M (one MILP per frontier, :meth:`PartSolver.off_lattice`), every such
    campus layout has T a multiple of M, so T <= M floor(D / M): a bound below D. M starts
    as the gcd of the near layouts known; a near layout off it found by the MILP makes it
    the gcd with that layout's G, and the check goes on (parts already checked stay so:
    a divisor of M leaves fewer layouts off it)."""

    def __init__(self, tracer: _Tracer, twin: list[int]) -> None:
        self.tracer = tracer
        self.twin = twin
        self.tried_for: float | None = None
        """The incumbent of the last attempt: one attempt per incumbent."""
        self.left: set[int] = set()
        """Frontiers (by first part) still to be checked in this attempt."""
        self.price = self.dual = self.slack = 0.0
        self.modulus = 0

    def start(self) -> list[int]:
        """Begin an attempt for the current incumbent: the frontiers to check (none when
        no modulus above the campus's least difference can come out)."""
        tracer = self.tracer
        step = int(tracer.resolution)
        self.tried_for = tracer.lower
        if not step or tracer.lower is None:
            return []
        lines = [dict(f.tangents) for f in tracer.frontiers]
        common = set.intersection(*(set(line) for line in lines))
        if not common:
            return []
        self.price, self.dual = min(
            ((mu, sum(line[mu] for line in lines) + mu * tracer.capacity_kw) for mu in common),
            key=lambda pair: pair[1],
        )
        self.slack = self.dual - tracer.lower - step
        modulus = 0
        for f, line in zip(tracer.frontiers, lines, strict=True):
            for q in f.points + f.feasible:
                if line[self.price] - (q.objective - self.price * q.facility_kw) <= self.slack:
                    modulus = math.gcd(modulus, round(q.objective))
        if modulus <= step or modulus % step:
            return []
        self.modulus = modulus
        self.left = set(self.twin)
        return sorted(self.left)

    def take(self, p: int, result: Tangent) -> bool:
        """One frontier's check; whether to check it again with a smaller modulus (the
        attempt fails when a near layout off it leaves no modulus above the least
        difference, or the MILP could not show enough)."""
        if not self.left:
            return False  # the attempt already failed
        phi = dict(self.tracer.frontiers[p].tangents)[self.price]
        tolerance = 1e-6 * max(1.0, abs(self.dual))
        if result.bound == -math.inf or phi - result.bound > self.slack + tolerance:
            self.left.discard(p)
            if not self.left:
                top = self.modulus * math.floor(self.dual / self.modulus + 1e-9)
                lower = self.tracer.lower
                self.tracer.upper = min(self.tracer.upper, max(top, lower))
            return False
        q = result.point
        near = q is not None and phi - (q.objective - self.price * q.facility_kw) <= self.slack
        modulus = math.gcd(self.modulus, round(q.objective)) if near else 0
        if modulus <= self.tracer.resolution or result.status == "interrupted":
            self.left = set()
            return False
        self.modulus = modulus
        return True


def _promise(
    choices: list[np.ndarray], capacity_kw: float, tangents: list[list[tuple[float, float]]]
) -> tuple[list[np.ndarray], float]:
    """An upper bound on the best campus objective using each choice (Lagrangian: at a
    price mu per kW, a choice (b, v) of part p is in no choice of points worth more than
    v - mu b + mu U + the sum over the other parts of their most of v' - mu b'), and
    the least such bound over all choices. The prices tried are those of the Lagrangian
    solves and a grid between them."""
    if not all(np.isfinite(c).all() for c in choices):
        return [np.full(len(c), math.inf) for c in choices], math.inf
    prices = sorted({price for t in tangents for price, _ in t} | {0.0})
    grid = np.unique(np.concatenate([prices, np.linspace(0.0, max(prices), 65)]))
    slack = [c[:, 1][:, None] - c[:, 0][:, None] * grid[None, :] for c in choices]
    most = [s.max(axis=0) for s in slack]
    dual = grid * capacity_kw + np.sum(most, axis=0)
    promise = [
        (s - m[None, :] + dual[None, :]).min(axis=1) for s, m in zip(slack, most, strict=True)
    ]
    return promise, float(dual.min())


class _Workers:
    """The processes that hold the parts' solvers, each part in one of them for the whole
    run (its model is built once, and its steps re-solve it): local processes, or the
    workers of a dask.distributed cluster when a client is given. Parts go round-robin."""

    def __init__(self, subsets: list[ModelData], options: SolveOptions, client: Any | None) -> None:
        context = multiprocessing.get_context("fork")
        # Ctrl-C: as for independent parts, whichever process sees it raises one shared
        # flag, and the workers' solves stop with what they have. A dask worker cannot
        # share it: its running solve ends at its time limit, and its result is dropped.
        self.ctrl_c = context.RawValue("b", 0)
        self.stop = context.Event() if client is None else None
        """Tells running steps they are no longer needed (local processes only)."""
        if client is None:
            wanted = options.workers or os.cpu_count() or 1
        else:
            addresses = sorted(client.scheduler_info()["workers"])
            if not addresses:
                raise UnavailableError(
                    "the dask scheduler has no workers to trace the campus's frontiers on"
                )
            wanted = min(options.workers or len(addresses), len(addresses))
        self.count = max(1, min(len(subsets), wanted))
        shares = [
            {p: subsets[p] for p in range(w, len(subsets), self.count)} for w in range(self.count)
        ]
        if client is None:
            self.pools: list[Any] = [
                ProcessPoolExecutor(
                    1,
                    mp_context=context,
                    initializer=install,
                    initargs=(shares[w], options, self.stop, self.ctrl_c),
                )
                for w in range(self.count)
            ]
        else:
            self.pools = []
            for w in range(self.count):
                client.run(install, shares[w], options, None, None, workers=[addresses[w]])
                self.pools.append(
                    client.get_executor(
                        workers=[addresses[w]], allow_other_workers=False, pure=False
                    )
                )
        self.dask = client is not None

    def submit(self, part: int, fn: Any, *args: Any) -> Future:
        """Run ``fn(part, *args)`` in the worker holding ``part``."""
        return self.pools[part % self.count].submit(fn, part, *args)

    def no_longer_needed(self) -> None:
        """The campus is proven: running steps may stop."""
        if self.stop is not None:
            self.stop.set()

    def needed_again(self) -> None:
        """The second stage's solves follow: they must not see the stop."""
        if self.stop is not None:
            self.stop.clear()

    def close(self) -> None:
        for pool in self.pools:
            if self.dask:
                pool.shutdown(wait=False)
            else:
                pool.shutdown(cancel_futures=True)


def twins(digests: list[str]) -> list[int]:
    """Per part, the first part with the same model digest (itself when none before):
    parts with equal digests have equal frontiers, traced once."""
    first: dict[str, int] = {}
    return [first.setdefault(digest, p) for p, digest in enumerate(digests)]


def solve_campus(
    data: ModelData,
    groups: list[list[int]],
    options: SolveOptions,
    progress: ProgressFn | None = None,
    client: Any | None = None,
    bound: float | None = None,
) -> CampusResult:
    """Trace the parts' frontiers in parallel (on local processes, or on the workers of
    the dask ``client``), a frontier once for parts with the same model, choose the best
    points under the utility limit, and merge their layouts (re-solved at the chosen
    power for the second stage when time allows). ``bound`` is a proven upper bound on
    the campus objective found elsewhere (the pooled relaxation): an incumbent meeting it
    ends the trace."""
    started = time.perf_counter()
    deadline = None if options.time_limit is None else started + options.time_limit
    limit_kw = float(data.site.utility_limit_kw)
    resolution_kw = POWER_RESOLUTION * max(1.0, limit_kw)
    subsets = [restrict(data, members) for members in groups]
    interrupted = False
    until = None if options.time_limit is None else time.time() + options.time_limit
    workers = _Workers(subsets, options, client)
    previous = signal.signal(signal.SIGINT, stop_flag_handler(workers.ctrl_c))
    try:
        digests = [f.result() for f in [workers.submit(p, fingerprint) for p in range(len(groups))]]
        twin = twins(digests)
        own = {
            p: PartFrontier(objective_step(subsets[p]), limit_kw, resolution_kw)
            for p in sorted(set(twin))
        }
        for p, f in own.items():
            f.tangents.append((steepest_price(subsets[p]), 0.0))
        frontiers = [own[twin[p]] for p in range(len(groups))]
        """Per part, its frontier: one object for parts with the same model."""
        tracer = _Tracer(frontiers, limit_kw, data.site.objective.unit)
        if bound is not None:
            tracer.upper = bound
        prices = _Prices(max(price for f in frontiers for price, _ in f.tangents), limit_kw)
        lattice = _Lattice(tracer, twin)
        running: dict[Future, tuple[int, float | None]] = {}
        """-> (part, budget of a step; None for a Lagrangian solve, LATTICE for a check)."""
        asked: set[tuple[int, float]] = set()
        """(frontier's first part, budget) of the steps running: not asked twice."""

        def check_lattice(p: int) -> None:
            future = workers.submit(
                p,
                off_lattice_step,
                lattice.price,
                lattice.modulus,
                int(tracer.resolution),
                until,
                LATTICE_TIME_S,
            )
            running[future] = (p, LATTICE)

        def price_round(price: float) -> None:
            for p in own:
                future = workers.submit(p, lagrange_step, price, until, PRICE_TIME_S)
                running[future] = (p, None)

        price_round(prices.price)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                p, budget_kw = running.pop(future)
                result = future.result()
                if budget_kw is not None:
                    asked.discard((twin[p], budget_kw))
                if tracer.proven:
                    continue
                interrupted |= result.status == "interrupted" or bool(workers.ctrl_c.value)
                if budget_kw == LATTICE:
                    if result.point is not None:  # a layout, but not a line of the frontier
                        frontiers[p].feasible.append(result.point)
                    if lattice.take(p, result):
                        check_lattice(p)
                elif budget_kw is None:
                    frontiers[p].take(result)
                    for _ in range(twin.count(p)):  # every part of this model draws it
                        prices.take(result)
                else:
                    frontiers[p].record(result, budget_kw)
            tracer.update()
            if progress is not None:
                progress(_snapshot(tracer, started))
            if tracer.proven:
                workers.no_longer_needed()
                continue
            out_of_time = deadline is not None and time.perf_counter() >= deadline
            if interrupted or out_of_time:
                for part in frontiers:
                    part.stopped = True
                continue
            if prices.active:
                price = None if running else prices.advance(frontiers)
                if price is not None:
                    price_round(price)
                if prices.active:
                    continue
            checking = any(budget_kw == LATTICE for _, budget_kw in running.values())
            if tracer.lower is not None and lattice.tried_for != tracer.lower and not checking:
                # (One attempt at a time: a check under way was asked with the slack of
                # its own attempt's incumbent.)
                for p in lattice.start():
                    check_lattice(p)
            busy = {p for p, _ in running.values()}
            for p in range(len(frontiers)):
                if p in busy or not tracer.needs_step(p):
                    continue
                budget_kw = tracer.wanted[p]
                if (twin[p], budget_kw) in asked:
                    continue
                # The step runs on this part's own model: for a part with the same model
                # as another, a second budget of their one frontier traced at once.
                asked.add((twin[p], budget_kw))
                future = workers.submit(p, frontier_step, budget_kw, until)
                running[future] = (p, budget_kw)
        traced_s = time.perf_counter() - started
        if tracer.chosen is None:
            return CampusResult(
                merge_layouts(data.site.n_slots, []),
                _outcome(tracer, interrupted, traced_s, traced_s),
                0.0,
                0,
                sum(len(f.points) for f in own.values()),
                len(own),
            )
        workers.needed_again()
        interrupted |= bool(workers.ctrl_c.value)
        # A point found on another part of the same model becomes this part's layout.
        moved = {
            p: workers.submit(p, transplant, point)
            for p, point in enumerate(tracer.chosen)
            if point.part != p
        }
        chosen = [
            replace(point, layout=moved[p].result(), part=p) if p in moved else point
            for p, point in enumerate(tracer.chosen)
        ]
        polished: list[PartResult | None] = [None] * len(frontiers)
        if not interrupted and (deadline is None or time.perf_counter() < deadline):
            jobs = {
                workers.submit(p, polish, point.facility_kw, until): p
                for p, point in enumerate(chosen)
            }
            for future, p in jobs.items():
                polished[p] = future.result()
    finally:
        workers.close()
        signal.signal(signal.SIGINT, previous)
    if interrupted or workers.ctrl_c.value:
        note_ctrl_c()  # further Ctrl-C cannot lose the merged layout
    wall = time.perf_counter() - started
    layouts, ends, second = [], [], []
    for point, result in zip(chosen, polished, strict=True):
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
        merge_second_stage(outcome, second)
        gaps = [o.second_stage_gap for o in second if o.second_stage_gap is not None]
        outcome.second_stage_gap = max(gaps) if gaps else None  # the worst part's
    variables = sum(r.variables for r in polished if r is not None)
    build_s = max((r.build_s for r in polished if r is not None), default=0.0)
    return CampusResult(
        merge_layouts(data.site.n_slots, layouts),
        outcome,
        build_s,
        variables,
        sum(len(f.points) for f in own.values()),
        len(own),
    )


class _Prices:
    """The prices per kW of the Lagrangian rounds (one solve per part each). The parts'
    total facility power falls as the price rises; the rounds keep a bracket [low, high]
    around the price at which it meets the limit, and try within it the price at which
    the layouts found so far would share the limit best (:meth:`advance`), else the
    bracket's middle. The first round is at half the steepest price."""

    def __init__(self, steepest: float, limit_kw: float) -> None:
        self.low, self.high = 0.0, steepest
        self.limit_kw = limit_kw
        self.price = steepest / 2
        self.drawn_kw = 0.0
        self.rounds = 1
        self.active = steepest > 0
        """A round is under way or still to come."""

    def take(self, tangent: Tangent) -> None:
        """One part's solve of the current round; a part whose solve was cut short counts
        as drawing the whole limit (its draw at this price is not known)."""
        known = tangent.point is not None and tangent.status == "optimal"
        self.drawn_kw += tangent.point.facility_kw if known else self.limit_kw

    def advance(self, frontiers: list[PartFrontier]) -> float | None:
        """The next round's price, or None when the rounds are over: within the bracket,
        the least over prices of price * U + the sum of each part's most G - price * F
        among its layouts found (a price between two of a part's layouts is the slope of
        the line through them), or the bracket's middle when no such slope lies within."""
        if self.drawn_kw > self.limit_kw:
            self.low = self.price
        else:
            self.high = self.price
        if self.rounds >= PRICE_ROUNDS:
            self.active = False
            return None
        known = [
            np.array([(q.facility_kw, q.objective) for q in f.points + f.feasible]).reshape(-1, 2)
            for f in frontiers
        ]
        slopes = set()
        for pts in known:
            run = pts[:, 0][:, None] - pts[:, 0][None, :]
            rise = pts[:, 1][:, None] - pts[:, 1][None, :]
            positive = (run > 0) & (rise > 0)
            slopes |= set((rise[positive] / run[positive]).tolist())
        inside = np.array(sorted(x for x in slopes if self.low < x < self.high))
        if len(inside) and all(len(pts) for pts in known):
            dual = inside * self.limit_kw + sum(
                (pts[:, 1][:, None] - pts[:, 0][:, None] * inside[None, :]).max(axis=0)
                for pts in known
            )
            self.price = float(inside[int(np.argmin(dual))])
        else:
            self.price = (self.low + self.high) / 2
        self.drawn_kw = 0.0
        self.rounds += 1
        return self.price


def steepest_price(data: ModelData) -> float:
    """The most objective per kW of facility power of any rack the part may hold: at this
    price no layout gains, so g(b) <= price * b holds with no solve."""
    per_rack = facility_kw(data)
    weights = primary_weights(data)
    ratios = [
        weights[t] / per_rack[k, t]
        for k, c in enumerate(data.classes)
        for t in allowed_types(c)
        if per_rack[k, t] > 0
    ]
    return max(ratios, default=0.0)


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
    complete = tracer.proven
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
