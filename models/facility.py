"""Facility power: IT load plus cooling plant power within the utility limit.

    sum_{k,t} (P_t + a L_t + b A_t) place[k, t] <= utility_limit      (facility-power)

where a and b are the cooling power per kW of liquid and of air heat. No row is
written when the instance sets no utility limit.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData
from models.expressions import class_load


def rack_facility_kw(data: ModelData) -> list[float]:
    """Facility power drawn by one rack of each type (IT plus its cooling)."""
    site = data.site
    return [
        t.it_kw
        + site.cooling_kw_per_liquid_kw * t.liquid_kw
        + site.cooling_kw_per_air_kw * t.air_kw
        for t in site.rack_types
    ]


def add_facility(m: pyo.ConcreteModel, data: ModelData) -> None:
    limit = data.site.utility_limit_kw
    if limit is None:
        return
    load = class_load(m, np.ones(len(data.classes)), rack_facility_kw(data))
    m.facility_power = pyo.Constraint(expr=load <= float(limit))
