"""Independent check of a layout against every constraint, from the layout alone.

Nothing here reads the MILP or solver values: loads are recomputed rack by rack
from which rack type stands in which slot, with plain numpy. ``solve`` runs this
check before it writes a layout, and the loads it computes are the ones the layout
dataset reports, so every figure a planner reads has been recomputed this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.thermal import inlet_temperatures

EMPTY = NO_INDEX
TOLERANCE = 1e-6
INLET_TOLERANCE_K = 0.01
"""Inlet temperatures are judged to 0.01 K, far below any sensor's accuracy (and the
0.1 C the summary prints): the MILP's inlet rows carry a big-M coefficient, so the
solver's integrality tolerance (1e-6 of a rack) can move a rounded layout's inlet by
up to ~1e-6 x M, and M reaches hundreds or thousands of kelvin with a CFD matrix whose
every entry is large (models/thermal.py)."""


@dataclass(frozen=True)
class Violation:
    """One broken rule, with the numbers a facility engineer needs to see it."""

    rule: str
    subject: str
    load: float
    limit: float
    unit: str
    case: str = ""
    minimum: bool = False
    """True for a lower bound (e.g. a demand minimum): the load falls short of the limit."""

    @property
    def excess(self) -> float:
        """How far the load lies beyond the limit, in the broken direction."""
        return self.limit - self.load if self.minimum else self.load - self.limit

    def describe(self) -> str:
        case = f" (if {self.case} fails)" if self.case else ""
        if self.minimum:
            return (
                f"{self.rule}: {self.subject}: {self.load:,.1f} {self.unit} < minimum "
                f"{self.limit:,.1f} {self.unit} (short {self.excess:,.1f} {self.unit})"
            )
        return (
            f"{self.rule}: {self.subject}{case}: {self.load:,.1f} {self.unit} > limit "
            f"{self.limit:,.1f} {self.unit} (excess {self.excess:,.1f} {self.unit})"
        )


@dataclass
class Loads:
    """Every load recomputed from a layout."""

    device_normal_kw: np.ndarray
    device_failover_kw: np.ndarray
    """Worst load over all single failures (the normal load when no failure raises it),
    capped racks drawing their capped draw."""
    device_worst_failure: list[str]
    cdu_heat_kw: np.ndarray
    cdu_flow_lpm: np.ndarray
    air_zone_heat_kw: np.ndarray
    it_kw: float
    cdu_cooling_kw: np.ndarray
    """Cooling power (plant and pumps) for each CDU group's liquid heat."""
    air_zone_cooling_kw: np.ndarray
    """Cooling power (plant and fans) for each air zone's heat."""
    cable_m: np.ndarray
    """Per slot: cable length of an SU rack to its network rack, or of a network rack to
    the spine; 0 where no fabric cable is modelled."""
    inlet_temp_c: np.ndarray
    """Per slot: supply air plus recirculated exhaust heat (what a rack there breathes);
    NaN where the zone gives no supply temperature."""
    capping: Capping
    """What the failover loads rely on capped racks for."""

    @property
    def cooling_kw(self) -> float:
        return float(self.cdu_cooling_kw.sum() + self.air_zone_cooling_kw.sum())

    @property
    def facility_kw(self) -> float:
        return self.it_kw + self.cooling_kw

    @property
    def pue(self) -> float:
        """Power usage effectiveness: facility power over IT power (NaN when empty)."""
        return self.facility_kw / self.it_kw if self.it_kw > 0 else float("nan")


@dataclass
class CheckReport:
    loads: Loads
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _over(load: float | np.ndarray, limit: float | np.ndarray) -> bool | np.ndarray:
    """Whether the load breaks the limit (elementwise for arrays)."""
    return load > limit + TOLERANCE * np.fmax(1.0, np.abs(limit))


