"""The short text summary a planner reads after a solve: how many, where and why.

Besides the totals and the most loaded resources it says where the racks went (the fill
of every row, grouped per hall), why a demanded rack type got no rack at all (no place
for it, or the limit that blocks it closest to fitting), how far the cable plan is from
proven (the second stage's gap), and, when the GPU-richest demanded type fits nowhere
more, what the next rack or SU of it would need: "to place more: add X kW to DEVICE ...",
read from the resource table of the closest place (:mod:`optimizer.verify.headroom`).
Each part is a function returning data, so other outputs can reuse it; the text is made
from it at the end.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optimizer.site.arrays import NO_INDEX, Site
from optimizer.solve.phases import PhasePlan, phase_gpus
from optimizer.solve.pipeline import MyopicBaseline, SolveReport
from optimizer.verify.check import EMPTY
from optimizer.verify.headroom import Blocked, NextRack, next_rack
from optimizer.verify.resources import (
    Kind,
    Resource,
    amount,
    binding,
    condensed,
    ranked,
    resources,
)

WIDTH = 80
"""Columns every summary line fits in."""
MAX_ROWS = 8
"""Rows listed per hall; the rest are summed up in one line."""
MAX_HALLS = 6
"""Halls listed; the rest are summed up in one line."""
SUMMARY_CANDIDATES = 50
"""Places tried per rack type for the summary's reasons (``next`` tries more): enough to
find the closest one on a hall's floor, few enough to keep the summary quick on a campus."""


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
    if plan.scenarios:
        how += ", worst demand scenario" if plan.worst_case else ", expected over scenarios"
    lines = [f"phases ({how}):"]
    baseline = report.myopic_baseline
    myopic = None if baseline is None or baseline.gpus is None else baseline.gpus
    rows = [(p.name + (f" ({p.date})" if p.date else ""), p) for p in plan.phases]
    rows += [
        (f"{layout.name} if {s.name} (p {s.probability:g})", layout)
        for s in plan.scenarios
        for layout in s.layouts
    ]
    mine = (
        None
        if myopic is None
        else [*myopic, *(gpus for own in baseline.scenario_gpus for gpus in own)]
    )
    for i, (label, phase) in enumerate(rows):
        placed = phase.placement[phase.placement != EMPTY]
        loads = phase.check.loads
        limit = phase.site.utility_limit_kw
        unused = "" if limit is None else f", {(limit - loads.facility_kw) / 1000:.3f} MW unused"
        versus = "" if mine is None else f"  myopic {mine[i]:,}"
        lines.append(
            f"  {label:<22} {len(placed):>5} racks {phase_gpus(phase):>8,} GPUs  "
            f"IT {loads.it_kw / 1000:.3f} MW{unused}{versus}"
        )
    if plan.scenarios:
        worst = min(phase_gpus(s.layout) for s in plan.scenarios)
        lines.append(
            f"  {plan.scenarios[0].layout.name}: expected {plan.expected_gpus:,.1f} GPUs over "
            f"{len(plan.scenarios)} demand scenarios, worst case {worst:,}"
        )
    if baseline is not None:
        lines.append("  planning ahead gains " + planning_gain(plan, baseline))
    return lines


def planning_gain(plan: PhasePlan, baseline: MyopicBaseline) -> str:
    """The GPUs a joint plan holds in each phase over planning phase by phase."""
    if baseline.gpus is None:
        return f"a plan at all: phase by phase, {baseline.message}"
    gains = [
        f"{phase.name} {phase_gpus(phase) - gpus:+,}"
        for phase, gpus in zip(plan.phases, baseline.gpus, strict=True)
    ]
    if plan.scenarios:
        mine = sum(
            s.probability * gpus
            for s, (*_, gpus) in zip(plan.scenarios, baseline.scenario_gpus, strict=True)
        )
        gains.append(f"{plan.scenarios[0].layout.name} {plan.expected_gpus - mine:+,.1f} expected")
    return ", ".join(gains) + " GPUs over planning phase by phase"


