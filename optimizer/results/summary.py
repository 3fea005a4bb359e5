"""The short text summary a planner reads after a solve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.instance.schema import Objective
from optimizer.site.thermal import rise_share
from optimizer.solve.pipeline import SolveReport
from optimizer.verify.check import EMPTY, occupied_inlet_rise

OBJECTIVE_UNITS = {
    Objective.MAX_GPUS: " GPUs",
    Objective.MAX_VALUE: "",
    Objective.MAX_IT_KW: " kW IT",
    Objective.MIN_FACILITY_KW: " kW facility",
}


@dataclass(frozen=True)
class Utilization:
    resource: str
    load: float
    limit: float
    unit: str

    @property
    def fraction(self) -> float:
        return self.load / self.limit if self.limit > 0 else 0.0


def utilizations(report: SolveReport) -> list[Utilization]:
    """Every capacity of the site with its load in the layout, most utilized first."""
    site, loads = report.site, report.check.loads
    items = []
    for d, device in enumerate(site.device_ids):
        items.append(
            Utilization(
                f"{device} (normal)", loads.device_normal_kw[d], site.device_limit_kw[d], "kW"
            )
        )
        case = loads.device_worst_failure[d]
        if case:
            items.append(
                Utilization(
                    f"{device} (if {case} fails)",
                    loads.device_failover_kw[d],
                    site.device_failover_limit_kw[d],
                    "kW",
                )
            )
    for c, cdu in enumerate(site.cdu_ids):
        items.append(
            Utilization(f"CDU {cdu} heat", loads.cdu_heat_kw[c], site.cdu_heat_capacity_kw[c], "kW")
        )
        items.append(
            Utilization(
                f"CDU {cdu} flow", loads.cdu_flow_lpm[c], site.cdu_flow_capacity_lpm[c], "L/min"
            )
        )
    for z, zone in enumerate(site.air_zone_ids):
        items.append(
            Utilization(
                f"air zone {zone}", loads.air_zone_heat_kw[z], site.air_zone_capacity_kw[z], "kW"
            )
        )
    if site.utility_limit_kw is not None:
        items.append(
            Utilization("utility (IT + cooling)", loads.facility_kw, site.utility_limit_kw, "kW")
        )
    tightest = tightest_inlet(report)
    if tightest is not None:
        s, rise, allowed = tightest
        items.append(Utilization(f"inlet at {site.slot_ids[s]}", rise, allowed, "K"))
    return sorted(items, key=lambda u: (-u.fraction, u.resource))


def tightest_inlet(report: SolveReport) -> tuple[int, float, float] | None:
    """(slot, rise above supply air, rise its rack's class allows) of the occupied slot
    whose inlet uses the largest share of its allowed rise; None without temperatures.
    One inlet stands for all: a hall has one per rack, and the rest of the list matters."""
    known, rise, allowed = occupied_inlet_rise(
        report.site, report.placement, report.check.loads.inlet_temp_c
    )
    if not len(known):
        return None
    i = int(np.argmax(rise_share(rise, allowed)))
    return int(known[i]), float(rise[i]), float(allowed[i])


def thermal_lines(report: SolveReport) -> list[str]:
    """The tightest occupied inlet and the hottest, when any supply temperature is given."""
    tightest = tightest_inlet(report)
    if tightest is None:
        return []
    site, placed = report.site, report.placement
    inlet = report.check.loads.inlet_temp_c
    s = tightest[0]
    limit = site.type_inlet_limit_c[placed[s]]
    hottest = np.nanmax(np.where(placed != EMPTY, inlet, np.nan))
    return [
        f"inlets: tightest {site.slot_ids[s]} at {inlet[s]:.1f} C "
        f"(limit {limit:g} C, margin {limit - inlet[s]:.1f} K); hottest {hottest:.1f} C"
    ]


def fabric_lines(report: SolveReport) -> list[str]:
    """SUs per type and cable metres per reach class, when the instance has a fabric."""
    site, layout = report.site, report.layout
    if site.network is None:
        return []
    hubs = layout.su_network_slot
    kinds = layout.su_types()
    per_type = ", ".join(f"{kinds.count(t)} {site.rack_types[t].name}" for t in sorted(set(kinds)))
    cable = report.check.loads.cable_m
    by_class = ", ".join(
        f"{name} {metres:,.0f} m"
        for name, metres in site.network.metres_by_class(cable).items()
        if metres > 0
    )
    return [
        f"fabric: {len(hubs)} SUs ({per_type or 'none'}) on "
        f"{len(set(hubs))} network racks; cable {cable.sum():,.0f} m ({by_class or 'none'})"
    ]


def summary_lines(report: SolveReport, top: int = 5) -> list[str]:
    site, outcome = report.site, report.outcome
    placed = report.placement
    counts = np.bincount(placed[placed != EMPTY], minlength=len(site.rack_types))
    lines = [f"{site.name}: {site.n_slots} slots"]
    total_gpus = 0
    for t, spec in enumerate(site.rack_types):
        if counts[t]:
            gpus = int(counts[t]) * spec.gpus
            total_gpus += gpus
            lines.append(f"  {spec.name:<22} {counts[t]:>5} racks {gpus:>8,} GPUs")
    lines.append(f"  {'total':<22} {int(counts.sum()):>5} racks {total_gpus:>8,} GPUs")
    loads = report.check.loads
    pue = "n/a" if np.isnan(loads.pue) else f"{loads.pue:.3f}"
    lines.append(
        f"IT load {loads.it_kw / 1000:.3f} MW, facility {loads.facility_kw / 1000:.3f} MW "
        f"(cooling {loads.cooling_kw / 1000:.3f} MW), PUE {pue} (cooling only)"
    )
    lines.extend(thermal_lines(report))
    lines.extend(fabric_lines(report))
    lines.append(f"most loaded resources (of {len(utilizations(report))}):")
    for u in utilizations(report)[:top]:
        lines.append(
            f"  {u.resource:<34} {u.fraction:>7.1%}  ({u.load:,.1f} of {u.limit:,.1f} {u.unit})"
        )
    gap = "n/a" if outcome.gap is None else f"{outcome.gap:.4%}"
    unit = OBJECTIVE_UNITS[site.objective]
    lines.append(
        f"status {outcome.status}, objective {outcome.objective:,.6g}{unit}, "
        f"bound {outcome.bound + 0.0:,.6g}{unit}, gap {gap}"  # + 0.0: no "-0"
    )
    timing = ", ".join(f"{k.removesuffix('_s')} {v:.2f}s" for k, v in report.timings.items())
    lines.append(f"times: {timing}")
    return lines
