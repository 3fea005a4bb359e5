"""Phases: one plan over every phase of a build-out, racks never moved.

Phases p = 1..P share one set of slot classes k (those of the finished facility, cut
so that the slots of a class open in the same phase). Each phase has its own counts
``place[p, k, t]`` and meets every rule of that phase, with that phase's capacities
and demand: every family of models.build is written once per phase, in a block of its
own (a class whose slots are not open in phase p has its counts held at 0 there). What
ties the phases together is that a rack once placed stays, with its type,
in its slot:

    place[p, k, t] >= place[p-1, k, t]          for p >= 2 and every (k, t)   (phase-monotone)

Counts per class suffice: racks fill a class's slots in a fixed order, so the racks a
phase adds take slots the earlier phases left free (optimizer.solve.phases).

With a fabric (models.network), the cabling is tied the same way, so an SU once
installed keeps its racks and its network rack:

    cable[p, k, h, t] >= cable[p-1, k, h, t]     sus[p, h, t] >= sus[p-1, h, t]

and what a phase adds to a hub class, sum_k (cable[p] - cable[p-1]) = n_t (sus[p] -
sus[p-1]), is whole SUs of new racks.

With G_p = sum_{k,t} w_t place[p, k, t] the primary value of phase p (GPUs, value or
IT kW as the instance's objective says) and d_p the phase's ``duration``, a planner
names one of three objectives:

- ``lexicographic`` (default): maximize G_1; holding it, maximize G_2; and so on: the
  most GPUs now, then the most later without giving up any now;
- ``gpu_time``: maximize sum_p d_p G_p, GPUs weighted by how long each phase lasts;
- ``final_first``: maximize G_P, then G_1, ..., G_{P-1} lexicographically.

Solving phase by phase instead (``--myopic``: each phase at its own optimum with the
earlier phases' racks fixed) is what a planner does without this model; comparing the
two shows what planning ahead is worth (docs/formulation.md, section 16).

Uncertain demand (a two-stage stochastic MILP). One phase J > 1 may list demand
scenarios s = 1..S with probabilities pi_s (sum_s pi_s = 1) instead of one demand.
Phases 1..J-1 are committed: one placement, built now. Phases J..P get one block of
counts per scenario, ``place[p, s, k, t]`` (the recourse), each meeting every rule of
phase p (phase J with scenario s's demand, later phases with their own) and monotone
from the block before it in the scenario (phase J's: the last committed phase):

    place[J, s, k, t] >= place[J-1, k, t]        for every scenario s and pair (k, t)
    place[p, s, k, t] >= place[p-1, s, k, t]     for p > J

The value of a phase p >= J in the objectives above is then either the expected value

    G_p = sum_s pi_s G_{p,s}                                    (``expected``, default)

or the worst case, with a free variable z_p bounded by every scenario's value,

    G_p = z_p,   z_p <= G_{p,s} for every s                     (``worst_case``)

so that ``lexicographic`` makes the most GPUs now and then the best expected (or
worst-case) later phases without giving any up, and ``gpu_time`` weighs the committed
phases against E[G_p] by duration. Blocks are stored in one sequence: the committed
phases, then each scenario's phases J..P (:class:`PhasedData`, ``parent`` says which
block each is monotone from).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pyomo.environ as pyo

from models.data import (
    ModelData,
    SlotClass,
    build_model_data,
    hot_slots,
    positional_slots,
    slot_classes,
)
from models.expressions import class_load
from models.network import cable_metres
from models.objective import primary_weights, tie_break_weights
from optimizer.site.arrays import Site


class PhaseObjective(StrEnum):
    """How the GPUs of the phases are weighed against each other (module docstring)."""

    LEXICOGRAPHIC = "lexicographic"
    GPU_TIME = "gpu_time"
    FINAL_FIRST = "final_first"

    def stages(self, n_phases: int, durations: tuple[float, ...]) -> list[list[float]]:
        """Weights of G_1..G_P for each solve in turn; each optimum is held in the next."""
        if self is PhaseObjective.GPU_TIME:
            return [list(durations)]
        order = list(range(n_phases))
        if self is PhaseObjective.FINAL_FIRST:
            order = [n_phases - 1, *order[:-1]]
        return [[1.0 if p == q else 0.0 for p in range(n_phases)] for q in order]


def block_parent(b: int, committed: int, scenario_phases: int) -> int | None:
    """The block that block ``b`` is monotone from, blocks stored as in
    :class:`PhasedData`: the phase before it (a scenario's first block: the last
    committed phase); None for the first phase."""
    if b < committed:
        return b - 1 if b > 0 else None
    return committed - 1 if (b - committed) % scenario_phases == 0 else b - 1


@dataclass(frozen=True)
class PhasedData:
    """The model inputs of every phase, over one set of slot classes."""

    phases: tuple[ModelData, ...]
    """One block each: the committed phases, then for each scenario in turn its phases
    (the one listing the scenarios and every later one)."""
    durations: tuple[float, ...]
    """One per phase (not per block): the gpu_time weights."""
    probabilities: tuple[float, ...] = ()
    """One per scenario; () without."""
    worst_case: bool = False
    """Value each scenario phase by its worst scenario, not its expected GPUs."""
    scenario_phases: int = 0
    """How many phases each scenario places (the phase listing the scenarios and the
    later ones); 0 without scenarios."""

    @property
    def committed(self) -> int:
        """How many phases (and blocks) are committed: those before the scenarios."""
        return len(self.durations) - self.scenario_phases

    def parent(self, b: int) -> int | None:
        """The block that block ``b`` is monotone from (:func:`block_parent`)."""
        return block_parent(b, self.committed, self.scenario_phases)

    def blocks_of(self, p: int) -> list[tuple[int, float]]:
        """The blocks of phase ``p`` with their weights in its value: one block at weight
        1 for a committed phase, every scenario's at its probability for a later one."""
        c = self.committed
        if p < c:
            return [(p, 1.0)]
        return [
            (c + s * self.scenario_phases + p - c, pi) for s, pi in enumerate(self.probabilities)
        ]


