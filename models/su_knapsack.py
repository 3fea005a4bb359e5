"""Valid inequalities: whole-SU knapsack rows over the facility's shared resources.

The LP relaxation happily deploys 17.3 SUs; proving that only 17 fit takes branch
and bound a long time when the limit is spread over many rows (one per UPS and
failure). These rows hand the solver the aggregate knapsack directly. They cut
off no integer layout, so the optimum is unchanged; they only tighten the bound.

With S_t the number of SUs of type t (integer), N_v the number of network racks of
type v, and count_t = sum_k place[k, t]:

    count_t = n_t S_t                                   for SU types     (su-count)
    p_v N_v >= sum_{t: v(t)=v} S_t                       for network types (su-leaves)

and for each shared resource a row in counts alone, sum_t w_t count_t <= B
(su-knapsack), where count_t = n_t S_t for SU types:

- air heat of all zones (w = air kW, B = sum of zone capacities); likewise CDU heat
  and coolant flow summed over all CDUs;
- facility power (w = IT plus cooling kW, B = utility limit);
- IT power: any nonnegative combination y of the power rows (normal and failover)
  that gives every slot class a coefficient >= 1 bounds the total IT load by
  sum_r y_r limit_r. The cheapest such y comes from a small LP solved here; for 2N
  it picks each UPS when its twin has failed, i.e. total IT <= one side's capacity.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from scipy.optimize import linprog

from models.data import ModelData
from models.demand import type_count
from models.facility import rack_facility_kw
from optimizer.site import NO_INDEX


def power_cover_bound(data: ModelData) -> float | None:
    """Smallest sum_r y_r limit_r over power rows with sum_r y_r share_rk >= 1 for all k."""
    site = data.site
    rows = [
        (data.normal_share[:, d], site.device_limit_kw[d])
        for d in range(len(site.device_ids))
        if data.normal_share[:, d].any()
    ]
    rows += [(r.share, site.device_failover_limit_kw[r.device]) for r in data.failover_rows]
    if not rows or not data.classes:
        return None
    shares = np.array([share for share, _ in rows])  # (rows, classes)
    limits = np.array([limit for _, limit in rows], dtype=float)
    result = linprog(
        limits, A_ub=-shares.T, b_ub=-np.ones(len(data.classes)), bounds=(0, None), method="highs"
    )
    return float(result.fun) if result.status == 0 else None


def _totals(data: ModelData) -> list[tuple[str, list[float], float]]:
    """(name, weight per rack type, bound) of every shared-resource total."""
    site = data.site
    types = site.rack_types
    totals = [("air", [t.air_kw for t in types], float(site.air_zone_capacity_kw.sum()))]
    if len(site.cdu_ids):
        totals.append(
            ("cdu_heat", [t.liquid_kw for t in types], float(site.cdu_heat_capacity_kw.sum()))
        )
        totals.append(
            ("cdu_flow", [t.flow_lpm for t in types], float(site.cdu_flow_capacity_lpm.sum()))
        )
    if site.utility_limit_kw is not None:
        totals.append(("facility", rack_facility_kw(data), float(site.utility_limit_kw)))
    bound = power_cover_bound(data)
    if bound is not None:
        totals.append(("it_power", [t.it_kw for t in types], bound))
    return totals


def add_su_knapsacks(m: pyo.ConcreteModel, data: ModelData) -> None:
    site = data.site
    su_types = [t for t in range(len(site.rack_types)) if site.network_type(t) != NO_INDEX]
    if not su_types:
        return
    m.su_total = pyo.Var(su_types, domain=pyo.NonNegativeIntegers)
    counts = {t: type_count(m, data, t) for t in range(len(site.rack_types))}

    def su_count(_m: pyo.ConcreteModel, t: int) -> pyo.Expression:
        return counts[t] == site.rack_types[t].su_size * m.su_total[t]

    m.su_count = pyo.Constraint(su_types, rule=su_count)
    hubs = sorted({site.network_type(t) for t in su_types})

    def leaves(_m: pyo.ConcreteModel, v: int) -> pyo.Expression:
        served = sum(m.su_total[t] for t in su_types if site.network_type(t) == v)
        return site.rack_types[v].su_ports * counts[v] >= served

    m.su_leaves = pyo.Constraint(hubs, rule=leaves)

    def in_sus(t: int) -> pyo.Expression | float:
        if t in su_types:
            return site.rack_types[t].su_size * m.su_total[t]
        return counts[t]

    totals = _totals(data)

    def knapsack(_m: pyo.ConcreteModel, i: int) -> pyo.Expression:
        _, weights, bound = totals[i]
        terms = [float(w) * in_sus(t) for t, w in enumerate(weights) if w]
        return pyo.Constraint.Skip if not terms else sum(terms) <= bound

    m.su_knapsack = pyo.Constraint(range(len(totals)), rule=knapsack)