def _feed_paths(site: Site, racks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rack, device) arrays: 1 where a rack's A feed, and its B feed if it has one,
    draws power through the device."""
    feed_a = site.slot_feeds[racks, 0]
    feed_b = site.slot_feeds[racks, 1]
    dual = feed_b != NO_INDEX
    tree = site.power_tree
    return tree.paths(feed_a), np.where(dual[:, None], tree.paths(np.where(dual, feed_b, 0)), 0.0)


def _feed_weights(
    site: Site, racks: np.ndarray, paths: tuple[np.ndarray, np.ndarray], failed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rack,) share of each rack's draw on its A feed and on its B feed with device
    ``failed`` out (-1: normal operation): a rack that loses one feed puts its whole draw
    on the other; one that loses both draws nothing."""
    dual = site.slot_feeds[racks, 1] != NO_INDEX
    share_a = np.where(dual, site.slot_primary_share[racks], 1.0)
    path_a, path_b = paths
    if failed != NO_INDEX:
        lost_a = path_a[:, failed] > 0
        lost_b = dual & (path_b[:, failed] > 0)
        share_a = np.where(lost_a, 0.0, np.where(lost_b, 1.0, share_a))
        share_b = np.where(lost_b, 0.0, np.where(lost_a & dual, 1.0, 1.0 - share_a))
    else:
        share_b = 1.0 - share_a
    return share_a, np.where(dual, share_b, 0.0)


def _device_loads(
    site: Site,
    racks: np.ndarray,
    draw_kw: np.ndarray,
    paths: tuple[np.ndarray, np.ndarray],
    failed: int,
) -> np.ndarray:
    """Load on every device with device ``failed`` out (-1: normal operation), each rack
    drawing ``draw_kw`` (its IT load, or in a failure its capped draw)."""
    share_a, share_b = _feed_weights(site, racks, paths, failed)
    return (draw_kw * share_a) @ paths[0] + (draw_kw * share_b) @ paths[1]


@dataclass
class Capping:
    """What capped failover relies on (all zero and empty when no rack type is capped)."""

    uncapped_failover_kw: np.ndarray
    """(device,) worst load over single failures if no rack were capped."""
    racks: np.ndarray
    """(device,) racks that must be capped when the device fails: every cappable rack
    drawing, during that failure, through a device its full draw would overload."""
    shed_kw: np.ndarray
    """(device,) power those racks shed when the device fails (IT load minus capped draw)."""
    slot_cases: list[list[str]]
    """Per slot: the failed devices whose failure relies on capping the slot's rack."""

    @classmethod
    def none(cls, site: Site, worst: np.ndarray) -> Capping:
        n = len(site.device_ids)
        return cls(
            worst.copy(), np.zeros(n, dtype=np.int64), np.zeros(n), [[] for _ in site.slot_ids]
        )

    def record(
        self,
        site: Site,
        racks: np.ndarray,
        it_kw: np.ndarray,
        shed_kw: np.ndarray,
        paths: tuple[np.ndarray, np.ndarray],
        failed: int,
        alive: np.ndarray,
    ) -> None:
        """Add failure ``failed`` (``alive``: the devices still powered): their loads at
        full draw, and which racks (IT load ``it_kw``, shedding ``shed_kw`` when capped)
        must be capped for the failure."""
        share_a, share_b = _feed_weights(site, racks, paths, failed)
        full = (it_kw * share_a) @ paths[0] + (it_kw * share_b) @ paths[1]
        raised = alive & (full > self.uncapped_failover_kw)
        self.uncapped_failover_kw[raised] = full[raised]
        overloaded = np.flatnonzero(alive & _over(full, site.device_failover_limit_kw))
        if not len(overloaded):
            return
        through = (share_a > 0) & paths[0][:, overloaded].any(axis=1)
        through |= (share_b > 0) & paths[1][:, overloaded].any(axis=1)
        capped = through & (shed_kw > 0)
        self.racks[failed] = int(capped.sum())
        self.shed_kw[failed] = float(shed_kw[capped].sum())
        for s in racks[capped]:
            self.slot_cases[s].append(site.device_ids[failed])