def shared_classes(final: Site, open_phase: np.ndarray) -> tuple[SlotClass, ...]:
    """Slot classes of the finished facility, cut by the phase each slot opens in."""
    hot, _ = hot_slots(final, final.eligible)
    return slot_classes(final, final.eligible, positional_slots(final, hot), apart=open_phase)


def build_phased_data(
    sites: list[Site],
    open_phase: np.ndarray,
    durations: tuple[float, ...],
    probabilities: tuple[float, ...] = (),
    worst_case: bool = False,
    scenario_phases: int = 0,
) -> PhasedData:
    """Each block's model inputs over the shared classes (the pairs a block's site does
    not allow are held at 0 by :func:`close_unopened`); ``sites`` are the committed
    phases' then each scenario's ``scenario_phases``."""
    classes = shared_classes(sites[-1], open_phase)
    return PhasedData(
        tuple(build_model_data(site, classes) for site in sites),
        durations,
        probabilities,
        worst_case,
        scenario_phases,
    )


def close_unopened(m: pyo.ConcreteModel, data: PhasedData) -> None:
    """No rack of a type in a class before the phase's site allows it there (its hall or
    row not open yet): the count's upper bound is 0."""
    for p, d in enumerate(data.phases):
        block = m.phase[p]
        for k, t in block.pairs:
            if not d.site.eligible[d.classes[k].slots[0], t]:
                block.place[k, t].setub(0)


def phase_value(block: pyo.Block, data: ModelData) -> pyo.Expression | float:
    """G_p: the primary value (GPUs by default) of one phase's counts."""
    return class_load(block, np.ones(len(data.classes)), primary_weights(data))