@dataclass(frozen=True)
class RowFill:
    """What stands in one row: racks, GPUs and IT kW against the row's feed limit."""

    hall: str
    row: str
    racks: int
    gpus: int
    it_kw: float
    limit_kw: float
    """The smallest limit among the devices feeding the row's slots directly: a feed of a
    dual-corded slot may carry the whole rack once the other feed fails, so its failover
    limit; a feed of a single-corded slot carries it always, so its normal limit."""
    limited_by: str
    """The device whose limit that is."""
    capped_kw: float
    """What the row's racks draw once capped after a failure (``it_kw`` when none of them
    is capped): with capped failover, the figure a failover limit is held to."""


def row_fill(site: Site, placement: np.ndarray) -> list[RowFill]:
    """The fill of every row, in instance order (loads recomputed from ``placement``)."""
    occupied = placement != EMPTY
    gpus = np.array([spec.gpus for spec in site.rack_types])
    it_kw = np.array([spec.it_kw for spec in site.rack_types])
    failover_kw = np.array([spec.failover_kw for spec in site.rack_types])
    fills = []
    for code in np.unique(site.slot_row_code):
        slots = np.flatnonzero(site.slot_row_code == code)
        placed = placement[slots[occupied[slots]]]
        feeds = site.slot_feeds[slots]
        single = feeds[:, 1] == NO_INDEX
        limits: dict[int, float] = {}
        for column in (0, 1):
            for d, alone in zip(feeds[:, column], single, strict=True):
                if d == NO_INDEX:
                    continue
                own = site.device_limit_kw[d] if alone else site.device_failover_limit_kw[d]
                limits[int(d)] = min(limits.get(int(d), np.inf), float(own))
        feed = min(limits, key=lambda d: (limits[d], d))
        first = slots[0]
        fills.append(
            RowFill(
                site.slot_hall[first],
                site.slot_row[first],
                len(placed),
                int(gpus[placed].sum()),
                float(it_kw[placed].sum()),
                limits[feed],
                site.device_ids[feed],
                float(failover_kw[placed].sum()),
            )
        )
    return fills


def row_lines(fills: list[RowFill]) -> list[str]:
    """Per hall a total line and its rows (at most :data:`MAX_ROWS`, the rest summed up);
    at most :data:`MAX_HALLS` halls, the rest summed up."""
    halls: dict[str, list[RowFill]] = {}
    for fill in fills:
        halls.setdefault(fill.hall, []).append(fill)
    lines = ["where (racks, GPUs, IT kW of the row's feed limit):"]
    for h, (hall, rows) in enumerate(halls.items()):
        if h == MAX_HALLS:
            rest = [f for name in list(halls)[MAX_HALLS:] for f in halls[name]]
            lines.append(f"  ... {len(halls) - MAX_HALLS} more halls: {_totals(rest)}")
            break
        lines.append(f"  hall {hall}: {_totals(rows)}")
        width = max(len(f.row) for f in rows[:MAX_ROWS])
        for f in rows[:MAX_ROWS]:
            capped = f" ({f.capped_kw:,.1f} capped)" if f.capped_kw < f.it_kw - 1e-9 else ""
            lines.append(
                f"    {f.row:<{width}} {f.racks:>4} racks {f.gpus:>7,} GPUs "
                f"{f.it_kw:>9,.1f}{capped} of {f.limit_kw:,.1f} kW"
            )
        if len(rows) > MAX_ROWS:
            lines.append(f"    ... {len(rows) - MAX_ROWS} more rows: {_totals(rows[MAX_ROWS:])}")
    return lines


def _totals(fills: list[RowFill]) -> str:
    racks = sum(f.racks for f in fills)
    gpus = sum(f.gpus for f in fills)
    return f"{racks} racks, {gpus:,} GPUs, {sum(f.it_kw for f in fills):,.1f} kW IT"


