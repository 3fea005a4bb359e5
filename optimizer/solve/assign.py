"""From the solver's counts per slot class to racks in slots and SUs on network racks.

The model decides how many racks of each type go into each class of
interchangeable slots and, with a fabric, how many of them hang off network racks
in which class. Any choice of slots inside a class is then equally good for every
constraint; this module makes that choice deterministically: network racks take a
class's first slots, other racks fill the rest front to back in rack-type order,
and SU racks take the free slots nearest their network rack.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData
from optimizer.site.arrays import NO_INDEX
from optimizer.site.placement import Assignment

EMPTY = NO_INDEX


def _count(values: dict[int, float], var: pyo.Var) -> int:
    value = values.get(id(var), var.value)
    return round(value or 0.0)


def assign(data: ModelData, m: pyo.ConcreteModel, values: dict[int, float]) -> Assignment:
    """Turn the solver's values (id(VarData) -> value) into an :class:`Assignment`."""
    site = data.site
    placement = np.full(site.n_slots, EMPTY, dtype=np.int64)
    free: dict[int, list[int]] = {k: list(c.slots) for k, c in enumerate(data.classes)}
    hubs: dict[tuple[int, int], list[int]] = defaultdict(list)  # (class, network type) -> slots

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
        chosen = take(k, t, _count(values, m.place[k, t]))
        if site.is_network_type(t):
            hubs[k, t].extend(chosen)

    su = np.full(site.n_slots, NO_INDEX, dtype=np.int64)
    network_slots: list[int] = []
    if site.network is None:
        return Assignment(placement, su, network_slots)
    ports_left = {s: site.rack_types[t].su_ports for (_, t), slots in hubs.items() for s in slots}
    cabled: dict[tuple[int, int], list[int]] = defaultdict(list)  # (hub class, type) -> slots
    for p in data.cable_pairs:
        count = _count(values, m.cable[p.cell, p.hub, p.rack_type])
        if count:
            near = hubs[p.hub, site.network_type(p.rack_type)][0]
            cabled[p.hub, p.rack_type].extend(take(p.cell, p.rack_type, count, near))
    turn: dict[tuple[int, int], int] = defaultdict(int)  # round robin per (class, type)
    for (h, t), slots in sorted(cabled.items()):
        size = site.rack_types[t].su_size
        v = site.network_type(t)
        candidates = hubs[h, v]
        for start in range(0, len(slots), size):
            # Round robin over the class's network racks, so none is left idle while
            # another serves two SUs (the model allows no more racks than SUs).
            for _ in range(len(candidates)):
                hub_slot = candidates[turn[h, v] % len(candidates)]
                turn[h, v] += 1
                if ports_left[hub_slot] > 0:
                    break
            ports_left[hub_slot] -= 1
            su[sorted(slots)[start : start + size]] = len(network_slots)
            network_slots.append(hub_slot)
    return Assignment(placement, su, network_slots)
