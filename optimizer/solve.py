"""Solve orchestration: instance -> site -> model -> HiGHS -> placement -> checked layout."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyomo.environ as pyo

from models.build import build_model
from models.data import ModelData, build_model_data
from optimizer.check import EMPTY, CheckReport, check_layout
from optimizer.errors import LayoutCheckError, NoLayoutError
from optimizer.highs_adapter import SolveOptions, SolveOutcome, solve
from optimizer.loader import load_instance
from optimizer.site import Site, build_site


@dataclass
class SolveReport:
    """A solved, independently checked layout and how it was obtained."""

    site: Site
    placement: np.ndarray
    """Rack type index per slot; -1 for an empty slot."""
    outcome: SolveOutcome
    check: CheckReport
    options: SolveOptions
    timings: dict[str, float] = field(default_factory=dict)
    model_size: dict[str, int] = field(default_factory=dict)


def place_racks(data: ModelData, m: pyo.ConcreteModel, outcome: SolveOutcome) -> np.ndarray:
    """Turn per-class counts into slots: each class fills its slots front to back, rack
    types in instance order (the documented tie-breaker within a class)."""
    placement = np.full(data.site.n_slots, EMPTY, dtype=np.int64)
    for k, c in enumerate(data.classes):
        free = iter(c.slots)
        for t in sorted(m.types_of_class[k]):
            count = round(outcome.values[id(m.place[k, t])])
            for _ in range(count):
                placement[next(free)] = t
    return placement


def _model_size(m: pyo.ConcreteModel) -> dict[str, int]:
    variables = sum(1 for _ in m.component_data_objects(pyo.Var, active=True))
    constraints = sum(1 for _ in m.component_data_objects(pyo.Constraint, active=True))
    return {"variables": variables, "constraints": constraints}


def solve_site(site: Site, options: SolveOptions) -> SolveReport:
    """Build and solve the model for ``site``; raise unless a checked layout comes out."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = build_model_data(site)
    m = build_model(data)
    timings["build_s"] = time.perf_counter() - started
    outcome = solve(m, options)
    timings["handoff_s"] = outcome.handoff_s
    timings["solve_s"] = outcome.solve_s
    if not outcome.has_solution:
        if outcome.status == "infeasible":
            raise NoLayoutError(
                f"{site.name}: no layout satisfies every constraint and the demand minimums "
                "(the MILP is infeasible); lower demand min or add capacity"
            )
        raise NoLayoutError(
            f"{site.name}: no feasible layout found (solver status {outcome.status}); "
            "allow more time with --time-limit"
        )
    started = time.perf_counter()
    placement = place_racks(data, m, outcome)
    check = check_layout(site, placement)
    timings["check_s"] = time.perf_counter() - started
    if not check.ok:
        details = "; ".join(v.describe() for v in check.violations[:3])
        raise LayoutCheckError(
            f"{site.name}: the solver's layout failed the independent check, so it was not "
            f"written (a bug in rackopt; please report it with the instance): {details}"
        )
    return SolveReport(site, placement, outcome, check, options, timings, _model_size(m))


def solve_instance(path: str | Path, options: SolveOptions) -> SolveReport:
    """Load, validate and solve one instance file."""
    started = time.perf_counter()
    site = build_site(load_instance(path))
    load_s = time.perf_counter() - started
    report = solve_site(site, options)
    report.timings = {"load_s": load_s, **report.timings}
    return report
