"""Where does the next rack go? Rank the places one more rack, or one more SU, could take.

What is tried depends on how the type grows. A type placed rack by rack is tried in every
empty slot that can cool it and may take its kind of rack (a network rack only in a
network slot), except the slots the instance marks ``network: true``, which are kept for
network racks; a slot whose floor, air-heat, water or inlet rule refuses the rack is
tried too, so its margin is known. An SU type of an instance with a fabric grows only
by whole SUs, so it is tried as one: a network rack with a spare port (one already
standing, or a new one in an empty network slot) with the ``su_size`` nearest free slots
within the type's reach (and locality) of it. At most :data:`MAX_CANDIDATES` places are
tried, spread evenly over the floor, so the answer stays quick on a campus.

Each trial is judged by the independent checker: the racks are added and every load
recomputed (optimizer.verify.resources). Places where nothing breaks are ranked by the
headroom left on the tightest resource the racks load, then by needing no new network
rack, then by keeping liquid slots for liquid racks, then by slot order. For every other
place the binding limit is named with its margin, the amount by which the trial exceeds
it in its own unit (kW, L/min, K, kg, ...): a broken slot rule (floor, air heat, water,
a demand maximum, a network rule) when there is one, else the capacity it overloads most.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.demand import misfit
from optimizer.site.eligibility import slot_rules
from optimizer.site.placement import Assignment
from optimizer.verify.check import EMPTY, Loads, Violation, check_layout
from optimizer.verify.resources import Kind, Resource, binding, ranked, resources

MAX_CANDIDATES = 200
"""Most places (single slots or whole SUs) tried per question."""

Trial = tuple[list[int], int, bool]
"""Slot indices of the compute racks, of the network rack (-1: none) and whether that
network rack is new."""

_CAPACITY_RULES = frozenset(str(kind) for kind in Kind)
"""Checker rules that guard a capacity of the resource table (the rule names are the kinds)."""


@dataclass(frozen=True)
class Place:
    """Where one more rack, or one more SU with its network rack, would stand."""

    slots: tuple[str, ...]
    """The rack's slot, or the SU's compute racks' slots."""
    network_slot: str = ""
    """The SU's network rack; '' for a rack placed on its own."""
    new_network_rack: bool = False
    """Whether that network rack is added too (False: one already standing has a spare port)."""

    def describe(self) -> str:
        if not self.network_slot:
            return self.slots[0]
        more = f" +{len(self.slots) - 1}" if len(self.slots) > 1 else ""
        return f"{self.slots[0]}{more} via {self.network_slot}" + (
            " (new)" if self.new_network_rack else ""
        )


@dataclass(frozen=True)
class Candidate:
    """A place where nothing breaks, with its tightest resource after the racks are added."""

    place: Place
    tightest: str
    """The resource with the least headroom after the racks are added."""
    utilization: float

    @property
    def slot(self) -> str:
        """The first slot of the place (the rack's own slot for a single rack)."""
        return self.place.slots[0]


@dataclass(frozen=True)
class Blocked:
    """A place where the racks break a limit, with the binding one and its margin."""

    place: Place
    binding: str
    """The broken slot rule (with its subject) or the overloaded capacity's label."""
    excess: float
    """By how much the binding limit is exceeded, in ``unit``."""
    unit: str
    share: float
    """The excess as a share of the limit: how far from fitting, comparable across units."""
    overloads: tuple[Resource, ...]
    """Every capacity of the resource table the racks overload, with its load after them."""


