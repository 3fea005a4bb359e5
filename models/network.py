"""Network: whole scalable units (SUs) hung off network racks within cable reach.

For an SU rack type t (``su_size`` n_t, served by network rack type v(t) with
``su_ports`` p_v SUs per network rack) and every (cell k, hub h) pair whose slots
all lie within the type's reach of each other (see models.data.cable_pairs):

    cable[k, h, t]  racks of type t in cell k cabled to a network rack in class h
    sus[h, t]       SUs of type t whose network rack stands in class h

    sum_h cable[k, h, t] = place[k, t]                 every SU rack is cabled  (network-attach)
    sum_k cable[k, h, t] = n_t sus[h, t]               only whole SUs          (network-whole-su)
    sum_{t: v(t)=v} sus[h, t] <= p_v place[h, v]        network rack ports      (network-ports)
    place[h, v] <= sum_{t: v(t)=v} sus[h, t]            no idle network rack    (network-used)

One SU holds one rack type, since sus is indexed by type. Reach is judged on the
farthest pair of slots of the two classes, so it never admits a cable that is too
long; cells of one slot make it exact. The cable objective (stage 2) estimates a
pair's cable by the mean length over its slot pairs.
"""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo

from models.data import ModelData
from optimizer.site.arrays import NO_INDEX


def add_network(m: pyo.ConcreteModel, data: ModelData) -> None:
    site = data.site
    if site.network is None:
        return
    pairs = [(p.cell, p.hub, p.rack_type) for p in data.cable_pairs]
    m.cable_pairs = pyo.Set(initialize=pairs, dimen=3, ordered=True)
    m.cable = pyo.Var(
        m.cable_pairs,
        domain=pyo.NonNegativeIntegers,
        bounds=lambda _m, k, h, t: (0, data.classes[k].size),
    )
    hubs = sorted({(h, t) for _, h, t in pairs})
    m.sus = pyo.Var(hubs, domain=pyo.NonNegativeIntegers)

    by_cell: dict[tuple[int, int], list[int]] = defaultdict(list)
    by_hub: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, h, t in pairs:
        by_cell[k, t].append(h)
        by_hub[h, t].append(k)

    su_placements = [(k, t) for k, t in m.pairs if site.network_type(t) != NO_INDEX]

    def attach(_m: pyo.ConcreteModel, k: int, t: int) -> pyo.Expression:
        return sum(m.cable[k, h, t] for h in by_cell[k, t]) == m.place[k, t]

    m.network_attach = pyo.Constraint(su_placements, rule=attach)

    def whole_su(_m: pyo.ConcreteModel, h: int, t: int) -> pyo.Expression:
        size = site.rack_types[t].su_size
        return sum(m.cable[k, h, t] for k in by_hub[h, t]) == size * m.sus[h, t]

    m.network_whole_su = pyo.Constraint(hubs, rule=whole_su)

    served: dict[tuple[int, int], list[int]] = defaultdict(list)
    for h, t in hubs:
        served[h, site.network_type(t)].append(t)
    hub_placements = [(h, v) for h, v in m.pairs if (h, v) in served]

    def ports(_m: pyo.ConcreteModel, h: int, v: int) -> pyo.Expression:
        p = site.rack_types[v].su_ports
        return sum(m.sus[h, t] for t in served[h, v]) <= p * m.place[h, v]

    def used(_m: pyo.ConcreteModel, h: int, v: int) -> pyo.Expression:
        if data.classes[h].installed_type != NO_INDEX:
            return pyo.Constraint.Skip
        return m.place[h, v] <= sum(m.sus[h, t] for t in served[h, v])

    m.network_rack_places = pyo.Set(
        initialize=[(h, v) for h, v in m.pairs if site.is_network_type(v)], dimen=2, ordered=True
    )
    m.network_ports = pyo.Constraint(hub_placements, rule=ports)
    m.network_used = pyo.Constraint(hub_placements, rule=used)
    idle_hubs = [
        (h, v)
        for h, v in m.pairs
        if site.is_network_type(v)
        and (h, v) not in served
        and data.classes[h].installed_type == NO_INDEX
    ]
    for h, v in idle_hubs:
        m.place[h, v].setub(0)


def held_in_cable_replan(m: pyo.Block) -> list[pyo.Var]:
    """Placement variables the cable re-plan holds (optimizer.solve.highs): every rack
    that is not a network rack, in every block of ``m`` with a fabric; empty without one.
    Only the cabling, the SUs and the network racks' places are left to change: every
    rack with GPUs stays where it stands, and the second stage's row holds any other
    primary objective (IT kW, facility power) that moving a network rack could touch."""
    held = []
    for block in m.block_data_objects(active=True):
        hubs = getattr(block, "network_rack_places", None)
        if hubs is not None:
            held.extend(block.place[k, t] for k, t in block.pairs if (k, t) not in hubs)
    return held


def cable_metres(m: pyo.ConcreteModel, data: ModelData) -> pyo.Expression | float:
    """Estimated total cable length of SU racks to their network racks."""
    if data.site.network is None or not data.cable_pairs:
        return 0.0
    return sum(p.mean_m * m.cable[p.cell, p.hub, p.rack_type] for p in data.cable_pairs)
