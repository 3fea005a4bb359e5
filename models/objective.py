"""Objectives, solved lexicographically.

1. primary: maximized GPUs (default), the rack types' ``value`` or IT kW:

       sum_{k,t} w_t place[k, t]                                      (objective-primary)

   or, for ``min_facility_kw``, the facility power of models.facility, minimized (the
   demand minimums then say which racks must be placed).

2. second stage (minimized, with the primary held at its optimum, so the GPU
   count never drops for shorter cables): the estimated cable metres of SU racks
   to their network racks (see models.network), plus a tie-break cost that
   among otherwise equal layouts first keeps liquid slots for liquid racks, then
   prefers racks toward the front of the hall:

       cable_metres + sum_{k,t} (waste_kt + 1/2 + rank_k / 2) place[k, t]

   where waste_kt = 1 when an air-cooled rack type t takes a liquid slot of class k,
   and rank_k in [0, 1) is the position of the class's first slot in instance
   order. The constant 1/2 per rack makes racks the primary does not need (a
   network rack beyond what the SUs' ports require) cost something, so none is
   placed idle. The same instance therefore always gives the same layout, liquid
   capacity is not stranded by air racks, and free space stays contiguous at the
   back of the hall. Within a class, racks fill slots in instance order.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData
from models.expressions import class_load
from models.facility import facility_power
from models.network import cable_metres
from optimizer.site.arrays import NO_INDEX, Objective


def primary_weights(data: ModelData) -> list[float]:
    """Objective weight of one rack of each type for the maximizing objectives."""
    site = data.site
    if site.objective is Objective.MAX_VALUE:
        return [t.value for t in site.rack_types]
    if site.objective is Objective.MAX_IT_KW:
        return [t.it_kw for t in site.rack_types]
    return [float(t.gpus) for t in site.rack_types]


def tie_break_weights(data: ModelData) -> dict[tuple[int, int], float]:
    """Tie-break cost of one rack of type t in slot class k (see the module docstring)."""
    n = max(data.site.n_slots, 1)
    weights = {}
    for k, c in enumerate(data.classes):
        liquid_slot = c.cdu != NO_INDEX and bool(data.site.slot_liquid[c.slots[0]])
        for t, spec in enumerate(data.site.rack_types):
            waste = 1.0 if liquid_slot and not spec.needs_liquid else 0.0
            weights[k, t] = waste + 0.5 + 0.5 * c.slots[0] / n
    return weights


def add_objectives(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Primary objective, and the second stage: cable metres plus the tie-break cost."""
    if data.site.objective.minimizes:
        m.objective_primary = pyo.Objective(expr=facility_power(m, data), sense=pyo.minimize)
    else:
        m.objective_primary = pyo.Objective(
            expr=class_load(m, np.ones(len(data.classes)), primary_weights(data)),
            sense=pyo.maximize,
        )
    weights = tie_break_weights(data)
    tie_break = sum(weights[k, t] * m.place[k, t] for k, t in m.pairs)
    m.objective_tie_break = pyo.Objective(
        expr=cable_metres(m, data) + tie_break, sense=pyo.minimize
    )
