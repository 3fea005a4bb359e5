"""Why a demand does not fit: an elastic version of the model with a priced slack per resource.

Every capacity row (device limits in normal operation and after each failure, CDU
heat and flow, air zones, the utility limit, the slots of each class, network
ports, the inlet temperature of each hot slot) gets a slack column that lets it
overflow. The demand minimums stay hard.
Minimizing the sum of relative overflows (slack / capacity) finds the smallest
set of shortfalls that would make the demand fit; each is reported with its
numbers, in the resource's own unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np

from models.build import build_model
from models.data import ModelData, build_model_data, unplaceable_minimums
from optimizer.errors import InfeasibleError, Interrupted, NoLayoutInTimeError
from optimizer.site.arrays import Site
from optimizer.solve.highs import compile_model, new_highs
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import ProgressFn, SolveWatch
from optimizer.verify.resources import Kind, label, unit

SHORTFALL_EPS = 1e-6
EXPLAIN_STAGE = "explain"
"""The stage name progress snapshots of the elastic solve carry."""


@dataclass(frozen=True)
class Shortfall:
    resource: str
    short_by: float
    capacity: float
    unit: str

    def describe(self) -> str:
        if math.isnan(self.capacity):  # a rule with no single capacity (an inlet limit)
            return f"{self.resource} over its limit by {self.short_by:,.1f} {self.unit}"
        return (
            f"{self.resource} short by {self.short_by:,.1f} {self.unit} "
            f"(needs {self.capacity + self.short_by:,.1f}, has {self.capacity:,.1f})"
        )


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
    sum of relative overflows, without unit); Ctrl-C stops it with no answer."""
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
    elastic: list[tuple[int, str, str, float]] = []
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
        elastic.append((lp.num_col_ + len(elastic), *described, capacity))
    watch = SolveWatch(progress)
    watch.stage = EXPLAIN_STAGE
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
        Shortfall(name, float(values[col]), capacity, unit)
        for col, name, unit, capacity in elastic
        if values[col] > SHORTFALL_EPS
    ]
    return sorted(found, key=lambda s: -s.short_by / max(np.nan_to_num(s.capacity), 1.0))
