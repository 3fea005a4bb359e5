"""Slot eligibility: which rack types a slot may take, rule by rule.

A rack type fits a slot when it passes every slot rule: cooling, water temperature,
floor, air heat, inlet temperature alone and the network-slot rule. The rules are
kept apart (not only their conjunction) so that when a rack type fits nowhere the
site builder can say which rule shut it out (:mod:`optimizer.site.demand`).
"""

from __future__ import annotations

import numpy as np

from optimizer.site.arrays import NO_INDEX, Site, per_slot


def slot_rules(site: Site, t: int) -> dict[str, np.ndarray]:
    """Per-slot masks of the rules a rack of type t must pass, in the order they are
    explained: a liquid loop if it needs one, water no warmer than its class, the floor
    rating, the air-heat limit, an inlet within its class even with no neighbours
    (supply air plus its own recirculated exhaust), and for a network rack a network
    slot. NaN temperatures (not given) pass."""
    spec = site.rack_types[t]
    has_loop = site.slot_liquid & (site.slot_cdu != NO_INDEX)
    water = per_slot(site.cdu_supply_temp_c, np.where(has_loop, site.slot_cdu, NO_INDEX))
    alone = site.slot_supply_temp_c + site.self_recirculation() * spec.air_kw
    return {
        "cooling": has_loop | (not spec.needs_liquid),
        "water": ~(water > site.type_water_max_c[t] + 1e-9) | (not spec.needs_liquid),
        "floor": spec.weight_kg <= site.slot_floor_kg,
        "air": spec.air_kw <= site.slot_air_kw_max + 1e-9,
        "inlet": ~(alone > site.type_inlet_limit_c[t] + 1e-9),
        "network": site.slot_network_ok | (not site.is_network_type(t)),
    }


def eligible_slots(site: Site) -> np.ndarray:
    """(slot, rack type) mask: which types a slot may take by the rules of
    :func:`slot_rules`."""
    return (
        np.array(
            [
                np.logical_and.reduce(list(slot_rules(site, t).values()))
                for t in range(len(site.rack_types))
            ]
        )
        .reshape(len(site.rack_types), site.n_slots)
        .T
    )
