"""The one solve pipeline: instance -> site -> model -> HiGHS -> placement -> checked layout.

Every solve goes through :func:`solve_instance` (or :func:`solve_site` when the site is
already built): ``rackopt solve``, each scenario of ``rackopt batch``
(:func:`optimizer.studies.batch.solve_scenario`) and scripts/benchmark.py. The model
builder and HiGHS are called only here and by the helpers this module hands work to:
:mod:`.decompose` (independent parts, each built and solved in a worker),
:mod:`.frontier` (a campus part's frontier, traced in a worker for :mod:`.campus`) and
:mod:`.explain` (the elastic model that says why a demand is infeasible).
tests/test_pipeline.py fails if any other module imports them.

What comes out is a :class:`SolveReport` that passed the independent check; every other
outcome is a typed error (:mod:`optimizer.errors`): an infeasible demand, no layout in
time, Ctrl-C before any layout, a layout that failed the check. Turning the report into
the layout dataset is the results stage's job (:func:`optimizer.results.layout.layout_dataset`),
which reads :class:`SolveReport` and so cannot be imported from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyomo.environ as pyo

from models.build import build_model, build_relaxed_model
from models.data import ModelData, build_model_data, unplaceable_minimums
from models.phases import PhaseObjective
from optimizer.errors import (
    InfeasibleError,
    InstanceError,
    InternalError,
    Interrupted,
    LayoutCheckError,
    NoLayoutInTimeError,
    RackoptError,
)
from optimizer.instance.loader import LoadedInstance, load_instance
from optimizer.site.arrays import Site
from optimizer.site.build import build_site
from optimizer.site.phases import PhasedSite, phased_site
from optimizer.site.placement import Assignment
from optimizer.solve.assign import assign
from optimizer.solve.campus import (
    SOLVED_AS_CAMPUS,
    SOLVED_AS_PARTS,
    SOLVED_AS_SINGLE,
    campus_parts,
    solve_campus,
)
from optimizer.solve.decompose import parts, solve_parts
from optimizer.solve.explain import demand_text, explain
from optimizer.solve.greedy import greedy_start
from optimizer.solve.highs import SolveOutcome, relaxation_bound, solve
from optimizer.solve.options import SolveOptions
from optimizer.solve.packing_search import Packings
from optimizer.solve.phases import PhasePlan, phase_gpus, solve_phased
from optimizer.solve.progress import ProgressFn
from optimizer.verify.check import CheckReport, check_layout


@dataclass
class SolveReport:
    """A solved, independently checked layout and how it was obtained."""

    site: Site
    layout: Assignment
    outcome: SolveOutcome
    check: CheckReport
    options: SolveOptions
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: load_s (read and validate the instance, build the site), build_s,
    handoff_s, solve_s, primary_s (the first stage, within solve_s), check_s and, with a
    capping or myopic baseline, baseline_s."""
    model_size: dict[str, int] = field(default_factory=dict)
    capping_baseline: CappingBaseline | None = None
    """The solve with no rack capped, when asked for and some rack type is capped."""
    plan: PhasePlan | None = None
    """For an instance with phases: every phase's checked layout; ``site``, ``layout`` and
    ``check`` are then the last phase's."""
    myopic_baseline: MyopicBaseline | None = None
    """The same phases planned phase by phase, when asked for beside a joint plan."""
    overrides: str = ""
    """The overrides applied to the instance file, as JSON ``[[key, value], ...]``
    (a study scenario's or ``solve --set``'s); empty when none."""
    solved_as: str = SOLVED_AS_SINGLE
    """Which path solved it: one model, independent parts (optimizer.solve.decompose), or
    per-part frontiers under a shared utility limit (optimizer.solve.campus)."""

    @property
    def placement(self) -> np.ndarray:
        """Rack type index per slot; -1 for an empty slot."""
        return self.layout.placement


@dataclass(frozen=True)
class CappingBaseline:
    """The same site solved with every rack drawing in full in every failure."""

    gpus: int | None
    """GPUs of that layout; None when no layout meets the demand minimums without capping."""


@dataclass(frozen=True)
class MyopicBaseline:
    """The same build-out planned phase by phase (each phase at its own optimum with the
    earlier racks kept), beside which a joint plan shows what planning ahead is worth."""

    gpus: tuple[int, ...] | None
    """GPUs of each committed phase of that plan; None when some phase cannot meet its
    demand minimums around the racks the earlier phases placed."""
    message: str = ""
    """Why there is no such plan, when ``gpus`` is None."""
    scenario_gpus: tuple[tuple[int, ...], ...] = ()
    """Per demand scenario, the GPUs of each of its phases (the one listing the scenarios
    and every later one), each planned on its own around the racks before it."""


