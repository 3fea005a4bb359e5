"""Model inputs: slots aggregated into classes of interchangeable slots, and power shares.

Slots are interchangeable when they take the same rack types and put a rack's
load on the same power devices, CDU and air zone: the model then only needs to
know *how many* racks of each type go into such a class, not which slot gets
which rack. This removes the symmetry that makes a slot-by-slot model hopeless
at hall scale (see docs/formulation.md). Racks already installed form classes of
their own, fixed to their type.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from optimizer.site.arrays import NO_INDEX, CableGeometry, Site

SHARE_EPS = 1e-12


@dataclass(frozen=True)
class SlotClass:
    """Interchangeable slots: same feeds and share, CDU, air zone and eligible types."""

    slots: tuple[int, ...]
    """Slot indices in instance order; racks fill them front to back."""
    feeds: tuple[int, int]
    primary_share: float
    cdu: int
    air_zone: int
    types: tuple[int, ...]
    """Rack types the slots may take (by cooling, floor rating and air-heat limit)."""
    installed_type: int = NO_INDEX
    """For a class holding one installed rack: its type, which the model keeps fixed."""

    @property
    def size(self) -> int:
        return len(self.slots)


@dataclass(frozen=True)
class FailoverRow:
    """Share of each class's rack load that device ``device`` carries while ``failed`` is out."""

    failed: int
    device: int
    share: np.ndarray


@dataclass(frozen=True)
class CablePair:
    """Racks of SU type ``rack_type`` in class ``cell`` may hang off a network rack in
    class ``hub``: every slot of one is within the type's reach of every slot of the other."""

    cell: int
    hub: int
    rack_type: int
    mean_m: float
    """Mean cable length over the slot pairs: the estimate the cable objective uses."""


@dataclass(frozen=True)
class InletRow:
    """The inlet temperature rule of one slot whose rack could be too hot:

        sum_j D[i, j] air(j) <= headroom_t  if a rack of type t stands in slot i,

    where headroom_t = inlet limit of t - supply temperature of the slot. Written as one
    row with ``big_m`` = the most heat that can recirculate to i, so an empty slot leaves
    its neighbours free (docs/formulation.md, family inlet-temperature)."""

    slot: int
    own: int
    """Class of the slot (a class of its own)."""
    sources: np.ndarray
    """Classes whose racks' exhaust reaches the slot (each of one slot)."""
    d_c_per_kw: np.ndarray
    """D[i, j] for the slot j of each source class."""
    headroom_c: np.ndarray
    """(rack type,) allowed rise, capped at ``big_m`` (a cap that cannot bind)."""
    big_m: float


@dataclass(frozen=True)
class ModelData:
    site: Site
    classes: tuple[SlotClass, ...]
    normal_share: np.ndarray
    """(class, device): share of a rack's load on each device in normal operation."""
    failover_rows: tuple[FailoverRow, ...]
    """Only the (failed, device) pairs where some load moves onto the device; every other
    pair is implied by the normal-operation limit, which is never above the failover one."""
    cable_pairs: tuple[CablePair, ...] = ()
    inlet_rows: tuple[InletRow, ...] = ()