def _check_network(
    site: Site,
    placement: np.ndarray,
    su: np.ndarray,
    network_slot: list[int],
    violations: list[Violation],
) -> np.ndarray:
    """SU membership, size, network rack, ports, reach, locality and spine; returns the
    cable length per slot."""
    cable = np.zeros(site.n_slots)
    net = site.network
    if net is None:
        return cable
    types, ids = site.rack_types, site.slot_ids
    for s in np.flatnonzero(placement != EMPTY):
        t = int(placement[s])
        needs_su = site.network_type(t) != NO_INDEX
        if needs_su and su[s] == NO_INDEX:
            violations.append(
                Violation("network-su", f"{types[t].name} in {ids[s]} is in no SU", 1, 0, "racks")
            )
        elif not needs_su and su[s] != NO_INDEX:
            violations.append(
                Violation(
                    "network-su", f"{types[t].name} in {ids[s]} cannot join an SU", 1, 0, "racks"
                )
            )
        if site.is_network_type(t) and not site.slot_network_ok[s]:
            violations.append(
                Violation(
                    "slot-network",
                    f"network rack in {ids[s]} (not a network slot, or beyond spine reach)",
                    1,
                    0,
                    "racks",
                )
            )
    served = np.zeros(site.n_slots, dtype=np.int64)
    for i, hub in enumerate(network_slot):
        members = np.flatnonzero(su == i)
        kinds = {int(placement[s]) for s in members}
        if len(kinds) != 1 or EMPTY in kinds:
            violations.append(
                Violation(
                    "network-su-type",
                    f"SU {i} mixes rack types or includes empty slots",
                    len(kinds),
                    1,
                    "types",
                )
            )
            continue
        t = kinds.pop()
        spec = types[t]
        if len(members) != spec.su_size:
            violations.append(
                Violation(
                    "network-su-size",
                    f"SU {i} of {spec.name}",
                    len(members),
                    spec.su_size,
                    "racks",
                    minimum=len(members) < spec.su_size,  # an SU short of racks is below it
                )
            )
        if placement[hub] != site.network_type(t):
            violations.append(
                Violation(
                    "network-rack",
                    f"SU {i}: slot {ids[hub]} holds no {spec.network_rack}",
                    1,
                    0,
                    "racks",
                )
            )
            continue
        served[hub] += 1
        lengths = net.geometry.between(members, np.full(len(members), hub))
        cable[members] = lengths
        for s, length in zip(members, lengths, strict=True):
            if _over(float(length), site.reach_m(t)):
                violations.append(
                    Violation(
                        "network-reach",
                        f"{spec.name} in {ids[s]} to network rack {ids[hub]} (SU {i})",
                        float(length),
                        site.reach_m(t),
                        "m",
                    )
                )
        hub_row = int(site.slot_row_code[hub])
        for s in members:
            row = int(site.slot_row_code[s])
            apart = (
                0
                if row == hub_row
                else abs(int(site.row_order[row]) - int(site.row_order[hub_row]))
                if site.row_hall[row] == site.row_hall[hub_row]
                else np.inf
            )
            allowed = {"row": 0, "adjacent_rows": 1}.get(net.su_locality, np.inf)
            if apart > allowed:
                violations.append(
                    Violation(
                        "network-locality",
                        f"{ids[s]} of SU {i} is {apart} rows from its network rack {ids[hub]}",
                        float(apart),
                        float(allowed),
                        "rows",
                    )
                )
    for hub in np.flatnonzero(served):
        ports = types[int(placement[hub])].su_ports
        if served[hub] > ports:
            violations.append(
                Violation(
                    "network-ports",
                    f"network rack in {ids[hub]}",
                    float(served[hub]),
                    float(ports),
                    "SUs",
                )
            )
    if net.spine is not None:
        hubs = np.array(
            [
                s
                for s in np.flatnonzero(placement != EMPTY)
                if site.is_network_type(int(placement[s]))
            ],
            dtype=np.int64,
        )
        if len(hubs):
            cable[hubs] = net.spine_distance(site.slot_x_m[hubs], site.slot_y_m[hubs])
            for s in hubs:
                if _over(float(cable[s]), net.spine[2]):
                    violations.append(
                        Violation(
                            "network-spine",
                            f"network rack in {ids[s]}",
                            float(cable[s]),
                            net.spine[2],
                            "m",
                        )
                    )
    return cable