def myopic_baseline(phased: PhasedSite, options: SolveOptions) -> MyopicBaseline:
    """Plan ``phased`` phase by phase (a second solve) for the GPUs it would reach."""
    try:
        plan = solve_phased(phased, options, _one_phase, myopic=True)
    except InfeasibleError as exc:
        return MyopicBaseline(None, str(exc))
    return MyopicBaseline(
        tuple(phase_gpus(phase) for phase in plan.phases),
        scenario_gpus=tuple(
            tuple(phase_gpus(layout) for layout in s.layouts) for s in plan.scenarios
        ),
    )


def capping_baseline(site: Site, options: SolveOptions) -> CappingBaseline:
    """Solve ``site`` again with capping off (:meth:`Site.uncapped`), for the GPUs it
    would hold without relying on the power-management system."""
    try:
        report = solve_site(site.uncapped(), replace(options, capping_baseline=False))
    except InfeasibleError:
        return CappingBaseline(None)
    placed = report.placement
    return CappingBaseline(int(sum(site.rack_types[t].gpus for t in placed[placed >= 0])))


def _model_size(m: pyo.ConcreteModel) -> dict[str, int]:
    variables = sum(1 for _ in m.component_data_objects(pyo.Var, active=True))
    constraints = sum(1 for _ in m.component_data_objects(pyo.Constraint, active=True))
    return {"variables": variables, "constraints": constraints}


def solve_site(
    site: Site,
    options: SolveOptions,
    progress: ProgressFn | None = None,
    client: Any | None = None,
) -> SolveReport:
    """Build and solve the model for ``site``; raise unless a checked layout comes out.
    A campus's frontier solves run on the workers of the dask ``client`` when one is
    given, else on local processes."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = build_model_data(site)
    impossible = unplaceable_minimums(data)
    if impossible:
        raise InfeasibleError(f"{site.name}: the demand cannot be met: " + "; ".join(impossible))
    groups = parts(data) if options.split_parts else [list(range(len(data.classes)))]
    frontiers = options.split_parts and options.campus_frontiers and len(groups) == 1
    campus = campus_parts(data) if frontiers else None
    solved_as = SOLVED_AS_SINGLE
    if campus is not None:
        relaxed = _relaxation(data)
        timings["build_s"] = time.perf_counter() - started
        bounded = time.perf_counter()
        bound = None if relaxed is None else relaxation_bound(relaxed, options)
        bound_s = time.perf_counter() - bounded
        left = None if options.time_limit is None else max(options.time_limit - bound_s, 0.0)
        result = solve_campus(
            data, campus, replace(options, time_limit=left), progress, client, bound
        )
        layout, outcome = result.layout, result.outcome
        outcome.relaxed_bound = bound
        outcome.primary_s += bound_s
        outcome.solve_s += bound_s
        timings["build_s"] += result.build_s
        model_size = {
            "parts": len(campus),
            "variables": result.variables,
            "frontier_points": result.frontier_points,
            "frontiers": result.frontiers,
        }
        solved_as = SOLVED_AS_CAMPUS
    elif len(groups) > 1:
        timings["build_s"] = time.perf_counter() - started
        layout, outcome, part_timings, variables = solve_parts(data, groups, options, progress)
        timings["build_s"] += part_timings["build_s"]
        model_size = {"parts": len(groups), "variables": variables}
        solved_as = SOLVED_AS_PARTS
    else:
        m = build_model(data)
        relaxed = _relaxation(data)
        timings["build_s"] = time.perf_counter() - started
        start = greedy_start(data, m) if options.warm_start else None
        packs = None if start is None else Packings.of(data, m)
        outcome = solve(m, options, progress, start, site.objective.unit, packs, relaxed)
        model_size = {"parts": 1, **_model_size(m)}
    timings["handoff_s"] = outcome.handoff_s
    timings["solve_s"] = outcome.solve_s
    timings["primary_s"] = outcome.primary_s
    if not outcome.has_solution:
        raise _no_layout(site, outcome, options, progress)
    if solved_as == SOLVED_AS_SINGLE:
        layout = assign(data, m, outcome.values)
    started = time.perf_counter()
    check = check_layout(site, layout.placement, layout.su, layout.su_network_slot)
    timings["check_s"] = time.perf_counter() - started
    if not check.ok:
        details = "; ".join(v.describe() for v in check.violations[:3])
        raise LayoutCheckError(
            f"{site.name}: the solver's layout failed the independent check, so it was not "
            f"written (a bug in rackopt; please report it with the instance): {details}"
        )
    baseline = None
    if options.capping_baseline and site.capping:
        started = time.perf_counter()
        baseline = capping_baseline(site, options)
        timings["baseline_s"] = time.perf_counter() - started
    return SolveReport(
        site, layout, outcome, check, options, timings, model_size, baseline, solved_as=solved_as
    )


def _relaxation(data: ModelData) -> pyo.ConcreteModel | None:
    """The pooled relaxation (models.relaxation) where it can bound the maximized
    primary better than the model's LP: a fabric splits the slots into cells, so pooling
    shrinks the model, and no inlet row (which pooling would have to drop) shapes the
    optimum."""
    if data.site.network is None or data.inlet_rows or data.site.objective.minimizes:
        return None
    return build_relaxed_model(data)


def _no_layout(
    site: Site, outcome: SolveOutcome, options: SolveOptions, progress: ProgressFn | None = None
) -> RackoptError:
    """The typed error for a solve that ended without a layout, by the solver's status."""
    if outcome.status == "infeasible":
        message = (
            f"{site.name}: no layout satisfies every constraint and the demand minimums "
            "(the MILP is infeasible); lower demand min or add capacity."
        )
        # explain raises its own InfeasibleError when even unlimited capacity is not enough.
        try:
            shortfalls = explain(site, options, progress)  # shown as `explain` shows it
        except NoLayoutInTimeError:  # the demand is still proven infeasible
            return InfeasibleError(
                f"{message} Which resources fall short was not found before the time limit; "
                "allow more time with --time-limit to list them."
            )
        return InfeasibleError(
            f"{message} To place {demand_text(site)}, these resources fall short:",
            [s.describe() for s in shortfalls],
        )
    if outcome.status == "interrupted":
        return Interrupted(f"{site.name}: interrupted before the solver found any layout")
    if outcome.status in ("time_limit", "iteration_limit", "solution_limit"):
        return NoLayoutInTimeError(
            f"{site.name}: no feasible layout found before the solve stopped (status "
            f"{outcome.status}); allow more time with --time-limit"
        )
    return InternalError(f"{site.name}: the solver stopped with status {outcome.status!r}")