def _cell_key(site: Site, s: int, run_start: int, rank: int) -> tuple:
    """Extra class key when a fabric is modelled: slots group into cells of at most
    ``cell_slots`` consecutive like slots of one row, so cable reach can be judged per cell."""
    if site.network is None:
        return ()
    return (int(site.slot_row_code[s]), run_start, (rank - run_start) // site.network.cell_slots)


def hot_slots(site: Site, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slots whose inlet could exceed the limit of a rack standing there, and each one's
    most recirculated heat (C): the receivers that need an inlet row. Elsewhere even the
    hottest neighbours leave every rack type within its class, so no row is written.
    ``eligible`` is :meth:`Site.eligible`; an installed rack's slot holds only its type."""
    if site.recirculation is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    eligible = eligible.copy()
    for s, t in site.installed.items():
        eligible[s] = False
        eligible[s, t] = True
    air = np.array([t.air_kw for t in site.rack_types])
    most_air = np.where(eligible, air[None, :], 0.0).max(axis=1, initial=0.0)
    worst = site.recirculation @ most_air
    headroom = site.type_inlet_limit_c[None, :] - site.slot_supply_temp_c[:, None]
    tightest = np.where(eligible, headroom, np.inf).min(axis=1, initial=np.inf)
    hot = np.flatnonzero(worst > tightest + 1e-9)
    return hot, worst[hot]


def positional_slots(site: Site, hot: np.ndarray) -> frozenset[int]:
    """Slots whose position matters: hot receivers and every slot whose exhaust reaches
    one. Each becomes a class of its own."""
    if not len(hot):
        return frozenset()
    return frozenset(int(s) for s in hot) | {int(j) for j in site.recirculation[hot].indices}


def slot_classes(
    site: Site,
    eligible: np.ndarray,
    positional: frozenset[int] = frozenset(),
    apart: np.ndarray | None = None,
) -> tuple[SlotClass, ...]:
    """Group the free slots into classes; each installed rack and each ``positional`` slot
    gets a class of its own.

    Without a fabric a class may span the whole facility. With one, classes are also
    cut into cells of consecutive slots of a row, in row order (see docs/formulation.md).
    ``eligible`` is :meth:`Site.eligible`. Slots with different ``apart`` values (per
    slot, e.g. the phase a slot opens in) never share a class.
    """
    groups: dict[tuple, list[int]] = defaultdict(list)
    classes: list[SlotClass] = []
    order = np.lexsort((site.slot_position, site.slot_row_code))
    run_key: tuple | None = None
    run_start = 0
    for rank, s in enumerate(order):
        s = int(s)
        feeds = (int(site.slot_feeds[s, 0]), int(site.slot_feeds[s, 1]))
        types = tuple(int(t) for t in np.flatnonzero(eligible[s]))
        key = (
            feeds,
            float(site.slot_primary_share[s]),
            int(site.slot_cdu[s]),
            int(site.slot_air_zone[s]),
            types,
        )
        if s in site.installed:
            classes.append(SlotClass((s,), *key, installed_type=site.installed[s]))
            run_key = None
            continue
        if not types:
            run_key = None
            continue
        if s in positional:
            classes.append(SlotClass((s,), *key))
            run_key = None
            continue
        row_key = (int(site.slot_row_code[s]), key)
        if row_key != run_key:
            run_key, run_start = row_key, rank
        extra = () if apart is None else (int(apart[s]),)
        groups[(key, _cell_key(site, s, run_start, rank), *extra)].append(s)
    classes.extend(SlotClass(tuple(sorted(slots)), *group[0]) for group, slots in groups.items())
    classes.sort(key=lambda c: c.slots[0])
    return tuple(classes)


def _rows_compatible(site: Site, rows: np.ndarray, hub_rows: np.ndarray) -> np.ndarray:
    """(rows, hub rows): the instance's SU locality rule between a rack's row and its
    network rack's row, for every pair at once."""
    locality = site.network.su_locality
    rack, hub = rows[:, None], hub_rows[None, :]
    if locality == "row":
        return rack == hub
    if locality == "adjacent_rows":
        same_hall = site.row_hall[rack] == site.row_hall[hub]
        return same_hall & (np.abs(site.row_order[rack] - site.row_order[hub]) <= 1)
    return np.ones((len(rows), len(hub_rows)), dtype=bool)


def _cell_distances(
    geometry: CableGeometry, classes: tuple[SlotClass, ...], cells: list[int], hubs: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Farthest and mean cable length between the slots of each cell and each hub class."""

    def stacked(group: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        slots = np.concatenate([np.array(classes[k].slots) for k in group])
        sizes = np.array([classes[k].size for k in group])
        return slots, np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes

    cell_slots, cell_starts, cell_sizes = stacked(cells)
    hub_slots, hub_starts, hub_sizes = stacked(hubs)
    lengths = geometry.pairwise(cell_slots, hub_slots)
    farthest = np.maximum.reduceat(
        np.maximum.reduceat(lengths, cell_starts, axis=0), hub_starts, axis=1
    )
    total = np.add.reduceat(np.add.reduceat(lengths, cell_starts, axis=0), hub_starts, axis=1)
    return farthest, total / (cell_sizes[:, None] * hub_sizes[None, :])


def cable_pairs(site: Site, classes: tuple[SlotClass, ...]) -> tuple[CablePair, ...]:
    """(cell, hub, SU type) triples within reach, judged on the farthest pair of slots.

    An SU and its network rack stand in the same hall (each hall has its own leaf
    layer), so pairs are sought hall by hall, from one matrix of slot-to-slot lengths.
    """
    if site.network is None:
        return ()
    geometry = site.network.geometry
    hall_of = [class_hall(site, c) for c in classes]
    pairs = []
    hub_types = {site.network_type(t) for t in range(len(site.rack_types))} - {NO_INDEX}
    for hall in sorted(set(hall_of)):
        members = [k for k in range(len(classes)) if hall_of[k] == hall]
        hub_members = [k for k in members if hub_types & set(allowed_types(classes[k]))]
        if not hub_members:
            continue
        farthest, mean = _cell_distances(geometry, classes, members, hub_members)
        rows = site.slot_row_code[[classes[k].slots[0] for k in members]]
        hub_rows = site.slot_row_code[[classes[k].slots[0] for k in hub_members]]
        compatible = _rows_compatible(site, rows, hub_rows)
        for t in range(len(site.rack_types)):
            hub_type = site.network_type(t)
            if hub_type == NO_INDEX:
                continue
            reach = site.reach_m(t) + 1e-9
            cells = [i for i, k in enumerate(members) if t in allowed_types(classes[k])]
            hubs = [j for j, k in enumerate(hub_members) if hub_type in allowed_types(classes[k])]
            within = (farthest[np.ix_(cells, hubs)] <= reach) & compatible[np.ix_(cells, hubs)]
            for i, j in zip(*np.nonzero(within), strict=True):  # cell by cell, as listed
                cell, hub = cells[i], hubs[j]
                pairs.append(CablePair(members[cell], hub_members[hub], t, float(mean[cell, hub])))
    return tuple(pairs)


def class_hall(site: Site, c: SlotClass) -> int:
    """The hall of class ``c`` (a class never spans halls: its slots share a row)."""
    return int(site.row_hall[site.slot_row_code[c.slots[0]]])


def class_of_slots(data: ModelData) -> np.ndarray:
    """(slot,) the class each slot belongs to, NO_INDEX for a slot in none."""
    class_of = np.full(data.site.n_slots, NO_INDEX, dtype=np.int64)
    for k, c in enumerate(data.classes):
        class_of[list(c.slots)] = k
    return class_of


def allowed_types(c: SlotClass) -> tuple[int, ...]:
    """Rack types the class may hold: its installed rack's, or every eligible type."""
    return (c.installed_type,) if c.installed_type != NO_INDEX else c.types


class _Shares:
    """Share of a rack's load on every device, for every slot class, by failure.

    A rack's load flows through each feed and every device above it. When a failure
    cuts one feed, the other carries the whole rack; when it cuts both, the rack is
    down and loads nothing. Vectorized over classes: one (class, device) array per
    failure.
    """

    def __init__(self, site: Site, classes: tuple[SlotClass, ...]) -> None:
        self.tree = site.power_tree
        feeds = np.array([c.feeds for c in classes], dtype=np.int64).reshape(-1, 2)
        self.dual = feeds[:, 1] != NO_INDEX
        self.path_a = self.tree.paths(feeds[:, 0])
        self.path_b = np.where(self.dual[:, None], self.tree.paths(np.maximum(feeds[:, 1], 0)), 0.0)
        shares = np.array([c.primary_share for c in classes], dtype=float)
        self.share_a = np.where(self.dual, shares, 1.0)

    def normal(self) -> np.ndarray:
        return self.share_a[:, None] * self.path_a + (1 - self.share_a)[:, None] * self.path_b

    def classes_through(self, failed: int) -> np.ndarray:
        """The classes with a feed through device ``failed``: the only ones whose load
        moves when it fails (every other class keeps its normal shares)."""
        return np.flatnonzero((self.path_a[:, failed] > 0) | (self.path_b[:, failed] > 0))

    def after(self, failed: int, moved: np.ndarray) -> np.ndarray:
        """(moved classes, device) shares of the classes ``moved`` once ``failed`` fails."""
        path_a, path_b, share_a = self.path_a[moved], self.path_b[moved], self.share_a[moved]
        lost_a = path_a[:, failed] > 0
        lost_b = path_b[:, failed] > 0
        weight_a = np.where(lost_a, 0.0, np.where(lost_b, 1.0, share_a))
        weight_b = np.where(lost_b | ~self.dual[moved], 0.0, np.where(lost_a, 1.0, 1 - share_a))
        return weight_a[:, None] * path_a + weight_b[:, None] * path_b


def inlet_rows(
    site: Site, classes: tuple[SlotClass, ...], hot: np.ndarray, worst: np.ndarray
) -> tuple[InletRow, ...]:
    """One :class:`InletRow` per hot slot that a class holds (slots no rack type may take
    are in no class and stay empty)."""
    class_of = {c.slots[0]: k for k, c in enumerate(classes) if c.size == 1}
    rows = []
    for i, big_m in zip(hot, worst, strict=True):
        if int(i) not in class_of:
            continue
        d = site.recirculation[[int(i)]]
        found = [(class_of.get(int(j)), v) for j, v in zip(d.indices, d.data, strict=True)]
        sources = [(k, v) for k, v in found if k is not None]
        headroom = site.type_inlet_limit_c - site.slot_supply_temp_c[i]
        rows.append(
            InletRow(
                int(i),
                class_of[int(i)],
                np.array([k for k, _ in sources], dtype=np.int64),
                np.array([v for _, v in sources]),
                np.minimum(headroom, big_m),
                float(big_m),
            )
        )
    return tuple(rows)


def build_model_data(site: Site, classes: tuple[SlotClass, ...] | None = None) -> ModelData:
    """The model inputs of ``site``; ``classes`` imposes slot classes made elsewhere (one
    set shared by every phase of a build-out, models.phases), each listing the types
    ``site`` allows its slots."""
    eligible = site.eligible
    hot, worst = hot_slots(site, eligible)
    if classes is None:
        classes = slot_classes(site, eligible, positional_slots(site, hot))
    shares = _Shares(site, classes)
    normal = shares.normal()
    rows: list[FailoverRow] = []
    carried = (shares.path_a + shares.path_b).any(axis=0)  # a failure elsewhere moves no load
    for failed in np.flatnonzero(site.device_can_fail & carried):
        failed = int(failed)
        dead = shares.tree.fed_through(failed)  # the failed device and everything below it
        moved = shares.classes_through(failed)
        after = shares.after(failed, moved)
        gains = (after > normal[moved] + SHARE_EPS).any(axis=0) & ~dead
        for d in np.flatnonzero(gains):
            share = normal[:, d].copy()
            share[moved] = after[:, d]
            rows.append(FailoverRow(failed, int(d), share))
    return ModelData(
        site,
        classes,
        normal,
        tuple(rows),
        cable_pairs(site, classes),
        inlet_rows(site, classes, hot, worst),
    )


def unplaceable_minimums(data: ModelData) -> list[str]:
    """Rack types demanded with a minimum that no slot class can take at all (e.g. every
    liquid slot already holds an installed rack): no solve is needed to refuse them."""
    site = data.site
    placeable = {t for c in data.classes for t in allowed_types(c)}
    return [
        f"{site.rack_types[t].name}: at least {int(site.demand_min[t])} demanded, but no free "
        "slot takes it (cooling, floor, air-heat or network-slot rules, or installed racks)"
        for t in range(len(site.rack_types))
        if site.demand_min[t] > 0 and t not in placeable
    ]
