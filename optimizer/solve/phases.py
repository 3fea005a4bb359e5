"""Solving a phased build-out: one plan over every phase, or phase by phase.

The joint plan is one MILP over all phases (:func:`models.build.build_phased_model`),
solved in the stages its :class:`~models.phases.PhaseObjective` names, each stage's
optimum held in the next. The myopic plan (``--myopic``) solves each phase alone at its
own optimum with the earlier phases' racks fixed, as a planner without this model does;
it is solved by the one-shot pipeline, handed in as ``solve_one``, or with a fabric
block by block in the joint model (the earlier SUs must stay cabled as they are).
Either way the counts become slots monotonically (a rack keeps its slot, and an SU its
network rack, in every later phase) and every phase is checked independently
(:mod:`optimizer.verify.phases`) before anything is returned. When a phase lists
demand scenarios, the plan commits the earlier phases and places that phase and
every later one once per scenario (models.phases); each scenario's placements are
checked, with the committed phases, like phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pyomo.environ as pyo

from models.build import build_phased_model
from models.data import unplaceable_minimums
from models.phases import (
    PhasedData,
    PhaseObjective,
    add_phase_tie_break,
    block_parent,
    build_phased_data,
    hold_phase_value,
    set_block_objective,
    set_phase_objective,
)
from optimizer.errors import InfeasibleError, Interrupted, LayoutCheckError, NoLayoutInTimeError
from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.phases import PhasedSite, PhaseSite
from optimizer.site.placement import Assignment
from optimizer.solve.assign import assign
from optimizer.solve.highs import SolveOutcome, solve
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import ProgressFn
from optimizer.verify.check import EMPTY, CheckReport
from optimizer.verify.phases import check_phases, phase_sus

MIN_STAGE_S = 0.01
"""A stage reached after the time limit still runs this long, to return the layout the
earlier stages found (HiGHS starts from it)."""
HOLD_TOLERANCE = 1e-6
"""A stage's optimum is held at >= value - 1e-6 x max(1, |value|), as the second stage
holds the primary (optimizer.solve.highs)."""


@dataclass(frozen=True)
class PhaseLayout:
    """One phase of a checked plan."""

    name: str
    date: str
    duration: float
    site: Site
    layout: Assignment
    """The rack type per slot in this phase (-1 empty) and, with a fabric, its SUs."""
    check: CheckReport

    @property
    def placement(self) -> np.ndarray:
        """Rack type index per slot in this phase; -1 for an empty slot."""
        return self.layout.placement


@dataclass(frozen=True)
class ScenarioLayout:
    """The phases planned for one demand scenario (the one listing the scenarios and
    every later one), from the committed phases."""

    name: str
    probability: float
    layouts: tuple[PhaseLayout, ...]

    @property
    def layout(self) -> PhaseLayout:
        """The scenario's last phase: the finished facility."""
        return self.layouts[-1]


@dataclass(frozen=True)
class PhasePlan:
    """A checked plan over every phase and how it was obtained."""

    phases: tuple[PhaseLayout, ...]
    """The committed phases: every phase, or those before the one listing scenarios."""
    outcome: SolveOutcome
    """The last stage's outcome (joint) or the last phase's (myopic)."""
    objective: PhaseObjective
    myopic: bool
    model_size: dict[str, int]
    scenarios: tuple[ScenarioLayout, ...] = ()
    """The phases from the one listing demand scenarios on, once per scenario (the
    recourse)."""
    worst_case: bool = False
    """Whether the scenarios were weighed by the worst, not by expected GPUs."""

    @property
    def expected_gpus(self) -> float:
        """sum_s pi_s G_{P,s}: the last phase's expected GPUs over the scenarios."""
        return sum(s.probability * phase_gpus(s.layout) for s in self.scenarios)


def phase_gpus(phase: PhaseLayout) -> int:
    """GPUs standing in one phase of a plan."""
    placed = phase.placement[phase.placement != EMPTY]
    return int(sum(phase.site.rack_types[t].gpus for t in placed))


def assign_phases(
    data: PhasedData, m: pyo.ConcreteModel, values: dict[int, float]
) -> list[Assignment]:
    """Racks into slots, block by block: each block starts from its parent block's
    racks and SUs, and the racks it adds take the slots left free, so no rack ever moves
    and no SU is ever re-cabled (optimizer.solve.assign)."""
    layouts: list[Assignment] = []
    for b, d in enumerate(data.phases):
        parent = data.parent(b)
        before = None if parent is None else layouts[parent]
        layouts.append(assign(d, m.phase[b], values, before))
    return layouts