MONOTONE = ("place", "cable", "sus")
"""The counts that never fall from a block to the next: racks per (class, type) and,
with a fabric, cabled racks per (cell, hub, type) and SUs per (hub, type)."""


def add_monotone(m: pyo.ConcreteModel, data: PhasedData) -> None:
    """Every count of :data:`MONOTONE` in a block at least that of its parent block, as
    the block's own rows ``monotone`` (so deactivating a block drops its ties too)."""
    for b in range(1, len(data.phases)):
        block, parent = m.phase[b], m.phase[data.parent(b)]
        block.monotone = pyo.ConstraintList()
        for name in MONOTONE:
            now, before = block.component(name), parent.component(name)
            if now is None or before is None:
                continue
            for index in now:
                if index in before:
                    block.monotone.add(now[index] >= before[index])


def add_worst_case(m: pyo.ConcreteModel, data: PhasedData) -> None:
    """z_p <= G_{p,s} for every scenario phase p and scenario s: z_p is phase p's
    worst-case value."""
    later = range(data.committed, len(data.durations))
    m.worst_case = pyo.Var(later, domain=pyo.Reals)
    rows = [(p, b) for p in later for b, _ in data.blocks_of(p)]
    m.worst_case_bound = pyo.Constraint(
        rows,
        rule=lambda _m, p, b: m.worst_case[p] <= phase_value(m.phase[b], data.phases[b]),
    )


def stage_value(m: pyo.ConcreteModel, data: PhasedData, weights: list[float]) -> pyo.Expression:
    """sum_p weights[p] G_p, G_p of a scenario phase expected or worst-case."""
    terms = []
    for p, w in enumerate(weights):
        if not w:
            continue
        if data.probabilities and data.worst_case and p >= data.committed:
            terms.append(w * m.worst_case[p])
            continue
        terms.extend(
            w * pi * phase_value(m.phase[b], data.phases[b]) for b, pi in data.blocks_of(p)
        )
    return sum(terms)


def set_phase_objective(m: pyo.ConcreteModel, data: PhasedData, weights: list[float]) -> None:
    """The primary objective: sum_p weights[p] G_p, maximized (replacing any earlier)."""
    if m.component("objective_primary") is not None:
        m.del_component("objective_primary")
    m.objective_primary = pyo.Objective(expr=stage_value(m, data, weights), sense=pyo.maximize)


def set_block_objective(m: pyo.ConcreteModel, data: PhasedData, b: int) -> None:
    """The primary objective of one block alone, G_b maximized (a myopic plan's step)."""
    if m.component("objective_primary") is not None:
        m.del_component("objective_primary")
    m.objective_primary = pyo.Objective(
        expr=phase_value(m.phase[b], data.phases[b]), sense=pyo.maximize
    )


def hold_phase_value(
    m: pyo.ConcreteModel, data: PhasedData, weights: list[float], value: float
) -> None:
    """Keep the stage just solved at its optimum while the next stage is solved."""
    if m.component("phase_hold") is None:
        m.phase_hold = pyo.ConstraintList()
    m.phase_hold.add(stage_value(m, data, weights) >= value)


def add_phase_tie_break(
    m: pyo.ConcreteModel, data: PhasedData, blocks: list[int] | None = None
) -> None:
    """The second stage: the cable metres and tie-break cost (models.objective) of every
    block, or of ``blocks``: SU racks near their network racks, liquid slots kept for
    liquid racks and free space at the back in every phase (replacing any earlier)."""
    if m.component("objective_tie_break") is not None:
        m.del_component("objective_tie_break")
    terms = []
    for p in range(len(data.phases)) if blocks is None else blocks:
        d = data.phases[p]
        weights = tie_break_weights(d)
        terms.append(cable_metres(m.phase[p], d))
        terms.extend(weights[k, t] * m.phase[p].place[k, t] for k, t in m.phase[p].pairs)
    m.objective_tie_break = pyo.Objective(expr=sum(terms), sense=pyo.minimize)
