"""The baseline a DCIM tool or a planner applies by hand: largest rack first, first slot
that passes every check.

Rack types are taken in order of IT load, largest first; each rack goes to the first
free slot (in instance order) where every limit still holds, including every
single-failure load. SU types are placed a whole SU at a time: a network rack (or a
free port on one already placed), then the SU's racks in the first slots within
reach; an SU that cannot be completed is taken back and the next network-rack
position is tried. This is the yardstick the
benchmark compares the optimizer against. Slots of a class are interchangeable, so
the scan runs over slot classes, ordered by their next free slot.

Where recirculation binds, first-fit packs the front of the hall hot and strands the
rest. The spreading construction (``spread``) places each rack instead, among the slots
that take the fewest rack types, where it uses the least of the hot slots' remaining
inlet headroom; the solver starts from whichever of first-fit and a few spreading
layouts scores most (:func:`start_layout`). With a fabric, the solver also cuts whole SUs
from a packing that places every rack one at a time, with no SU rule
(:func:`packed_layout`): building one SU at a time can strand the last network slots.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
from scipy import sparse

from models.data import ModelData, build_model_data, class_of_slots
from models.facility import facility_kw
from models.objective import primary_weights
from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.placement import Assignment

TOLERANCE = 1e-6
NO_FREE_SLOT = np.iinfo(np.int64).max
"""A full class's first free slot: after every real slot."""


class _Inlets:
    """The inlet rows (models.data.InletRow): heat recirculated so far to each hot slot,
    and the rack type standing there, whose class sets the limit."""

    def __init__(self, data: ModelData) -> None:
        rows = data.inlet_rows
        n_types = len(data.site.rack_types)
        self.air_kw = np.array([t.air_kw for t in data.site.rack_types])
        # Concatenated, not entry by entry: seven construction passes build this on a
        # 1,000-slot hall, where a Python loop over the 50,000 entries took 0.15 s a pass.
        sizes = [len(r.sources) for r in rows]
        row_index = np.repeat(np.arange(len(rows)), sizes)
        class_index = np.concatenate([r.sources for r in rows] or [np.zeros(0, np.int64)])
        values = np.concatenate([r.d_c_per_kw for r in rows] or [np.zeros(0)])
        self.d = sparse.csc_array(
            (values, (row_index, class_index)), shape=(len(rows), len(data.classes))
        )
        self.column = np.repeat(np.arange(len(data.classes)), np.diff(self.d.indptr))
        self.own = np.array([r.own for r in rows], dtype=np.int64)
        own_entry = class_index == self.own[row_index]
        self.own_d = np.bincount(
            row_index[own_entry], weights=values[own_entry], minlength=len(rows)
        )
        self.headroom = np.array([r.headroom_c for r in rows]).reshape(len(rows), n_types)
        self.rise = np.zeros(len(rows))
        self.occupant = np.full(len(rows), NO_INDEX)
        self.limit = np.full(len(rows), np.inf)
        """Per hot slot: the headroom of the rack standing there (inf while empty)."""
        # Computed once, for the local search, which asks hundreds of times a second.
        self.heat = np.ascontiguousarray(self.air_kw[:, None] * self.d.data[None, :])
        """(rack type, stored entry): the rise one rack of the type causes at the entry's
        hot slot."""
        self.rows_of = [np.flatnonzero(self.own == k) for k in range(len(data.classes))]
        """Per class: the hot slots it is (a class of one slot has at most one)."""
        sources = np.diff(self.d.indptr) > 0
        self.heating = np.flatnonzero(sources)
        """Classes whose racks heat some hot slot (the others' pressure is 0)."""
        self.heating_starts = self.d.indptr[:-1][sources]
        """Where each heating class's entries start: the segments the worst share of
        each class is reduced over."""

    def fits(self, t: int) -> np.ndarray:
        """Per class: does a rack of type t there keep every occupied hot slot, and its
        own slot if hot, within the inlet limit?"""
        ok = np.ones(self.d.shape[1], dtype=bool)
        ok[self.column[self.heat[t] > (self.limit - self.rise)[self.d.indices] + TOLERANCE]] = False
        own_over = self.rise + self.own_d * self.air_kw[t] > self.headroom[:, t] + TOLERANCE
        ok[self.own[own_over]] = False
        return ok

    def pressure(self, t: int, norm: float) -> np.ndarray:
        """Per class: the shares of the hot slots' remaining inlet headroom that a rack of
        type t there would use up (an empty hot slot counted as if a rack of type t were
        to stand in it), summed as a ``norm``-norm: ``inf`` is the worst inlet alone,
        smaller norms weigh every inlet the rack heats. The spreading construction puts
        each rack where this is least, so no slot is heated past use while cooler ones
        stay free."""
        limit = np.where(self.occupant != NO_INDEX, self.limit, self.headroom[:, t])
        slack = np.maximum(limit - self.rise, TOLERANCE)
        share = self.heat[t] / slack[self.d.indices]
        if not math.isinf(norm):
            return np.bincount(self.column, weights=share**norm, minlength=self.d.shape[1])
        total = np.zeros(self.d.shape[1])
        if len(share):
            total[self.heating] = np.maximum.reduceat(share, self.heating_starts)
        return total

    def add(self, k: int, t: int, sign: float) -> None:
        """A rack of type t put in (sign 1) or taken from (-1) class k: the inlets it
        heats, and its own slot's occupant and limit if the slot is hot."""
        start, end = self.d.indptr[k], self.d.indptr[k + 1]
        self.rise[self.d.indices[start:end]] += sign * self.heat[t, start:end]
        rows = self.rows_of[k]
        self.occupant[rows] = t if sign > 0 else NO_INDEX
        self.limit[rows] = self.headroom[rows, t] if sign > 0 else np.inf


