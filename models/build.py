"""Assemble the placement MILP from its constraint families, in the order listed here."""

from __future__ import annotations

import pyomo.environ as pyo

from models.cooling import add_cooling
from models.data import ModelData
from models.demand import add_demand
from models.facility import add_facility
from models.network import add_network
from models.objective import add_objectives
from models.phases import (
    PhasedData,
    add_monotone,
    add_phase_tie_break,
    add_worst_case,
    close_unopened,
)
from models.power import add_power
from models.relaxation import add_network_totals, pooled_data
from models.space import add_space
from models.su_knapsack import add_su_knapsacks
from models.thermal import add_thermal

FAMILIES = (
    add_space,
    add_power,
    add_cooling,
    add_thermal,
    add_facility,
    add_demand,
    add_network,
    add_su_knapsacks,
)


def build_model(data: ModelData) -> pyo.ConcreteModel:
    """One Pyomo model: placement variables, every constraint family, both objectives."""
    m = pyo.ConcreteModel(name=data.site.name)
    for add_family in FAMILIES:
        add_family(m, data)
    add_objectives(m, data)
    return m


def build_relaxed_model(data: ModelData) -> pyo.ConcreteModel:
    """The pooled relaxation of ``build_model(data)`` (models.relaxation): every family
    but the cable rows, on the pooled classes. Its primary optimum bounds the model's."""
    pooled = pooled_data(data)
    m = pyo.ConcreteModel(name=f"{data.site.name} (pooled relaxation)")
    for add_family in FAMILIES:
        if add_family is not add_network:
            add_family(m, pooled)
    add_network_totals(m, pooled)
    add_objectives(m, pooled)
    return m


def build_phased_model(data: PhasedData) -> pyo.ConcreteModel:
    """One model over every phase: a block per phase (the last phase's once per demand
    scenario) with every constraint family, the blocks tied by models.phases.add_monotone
    (and, valuing scenarios by the worst, models.phases.add_worst_case). The primary
    objective is set per stage by the caller (models.phases.set_phase_objective); the
    second stage is the blocks' tie-break."""
    m = pyo.ConcreteModel(name=data.phases[-1].site.name)
    m.phase = pyo.Block(range(len(data.phases)))
    for p, phase in enumerate(data.phases):
        for add_family in FAMILIES:
            add_family(m.phase[p], phase)
    close_unopened(m, data)
    add_monotone(m, data)
    if data.probabilities and data.worst_case:
        add_worst_case(m, data)
    add_phase_tie_break(m, data)
    return m