def demanded_types(site: Site) -> list[int]:
    """Rack types the demand asks for (new racks allowed), network racks aside: those
    are placed only to serve SUs."""
    installed = np.bincount(list(site.installed.values()), minlength=len(site.rack_types))
    return [
        t
        for t in range(len(site.rack_types))
        if not site.is_network_type(t)
        and (site.demand_max[t] == NO_INDEX or site.demand_max[t] > installed[t])
    ]


def why_none(answer: NextRack, proven: bool) -> str:
    """Why a rack type got no rack, from the answer to "where would one more go?";
    ``proven``: whether the solve proved its layout optimal."""
    if answer.no_room:
        return f"no place: {answer.no_room}"
    if answer.ranked:
        why = (
            "the objective gains more from the other types"
            if proven
            else "the solve stopped before it was proven"
        )
        return f"one more fits at {answer.ranked[0].place.describe()}, but {why}"
    closest = answer.closest()[0]
    return (
        f"blocked in every place; closest {closest.place.describe()}: "
        f"{closest.binding} over by {amount(closest.excess, closest.unit)}"
    )


_NEED = {
    Kind.POWER_NORMAL: "{amount} to {label}",
    Kind.POWER_FAILOVER: "{amount} to {label}",
    Kind.CDU_HEAT: "{amount} of liquid cooling to CDU {subject}",
    Kind.CDU_FLOW: "{amount} of coolant flow to CDU {subject}",
    Kind.AIR_ZONE_HEAT: "{amount} of air to zone {subject}",
    Kind.UTILITY: "{amount} to the utility limit",
    Kind.INLET: "{amount} of inlet margin at {subject}",
    Kind.SLOTS: "{amount}",
    Kind.LIQUID_SLOTS: "{amount} of liquid",
}
"""How each kind of capacity is asked for in the "to place more" line."""


def need(r: Resource) -> str:
    """What it takes to lift one overloaded capacity to its load."""
    return _NEED[r.kind].format(amount=amount(r.excess, r.unit), label=r.label, subject=r.subject)


@dataclass(frozen=True)
class ToPlaceMore:
    """What the next rack (or SU) of the GPU-richest demanded type would need: the
    capacities its closest place overloads, with how much each lacks."""

    rack_type: str
    racks: int
    gpus: int
    options: tuple[tuple[Resource, ...], ...]
    """One set of overloaded capacities per alternative place (at most two, the closest
    first), each with its load after the racks are added."""
    no_room: str = ""
    """When no type is held back by capacities alone: why the GPU-richest one has no place
    at all (then ``options`` is empty: more capacity alone would not help)."""

    def describe(self) -> str:
        head = f"to place {self.racks} more {self.rack_type} ({self.gpus:,} GPUs)"
        if not self.options:
            return f"{head}: no place, {self.no_room}"
        wants = " or ".join(_and([need(r) for r in needs]) for needs in self.options)
        return f"{head}: add {wants}"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def racks_per_place(site: Site, t: int) -> int:
    """Racks of type ``t`` one more place takes: an SU with a fabric, else one."""
    return site.rack_types[t].su_size if site.network_type(t) != NO_INDEX else 1


def to_place_more(
    site: Site, answer_for: Callable[[int], NextRack], max_options: int = 2
) -> ToPlaceMore | None:
    """For the demanded type with the most GPUs per rack or SU that fits nowhere more but
    is held back by capacities alone (not a slot rule or its demand maximum): what its
    closest places would need. Failing that, why the GPU-richest type that has no place
    at all has none; None when neither exists (nothing binds). ``answer_for`` answers
    "where would one more go?" for a type; it is asked in order of GPUs per place, until
    a type gives the answer."""
    by_gpus = sorted(
        demanded_types(site), key=lambda t: -site.rack_types[t].gpus * racks_per_place(site, t)
    )
    roomless: ToPlaceMore | None = None
    for t in by_gpus:
        answer = answer_for(t)
        spec = site.rack_types[t]
        if answer.no_room and roomless is None:
            roomless = ToPlaceMore(
                spec.name, answer.racks, spec.gpus * answer.racks, (), answer.no_room
            )
        if answer.ranked or not answer.blocked:
            continue
        options: list[tuple[Resource, ...]] = []
        for b in answer.closest():
            needs = _capacities_only(b)
            known = [{r.label for r in option} for option in options]
            if needs and {r.label for r in needs} not in known:
                options.append(needs)
            if len(options) == max_options:
                break
        if options:
            return ToPlaceMore(spec.name, answer.racks, spec.gpus * answer.racks, tuple(options))
    return roomless