class _Loads:
    """Every capacity row of the model, with the load placed so far: one matrix over
    every row (device limits, failover, CDU heat and flow, air zones, utility), so one
    rack's fit is one pass (the local search asks hundreds of times a second)."""

    def __init__(self, data: ModelData) -> None:
        site = data.site
        types = site.rack_types
        n = len(data.classes)
        power = [data.normal_share[:, d] for d in range(len(site.device_ids))]
        failover = [r.share for r in data.failover_rows] or [np.zeros(n)]
        failover_cap = [site.device_failover_limit_kw[r.device] for r in data.failover_rows]

        def member(attribute: str, count: int) -> list[np.ndarray]:
            return [
                np.array([float(getattr(c, attribute) == i) for c in data.classes])
                for i in range(count)
            ]

        # (rows, capacity of each, figure per rack: per type or per (class, type))
        blocks = [
            (power, list(site.device_limit_kw), [t.it_kw for t in types]),
            (failover, failover_cap or [np.inf], [t.failover_kw for t in types]),
            (
                member("cdu", len(site.cdu_ids)) or [np.zeros(n)],
                list(site.cdu_heat_capacity_kw) or [np.inf],
                [t.liquid_kw for t in types],
            ),
            (
                member("cdu", len(site.cdu_ids)) or [np.zeros(n)],
                list(site.cdu_flow_capacity_lpm) or [np.inf],
                [t.flow_lpm for t in types],
            ),
            (
                member("air_zone", len(site.air_zone_ids)),
                list(site.air_zone_capacity_kw),
                [t.air_kw for t in types],
            ),
            ([np.ones(n)], [site.utility_limit_kw or np.inf], facility_kw(data)),
        ]
        rows = [row for block in blocks for row in block[0]]
        self.matrix = sparse.csc_array(np.array(rows).reshape(len(rows), n))
        """(row, class): the share of one unit of the row's figure a rack in the class
        puts on the row."""
        self.capacity = np.array([c for block in blocks for c in block[1]], dtype=float)
        self.load = np.zeros(len(rows))
        figures = np.stack(
            [
                np.broadcast_to(np.asarray(figure, dtype=float), (n, len(types)))
                for _, _, figure in blocks
            ]
        )
        block_of_row = np.repeat(np.arange(len(blocks)), [len(block[0]) for block in blocks])
        self.column = np.repeat(np.arange(n), np.diff(self.matrix.indptr))
        figure = figures[block_of_row[self.matrix.indices], self.column, :]
        self.rack_load = np.ascontiguousarray((self.matrix.data[:, None] * figure).T)
        """(rack type, stored coefficient): the load one rack puts on the coefficient's
        row."""
        self.inlets = _Inlets(data)

    def fits(self, t: int) -> np.ndarray:
        """Per class: does one more rack of type t keep every row within its capacity?"""
        ok = self.inlets.fits(t)
        slack = self.capacity - self.load
        ok[self.column[self.rack_load[t] > slack[self.matrix.indices] + TOLERANCE]] = False
        return ok

    def add(self, k: int, t: int, sign: float = 1.0) -> None:
        """A rack of type t put in (sign 1) or taken from (-1) class k."""
        start, end = self.matrix.indptr[k], self.matrix.indptr[k + 1]
        self.load[self.matrix.indices[start:end]] += sign * self.rack_load[t, start:end]
        self.inlets.add(k, t, sign)


