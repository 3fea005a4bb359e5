"""The short text summary a planner reads after a solve."""

from __future__ import annotations

import numpy as np

from optimizer.objectives import Objective
from optimizer.solve.pipeline import SolveReport
from optimizer.verify.check import EMPTY
from optimizer.verify.resources import Kind, Resource, binding, condensed, ranked, resources

OBJECTIVE_UNITS = {
    Objective.MAX_GPUS: " GPUs",
    Objective.MAX_VALUE: "",
    Objective.MAX_IT_KW: " kW IT",
    Objective.MIN_FACILITY_KW: " kW facility",
}


def utilizations(report: SolveReport) -> list[Resource]:
    """Every capacity of the site with its load in the layout, most utilized first (ties
    by :func:`optimizer.verify.resources.ranked`); of the inlets only the tightest."""
    return ranked(condensed(resources(report.site, report.check.loads, report.placement)))


def thermal_lines(report: SolveReport, table: list[Resource]) -> list[str]:
    """The tightest occupied inlet and the hottest, when any supply temperature is given."""
    tightest = binding([r for r in table if r.kind is Kind.INLET])
    if tightest is None:
        return []
    site, placed = report.site, report.placement
    inlet = report.check.loads.inlet_temp_c
    s = site.slot_ids.index(tightest.subject)
    limit = site.type_inlet_limit_c[placed[s]]
    hottest = np.nanmax(np.where(placed != EMPTY, inlet, np.nan))
    return [
        f"inlets: tightest {tightest.subject} at {inlet[s]:.1f} C "
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


def capping_lines(report: SolveReport) -> list[str]:
    """What capped failover relies on: the failure that needs the most racks capped, and
    the GPUs with and without capping, when some rack type declares a capped draw."""
    site = report.site
    if not site.capping:
        return []
    capping = report.check.loads.capping
    placed = report.placement
    gpus = int(sum(site.rack_types[t].gpus for t in placed[placed != EMPTY]))
    baseline = report.capping_baseline
    if report.plan is not None:
        without = "not solved for a phased plan"
    elif baseline is None:
        without = "not solved (add --capping-baseline)"
    elif baseline.gpus is None:
        without = "none: the demand minimums cannot be met"
    else:
        without = f"{baseline.gpus:,}"
    if capping.racks.any():
        d = int(np.argmax(capping.shed_kw))
        relies = (
            f"{int((capping.racks > 0).sum())} failure cases rely on capping; the most, "
            f"{site.device_ids[d]} failing, caps {int(capping.racks[d])} racks "
            f"({capping.shed_kw[d]:,.1f} kW shed)"
        )
    else:
        relies = "no failure case relies on capping"
    return [f"capped failover: {relies}; GPUs {gpus:,} with capping, without: {without}"]


def phase_lines(report: SolveReport) -> list[str]:
    """GPUs, racks, IT load and utility headroom left unused per phase, for a phased plan."""
    plan = report.plan
    if plan is None:
        return []
    how = "myopic, phase by phase" if plan.myopic else f"one plan, {plan.objective}"
    lines = [f"phases ({how}):"]
    for phase in plan.phases:
        placed = phase.placement[phase.placement != EMPTY]
        gpus = int(sum(phase.site.rack_types[t].gpus for t in placed))
        loads = phase.check.loads
        limit = phase.site.utility_limit_kw
        unused = "" if limit is None else f", {(limit - loads.facility_kw) / 1000:.3f} MW unused"
        when = f" ({phase.date})" if phase.date else ""
        lines.append(
            f"  {phase.name + when:<22} {len(placed):>5} racks {gpus:>8,} GPUs  "
            f"IT {loads.it_kw / 1000:.3f} MW{unused}"
        )
    return lines


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
    table = utilizations(report)
    lines.extend(thermal_lines(report, table))
    lines.extend(fabric_lines(report))
    lines.extend(capping_lines(report))
    lines.extend(phase_lines(report))
    lines.append(f"most loaded resources (of {len(table)}):")
    for r in table[:top]:
        lines.append(
            f"  {r.label:<34} {r.utilization:>7.1%}  ({r.load:,.1f} of {r.limit:,.1f} {r.unit})"
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