@dataclass
class NextRack:
    """The answer to "where does the next rack (or SU) of this type go?"."""

    rack_type: str
    racks: int
    """Racks of the type one place takes: 1, or the SU size."""
    ranked: list[Candidate]
    blocked: list[Blocked]
    places: int
    """Places there are in all; ``tried`` of them were judged."""
    tried: int
    no_room: str = ""
    """Why there is no place at all to try ('' when there is one)."""

    def closest(self) -> list[Blocked]:
        """The blocked places, closest to fitting first (least excess as a share of the
        binding limit; ties in the order tried)."""
        return sorted(self.blocked, key=lambda b: b.share)

    def blocked_by(self) -> list[tuple[str, int, Blocked]]:
        """(binding limit, places it blocks, the place closest to fitting) per binding
        limit, the most places first (then in the order first met)."""
        counts = Counter(b.binding for b in self.blocked)
        closest: dict[str, Blocked] = {}
        for b in self.blocked:
            if b.binding not in closest or b.share < closest[b.binding].share:
                closest[b.binding] = b
        return [(name, counts[name], closest[name]) for name, _ in counts.most_common()]


def _spread(items: list[int], limit: int) -> list[int]:
    """At most ``limit`` of ``items``, evenly spaced so that the whole floor is sampled."""
    if len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _tightest(
    site: Site, before: dict[str, float], after: Loads, trial: np.ndarray
) -> Resource | None:
    """The most utilized resource among those the added racks load (ties by
    :func:`optimizer.verify.resources.ranked`); None when they load none. The slot counts
    are left out: every candidate takes as many slots, so they cannot tell places apart.
    ``before``: label -> load of every resource without the racks."""
    return binding(
        [
            r
            for r in resources(site, after, trial)
            if r.family != "slots" and r.load > before.get(r.label, 0.0) + 1e-9
        ]
    )


def _blocked(place: Place, new: list[Violation], overloads: list[Resource]) -> Blocked:
    """The binding limit of a place with new violations: the first broken rule that is
    no capacity (a slot rule, a demand maximum, a network rule), else the capacity the
    racks overload most; its margin in its unit (a temperature's in K)."""
    rules = [v for v in new if v.rule not in _CAPACITY_RULES]
    if rules or not overloads:
        first = (rules or new)[0]
        case = f" (if {first.case} fails)" if first.case else ""
        unit = "K" if first.unit == "C" else first.unit
        name = f"{first.rule} {first.subject}{case}"
        share = first.excess / abs(first.limit) if first.limit else np.inf
        return Blocked(place, name, first.excess, unit, share, tuple(overloads))
    worst = ranked(overloads)[0]
    share = worst.utilization - 1.0
    return Blocked(place, worst.label, worst.excess, worst.unit, share, tuple(overloads))


def _single_places(site: Site, layout: Assignment, t: int) -> list[Trial]:
    """One rack in each free slot that
    can cool it and may take its kind of rack; a slot whose floor, air-heat, water or
    inlet rule refuses it is tried too, so that its margin (kg, kW, K) is reported."""
    rules = slot_rules(site, t)
    free = (layout.placement == EMPTY) & rules["cooling"] & rules["network"]
    if not site.is_network_type(t):
        free &= ~site.slot_network_marked
    return [([int(s)], NO_INDEX, False) for s in np.flatnonzero(free)]


def _no_free_slot(site: Site, layout: Assignment, t: int) -> str:
    """Why no free slot is worth trying for one rack of type ``t``: the slots that may take
    it are all taken, or the first slot rule that shuts it out of every free slot."""
    free = layout.placement == EMPTY
    taken = int((~free & site.eligible[:, t]).sum())
    if taken or not free.any():
        return f"the {taken} slots that may take it are all taken"
    return misfit(site, t, free, "any free slot")[0]