def _capacities_only(b: Blocked) -> tuple[Resource, ...]:
    """The capacities a blocked place overloads, or () when a rule blocks it too (then
    more capacity alone would not let the racks in)."""
    return b.overloads if b.binding in {r.label for r in b.overloads} else ()


def summary_lines(report: SolveReport, top: int = 5) -> list[str]:
    """The summary ``rackopt solve`` prints, every line at most :data:`WIDTH` columns."""
    site, outcome = report.site, report.outcome
    placed = report.placement
    counts = np.bincount(placed[placed != EMPTY], minlength=len(site.rack_types))
    answers: dict[int, NextRack] = {}

    def answer_for(t: int) -> NextRack:
        if t not in answers:
            name = site.rack_types[t].name
            answers[t] = next_rack(site, report.layout, name, SUMMARY_CANDIDATES)
        return answers[t]

    wanted = demanded_types(site)
    lines = [f"{site.name}: {site.n_slots} slots"]
    total_gpus = 0
    for t, spec in enumerate(site.rack_types):
        if counts[t]:
            gpus = int(counts[t]) * spec.gpus
            total_gpus += gpus
            lines.append(f"  {spec.name:<22} {counts[t]:>5} racks {gpus:>8,} GPUs")
        elif t in wanted:
            reason = why_none(answer_for(t), proven=outcome.status == "optimal")
            lines.append(f"  {spec.name:<22} {0:>5} racks: {reason}")
    lines.append(f"  {'total':<22} {int(counts.sum()):>5} racks {total_gpus:>8,} GPUs")
    lines.extend(row_lines(row_fill(site, placed)))
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
    more = to_place_more(site, answer_for)
    if more is not None:
        lines.append(more.describe())
    gap = "n/a" if outcome.gap is None else f"{outcome.gap:.4%}"
    unit = f" {site.objective.unit}" if site.objective.unit else ""
    lines.append(
        f"status {outcome.status}, objective {outcome.objective:,.6g}{unit}, "
        f"bound {outcome.bound + 0.0:,.6g}{unit}, gap {gap}"  # + 0.0: no "-0"
    )
    lines.append(second_stage_text(outcome.tie_break_status, outcome.second_stage_gap))
    parts = report.model_size.get("parts", 1)
    lines.append(f"solved as {report.solved_as}" + (f" ({parts} parts)" if parts > 1 else ""))
    timing = ", ".join(f"{k.removesuffix('_s')} {v:.2f}s" for k, v in report.timings.items())
    lines.append(f"times: {timing}")
    return [part for line in lines for part in fitted(line)]


def second_stage_text(status: str, gap: float | None) -> str:
    """The cable and tie-break stage: its proven gap and how it ended (the status's own
    rounded gap left out, the recorded one is shown)."""
    if gap is None:
        return f"cable plan (second stage): {status}"
    return f"cable plan (second stage): gap {gap:.2%}, {status.split(', gap ')[0]}"


def fitted(line: str) -> list[str]:
    """``line`` in lines of at most :data:`WIDTH` columns, broken after commas where it
    can (a list stays readable) and else between words; continuations indented 4 more."""
    if len(line) <= WIDTH:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    out = [""]
    for piece in line.split(", "):
        joined = f"{out[-1]}, {piece}" if out[-1] else piece
        if len(joined) <= WIDTH or not out[-1]:
            out[-1] = joined
        else:
            out[-1] += ","
            out.append(indent + piece)
    return [
        part
        for text in out
        for part in textwrap.wrap(
            text.lstrip(),
            WIDTH,
            initial_indent=text[: len(text) - len(text.lstrip())],
            subsequent_indent=indent,
            break_on_hyphens=False,
        )
    ]
