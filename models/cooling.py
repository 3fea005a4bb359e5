"""Cooling: CDU heat and coolant flow, and air-zone heat, after redundant units are set aside.

With L_t = P_t x liquid_fraction_t the heat a rack of type t rejects to liquid,
F_t = L_t x flow_lpm_per_kw_t its coolant flow and A_t = P_t - L_t its air heat:

    sum_{k in c, t} L_t place[k, t] <= unit_kw_c (units_c - redundant_c)        (cdu-heat)
    sum_{k in c, t} F_t place[k, t] <= unit_flow_c (units_c - redundant_c)      (cdu-flow)
    sum_{k in z, t} A_t place[k, t] <= crah_kw_z (units_z - redundant_z)        (air-zone-heat)

A liquid rack's leftover air heat (about 13% for an NVL72) lands on its slot's air
zone, so liquid racks load air zones too.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData
from models.expressions import class_load


def _membership(data: ModelData, attribute: str, index: int) -> np.ndarray:
    return np.array([1.0 if getattr(c, attribute) == index else 0.0 for c in data.classes])


def add_cooling(m: pyo.ConcreteModel, data: ModelData) -> None:
    site = data.site
    liquid_kw = [t.liquid_kw for t in site.rack_types]
    flow_lpm = [t.flow_lpm for t in site.rack_types]
    air_kw = [t.air_kw for t in site.rack_types]

    def bounded(load: pyo.Expression | float, limit: float) -> pyo.Expression:
        return pyo.Constraint.Skip if isinstance(load, float) else load <= limit

    def cdu_heat(_m: pyo.ConcreteModel, c: int) -> pyo.Expression:
        load = class_load(m, _membership(data, "cdu", c), liquid_kw)
        return bounded(load, float(site.cdu_heat_capacity_kw[c]))

    def cdu_flow(_m: pyo.ConcreteModel, c: int) -> pyo.Expression:
        load = class_load(m, _membership(data, "cdu", c), flow_lpm)
        return bounded(load, float(site.cdu_flow_capacity_lpm[c]))

    def zone_heat(_m: pyo.ConcreteModel, z: int) -> pyo.Expression:
        load = class_load(m, _membership(data, "air_zone", z), air_kw)
        return bounded(load, float(site.air_zone_capacity_kw[z]))

    m.cdu_heat = pyo.Constraint(range(len(site.cdu_ids)), rule=cdu_heat)
    m.cdu_flow = pyo.Constraint(range(len(site.cdu_ids)), rule=cdu_flow)
    m.air_zone_heat = pyo.Constraint(range(len(site.air_zone_ids)), rule=zone_heat)
