"""Where does the next rack go? Rank the empty slots for one more rack of a type.

Each empty slot that may take the type (cooling, water class, floor, air heat, inlet
class and network slot rules) is tried with the independent checker: the rack is added
and every load recomputed. Slots where nothing breaks are ranked by the headroom left on the
tightest resource, then by keeping liquid slots for liquid racks, then by slot
order; for the others the first broken rule is the
resource that stops the rack there. SU rules are left out of this question: an SU
type grows by whole SUs, which `rackopt solve` places; here a single rack is
judged on power, cooling, floor and space.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from optimizer.site.arrays import Site
from optimizer.site.placement import Assignment
from optimizer.verify.check import EMPTY, Loads, Violation, check_layout, occupied_inlet_rise


@dataclass(frozen=True)
class Candidate:
    slot: str
    tightest: str
    """The resource with the least headroom after the rack is added."""
    utilization: float


@dataclass
class NextRack:
    rack_type: str
    ranked: list[Candidate]
    blocked: Counter
    """Resource that stops the rack -> number of slots where it does."""


def _physical(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if not v.rule.startswith("network-")]


def _resources(site: Site, loads: Loads, placement: np.ndarray) -> list[tuple[str, float, float]]:
    """Every capacity as (name, load, limit); a device counts at its worst failure, an
    occupied slot's inlet as its temperature rise against the rise its class allows."""
    items = [
        (
            f"{d} if {case} fails" if case else f"{d} (normal)",
            worst if case else normal,
            failover if case else limit,
        )
        for d, normal, worst, case, limit, failover in zip(
            site.device_ids,
            loads.device_normal_kw,
            loads.device_failover_kw,
            loads.device_worst_failure,
            site.device_limit_kw,
            site.device_failover_limit_kw,
            strict=True,
        )
    ]
    items += [
        (f"CDU {c} heat", h, cap)
        for c, h, cap in zip(
            site.cdu_ids, loads.cdu_heat_kw, site.cdu_heat_capacity_kw, strict=True
        )
    ]
    items += [
        (f"CDU {c} flow", f, cap)
        for c, f, cap in zip(
            site.cdu_ids, loads.cdu_flow_lpm, site.cdu_flow_capacity_lpm, strict=True
        )
    ]
    items += [
        (f"air zone {z}", h, cap)
        for z, h, cap in zip(
            site.air_zone_ids, loads.air_zone_heat_kw, site.air_zone_capacity_kw, strict=True
        )
    ]
    if site.utility_limit_kw is not None:
        items.append(("utility", loads.facility_kw, site.utility_limit_kw))
    slots, rise, allowed = occupied_inlet_rise(site, placement, loads.inlet_temp_c)
    items += [
        (f"inlet at {site.slot_ids[s]}", float(r), float(a))
        for s, r, a in zip(slots, rise, allowed, strict=True)
    ]
    return items


def _tightest(
    site: Site, before: Loads, after: Loads, placement: np.ndarray, trial: np.ndarray
) -> tuple[str, float]:
    """The most utilized resource among those the added rack loads, as (name, load/limit)."""
    old = {name: load for name, load, _ in _resources(site, before, placement)}
    touched = [
        (name, load / limit if limit > 0 else 1.0)
        for name, load, limit in _resources(site, after, trial)
        if load > old.get(name, 0.0) + 1e-9
    ]
    return max(touched, key=lambda item: item[1], default=("nothing", 0.0))


def next_rack(site: Site, layout: Assignment, type_name: str) -> NextRack:
    """Rank the empty slots for one more rack of ``type_name``."""
    names = [t.name for t in site.rack_types]
    t = names.index(type_name)
    eligible = site.eligible[:, t]
    ranked: list[tuple[float, bool, int, Candidate]] = []
    blocked: Counter = Counter()
    base = check_layout(site, layout.placement)
    already = {v.describe() for v in _physical(base.violations)}
    for s in np.flatnonzero((layout.placement == EMPTY) & eligible):
        trial = layout.placement.copy()
        trial[s] = t
        report = check_layout(site, trial)
        new = [v for v in _physical(report.violations) if v.describe() not in already]
        if new:
            first = new[0]
            blocked[
                f"{first.rule} {first.subject}"
                + (f" with {first.case} failed" if first.case else "")
            ] += 1
            continue
        name, utilization = _tightest(site, base.loads, report.loads, layout.placement, trial)
        strands_liquid = bool(site.slot_liquid[s]) and not site.rack_types[t].needs_liquid
        ranked.append(
            (
                round(utilization, 9),
                strands_liquid,
                int(s),
                Candidate(site.slot_ids[s], name, utilization),
            )
        )
    ranked.sort(key=lambda item: item[:3])
    return NextRack(type_name, [item[3] for item in ranked], blocked)