class Construction:
    """A layout built one rack at a time, every capacity and inlet row checked before each
    rack is put down (first-fit, or by the spreading rule), so that every state it passes
    through is a valid layout (without the SU rule)."""

    def __init__(
        self,
        data: ModelData,
        spread: float | None = None,
        versatile_hubs_last: bool = False,
        caps: dict[int, int] | None = None,
    ) -> None:
        self.data = data
        self.caps = caps or {}
        """Rack type -> most racks of it to place, below the demand's own limit."""
        self.spread = spread if data.inlet_rows else None
        """The norm by which to choose among the classes where a rack fits, by least inlet
        pressure (:meth:`_Inlets.pressure`); None: by first free slot."""
        self.versatile_hubs_last = versatile_hubs_last
        """Open network racks in the least versatile classes first (a network slot of an
        air row before one of a liquid row, which a liquid SU's network rack may need to
        be within reach), instead of at the first free slot."""
        self.site = data.site
        self.loads = _Loads(data)
        self.free = {k: list(c.slots) for k, c in enumerate(data.classes)}
        self.next_free = np.array([c.slots[0] for c in data.classes], dtype=np.int64)
        """Per class: its first free slot (:data:`NO_FREE_SLOT` when full), the order in
        which first-fit tries the classes."""
        self.allowed = np.zeros((len(data.classes), len(self.site.rack_types)), dtype=bool)
        for k, c in enumerate(data.classes):
            if c.installed_type == NO_INDEX:
                self.allowed[k, list(c.types)] = True
        self.versatility = self.allowed.sum(axis=1)
        """Per class: how many rack types its slots may take. The spreading construction
        fills the least versatile classes first, so a rack that may stand anywhere does not
        take a slot that only a liquid or a network rack could use."""
        self.placement = np.full(self.site.n_slots, NO_INDEX, dtype=np.int64)
        self.class_of = class_of_slots(data)
        self.counts = np.zeros(len(self.site.rack_types), dtype=np.int64)
        for k, c in enumerate(data.classes):
            if c.installed_type != NO_INDEX:
                self.put(k, c.installed_type)

    def put(self, k: int, t: int) -> int:
        """A rack of type t in the next free slot of class k (the caller checked it fits);
        returns the slot."""
        slot = self.free[k].pop(0)
        self.next_free[k] = self.free[k][0] if self.free[k] else NO_FREE_SLOT
        self.placement[slot] = t
        self.loads.add(k, t)
        self.counts[t] += 1
        return slot

    def take_back(self, k: int, slot: int, t: int) -> None:
        """Remove the rack of type t from ``slot`` of class k: no row gets tighter."""
        self.free[k].insert(0, slot)
        self.free[k].sort()
        self.next_free[k] = self.free[k][0]
        self.placement[slot] = NO_INDEX
        self.loads.add(k, t, -1.0)
        self.counts[t] -= 1

    def _wanted(self, t: int) -> int:
        """How many racks of type t to place at most: the demand max, or, when the
        objective is least facility power, the demand min (-1: no limit)."""
        site = self.site
        wanted = int(site.demand_min[t] if site.objective.minimizes else site.demand_max[t])
        cap = self.caps.get(t, NO_INDEX)
        if cap == NO_INDEX:
            return wanted
        return cap if wanted == NO_INDEX else min(cap, wanted)

    def has_room(self, t: int) -> bool:
        """Whether one more rack of type t stays within what is to be placed of it."""
        limit = self._wanted(t)
        return limit == NO_INDEX or self.counts[t] < limit

    def first_class(self, t: int, among: np.ndarray | None = None) -> int | None:
        """The class holding the first free slot where a rack of type t fits; spreading,
        the least versatile such class, then the least inlet pressure, then the first
        free slot."""
        ok = self.allowed[:, t] & self.loads.fits(t) & (self.next_free != NO_FREE_SLOT)
        if among is not None:
            ok &= among
        open_classes = np.flatnonzero(ok)
        if not len(open_classes):
            return None
        first = self.next_free[open_classes]
        if self.spread is None:
            return int(open_classes[np.argmin(first)])
        pressure = self.loads.inlets.pressure(t, self.spread)[open_classes]
        # lexsort's last key sorts first: versatility, then pressure, then first free slot.
        order = np.lexsort((first, pressure, self.versatility[open_classes]))
        return int(open_classes[order[0]])

    def _hub_order(self, k: int) -> tuple[int, ...]:
        """Order in which classes are tried for a new network rack: by next free slot, or,
        with ``versatile_hubs_last``, the least versatile first."""
        if self.versatile_hubs_last:
            return (int(self.versatility[k]), self.free[k][0])
        return (self.free[k][0],)

    def fill(self) -> None:
        """As many racks of every type but the network racks as fit, largest IT load
        first."""
        for t in by_it_load(self.site):
            if not self.site.is_network_type(t):
                self.single(t)

    def single(self, t: int) -> None:
        while self.has_room(t):
            k = self.first_class(t)
            if k is None:
                return
            self.put(k, t)

    @cached_property
    def hubs(self) -> list[tuple[int, int]]:
        """(class, network rack type): every class that may hold a network rack serving an
        SU, with the type it holds (asked for by the packings and their local search, not
        by first-fit)."""
        return sorted({(p.hub, self.site.network_type(p.rack_type)) for p in self.data.cable_pairs})

    def fill_network_slots(self) -> None:
        """A network rack in every free slot of every class that may serve an SU, while
        one fits there (and the demand allows)."""
        for k, v in self.hubs:
            while self.free[k] and self.has_room(v) and self.allowed[k, v]:
                if not self.loads.fits(v)[k]:
                    break
                self.put(k, v)

    def sus(self, t: int, su: np.ndarray, hubs: list[int]) -> None:
        """Whole SUs of type t until none can be completed."""
        v = self.site.network_type(t)
        size = self.site.rack_types[t].su_size
        ports = {}  # hub slot -> (class, free ports)
        cells_of: dict[int, np.ndarray] = {}
        n_classes = len(self.data.classes)
        for p in self.data.cable_pairs:
            if p.rack_type != t:
                continue
            # Not setdefault, which builds an array for every pair (30,000 of air-hall-1000's
            # DGX H100 pairs, in each of the start's passes).
            if p.hub not in cells_of:
                cells_of[p.hub] = np.zeros(n_classes, dtype=bool)
            cells_of[p.hub][p.cell] = True
        limit = self._wanted(t)
        while limit == NO_INDEX or self.counts[t] + size <= limit:
            placed = self._one_su(t, v, size, ports, cells_of)
            if placed is None:
                return
            hub_slot, members = placed
            su[members] = len(hubs)
            hubs.append(hub_slot)

    def _one_su(self, t: int, v: int, size: int, ports: dict, cells_of: dict):
        candidates = [(slot, k) for slot, (k, left) in ports.items() if left > 0]
        if self.has_room(v):
            hub_classes = np.isin(np.arange(len(self.data.classes)), list(cells_of))
            fits = np.flatnonzero(hub_classes & self.allowed[:, v] & self.loads.fits(v))
            open_classes = [int(k) for k in fits if self.free[int(k)]]
            # Every class that can take a new network rack, by its next free slot: a
            # planner whose first choice cannot hold a whole SU tries the next one.
            candidates += [(None, k) for k in sorted(open_classes, key=self._hub_order)]
        for hub_slot, hub_class in candidates:
            opened = hub_slot is None
            if opened:
                hub_slot = self.put(hub_class, v)
            members: list[tuple[int, int]] = []
            while len(members) < size and self.has_room(t):
                k = self.first_class(t, cells_of.get(hub_class))
                if k is None:
                    break
                members.append((k, self.put(k, t)))
            if len(members) == size:
                left = self.site.rack_types[v].su_ports if opened else ports[hub_slot][1]
                ports[hub_slot] = (hub_class, left - 1)
                return hub_slot, [slot for _, slot in members]
            for k, slot in reversed(members):
                self.take_back(k, slot, t)
            if opened:
                self.take_back(hub_class, hub_slot, v)
        return None


