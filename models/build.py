"""Assemble the placement MILP from its constraint families, in the order listed here."""

from __future__ import annotations

import pyomo.environ as pyo

from models.cooling import add_cooling
from models.data import ModelData
from models.demand import add_demand
from models.facility import add_facility
from models.network import add_network
from models.objective import add_objectives
from models.power import add_power
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