def _no_plan(name: str, outcome: SolveOutcome, what: str) -> Exception:
    if outcome.status == "infeasible":
        return InfeasibleError(
            f"{name}: no {what} meets every phase's rules and demand minimums with earlier "
            "racks kept; lower a phase's demand min or add capacity to it (rackopt explain on "
            "an instance of that phase says which resources fall short)"
        )
    if outcome.status == "interrupted":
        return Interrupted(f"{name}: interrupted before the solver found any {what}")
    return NoLayoutInTimeError(
        f"{name}: no {what} found before the solve stopped (status {outcome.status}); "
        "allow more time with --time-limit"
    )


def _phased_model(phased: PhasedSite, worst_case: bool) -> tuple[PhasedData, pyo.ConcreteModel]:
    """The model over every block, once each block's demand minimums can be placed."""
    blocks = _blocks(phased)
    later = phased.scenarios[0].phases if phased.scenarios else ()
    durations = tuple(p.duration for p in (*phased.phases, *later))
    data = build_phased_data(
        [site for _, site in blocks],
        phased.open_phase,
        durations,
        tuple(s.probability for s in phased.scenarios),
        worst_case,
        len(later),
    )
    for (name, _), d in zip(blocks, data.phases, strict=True):
        impossible = unplaceable_minimums(d)
        if impossible:
            raise InfeasibleError(f"{name}: the demand cannot be met: " + "; ".join(impossible))
    return data, build_phased_model(data)


def _model_size(data: PhasedData, m: pyo.ConcreteModel) -> dict[str, int]:
    return {
        "phases": len(data.durations),
        "scenarios": len(data.probabilities),
        "variables": sum(1 for _ in m.component_data_objects(pyo.Var, active=True)),
        "constraints": sum(1 for _ in m.component_data_objects(pyo.Constraint, active=True)),
    }


def _joint(
    phased: PhasedSite,
    options: SolveOptions,
    objective: PhaseObjective,
    progress: ProgressFn | None,
) -> tuple[list[Assignment], SolveOutcome, dict[str, int]]:
    data, m = _phased_model(phased, options.scenario_objective == "worst_case")
    durations = data.durations
    stages = objective.stages(len(durations), durations)
    outcome, start = SolveOutcome(status="not solved", has_solution=False), None
    deadline = None if options.time_limit is None else time.perf_counter() + options.time_limit
    for i, weights in enumerate(stages):
        set_phase_objective(m, data, weights)
        last = i == len(stages) - 1
        stage_options = options if last else replace(options, second_stage_nodes=0)
        if deadline is not None:  # --time-limit covers every stage together
            left = max(deadline - time.perf_counter(), MIN_STAGE_S)
            stage_options = replace(stage_options, time_limit=left)
        outcome = solve(m, stage_options, progress, start)
        if not outcome.has_solution:
            raise _no_plan(phased.final.name, outcome, "plan")
        if outcome.status == "interrupted":
            break
        if not last:
            value = outcome.objective
            hold_phase_value(m, data, weights, value - HOLD_TOLERANCE * max(1.0, abs(value)))
            start = outcome.values
    return assign_phases(data, m, outcome.values), outcome, _model_size(data, m)


def _myopic_fabric(
    phased: PhasedSite, options: SolveOptions, progress: ProgressFn | None
) -> tuple[list[Assignment], SolveOutcome, dict[str, int]]:
    """Phase by phase with a fabric: the earlier phases' SUs must stay cabled to their
    network racks, which an installed rack of the one-shot pipeline (re-cabled at will)
    does not say. So each block of the joint model is solved alone (every other block
    switched off) at its own optimum, then fixed where it stands, before the next: its
    monotone rows tie it to its parent block, fixed already."""
    data, m = _phased_model(phased, worst_case=False)
    names = [name for name, _ in _blocks(phased)]
    outcome = SolveOutcome(status="not solved", has_solution=False)
    for b in range(len(data.phases)):
        for c in range(len(data.phases)):
            (m.phase[c].activate if c == b else m.phase[c].deactivate)()
        set_block_objective(m, data, b)
        add_phase_tie_break(m, data, [b])
        outcome = solve(m, options, progress)
        if outcome.status == "infeasible":
            raise InfeasibleError(
                f"{names[b]}, planned on its own with the earlier racks kept: no layout meets "
                "its rules and demand minimums"
            )
        if not outcome.has_solution:
            raise _no_plan(phased.final.name, outcome, "myopic plan")
        if outcome.status == "interrupted" and b < len(data.phases) - 1:
            raise Interrupted(f"{names[b]}: interrupted before every phase was planned")
        for var in m.phase[b].component_data_objects(pyo.Var):
            value = outcome.values.get(id(var), var.value or 0.0)
            var.fix(round(value) if var.is_integer() else value)
    return assign_phases(data, m, {}), outcome, _model_size(data, m)


