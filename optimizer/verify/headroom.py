"""Where does the next rack go? Rank the empty slots for one more rack of a type.

Each empty slot that may take the type (cooling, water class, floor, air heat, inlet
class and network slot rules) is tried with the independent checker: the rack is added
and every load recomputed (optimizer.verify.resources). Slots where nothing breaks are
ranked by the headroom left on the tightest resource the rack loads, then by keeping
liquid slots for liquid racks, then by slot order; for the others the resource the rack
overloads most (or, for a rule that is no capacity, the broken rule) is what stops the
rack there. SU rules are left out of this question: an SU
type grows by whole SUs, which `rackopt solve` places; here a single rack is
judged on power, cooling, floor and space.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from optimizer.site.arrays import Site
from optimizer.site.placement import Assignment
from optimizer.verify.check import EMPTY, Loads, Violation, check_layout
from optimizer.verify.resources import Resource, binding, resources


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


def _tightest(
    site: Site, before: dict[str, float], after: Loads, trial: np.ndarray
) -> Resource | None:
    """The most utilized resource among those the added rack loads (ties by
    :func:`optimizer.verify.resources.ranked`); None when it loads none. The slot counts
    are left out: every candidate takes one slot, so they cannot tell slots apart.
    ``before``: label -> load of every resource without the rack."""
    return binding(
        [
            r
            for r in resources(site, after, trial)
            if r.family != "slots" and r.load > before.get(r.label, 0.0) + 1e-9
        ]
    )


def _blocker(first: Violation, overloaded: Resource | None) -> str:
    """What stops a rack in a slot: the resource it overloads most, by its table label,
    or, for a rule that is no capacity (a demand maximum), the broken rule."""
    if overloaded is not None and overloaded.utilization > 1.0:
        return overloaded.label
    return f"{first.rule} {first.subject}" + (f" (if {first.case} fails)" if first.case else "")


def next_rack(site: Site, layout: Assignment, type_name: str) -> NextRack:
    """Rank the empty slots for one more rack of ``type_name``."""
    names = [t.name for t in site.rack_types]
    t = names.index(type_name)
    eligible = site.eligible[:, t]
    ranked: list[tuple[float, bool, int, Candidate]] = []
    blocked: Counter = Counter()
    base = check_layout(site, layout.placement)
    already = {v.describe() for v in _physical(base.violations)}
    before = {r.label: r.load for r in resources(site, base.loads, layout.placement)}
    for s in np.flatnonzero((layout.placement == EMPTY) & eligible):
        trial = layout.placement.copy()
        trial[s] = t
        report = check_layout(site, trial)
        new = [v for v in _physical(report.violations) if v.describe() not in already]
        tightest = _tightest(site, before, report.loads, trial)
        if new:
            blocked[_blocker(new[0], tightest)] += 1
            continue
        name, utilization = (
            ("nothing", 0.0) if tightest is None else (tightest.label, tightest.utilization)
        )
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
