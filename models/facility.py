"""Facility power: IT load plus cooling plant power within the utility limit.

    sum_{k,t} (P_t + a_k L_t + b_k A_t) place[k, t] <= utility_limit      (facility-power)

where a_k and b_k are the cooling power per kW of liquid heat at class k's CDU group and
per kW of air heat in its air zone: a flat per-kW figure, or 1/COP at the loop's or
zone's supply temperature plus pumps or fans (optimizer.thermal.plant_kw_per_kw). No
row is written when the instance sets no utility limit. The same sum is what the
``min_facility_kw`` objective minimizes.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData


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
    """(rack type,): the least facility power one rack of each type draws anywhere, a
    valid weight for rows in rack counts alone (models.su_knapsack)."""
    per_rack = facility_kw(data)
    if not len(per_rack):
        return np.array([t.it_kw for t in data.site.rack_types])
    return per_rack.min(axis=0)


def facility_power(m: pyo.ConcreteModel, data: ModelData) -> pyo.Expression:
    """Facility power of the layout as a linear expression."""
    per_rack = facility_kw(data)
    return sum(float(per_rack[k, t]) * m.place[k, t] for k, t in m.pairs)


def add_facility(m: pyo.ConcreteModel, data: ModelData) -> None:
    limit = data.site.utility_limit_kw
    if limit is None:
        return
    m.facility_power = pyo.Constraint(expr=facility_power(m, data) <= float(limit))
