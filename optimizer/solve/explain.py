"""Why a demand does not fit: an elastic version of the model with a priced slack per resource.

Every capacity row (device limits in normal operation and after each failure, CDU
heat and flow, air zones, the utility limit, the slots of each class, network
ports, the inlet temperature of each hot slot) gets a slack column that lets it
overflow. The demand minimums stay hard.
Minimizing the sum of relative overflows (slack / capacity) finds the smallest
set of shortfalls that would make the demand fit; each is reported with its
numbers, in the resource's own unit.

What is reported is what a planner can act on: an overflow the independent checker
would not call a violation (below 0.01 K at an inlet, 1e-6 of a capacity) is solver
noise and left out, and one device short in several failure cases is one line, its
worst case, with the number of cases. The demand asked about need not be the
instance's: :func:`asked_site` sets minimums from the command line ("could N more
fit?") without editing the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import highspy
import numpy as np

from models.build import build_model
from models.data import ModelData, build_model_data, unplaceable_minimums
from optimizer.errors import (
    InfeasibleError,
    InstanceError,
    Interrupted,
    NoLayoutInTimeError,
    did_you_mean,
)
from optimizer.site.arrays import NO_INDEX, Site
from optimizer.solve.highs import compile_model, new_highs
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import ProgressFn, SolveWatch
from optimizer.verify.check import INLET_TOLERANCE_K, TOLERANCE
from optimizer.verify.resources import Kind, amount, label, unit


@dataclass(frozen=True)
class Shortfall:
    """One resource the demand overflows, by how much, in the resource's unit."""

    resource: str
    short_by: float
    capacity: float
    """The resource's capacity; NaN for a rule with no single capacity (an inlet limit)."""
    unit: str
    kind: str = ""
    """The constraint family of the model row (``power_failover``, ``inlet_temperature``,
    ``space_slots``, ...)."""
    subject: str = ""
    """The device, CDU group, zone or slot the row is about."""
    cases: int = 1
    """Failure cases in which the device falls short; this is the worst of them."""

    def describe(self) -> str:
        worst = f" (worst of {self.cases} failure cases)" if self.cases > 1 else ""
        if math.isnan(self.capacity):
            return f"{self.resource} over its limit by {amount(self.short_by, self.unit)}{worst}"
        return (
            f"{self.resource} short by {amount(self.short_by, self.unit)} "
            f"(needs {self.capacity + self.short_by:,.1f}, has {self.capacity:,.1f}){worst}"
        )

    @property
    def noise(self) -> bool:
        """Whether the overflow is within the checker's tolerance: no violation at all."""
        if self.kind == "inlet_temperature":
            return self.short_by <= INLET_TOLERANCE_K
        return self.short_by <= TOLERANCE * max(1.0, abs(np.nan_to_num(self.capacity)))


def grouped(found: list[Shortfall]) -> list[Shortfall]:
    """One shortfall per device over its failure cases (the worst, with the count of
    cases); every other shortfall as it is. Noise is dropped first."""
    kept: dict[tuple[str, str], Shortfall] = {}
    for s in found:
        if s.noise:
            continue
        key = (s.kind, s.subject) if s.kind == "power_failover" else (s.kind, s.resource)
        if key not in kept:
            kept[key] = s
            continue
        seen = kept[key]
        worst = s if s.short_by > seen.short_by else seen
        kept[key] = replace(worst, cases=seen.cases + 1)
    return list(kept.values())


@dataclass(frozen=True)
class DemandAsk:
    """A demand minimum asked for on the command line: ``TYPE=N`` or ``TYPE=+N``."""

    rack_type: str
    count: int
    more: bool = False
    """``+N``: N more than the instance asks for now (its minimum, or the racks already
    installed when there are more of them)."""


def asked_site(site: Site, asks: list[DemandAsk]) -> Site:
    """``site`` with each asked rack type's demand minimum set (its maximum raised to the
    minimum where it was lower), for explaining a demand not written in the instance."""
    names = [spec.name for spec in site.rack_types]
    minimum, maximum = site.demand_min.copy(), site.demand_max.copy()
    installed = np.bincount(list(site.installed.values()), minlength=len(names))
    for ask in asks:
        if ask.rack_type not in names:
            raise InstanceError(
                "--demand",
                "",
                f"unknown rack type {ask.rack_type!r}",
                did_you_mean(ask.rack_type, names),
            )
        t = names.index(ask.rack_type)
        base = max(int(minimum[t]), int(installed[t])) if ask.more else 0
        minimum[t] = base + ask.count
        if maximum[t] != NO_INDEX and maximum[t] < minimum[t]:
            maximum[t] = minimum[t]
    return replace(site, demand_min=minimum, demand_max=maximum)


_KINDS = {
    "power_normal": Kind.POWER_NORMAL,
    "power_failover": Kind.POWER_FAILOVER,
    "cdu_heat": Kind.CDU_HEAT,
    "cdu_flow": Kind.CDU_FLOW,
    "air_zone_heat": Kind.AIR_ZONE_HEAT,
    "facility_power": Kind.UTILITY,
    "inlet_temperature": Kind.INLET,
}
"""Constraint families of the model that are rows of the resource table."""