def _su_places(site: Site, layout: Assignment, t: int, limit: int) -> tuple[list[Trial], str]:
    """One SU of type ``t`` per network rack that could serve it, with the nearest free
    slots within reach; and why there is none when there is none."""
    assert site.network is not None
    spec, n = site.rack_types[t], site.network_type(t)
    placement = layout.placement
    served = Counter(layout.su_network_slot)
    spare = [
        int(s)
        for s in np.flatnonzero(placement == n)
        if served[int(s)] < site.rack_types[n].su_ports
    ]
    new = [int(s) for s in np.flatnonzero((placement == EMPTY) & site.eligible[:, n])]
    pool = np.flatnonzero((placement == EMPTY) & site.eligible[:, t] & ~site.slot_network_marked)
    if len(pool) < spec.su_size:
        return [], f"{len(pool)} free slots take {spec.name}, an SU needs {spec.su_size}"
    if not spare and not new:
        return [], f"no network slot is free for a {spec.network_rack} and none has a spare port"
    hubs = spare + _spread(new, max(limit - len(spare), 0))
    allowed = {"row": 0, "adjacent_rows": 1}.get(site.network.su_locality)
    places: list[Trial] = []
    fresh = set(new)
    for hub in hubs:
        members = pool[pool != hub]
        lengths = site.network.geometry.between(members, np.full(len(members), hub))
        near = lengths <= site.reach_m(t) + 1e-9
        if allowed is not None:
            rows, hub_row = site.slot_row_code[members], site.slot_row_code[hub]
            near &= site.row_hall[rows] == site.row_hall[hub_row]
            near &= np.abs(site.row_order[rows] - site.row_order[hub_row]) <= allowed
        if near.sum() < spec.su_size:
            continue
        order = np.lexsort((members[near], lengths[near]))[: spec.su_size]
        places.append((sorted(members[near][order].tolist()), hub, hub in fresh))
    if not places:
        return [], f"no network slot has {spec.su_size} free slots within reach"
    return places, ""


def next_rack(
    site: Site, layout: Assignment, type_name: str, limit: int = MAX_CANDIDATES
) -> NextRack:
    """Rank the places for one more rack of ``type_name``, or one more SU of it when the
    type grows by whole SUs; at most ``limit`` places are tried."""
    names = [spec.name for spec in site.rack_types]
    t = names.index(type_name)
    spec = site.rack_types[t]
    network = site.network_type(t)
    if network != NO_INDEX:
        found, no_room = _su_places(site, layout, t, limit)
    else:
        found = _single_places(site, layout, t)
        no_room = "" if found else _no_free_slot(site, layout, t)
    tried = _spread(list(range(len(found))), limit)
    base = check_layout(site, layout.placement, layout.su, layout.su_network_slot)
    already = {v.describe() for v in base.violations}
    before = {r.label: r.load for r in resources(site, base.loads, layout.placement)}
    keyed: list[tuple[tuple[float, bool, int, int], Candidate]] = []
    blocked: list[Blocked] = []
    for i in tried:
        slots, hub, new_hub = found[i]
        trial = layout.placement.copy()
        trial[slots] = t
        su, hubs = layout.su.copy(), list(layout.su_network_slot)
        if hub != NO_INDEX:
            trial[hub] = network
            su[slots] = len(hubs)
            hubs.append(hub)
        report = check_layout(site, trial, su, hubs)
        place = Place(
            tuple(site.slot_ids[s] for s in slots),
            site.slot_ids[hub] if hub != NO_INDEX else "",
            new_hub,
        )
        new = [v for v in report.violations if v.describe() not in already]
        if new:
            after = resources(site, report.loads, trial)
            overloads = [r for r in after if r.over and r.load > before.get(r.label, 0.0) + 1e-9]
            blocked.append(_blocked(place, new, overloads))
            continue
        tightest = _tightest(site, before, report.loads, trial)
        name, utilization = (
            ("nothing", 0.0) if tightest is None else (tightest.label, tightest.utilization)
        )
        strands_liquid = 0 if spec.needs_liquid else int(site.slot_liquid[slots].sum())
        key = (round(utilization, 9), new_hub, strands_liquid, slots[0])
        keyed.append((key, Candidate(place, name, utilization)))
    keyed.sort(key=lambda item: item[0])
    return NextRack(
        type_name,
        spec.su_size if network != NO_INDEX else 1,
        [c for _, c in keyed],
        blocked,
        len(found),
        len(tried),
        no_room,
    )