def occupied_inlet_rise(
    site: Site, placement: np.ndarray, inlet_temp_c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slots, rise above supply air, rise the rack's class allows) of every occupied slot
    whose zone gives a supply temperature."""
    supply = site.slot_supply_temp_c
    slots = np.flatnonzero((placement != EMPTY) & ~np.isnan(supply))
    rise = inlet_temp_c[slots] - supply[slots]
    return slots, rise, site.type_inlet_limit_c[placement[slots]] - supply[slots]


def check_layout(
    site: Site,
    placement: np.ndarray,
    su: np.ndarray | None = None,
    su_network_slot: list[int] | None = None,
) -> CheckReport:
    """Recompute every load of ``placement`` (rack type index per slot, -1 empty), and with
    a fabric the SUs (``su``: SU id per slot, ``su_network_slot``: network rack slot per
    SU), and list every rule broken."""
    violations: list[Violation] = []
    placement = np.asarray(placement)
    su = np.full(site.n_slots, NO_INDEX) if su is None else np.asarray(su)
    cable = _check_network(site, placement, su, list(su_network_slot or []), violations)
    types = site.rack_types
    racks = np.flatnonzero(placement != EMPTY)
    kinds = placement[racks]
    it_kw = np.array([types[t].it_kw for t in kinds], dtype=float)
    liquid_kw = np.array([types[t].liquid_kw for t in kinds], dtype=float)
    air_kw = it_kw - liquid_kw
    flow = np.array([types[t].flow_lpm for t in kinds], dtype=float)

    for s, t in zip(racks, kinds, strict=True):
        spec, slot = types[t], site.slot_ids[s]
        cdu = int(site.slot_cdu[s])
        if spec.needs_liquid and not (site.slot_liquid[s] and cdu != NO_INDEX):
            violations.append(
                Violation(
                    "slot-cooling",
                    f"{spec.name} in {slot} (no liquid loop)",
                    spec.liquid_kw,
                    0.0,
                    "kW",
                )
            )
        elif spec.needs_liquid and _over(site.cdu_supply_temp_c[cdu], site.type_water_max_c[t]):
            violations.append(
                Violation(
                    "slot-water",
                    f"{spec.name} in {slot} on CDU {site.cdu_ids[cdu]}",
                    float(site.cdu_supply_temp_c[cdu]),
                    float(site.type_water_max_c[t]),
                    "C",
                )
            )
        if _over(spec.weight_kg, site.slot_floor_kg[s]):
            violations.append(
                Violation(
                    "slot-floor",
                    f"{spec.name} in {slot}",
                    spec.weight_kg,
                    float(site.slot_floor_kg[s]),
                    "kg",
                )
            )
        if _over(spec.air_kw, site.slot_air_kw_max[s]):
            violations.append(
                Violation(
                    "slot-air-heat",
                    f"{spec.name} in {slot}",
                    spec.air_kw,
                    float(site.slot_air_kw_max[s]),
                    "kW",
                )
            )
    for s, t in site.installed.items():
        if placement[s] != t:
            violations.append(
                Violation(
                    "installed",
                    f"{types[t].name} installed in {site.slot_ids[s]} was moved",
                    1,
                    0,
                    "racks",
                )
            )
    counts = np.bincount(kinds, minlength=len(types))
    for t, spec in enumerate(types):
        if counts[t] < site.demand_min[t]:
            violations.append(
                Violation(
                    "demand-min",
                    spec.name,
                    float(counts[t]),
                    float(site.demand_min[t]),
                    "racks",
                    minimum=True,
                )
            )
        if site.demand_max[t] != NO_INDEX and counts[t] > site.demand_max[t]:
            violations.append(
                Violation(
                    "demand-max", spec.name, float(counts[t]), float(site.demand_max[t]), "racks"
                )
            )

    paths = _feed_paths(site, racks)
    normal = _device_loads(site, racks, it_kw, paths, NO_INDEX)
    failover_kw = np.array([types[t].failover_kw for t in kinds], dtype=float)
    worst = normal.copy()
    capping = Capping.none(site, normal)
    worst_case = [""] * len(site.device_ids)
    for d in np.flatnonzero(_over(normal, site.device_limit_kw)):
        load, limit = float(normal[d]), float(site.device_limit_kw[d])
        violations.append(Violation("power-normal", site.device_ids[d], load, limit, "kW"))
    # A failure no rack draws through moves no load: every device keeps its normal load,
    # which matters only where that already breaks a failover limit.
    carried = (paths[0] + paths[1]).any(axis=0)
    normal_beyond_failover = _over(normal, site.device_failover_limit_kw).any()
    for f in np.flatnonzero(site.device_can_fail & (carried | normal_beyond_failover)):
        after = _device_loads(site, racks, failover_kw, paths, int(f)) if carried[f] else normal
        alive = ~site.power_tree.fed_through(int(f))  # not f, nor anything below it
        if carried[f] and site.capping:
            capping.record(site, racks, it_kw, it_kw - failover_kw, paths, int(f), alive)
        for d in np.flatnonzero(alive & (after > worst + TOLERANCE)):
            worst[d], worst_case[d] = after[d], site.device_ids[f]
        for d in np.flatnonzero(alive & _over(after, site.device_failover_limit_kw)):
            violations.append(
                Violation(
                    "power-failover",
                    site.device_ids[d],
                    float(after[d]),
                    float(site.device_failover_limit_kw[d]),
                    "kW",
                    case=site.device_ids[f],
                )
            )

    if not site.capping:  # every rack draws in full in a failure too
        capping.uncapped_failover_kw = worst.copy()
    slot_cdu = site.slot_cdu[racks]
    cdu_heat = np.zeros(len(site.cdu_ids))
    cdu_flow = np.zeros(len(site.cdu_ids))
    served = slot_cdu != NO_INDEX
    np.add.at(cdu_heat, slot_cdu[served], liquid_kw[served])
    np.add.at(cdu_flow, slot_cdu[served], flow[served])
    zone_heat = np.zeros(len(site.air_zone_ids))
    np.add.at(zone_heat, site.slot_air_zone[racks], air_kw)
    for rule, names, load, capacity, unit in (
        ("cdu-heat", site.cdu_ids, cdu_heat, site.cdu_heat_capacity_kw, "kW"),
        ("cdu-flow", site.cdu_ids, cdu_flow, site.cdu_flow_capacity_lpm, "L/min"),
        ("air-zone-heat", site.air_zone_ids, zone_heat, site.air_zone_capacity_kw, "kW"),
    ):
        violations.extend(
            Violation(rule, name, float(load[i]), float(capacity[i]), unit)
            for i, name in enumerate(names)
            if _over(load[i], capacity[i])
        )

    slot_air_kw = np.zeros(site.n_slots)
    slot_air_kw[racks] = air_kw
    inlet = inlet_temperatures(site.slot_supply_temp_c, site.recirculation, slot_air_kw)
    limit = site.type_inlet_limit_c[kinds]
    violations.extend(
        Violation(
            "inlet-temp", f"{types[t].name} in {site.slot_ids[s]}", float(inlet[s]), float(lim), "C"
        )
        for s, t, lim in zip(racks, kinds, limit, strict=True)
        if inlet[s] > lim + INLET_TOLERANCE_K
    )
    loads = Loads(
        normal,
        worst,
        worst_case,
        cdu_heat,
        cdu_flow,
        zone_heat,
        float(it_kw.sum()),
        cdu_heat * site.cdu_cooling_kw_per_kw,
        zone_heat * site.air_zone_cooling_kw_per_kw,
        cable,
        inlet,
        capping,
    )
    if site.utility_limit_kw is not None and _over(loads.facility_kw, site.utility_limit_kw):
        violations.append(
            Violation(
                "facility-power", "utility", loads.facility_kw, float(site.utility_limit_kw), "kW"
            )
        )
    return CheckReport(loads, violations)
