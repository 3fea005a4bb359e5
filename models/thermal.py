"""Inlet temperature: recirculated exhaust heat at each hot slot within its rack's class.

For every hot slot i (see models.data.hot_slots) with D from the recirculation model,
A_t the air heat of rack type t, H_it = inlet limit of t - supply temperature at i
(capped at M_i) and M_i = sum_j D[i, j] max A at j, the most heat that can reach i:

    sum_j D[i, j] sum_t A_t place[j, t] + sum_t (M_i - H_it) place[i, t] <= M_i   (inlet)

With a rack of type t in i this reads rise_i <= H_it; with i empty, rise_i <= M_i,
which always holds: an empty slot has no inlet to protect. Every slot in these rows
is a class of its own, so place[j, t] is 0 or 1 there.
"""

from __future__ import annotations

import pyomo.environ as pyo

from models.data import ModelData


def add_thermal(m: pyo.ConcreteModel, data: ModelData) -> None:
    air_kw = [t.air_kw for t in data.site.rack_types]

    def inlet(_m: pyo.ConcreteModel, r: int) -> pyo.Expression:
        row = data.inlet_rows[r]
        coefficients: dict[tuple[int, int], float] = {}
        for k, d in zip(row.sources, row.d_c_per_kw, strict=True):
            for t in m.types_of_class[int(k)]:
                coefficients[int(k), t] = float(d) * air_kw[t]
        for t in m.types_of_class[row.own]:
            key = (row.own, t)
            coefficients[key] = coefficients.get(key, 0.0) + row.big_m - float(row.headroom_c[t])
        terms = [c * m.place[key] for key, c in coefficients.items() if c != 0.0]
        return sum(terms) <= row.big_m if terms else pyo.Constraint.Skip

    m.inlet_temperature = pyo.Constraint(range(len(data.inlet_rows)), rule=inlet)
