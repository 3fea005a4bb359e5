"""The resource table: every capacity of a site with its load in one layout, and one label each.

A planner meets the same capacities in the solve summary, ``next``, ``compare``,
``report`` and ``explain``; they all read this table (or, for a layout dataset,
:func:`optimizer.results.resources.layout_resources`, which builds the same rows from
the dataset's variables), and every label comes from :func:`label`, so a resource
carries one name everywhere:

========================  ==================  =======  ==============================
kind (the checker rule)   label               unit     family
========================  ==================  =======  ==============================
``power-normal``          ``UPS-A (normal)``  kW       power
``power-failover``        ``UPS-A (if UPS-B   kW       power
                          fails)``
``cdu-heat``              ``CDU C1 heat``     kW       liquid cooling
``cdu-flow``              ``CDU C1 flow``     L/min    liquid cooling
``air-zone-heat``         ``air zone Z1``     kW       air cooling
``facility-power``        ``utility``         kW       utility
``inlet-temp``            ``inlet at H1-R3-   K        inlet temperature
                          07``
``slots``                 ``slots``           slots    slots
``liquid-slots``          ``liquid slots``    slots    slots
========================  ==================  =======  ==============================

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

from optimizer.site.build import Site
from optimizer.site.thermal import rise_share
from optimizer.verify.check import EMPTY, Loads, occupied_inlet_rise

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
    def utilization(self) -> float:
        """Load over limit; a zero limit counts as full while unloaded, over once loaded
        (an inlet whose class allows no rise at all)."""
        return float(rise_share(np.float64(self.load), np.float64(self.limit)))


@dataclass(frozen=True)
class Figures:
    """The loads and limits a table is made of. The site variant (:func:`resources`) and
    the dataset variant (``optimizer.results.resources``) both fill this in, so they list
    the same rows in the same order."""

    device_ids: list[str]
    device_load_kw: np.ndarray
    device_limit_kw: np.ndarray
    device_failover_load_kw: np.ndarray
    device_failover_limit_kw: np.ndarray
    device_worst_failure: list[str]
    """The failed device behind each worst failover load; '' when no failure raises it."""
    cdu_ids: list[str]
    cdu_heat_kw: np.ndarray
    cdu_heat_capacity_kw: np.ndarray
    cdu_flow_lpm: np.ndarray
    cdu_flow_capacity_lpm: np.ndarray
    air_zone_ids: list[str]
    air_zone_heat_kw: np.ndarray
    air_zone_capacity_kw: np.ndarray
    facility_kw: float
    utility_limit_kw: float
    """inf without a utility limit."""
    inlet_slots: list[str]
    """Occupied slots whose zone gives a supply temperature."""
    inlet_rise_k: np.ndarray
    inlet_allowed_rise_k: np.ndarray
    occupied_slots: int
    slots: int
    occupied_liquid_slots: int
    liquid_slots: int

    def table(self) -> list[Resource]:
        """The rows in table order; a limit that is not finite (no utility limit) or a
        count of zero slots (no liquid slots) is no resource."""
        rows: list[Resource] = []
        for d, device in enumerate(self.device_ids):
            normal = float(self.device_load_kw[d]), float(self.device_limit_kw[d])
            rows.append(Resource(Kind.POWER_NORMAL, device, *normal))
            if case := self.device_worst_failure[d]:
                failover = (
                    float(self.device_failover_load_kw[d]),
                    float(self.device_failover_limit_kw[d]),
                )
                rows.append(Resource(Kind.POWER_FAILOVER, device, *failover, case))
        for c, cdu in enumerate(self.cdu_ids):
            heat = float(self.cdu_heat_kw[c]), float(self.cdu_heat_capacity_kw[c])
            flow = float(self.cdu_flow_lpm[c]), float(self.cdu_flow_capacity_lpm[c])
            rows += [Resource(Kind.CDU_HEAT, cdu, *heat), Resource(Kind.CDU_FLOW, cdu, *flow)]
        rows += [
            Resource(Kind.AIR_ZONE_HEAT, zone, float(heat), float(capacity))
            for zone, heat, capacity in zip(
                self.air_zone_ids, self.air_zone_heat_kw, self.air_zone_capacity_kw, strict=True
            )
        ]
        if np.isfinite(self.utility_limit_kw):
            rows.append(
                Resource(Kind.UTILITY, "", float(self.facility_kw), float(self.utility_limit_kw))
            )
        rows += [
            Resource(Kind.INLET, slot, float(rise), float(allowed))
            for slot, rise, allowed in zip(
                self.inlet_slots, self.inlet_rise_k, self.inlet_allowed_rise_k, strict=True
            )
        ]
        counts = (
            (Kind.SLOTS, self.occupied_slots, self.slots),
            (Kind.LIQUID_SLOTS, self.occupied_liquid_slots, self.liquid_slots),
        )
        rows += [Resource(k, "", float(n), float(of)) for k, n, of in counts if of > 0]
        return rows


def resources(site: Site, loads: Loads, placement: np.ndarray) -> list[Resource]:
    """Every capacity of ``site`` with its load in ``placement`` (``loads`` as the checker
    computed them for it), in table order."""
    placement = np.asarray(placement)
    occupied = placement != EMPTY
    liquid = np.asarray(site.slot_liquid, dtype=bool)
    inlet_slots, rise, allowed = occupied_inlet_rise(site, placement, loads.inlet_temp_c)
    limit = site.utility_limit_kw
    return Figures(
        device_ids=list(site.device_ids),
        device_load_kw=loads.device_normal_kw,
        device_limit_kw=site.device_limit_kw,
        device_failover_load_kw=loads.device_failover_kw,
        device_failover_limit_kw=site.device_failover_limit_kw,
        device_worst_failure=list(loads.device_worst_failure),
        cdu_ids=list(site.cdu_ids),
        cdu_heat_kw=loads.cdu_heat_kw,
        cdu_heat_capacity_kw=site.cdu_heat_capacity_kw,
        cdu_flow_lpm=loads.cdu_flow_lpm,
        cdu_flow_capacity_lpm=site.cdu_flow_capacity_lpm,
        air_zone_ids=list(site.air_zone_ids),
        air_zone_heat_kw=loads.air_zone_heat_kw,
        air_zone_capacity_kw=site.air_zone_capacity_kw,
        facility_kw=loads.facility_kw,
        utility_limit_kw=np.inf if limit is None else float(limit),
        inlet_slots=[site.slot_ids[s] for s in inlet_slots],
        inlet_rise_k=rise,
        inlet_allowed_rise_k=allowed,
        occupied_slots=int(occupied.sum()),
        slots=site.n_slots,
        occupied_liquid_slots=int((occupied & liquid).sum()),
        liquid_slots=int(liquid.sum()),
    ).table()


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
