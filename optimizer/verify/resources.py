"""The resource table: every capacity of a site with its load in one layout, and one label each.

A planner meets the same capacities in the solve summary, ``next``, ``compare``,
``report`` and ``explain``; they all read this table (or, for a layout dataset,
:func:`optimizer.results.resources.layout_resources`, which builds the same rows from
the dataset's variables), and every label comes from :func:`label`, so a resource
carries one name everywhere:

- ``power-normal``: ``UPS-A (normal)``, kW, family power
- ``power-failover``: ``UPS-A (if UPS-B fails)``, kW, power
- ``cdu-heat`` and ``cdu-flow``: ``CDU C1 heat`` (kW), ``CDU C1 flow`` (L/min), liquid cooling
- ``air-zone-heat``: ``air zone Z1``, kW, air cooling
- ``facility-power``: ``utility``, kW, utility
- ``inlet-temp``: ``inlet at H1-R03-07``, K, inlet temperature
- ``slots`` and ``liquid-slots``: ``slots``, ``liquid slots``, slots, slots

(each kind is named after the checker rule that guards it).

A device is listed in normal operation and, when some single failure raises its load,
at its worst failure (the failover limit against the load with that device out). An
inlet's load is its rise above the supply air, its limit the rise its rack's class
allows, for every occupied slot whose zone gives a supply temperature. Per-slot
eligibility rules (floor rating, a slot's air-heat limit, water class, network slots,
cable reach) are not capacities: a rack either may stand in a slot or not, nothing
accumulates, so they are judged by the checker and kept out of this table.

Which resource binds is decided by :func:`ranked`: the highest utilization, rounded to
9 decimals so that two loads equal up to floating-point noise (the two sides of a 2N
pair) tie, and ties go to the resource listed first in the table (families in
:data:`FAMILIES` order; within a family, in the instance's order of devices, CDU
groups, zones and slots; a device's normal row before its failover row).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from optimizer.site.arrays import Site
from optimizer.site.thermal import rise_share
from optimizer.verify.check import (
    EMPTY,
    INLET_TOLERANCE_K,
    TOLERANCE,
    Loads,
    occupied_inlet_rise,
)

FAMILIES = ("power", "liquid cooling", "air cooling", "utility", "inlet temperature", "slots")
"""Resource families, in table order."""


class Kind(StrEnum):
    """What a row of the table measures; named like the checker rule that guards it."""

    POWER_NORMAL = "power-normal"
    POWER_FAILOVER = "power-failover"
    CDU_HEAT = "cdu-heat"
    CDU_FLOW = "cdu-flow"
    AIR_ZONE_HEAT = "air-zone-heat"
    UTILITY = "facility-power"
    INLET = "inlet-temp"
    SLOTS = "slots"
    LIQUID_SLOTS = "liquid-slots"


_FAMILY = {
    Kind.POWER_NORMAL: "power",
    Kind.POWER_FAILOVER: "power",
    Kind.CDU_HEAT: "liquid cooling",
    Kind.CDU_FLOW: "liquid cooling",
    Kind.AIR_ZONE_HEAT: "air cooling",
    Kind.UTILITY: "utility",
    Kind.INLET: "inlet temperature",
    Kind.SLOTS: "slots",
    Kind.LIQUID_SLOTS: "slots",
}
_UNIT = {
    Kind.POWER_NORMAL: "kW",
    Kind.POWER_FAILOVER: "kW",
    Kind.CDU_HEAT: "kW",
    Kind.CDU_FLOW: "L/min",
    Kind.AIR_ZONE_HEAT: "kW",
    Kind.UTILITY: "kW",
    Kind.INLET: "K",
    Kind.SLOTS: "slots",
    Kind.LIQUID_SLOTS: "slots",
}
_LABEL = {
    Kind.POWER_NORMAL: "{subject} (normal)",
    Kind.POWER_FAILOVER: "{subject} (if {case} fails)",
    Kind.CDU_HEAT: "CDU {subject} heat",
    Kind.CDU_FLOW: "CDU {subject} flow",
    Kind.AIR_ZONE_HEAT: "air zone {subject}",
    Kind.UTILITY: "utility",
    Kind.INLET: "inlet at {subject}",
    Kind.SLOTS: "slots",
    Kind.LIQUID_SLOTS: "liquid slots",
}


def amount(value: float, unit: str) -> str:
    """A quantity as every command prints it: one decimal with thousands separators, or
    two significant digits where one decimal would show a non-zero amount as 0.0."""
    if value != 0 and abs(value) < 0.05:
        return f"{value:.2g} {unit}"
    return f"{value:,.1f} {unit}"


def label(kind: Kind, subject: str = "", case: str = "") -> str:
    """The one name of a resource: ``subject`` is the device, CDU group, zone or slot id,
    ``case`` the failed device of a failover row."""
    return _LABEL[kind].format(subject=subject, case=case)


def unit(kind: Kind) -> str:
    return _UNIT[kind]


@dataclass(frozen=True)
class Resource:
    """One capacity with its load in a layout."""

    kind: Kind
    subject: str
    """Device, CDU group, air zone or slot id; '' for the utility and the slot counts."""
    load: float
    limit: float
    case: str = ""
    """The failed device a failover row assumes; '' in normal operation."""

    @property
    def label(self) -> str:
        return label(self.kind, self.subject, self.case)

    @property
    def family(self) -> str:
        return _FAMILY[self.kind]

    @property
    def unit(self) -> str:
        return _UNIT[self.kind]

    @property
    def excess(self) -> float:
        """How far the load lies beyond the limit, in the resource's unit (negative: the
        headroom left)."""
        return self.load - self.limit

    @property
    def over(self) -> bool:
        """Whether the load breaks the limit by more than the checker's tolerance (0.01 K
        for an inlet, 1e-6 of the limit for a capacity): what ``verify`` would report."""
        if self.kind is Kind.INLET:
            return self.excess > INLET_TOLERANCE_K
        return self.excess > TOLERANCE * max(1.0, abs(self.limit))

    @property
    def utilization(self) -> float:
        """Load over limit; a zero limit counts as full while unloaded, over once loaded
        (an inlet whose class allows no rise at all)."""
        return float(rise_share(np.float64(self.load), np.float64(self.limit)))


@dataclass(frozen=True)
class Capacities:
    """Load and limit of every resource of one kind: one entry per subject."""

    subjects: list[str]
    load: np.ndarray
    limit: np.ndarray
    cases: list[str] | None = None
    """Failover rows only: the failed device behind each worst load ('' when no failure
    raises it, and then there is no failover row)."""


def table(per_kind: dict[Kind, Capacities]) -> list[Resource]:
    """The rows in table order: by family (:data:`FAMILIES`), then subject (instance
    order), then kind (a device's normal row before its failover row, a CDU's heat before
    its flow). A limit that is not finite (no utility limit), a count of zero slots (no
    liquid slots) or a failover row that no failure raises is no resource."""
    rows = []
    for kind, c in per_kind.items():
        cases = c.cases or [""] * len(c.subjects)
        for position, (subject, load, limit, case) in enumerate(
            zip(c.subjects, c.load, c.limit, cases, strict=True)
        ):
            if not np.isfinite(limit) or (kind is Kind.POWER_FAILOVER and not case):
                continue
            if _FAMILY[kind] == "slots" and limit <= 0:
                continue
            order = (FAMILIES.index(_FAMILY[kind]), position, list(Kind).index(kind))
            rows.append((order, Resource(kind, str(subject), float(load), float(limit), case)))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def resources(site: Site, loads: Loads, placement: np.ndarray) -> list[Resource]:
    """Every capacity of ``site`` with its load in ``placement`` (``loads`` as the checker
    computed them for it), in table order."""
    placement = np.asarray(placement)
    occupied = placement != EMPTY
    liquid = np.asarray(site.slot_liquid, dtype=bool)
    inlet_slots, rise, allowed = occupied_inlet_rise(site, placement, loads.inlet_temp_c)
    devices, cdus, zones = list(site.device_ids), list(site.cdu_ids), list(site.air_zone_ids)
    utility = np.inf if site.utility_limit_kw is None else site.utility_limit_kw
    return table(
        {
            Kind.POWER_NORMAL: Capacities(devices, loads.device_normal_kw, site.device_limit_kw),
            Kind.POWER_FAILOVER: Capacities(
                devices,
                loads.device_failover_kw,
                site.device_failover_limit_kw,
                loads.device_worst_failure,
            ),
            Kind.CDU_HEAT: Capacities(cdus, loads.cdu_heat_kw, site.cdu_heat_capacity_kw),
            Kind.CDU_FLOW: Capacities(cdus, loads.cdu_flow_lpm, site.cdu_flow_capacity_lpm),
            Kind.AIR_ZONE_HEAT: Capacities(
                zones, loads.air_zone_heat_kw, site.air_zone_capacity_kw
            ),
            Kind.UTILITY: Capacities([""], np.array([loads.facility_kw]), np.array([utility])),
            Kind.INLET: Capacities([site.slot_ids[s] for s in inlet_slots], rise, allowed),
            **slot_counts(occupied, liquid),
        }
    )


def slot_counts(occupied: np.ndarray, liquid: np.ndarray) -> dict[Kind, Capacities]:
    """Racks among all slots and among the liquid slots (``occupied`` and ``liquid`` are
    boolean masks over the slots)."""
    return {
        kind: Capacities([""], np.array([(occupied & among).sum()]), np.array([among.sum()]))
        for kind, among in ((Kind.SLOTS, np.ones_like(occupied)), (Kind.LIQUID_SLOTS, liquid))
    }


def ranked(rows: list[Resource]) -> list[Resource]:
    """Most utilized first; equal utilizations (to 9 decimals) keep table order."""
    return sorted(rows, key=lambda r: -round(r.utilization, 9))


def binding(rows: list[Resource]) -> Resource | None:
    """The most utilized resource (ties by :func:`ranked`'s rule); None for an empty table."""
    return ranked(rows)[0] if rows else None


def condensed(rows: list[Resource]) -> list[Resource]:
    """The table with one inlet row, the most utilized: a hall has one inlet per rack,
    and a list meant to be read (the summary, the report's bars) keeps the rest in view."""
    inlets = [r for r in rows if r.kind is Kind.INLET]
    tightest = binding(inlets)
    return [r for r in rows if r.kind is not Kind.INLET or r is tightest]
