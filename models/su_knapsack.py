"""Valid inequalities: whole-SU knapsack rows over the facility's shared resources.

The LP relaxation happily deploys 17.3 SUs; proving that only 17 fit takes branch
and bound a long time when the limit is spread over many rows (one per UPS and
failure). These rows hand the solver the aggregate knapsack directly. They cut
off no integer layout, so the optimum is unchanged; they only tighten the bound.

An SU never spans halls (models.data.cable_pairs), so SUs are counted per hall.
With S_ht the number of SUs of type t in hall h (integer), N_hv the network racks of
type v in hall h, and count_ht the racks of type t in hall h:

    count_ht = n_t S_ht                                 for SU types     (su-count)
    p_v N_hv >= sum_{t: v(t)=v} S_ht                     for network types (su-leaves)

and for each hall and shared resource a row in counts alone,
sum_t w_t count_ht <= B_h (su-knapsack), where count_ht = n_t S_ht for SU types:

- air heat (w = air kW, B_h = capacity of the zones the hall's slots use); likewise
  CDU heat and coolant flow;
- IT power: any nonnegative combination y of the power rows (normal and failover)
  that gives every slot class of the hall a coefficient >= 1 bounds the hall's IT
  load by sum_r y_r limit_r. The cheapest such y comes from a small LP solved here;
  for 2N it picks each UPS when its twin has failed, i.e. IT <= one side's capacity;

plus one site row for the utility limit (w = IT plus the least cooling power of the type
anywhere) over all halls.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from scipy.optimize import linprog

from models.data import ModelData, class_hall
from models.expressions import class_load
from models.facility import least_facility_kw
from optimizer.site.arrays import NO_INDEX


def power_cover_bound(data: ModelData, members: list[int] | None = None) -> float | None:
    """Smallest sum_r y_r limit_r over power rows with sum_r y_r share_rk >= 1 for every
    class k in ``members`` (all classes by default)."""
    site = data.site
    members = list(range(len(data.classes))) if members is None else members
    rows = [
        (data.normal_share[:, d], site.device_limit_kw[d])
        for d in range(len(site.device_ids))
        if data.normal_share[members, d].any()
    ]
    rows += [
        (r.share, site.device_failover_limit_kw[r.device])
        for r in data.failover_rows
        if r.share[members].any()
    ]
    if not rows or not members:
        return None
    shares = np.array([share[members] for share, _ in rows])  # (rows, members)
    limits = np.array([limit for _, limit in rows], dtype=float)
    result = linprog(
        limits, A_ub=-shares.T, b_ub=-np.ones(len(members)), bounds=(0, None), method="highs"
    )
    return float(result.fun) if result.status == 0 else None


def _hall_totals(data: ModelData, members: list[int]) -> list[tuple[list[float], float]]:
    """(weight per rack type, bound) of every resource total over one hall's classes: the
    capacities of the air zones and CDUs its slots use, and its power cover."""
    site = data.site
    types = site.rack_types
    zones = sorted({data.classes[k].air_zone for k in members})
    totals = [([t.air_kw for t in types], float(site.air_zone_capacity_kw[zones].sum()))]
    cdus = sorted({data.classes[k].cdu for k in members} - {NO_INDEX})
    if cdus:
        totals.append(([t.liquid_kw for t in types], float(site.cdu_heat_capacity_kw[cdus].sum())))
        totals.append(([t.flow_lpm for t in types], float(site.cdu_flow_capacity_lpm[cdus].sum())))
    bound = power_cover_bound(data, members)
    if bound is not None:
        totals.append(([t.it_kw for t in types], bound))
    return totals


def _halls(data: ModelData) -> dict[int, list[int]]:
    """Slot classes by hall."""
    site = data.site
    halls: dict[int, list[int]] = {}
    for k, c in enumerate(data.classes):
        halls.setdefault(class_hall(site, c), []).append(k)
    return halls


def add_su_knapsacks(m: pyo.ConcreteModel, data: ModelData) -> None:
    site = data.site
    n_types = len(site.rack_types)
    su_types = [t for t in range(n_types) if site.network_type(t) != NO_INDEX]
    if not su_types:
        return
    halls = _halls(data)
    m.su_total = pyo.Var(list(halls), su_types, domain=pyo.NonNegativeIntegers)
    in_hall: dict[tuple[int, int], pyo.Expression | float] = {}
    for h, members in halls.items():
        weight = np.zeros(len(data.classes))
        weight[members] = 1.0
        for t in range(n_types):
            one = np.zeros(n_types)
            one[t] = 1.0
            in_hall[h, t] = class_load(m, weight, one)

    def su_count(_m: pyo.ConcreteModel, h: int, t: int) -> pyo.Expression:
        if isinstance(in_hall[h, t], float):
            return m.su_total[h, t] == 0
        return in_hall[h, t] == site.rack_types[t].su_size * m.su_total[h, t]

    m.su_count = pyo.Constraint(list(halls), su_types, rule=su_count)
    hubs = sorted({site.network_type(t) for t in su_types})

    def leaves(_m: pyo.ConcreteModel, h: int, v: int) -> pyo.Expression:
        served = sum(m.su_total[h, t] for t in su_types if site.network_type(t) == v)
        return site.rack_types[v].su_ports * in_hall[h, v] >= served

    m.su_leaves = pyo.Constraint(list(halls), hubs, rule=leaves)

    def in_sus(h: int | None, t: int) -> pyo.Expression | float:
        scope = list(halls) if h is None else [h]
        if t in su_types:
            return sum(site.rack_types[t].su_size * m.su_total[g, t] for g in scope)
        return sum(in_hall[g, t] for g in scope)

    rows = [
        (h, weights, bound)
        for h, members in halls.items()
        for weights, bound in _hall_totals(data, members)
    ]
    if site.utility_limit_kw is not None:
        rows.append((None, least_facility_kw(data), float(site.utility_limit_kw)))

    def knapsack(_m: pyo.ConcreteModel, i: int) -> pyo.Expression:
        h, weights, bound = rows[i]
        terms = [float(w) * in_sus(h, t) for t, w in enumerate(weights) if w]
        return pyo.Constraint.Skip if not terms else sum(terms) <= bound

    m.su_knapsack = pyo.Constraint(range(len(rows)), rule=knapsack)
