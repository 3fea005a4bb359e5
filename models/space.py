"""Space: how many racks of each type go into each class of interchangeable slots.

Variables ``place[k, t]`` (integer) count racks of type t in slot class k; a pair
exists only where every slot of the class may take the type (it has a liquid loop
if the rack needs one, a floor rated for the rack's weight, and an air-heat limit
at or above the rack's air heat). Installed racks are fixed: ``place[k, t] = 1``.

    sum_t place[k, t] <= |k|                         for every class k   (space-slots)
"""

from __future__ import annotations

import pyomo.environ as pyo

from models.data import ModelData
from optimizer.site.arrays import NO_INDEX


def placement_pairs(data: ModelData) -> list[tuple[int, int]]:
    """(class, rack type) pairs that get a variable."""
    pairs = []
    for k, c in enumerate(data.classes):
        types = (c.installed_type,) if c.installed_type != NO_INDEX else c.types
        pairs.extend((k, t) for t in types)
    return pairs


def add_space(m: pyo.ConcreteModel, data: ModelData) -> None:
    pairs = placement_pairs(data)
    m.pairs = pyo.Set(initialize=pairs, dimen=2, ordered=True)

    def bounds(_m: pyo.ConcreteModel, k: int, t: int) -> tuple[int, int]:
        c = data.classes[k]
        return (1, 1) if c.installed_type != NO_INDEX else (0, c.size)

    m.place = pyo.Var(m.pairs, domain=pyo.NonNegativeIntegers, bounds=bounds)
    m.types_of_class = {k: [] for k in range(len(data.classes))}
    for k, t in pairs:
        m.types_of_class[k].append(t)
    # One row per class even where a single type makes it a bound: the elastic model of
    # `rackopt explain` relaxes these rows to say how many slots are missing.
    every_class = list(m.types_of_class)

    def slots_rule(_m: pyo.ConcreteModel, k: int) -> pyo.Expression:
        return sum(m.place[k, t] for t in m.types_of_class[k]) <= data.classes[k].size

    m.space_slots = pyo.Constraint(every_class, rule=slots_rule)
