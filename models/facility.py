"""Facility power: IT load plus cooling plant power within the utility limit.

    sum_{k,t} (P_t + a_k L_t + b_k A_t) place[k, t] <= utility_limit      (facility-power)

where a_k and b_k are the cooling power per kW of liquid heat at class k's CDU group and
per kW of air heat in its air zone: a flat per-kW figure, or 1/COP at the loop's or
zone's supply temperature plus pumps or fans (optimizer.site.thermal.plant_kw_per_kw). No
row is written when the instance sets no utility limit. The same sum is what the
``min_facility_kw`` objective minimizes.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData, allowed_types


def facility_kw(data: ModelData) -> np.ndarray:
    """(class, rack type): facility power drawn by one rack of the type in the class."""
    site = data.site
    liquid_factor, air_factor = site.slot_cooling_kw_per_kw()
    first = np.array([c.slots[0] for c in data.classes], dtype=np.int64)
    it = np.array([t.it_kw for t in site.rack_types])
    liquid = np.array([t.liquid_kw for t in site.rack_types])
    air = np.array([t.air_kw for t in site.rack_types])
    return (
        it[None, :]
        + liquid_factor[first][:, None] * liquid[None, :]
        + air_factor[first][:, None] * air[None, :]
    )


def least_facility_kw(data: ModelData) -> np.ndarray:
    """(rack type,): the least facility power one rack of each type draws in any class
    that may take it, the tightest valid weight for rows in rack counts alone
    (models.su_knapsack). A class the type cannot stand in (a liquid rack's cost in an air
    slot without a CDU) would only weaken the row."""
    per_rack = facility_kw(data)
    allowed = np.zeros(per_rack.shape, dtype=bool)
    for k, c in enumerate(data.classes):
        allowed[k, list(allowed_types(c))] = True
    least = np.where(allowed, per_rack, np.inf).min(axis=0, initial=np.inf)
    it = np.array([t.it_kw for t in data.site.rack_types])
    return np.where(np.isfinite(least), least, it)  # a type no class takes: count is 0


def facility_power(m: pyo.ConcreteModel, data: ModelData) -> pyo.Expression:
    """Facility power of the layout as a linear expression."""
    per_rack = facility_kw(data)
    return sum(float(per_rack[k, t]) * m.place[k, t] for k, t in m.pairs)


def add_facility(m: pyo.ConcreteModel, data: ModelData) -> None:
    limit = data.site.utility_limit_kw
    if limit is None:
        return
    m.facility_power = pyo.Constraint(expr=facility_power(m, data) <= float(limit))