def _blocks(phased: PhasedSite) -> list[tuple[str, Site]]:
    """Every block's name (for messages) and site: the committed phases, then the last
    phase once per scenario."""
    blocks = [(f"phase {p.name}", p.site) for p in phased.phases]
    blocks += [
        (f"phase {p.name}, scenario {s.name}", p.site) for s in phased.scenarios for p in s.phases
    ]
    return blocks


def kept(site: Site, placement: np.ndarray) -> Site:
    """``site`` with the racks of ``placement`` installed (the earlier phases' racks, for
    the next myopic phase); they count toward the phase's cumulative demand."""
    installed = dict(site.installed)
    installed.update({int(s): int(placement[s]) for s in np.flatnonzero(placement != EMPTY)})
    counts = np.bincount(
        np.array(list(installed.values()), dtype=np.int64), minlength=len(site.rack_types)
    )
    maximum = np.where(site.demand_max == NO_INDEX, NO_INDEX, np.maximum(site.demand_max, counts))
    return replace(site, installed=installed, demand_max=maximum)


def solve_phased(
    phased: PhasedSite,
    options: SolveOptions,
    solve_one: Callable[[Site, SolveOptions], tuple[np.ndarray, SolveOutcome]],
    objective: PhaseObjective = PhaseObjective.LEXICOGRAPHIC,
    myopic: bool = False,
    progress: ProgressFn | None = None,
) -> PhasePlan:
    """The plan over every phase, checked phase by phase; raise unless one comes out."""
    if myopic and phased.final.network is not None:
        layouts, outcome, size = _myopic_fabric(phased, options, progress)
    elif myopic:
        layouts = []
        no_sus = np.full(phased.final.n_slots, NO_INDEX, dtype=np.int64)
        depth = len(phased.scenarios[0].phases) if phased.scenarios else 0
        for b, (name, block) in enumerate(_blocks(phased)):
            parent = block_parent(b, len(phased.phases), depth)
            site = block if parent is None else kept(block, layouts[parent].placement)
            try:
                placement, outcome = solve_one(site, options)
            except InfeasibleError as exc:
                raise InfeasibleError(
                    f"{name}, planned on its own with the earlier racks kept: {exc}"
                ) from None
            layouts.append(Assignment(placement, no_sus))
        size = {"phases": len(phased.phases) + depth}
    else:
        layouts, outcome, size = _joint(phased, options, objective, progress)
    n = len(phased.phases)
    committed = _checked(phased, list(phased.phases), layouts[:n])
    scenarios = []
    for i, s in enumerate(phased.scenarios):
        own = layouts[n + i * len(s.phases) : n + (i + 1) * len(s.phases)]
        checked = _checked(phased, [*phased.phases, *s.phases], [*layouts[:n], *own])
        scenarios.append(ScenarioLayout(s.name, s.probability, tuple(checked[n:])))
    worst = options.scenario_objective == "worst_case" and bool(scenarios)
    return PhasePlan(tuple(committed), outcome, objective, myopic, size, tuple(scenarios), worst)


def _checked(
    phased: PhasedSite, phases: list[PhaseSite], layouts: list[Assignment]
) -> list[PhaseLayout]:
    """The layouts of ``phases``, each checked independently with the SUs of the last
    (which holds every SU of the ones before it); raise if one fails."""
    plan = layouts[-1]
    placements = [layout.placement for layout in layouts]
    reports = check_phases([p.site for p in phases], placements, plan.su, plan.su_network_slot)
    checked = []
    for phase, placement, report in zip(phases, placements, reports, strict=True):
        if not report.ok:
            details = "; ".join(v.describe() for v in report.violations[:3])
            raise LayoutCheckError(
                f"{phased.final.name}: phase {phase.name} of the plan failed the independent "
                f"check, so nothing was written (a bug in rackopt; please report it): {details}"
            )
        layout = phase_sus(placement, plan.su, plan.su_network_slot)
        checked.append(
            PhaseLayout(phase.name, phase.date, phase.duration, phase.site, layout, report)
        )
    return checked
