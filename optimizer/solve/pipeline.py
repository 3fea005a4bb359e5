"""Solve orchestration: instance -> site -> model -> HiGHS -> placement -> checked layout."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyomo.environ as pyo

from models.build import build_model
from models.data import build_model_data, unplaceable_minimums
from optimizer.errors import LayoutCheckError, NoLayoutError
from optimizer.instance.loader import load_instance
from optimizer.site.arrays import Site
from optimizer.site.build import build_site
from optimizer.site.placement import Assignment
from optimizer.solve.assign import assign
from optimizer.solve.decompose import parts, solve_parts
from optimizer.solve.greedy import greedy_start
from optimizer.solve.highs import SolveOptions, SolveOutcome, solve
from optimizer.solve.progress import ProgressFn
from optimizer.verify.check import CheckReport, check_layout


@dataclass
class SolveReport:
    """A solved, independently checked layout and how it was obtained."""

    site: Site
    layout: Assignment
    outcome: SolveOutcome
    check: CheckReport
    options: SolveOptions
    timings: dict[str, float] = field(default_factory=dict)
    model_size: dict[str, int] = field(default_factory=dict)

    @property
    def placement(self) -> np.ndarray:
        """Rack type index per slot; -1 for an empty slot."""
        return self.layout.placement


def _model_size(m: pyo.ConcreteModel) -> dict[str, int]:
    variables = sum(1 for _ in m.component_data_objects(pyo.Var, active=True))
    constraints = sum(1 for _ in m.component_data_objects(pyo.Constraint, active=True))
    return {"variables": variables, "constraints": constraints}


def solve_site(
    site: Site, options: SolveOptions, progress: ProgressFn | None = None
) -> SolveReport:
    """Build and solve the model for ``site``; raise unless a checked layout comes out."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = build_model_data(site)
    impossible = unplaceable_minimums(data)
    if impossible:
        raise NoLayoutError(f"{site.name}: the demand cannot be met: " + "; ".join(impossible))
    groups = parts(data) if options.split_parts else [list(range(len(data.classes)))]
    if len(groups) > 1:
        timings["build_s"] = time.perf_counter() - started
        layout, outcome, part_timings, variables = solve_parts(data, groups, options)
        timings["build_s"] += part_timings["build_s"]
        model_size = {"parts": len(groups), "variables": variables}
    else:
        m = build_model(data)
        timings["build_s"] = time.perf_counter() - started
        start = greedy_start(data, m) if options.warm_start else None
        outcome = solve(m, options, progress, start)
        model_size = {"parts": 1, **_model_size(m)}
    timings["handoff_s"] = outcome.handoff_s
    timings["solve_s"] = outcome.solve_s
    timings["primary_s"] = outcome.primary_s
    if not outcome.has_solution:
        if outcome.status == "infeasible":
            raise NoLayoutError(
                f"{site.name}: no layout satisfies every constraint and the demand minimums "
                "(the MILP is infeasible); lower demand min or add capacity"
            )
        raise NoLayoutError(
            f"{site.name}: no feasible layout found before the solve stopped (status "
            f"{outcome.status}); allow more time with --time-limit"
        )
    if len(groups) == 1:
        layout = assign(data, m, outcome.values)
    started = time.perf_counter()
    check = check_layout(site, layout.placement, layout.su, layout.su_network_slot)
    timings["check_s"] = time.perf_counter() - started
    if not check.ok:
        details = "; ".join(v.describe() for v in check.violations[:3])
        raise LayoutCheckError(
            f"{site.name}: the solver's layout failed the independent check, so it was not "
            f"written (a bug in rackopt; please report it with the instance): {details}"
        )
    return SolveReport(site, layout, outcome, check, options, timings, model_size)


def solve_instance(
    path: str | Path, options: SolveOptions, progress: ProgressFn | None = None
) -> SolveReport:
    """Load, validate and solve one instance file."""
    started = time.perf_counter()
    site = build_site(load_instance(path))
    load_s = time.perf_counter() - started
    report = solve_site(site, options, progress)
    report.timings = {"load_s": load_s, **report.timings}
    return report
