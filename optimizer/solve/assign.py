"""From the solver's counts per slot class to racks in slots and SUs on network racks.

The model decides how many racks of each type go into each class of
interchangeable slots and, with a fabric, how many of them hang off network racks
in which class. Any choice of slots inside a class is then equally good for every
constraint; this module makes that choice deterministically: network racks take a
class's first slots, other racks fill the rest front to back in rack-type order,
and SU racks take the free slots nearest their network rack.

In a phased plan each phase starts from the phase before (``before``): its racks keep
their slots and its SUs their racks and network racks, and only what the counts add
is placed. The counts, cables and SUs of a plan never fall from one phase to the next
(models.phases), so what a phase adds is whole SUs of new racks.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData, class_of_slots
from optimizer.site.arrays import NO_INDEX
from optimizer.site.placement import Assignment

EMPTY = NO_INDEX


def _count(values: dict[int, float], var: pyo.Var) -> int:
    value = values.get(id(var), var.value)
    return round(value or 0.0)


def assign(
    data: ModelData,
    m: pyo.ConcreteModel | pyo.Block,
    values: dict[int, float],
    before: Assignment | None = None,
) -> Assignment:
    """Turn the solver's values (id(VarData) -> value) of ``m`` (a model, or one phase's
    block) into an :class:`Assignment`, adding to ``before`` (the phase before) if given."""
    site = data.site
    if before is None:
        before = Assignment(
            np.full(site.n_slots, EMPTY, dtype=np.int64),
            np.full(site.n_slots, NO_INDEX, dtype=np.int64),
        )
    placement, su = before.placement.copy(), before.su.copy()
    network_slots = list(before.su_network_slot)
    class_of = class_of_slots(data)
    free = {k: [s for s in c.slots if placement[s] == EMPTY] for k, c in enumerate(data.classes)}
    placed = np.flatnonzero(placement != EMPTY)
    have = Counter(zip(class_of[placed].tolist(), placement[placed].tolist(), strict=True))
    hubs: dict[tuple[int, int], list[int]] = defaultdict(list)  # (class, network type) -> slots
    for s in placed:
        if site.is_network_type(int(placement[s])):
            hubs[int(class_of[s]), int(placement[s])].append(int(s))

    def take(k: int, t: int, count: int, near: int | None = None) -> list[int]:
        pool = free[k]
        if near is not None and site.network is not None:
            lengths = site.network.geometry.between(np.array(pool), near)
            pool = [pool[i] for i in np.argsort(lengths, kind="stable")]
        chosen = pool[:count]
        free[k] = [s for s in free[k] if s not in chosen]
        placement[chosen] = t
        return chosen

    su_types = {t for t in range(len(site.rack_types)) if site.network_type(t) != NO_INDEX}
    for k, t in sorted(m.pairs, key=lambda kt: (not site.is_network_type(kt[1]), kt)):
        if t in su_types:
            continue
        chosen = take(k, t, _count(values, m.place[k, t]) - have[k, t])
        if site.is_network_type(t):
            hubs[k, t].extend(chosen)

    if site.network is None:
        return Assignment(placement, su, network_slots)
    served = Counter(network_slots)  # SUs per network rack slot
    members = np.flatnonzero(su != NO_INDEX)
    cabled_before = Counter(
        (int(class_of[s]), int(class_of[network_slots[su[s]]]), int(placement[s])) for s in members
    )
    cabled: dict[tuple[int, int], list[int]] = defaultdict(list)  # (hub class, type) -> slots
    for p in data.cable_pairs:
        count = _count(values, m.cable[p.cell, p.hub, p.rack_type])
        count -= cabled_before[p.cell, p.hub, p.rack_type]
        if count:
            near = hubs[p.hub, site.network_type(p.rack_type)][0]
            cabled[p.hub, p.rack_type].extend(take(p.cell, p.rack_type, count, near))
    for (h, t), slots in sorted(cabled.items()):
        size = site.rack_types[t].su_size
        v = site.network_type(t)
        ports = site.rack_types[v].su_ports
        for start in range(0, len(slots), size):
            # The least-served network rack of the class with a port left: round robin,
            # so none is left idle while another serves two SUs (the model allows no
            # more racks than SUs), and a network rack new in this phase gets its SU.
            hub_slot = min((s for s in hubs[h, v] if served[s] < ports), key=served.__getitem__)
            served[hub_slot] += 1
            su[sorted(slots)[start : start + size]] = len(network_slots)
            network_slots.append(hub_slot)
    return Assignment(placement, su, network_slots)
