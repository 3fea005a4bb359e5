"""Small instances built in code, for tests whose optimum is worked out by hand."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
from helpers import write_instance

from optimizer.instance.loader import load_instance
from optimizer.site.arrays import Site
from optimizer.site.build import build_site
from optimizer.solve.options import SolveOptions
from optimizer.verify.check import EMPTY, check_layout

EXACT = SolveOptions(gap=0.0, threads=1, seed=0)


def site_of(folder: Path, data: dict[str, Any]) -> Site:
    return build_site(load_instance(write_instance(folder, data)))


def rack(gpus: int, it_kw: float, liquid: float = 0.0, weight: float = 500.0) -> dict[str, Any]:
    """A custom rack type (not from the catalog) with round numbers."""
    return {
        "gpus": gpus,
        "it_kw": it_kw,
        "liquid_fraction": liquid,
        "weight_kg": weight,
        "flow_lpm_per_kw": 1.5,
    }


def instance(
    rows: dict[str, dict[str, Any]],
    devices: dict[str, dict[str, Any]],
    rack_types: dict[str, dict[str, Any]],
    demand: dict[str, dict[str, Any]] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """An instance dict with one hall, a roomy air zone Z and, when a row names it, a
    roomy CDU group C (a CDU group no slot names would be a lint warning)."""
    cooling: dict[str, Any] = {"air_zones": {"Z": {"crah_kw": 10_000, "units": 2}}}
    slots = [r.get("slot", {}) for r in rows.values()]
    slots += [o for r in rows.values() for o in r.get("overrides", {}).values()]
    if any(slot.get("cdu") == "C" for slot in slots):
        cooling["cdus"] = {"C": {"unit_kw": 10_000, "unit_flow_lpm": 100_000, "units": 2}}
    data: dict[str, Any] = {
        "format_version": 1,
        "name": "test",
        "halls": {"H": {"rows": rows}},
        "power": {"devices": devices},
        "cooling": cooling,
        "rack_types": rack_types,
        "demand": demand or {name: {} for name in rack_types},
    }
    data.update(sections)
    return data


def row(slots: int, feeds: list[str], **slot: Any) -> dict[str, Any]:
    return {"slots": slots, "slot": {"air_zone": "Z", "feeds": feeds, **slot}}


def brute_force_best(site: Site, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Best objective over every assignment of rack types (or empty) to slots, each
    checked by the independent checker: the ground truth for small instances."""
    eligible = site.eligible
    choices = [[EMPTY, *np.flatnonzero(eligible[s]).tolist()] for s in range(site.n_slots)]
    best, best_placement = -1.0, np.full(site.n_slots, EMPTY)
    for combo in itertools.product(*choices):
        value = float(sum(weights[t] for t in combo if t != EMPTY))
        if value > best and check_layout(site, np.array(combo)).ok:
            best, best_placement = value, np.array(combo)
    return best, best_placement