SPREAD_NORMS = (math.inf, 2.0, 8.0)
"""The norms the spreading construction is tried with; the start is the best of them and
first-fit. No one norm wins everywhere (docs/benchmarks.md): on the air hall the worst
inlet alone (inf) gives 1,120 GPUs and the 2- and 8-norms the optimum 1,152, on
hall-300-thermal inf and 8 give 8,448 and 2 gives 8,192. Each try costs one greedy pass
(about 0.02 s on 300 slots, 0.15 s on 1,000)."""


def greedy_layout(
    site: Site,
    data: ModelData | None = None,
    spread: float | None = None,
    versatile_hubs_last: bool = False,
) -> Assignment:
    """Largest rack first, first slot that passes every check; with ``spread`` (a norm,
    see :meth:`_Inlets.pressure`), the least versatile slot where it heats the inlets
    least (the thermal-aware construction); with ``versatile_hubs_last``, each SU's new
    network rack in the least versatile network slot."""
    data = data or build_model_data(site)
    greedy = Construction(data, spread, versatile_hubs_last)
    su = np.full(site.n_slots, NO_INDEX, dtype=np.int64)
    hubs: list[int] = []
    for t in by_it_load(site):
        if site.is_network_type(t):
            continue
        if site.network_type(t) != NO_INDEX:
            greedy.sus(t, su, hubs)
        else:
            greedy.single(t)
    return Assignment(greedy.placement, su, hubs)


