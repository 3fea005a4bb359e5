"""The pooled relaxation: the model without cable reach, on far fewer classes.

With a fabric, slots are split into cells of a few slots (models.data), because the
cable rows must know which cells lie within reach of which network slots. Every other
family sees a class only through its feeds and shares, CDU, air zone, eligible types
and hall: classes equal in all of these differ only in where their cables can go.
Dropping the cable rows and merging such classes into one pool (its size the sum of
their sizes) gives a relaxation:

- every layout of the model maps to one of the pooled model (count each pool's racks
  of each type), and every row outside models.network (the cable rows, the ports and
  the rule that a network rack stands only where it serves an SU) and the inlet rows
  is a sum over classes of the same coefficients, so it holds pooled with the same
  left-hand side;
- the network rows keep their aggregate per hall: whole SUs per hall and type and
  enough network racks for their ports (models.su_knapsack), and no more network racks
  than SUs they serve (:func:`add_network_totals`), which the network rows imply.

So the pooled model's optimum, or any proven bound on it, bounds the model's optimum.
Where cable reach does not decide the optimum, the two optima are equal, and the
pooled model has a few dozen columns per hall instead of thousands: on
campus-8000-mixed (docs/benchmarks.md) it is solved exactly in under a second, at
61,184 GPUs, which the model with the pooled optimum's SU counts fixed then reaches
(optimizer.solve.highs), where the model's own bound stayed at 61,264 after 300 s.
"""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.core.base.var import VarData

from models.data import FailoverRow, ModelData, SlotClass, class_hall
from optimizer.site.arrays import NO_INDEX


def _pool_key(data: ModelData, k: int, c: SlotClass) -> tuple:
    """Everything but the cable rows reads of class k: its hall (SU rows), feeds and
    power shares, CDU and air zone (cooling rows and the facility power's cooling
    factors), and eligible types."""
    site = data.site
    hall = class_hall(site, c)
    failover = tuple(float(row.share[k]) for row in data.failover_rows)
    normal = tuple(float(s) for s in data.normal_share[k])
    return (hall, c.feeds, c.primary_share, c.cdu, c.air_zone, c.types, normal, failover)


def pooled_data(data: ModelData) -> ModelData:
    """``data`` with cable pairs and inlet rows dropped and alike classes pooled (see the
    module docstring). A class holding an installed rack keeps its own pool, since its
    placement is fixed to exactly one rack."""
    pools: dict[tuple, list[int]] = {}
    for k, c in enumerate(data.classes):
        key = ("installed", k) if c.installed_type != NO_INDEX else _pool_key(data, k, c)
        pools.setdefault(key, []).append(k)
    members = list(pools.values())
    classes = tuple(
        SlotClass(
            slots=tuple(s for k in pool for s in data.classes[k].slots),
            feeds=data.classes[pool[0]].feeds,
            primary_share=data.classes[pool[0]].primary_share,
            cdu=data.classes[pool[0]].cdu,
            air_zone=data.classes[pool[0]].air_zone,
            types=data.classes[pool[0]].types,
            installed_type=data.classes[pool[0]].installed_type,
        )
        for pool in members
    )
    first = [pool[0] for pool in members]
    failover = tuple(
        FailoverRow(row.failed, row.device, row.share[first]) for row in data.failover_rows
    )
    return ModelData(data.site, classes, data.normal_share[first], failover)


def shared_columns(m: pyo.ConcreteModel) -> list[VarData]:
    """The variables that mean the same in the model and its pooled relaxation, by name:
    the whole-SU counts per hall and type (models.su_knapsack's ``su_total``), since
    halls are kept apart by pooling. Every other column counts racks in a class, and
    classes differ between the two. Fixing these at the relaxation's optimum and
    completing the layout is how the solve looks for a layout that meets the bound."""
    su_total = getattr(m, "su_total", None)
    return [] if su_total is None else list(su_total.values())


def add_network_totals(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Per hall and network rack type v: the network racks placed (installed ones aside)
    are at most the SUs of the types v serves, sum_t S_ht (models.su_knapsack). The model
    holds each network rack to the SUs cabled to it (models.network ``network_used``),
    and every SU of a hall is cabled to a network rack of that hall, so the sum over the
    hall's network racks gives this row. Without it the relaxation may stand idle network
    racks in spare slots, which counts where network racks carry IT kW or value."""
    su_total = getattr(m, "su_total", None)
    if su_total is None:
        return
    site = data.site
    served: dict[tuple[int, int], list[int]] = {}
    for h, t in su_total:
        served.setdefault((h, site.network_type(t)), []).append(t)
    racks: dict[tuple[int, int], list[int]] = {key: [] for key in served}
    for k, v in m.pairs:
        c = data.classes[k]
        key = (class_hall(site, c), v)
        if key in racks and c.installed_type == NO_INDEX:
            racks[key].append(k)

    def at_most_served(_m: pyo.ConcreteModel, h: int, v: int) -> pyo.Expression:
        placed = sum(m.place[k, v] for k in racks[h, v])
        if isinstance(placed, int):
            return pyo.Constraint.Skip
        return placed <= sum(su_total[h, t] for t in served[h, v])

    m.network_totals = pyo.Constraint(list(served), rule=at_most_served)