def solve_instance(
    source: str | Path | LoadedInstance,
    options: SolveOptions,
    progress: ProgressFn | None = None,
    allow_paths_outside: bool = False,
    before_solve: Callable[[Site], None] | None = None,
    carry: Callable[[LoadedInstance, Site], Site] | None = None,
    client: Any | None = None,
) -> SolveReport:
    """The whole pipeline for one instance file (or one already loaded and validated, as
    a study's scenarios are): load, build the site, solve, check. ``timings`` include
    ``load_s``. A file may name files outside its folder tree only with
    ``allow_paths_outside``. ``before_solve`` sees the built site before anything is
    solved: ``rackopt solve`` shows the lint's warnings there, and stops under --strict
    (for a phased build-out, the finished facility's site). ``carry`` fixes racks of an
    earlier layout on the built site (``solve --installed-from``; reading the layout is
    the results stage's job). A dask ``client`` runs a campus's frontier solves
    (optimizer.solve.campus) on its cluster's workers."""
    started = time.perf_counter()
    loaded = (
        source if isinstance(source, LoadedInstance) else load_instance(source, allow_paths_outside)
    )
    if loaded.instance.phases:
        if carry is not None:
            raise InstanceError(
                "--installed-from",
                "",
                f"{loaded.path} plans its own phases",
                "give the racks already on the floor under installed:, or solve without phases",
            )
        report = _solve_phases(loaded, options, progress, started, before_solve)
    else:
        report = _solve_site_of(loaded, options, progress, started, before_solve, carry, client)
    report.overrides = loaded.overrides
    return report


def _solve_site_of(
    loaded: LoadedInstance,
    options: SolveOptions,
    progress: ProgressFn | None,
    started: float,
    before_solve: Callable[[Site], None] | None,
    carry: Callable[[LoadedInstance, Site], Site] | None,
    client: Any | None,
) -> SolveReport:
    """A one-shot instance: its site built (and carried forward), solved and checked."""
    site = build_site(loaded)
    if carry is not None:
        site = carry(loaded, site)
    load_s = time.perf_counter() - started
    if before_solve is not None:
        before_solve(site)
    report = solve_site(site, options, progress, client)
    report.timings = {"load_s": load_s, **report.timings}
    return report


def _one_phase(site: Site, options: SolveOptions) -> tuple[np.ndarray, SolveOutcome]:
    """One phase of a myopic plan, solved and checked like any one-shot site."""
    report = solve_site(site, options)
    return report.placement, report.outcome


def _solve_phases(
    loaded: LoadedInstance,
    options: SolveOptions,
    progress: ProgressFn | None,
    started: float,
    before_solve: Callable[[Site], None] | None,
) -> SolveReport:
    """A build-out over the instance's phases (optimizer.solve.phases), reported as the
    last phase's layout with every phase attached."""
    phased = phased_site(loaded)
    timings = {"load_s": time.perf_counter() - started}
    if before_solve is not None:
        before_solve(phased.final)
    started = time.perf_counter()
    plan = solve_phased(
        phased,
        options,
        _one_phase,
        PhaseObjective(options.phase_objective),
        options.myopic,
        progress,
    )
    timings["solve_s"] = time.perf_counter() - started
    baseline = None
    if options.myopic_baseline and not options.myopic:
        started = time.perf_counter()
        baseline = myopic_baseline(phased, options)
        timings["baseline_s"] = time.perf_counter() - started
    final = plan.phases[-1]
    return SolveReport(
        final.site,
        final.layout,
        plan.outcome,
        final.check,
        options,
        timings,
        plan.model_size,
        plan=plan,
        myopic_baseline=baseline,
    )