def start_layout(data: ModelData) -> Assignment:
    """The layout the solver starts from: first-fit, or, where inlet rows bind, the
    spreading construction when it scores more (never a worse start than first-fit),
    tried with each norm of :data:`SPREAD_NORMS` and, with a fabric, with network racks
    opened both at the first free slot and in the least versatile slot first: neither
    wins everywhere (on hall-300-thermal the first gives 8,448 GPUs and the second 7,424,
    on the 1,000-slot air hall of docs/benchmarks.md 11,328 and 11,584).
    Only the maximizing objectives are compared; for least facility power first-fit,
    which places just the demand minimums, is kept."""
    first_fit = greedy_layout(data.site, data)
    if not data.inlet_rows or data.site.objective.minimizes:
        return first_fit
    hub_rules = (False, True) if data.site.network is not None else (False,)
    tried = [
        first_fit,
        *(
            greedy_layout(data.site, data, norm, hubs_last)
            for hubs_last in hub_rules
            for norm in SPREAD_NORMS
        ),
    ]
    weights = np.array([*primary_weights(data), 0.0])  # index -1 (empty) scores 0
    # max keeps the first of equals: first-fit unless a spreading layout scores more.
    return max(tried, key=lambda layout: float(weights[layout.placement].sum()))


def packing(data: ModelData, spread: float, caps: dict[int, int] | None = None) -> Construction:
    """A construction that may hold more racks than whole SUs allow: a network rack in
    every network slot where one fits, then every other rack type, largest IT load
    first, one rack at a time by the spreading rule (``spread``, a norm), racks of an SU
    type included, with no SU or cable rule, and at most ``caps`` racks of a type. Where
    inlets bind, building an SU at a time strands its last racks: each SU takes the
    coolest slots near its network rack, and the last network slot finds its
    neighbourhood heated just past the point where eight more racks fit. Packed one at
    a time, the racks fill the hall's inlet headroom evenly; taking racks away never
    heats an inlet or loads a feed, so whole SUs are then cut from the packing by the
    solver (optimizer.solve.packing_search ``Packings``, optimizer.solve.highs
    ``_Neighbourhoods.cut_from_pack``)."""
    greedy = Construction(data, spread, caps=caps)
    greedy.fill_network_slots()
    greedy.fill()
    return greedy


def packed_layout(data: ModelData, spread: float) -> np.ndarray:
    """The placement (slot -> rack type) of :func:`packing` with no caps."""
    return packing(data, spread).placement


def by_it_load(site: Site) -> list[int]:
    """Rack types, largest IT load first (ties by index): the order racks are placed in."""
    return sorted(range(len(site.rack_types)), key=lambda t: (-site.rack_types[t].it_kw, t))


def class_counts(data: ModelData, m: object, placement: np.ndarray) -> dict[int, float]:
    """A placement as counts per slot class: id(place[k, t]) -> count."""
    class_of = class_of_slots(data)
    counts: dict[tuple[int, int], int] = {}
    for s in np.flatnonzero(placement != NO_INDEX):
        key = (int(class_of[s]), int(placement[s]))
        counts[key] = counts.get(key, 0) + 1
    return {id(m.place[k, t]): float(counts.get((k, t), 0)) for k, t in m.pairs}


def greedy_start(data: ModelData, m: object) -> dict[int, float]:
    """The start layout (:func:`start_layout`) as counts per slot class:
    id(place[k, t]) -> count, a start for the solver (the network variables are left for
    HiGHS to complete)."""
    return class_counts(data, m, start_layout(data).placement)