def _subject(data: ModelData, kind: Kind, index: object) -> tuple[str, str]:
    """(subject, failed device) of a model row that is a row of the resource table."""
    site = data.site
    if kind is Kind.POWER_FAILOVER:
        row = data.failover_rows[index]
        return site.device_ids[row.device], site.device_ids[row.failed]
    if kind is Kind.INLET:
        return site.slot_ids[data.inlet_rows[index].slot], ""
    ids = {
        Kind.POWER_NORMAL: site.device_ids,
        Kind.CDU_HEAT: site.cdu_ids,
        Kind.CDU_FLOW: site.cdu_ids,
        Kind.AIR_ZONE_HEAT: site.air_zone_ids,
    }
    return (ids[kind][index], "") if kind in ids else ("", "")


def _resource(data: ModelData, name: str, index: object) -> tuple[str, str] | None:
    """Label and unit of an elastic row, or None for rows that stay hard. Capacities of
    the resource table carry its labels (optimizer.verify.resources.label); the slot
    classes and network ports exist only in the model and are named here."""
    site = data.site
    if name in _KINDS:
        kind = _KINDS[name]
        return label(kind, *_subject(data, kind, index)), unit(kind)
    if name == "space_slots":
        c = data.classes[index]
        kinds = ", ".join(site.rack_types[t].name for t in c.types)
        first = site.slot_ids[c.slots[0]]
        return f"slots for {kinds} (the {c.size} like {first})", unit(Kind.SLOTS)
    if name == "network_ports":
        hub = site.slot_ids[data.classes[index[0]].slots[0]]
        return f"network rack ports near {hub}", "SUs"
    return None


def demand_text(site: Site) -> str:
    wanted = [
        f"{int(n)} {t.name}" for t, n in zip(site.rack_types, site.demand_min, strict=True) if n > 0
    ]
    return ", ".join(wanted) if wanted else "no minimum demand"


def explain(
    site: Site, options: SolveOptions, progress: ProgressFn | None = None
) -> list[Shortfall]:
    """The resources that fall short of the demand minimums, and by how much.

    Of ``options`` only what steers HiGHS is used (time limit, gap, threads, seed): the
    elastic model is solved once, without warm start, parts or a second stage.
    ``progress`` receives snapshots on a timer (stage ``explain``; the objective is the
    sum of relative overflows); Ctrl-C stops it with no answer."""
    data = build_model_data(site)
    impossible = unplaceable_minimums(data)
    if impossible:
        raise InfeasibleError(f"{site.name}: the demand cannot be met: " + "; ".join(impossible))
    m = build_model(data)
    if hasattr(m, "su_knapsack"):
        m.su_knapsack.deactivate()  # cuts derived from the capacities made elastic below
    for var in m.place.values():
        if not var.fixed and var.lb == 0:
            var.setub(None)  # the space rows, made elastic, say how many slots are missing
    compiled = compile_model(m)
    lp = compiled.lp
    h = new_highs(options)
    lp.col_cost_ = np.zeros(lp.num_col_)
    h.passModel(lp)
    elastic: list[tuple[int, str, str, float, str, str]] = []
    for i, (con, kind) in enumerate(compiled.rows):
        if kind != 1:
            continue
        family = con.parent_component().local_name
        described = _resource(data, family, con.index())
        if described is None:
            continue
        capacity = float(lp.row_upper_[i])
        cost = 1.0 / max(abs(capacity), 1.0)
        if family == "inlet_temperature":
            capacity = math.nan  # the row's bound is its big-M, not a capacity
        h.addCol(cost, 0.0, highspy.kHighsInf, 1, np.array([i], dtype=np.int32), np.array([-1.0]))
        subject = _subject(data, _KINDS[family], con.index())[0] if family in _KINDS else ""
        elastic.append((lp.num_col_ + len(elastic), *described, capacity, family, subject))
    watch = SolveWatch(progress, "sum of shortfall/capacity")
    watch.stage = "explain"
    watch.attach(h)
    if not watch.run(h.run) or watch.interrupted:
        raise Interrupted(f"{site.name}: explain interrupted before it found the shortfalls")
    if h.getInfo().primal_solution_status != 2:
        if h.getModelStatus() != highspy.HighsModelStatus.kInfeasible:
            # Stopped (time limit) before any answer: that proves nothing about the demand.
            raise NoLayoutInTimeError(
                f"{site.name}: no explanation found before the solve stopped (status "
                f"{h.modelStatusToString(h.getModelStatus())}); allow more time with --time-limit"
            )
        raise InfeasibleError(
            f"{site.name}: the demand minimums ({demand_text(site)}) cannot be met even with "
            "unlimited power, cooling and slots; check installed racks and demand bounds"
        )
    values = np.array(h.getSolution().col_value)
    found = [
        Shortfall(name, float(values[col]), capacity, unit, family, subject)
        for col, name, unit, capacity, family, subject in elastic
        if values[col] > 0
    ]
    return sorted(grouped(found), key=lambda s: -s.short_by / max(np.nan_to_num(s.capacity), 1.0))
