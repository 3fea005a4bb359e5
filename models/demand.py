"""Demand: racks of each type between the requested minimum and maximum.

    min_t <= sum_k place[k, t] <= max_t                               (demand-count)

Installed racks count toward their type.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData
from models.expressions import class_load
from optimizer.site.arrays import NO_INDEX


def type_count(m: pyo.ConcreteModel, data: ModelData, t: int) -> pyo.Expression | float:
    """Number of racks of type t in the layout."""
    one_type = np.zeros(len(data.site.rack_types))
    one_type[t] = 1.0
    return class_load(m, np.ones(len(data.classes)), one_type)


def add_demand(m: pyo.ConcreteModel, data: ModelData) -> None:
    site = data.site

    def count_rule(_m: pyo.ConcreteModel, t: int) -> pyo.Expression:
        count = type_count(m, data, t)
        upper = None if site.demand_max[t] == NO_INDEX else int(site.demand_max[t])
        lower = int(site.demand_min[t])
        if isinstance(count, float):
            return pyo.Constraint.Skip
        return pyo.inequality(lower, count, upper) if upper is not None else count >= lower

    m.demand_count = pyo.Constraint(range(len(site.rack_types)), rule=count_rule)
