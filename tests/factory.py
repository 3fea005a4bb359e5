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

EXACT = SolveOptions(gap=0.0, threads=1, seed=0, second_stage_gap=0.0, second_stage_share=0.0)
"""Both stages to their optimum, and no stop by time, so a hand-worked layout comes out on
every machine however loaded."""


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


ZERO_ENDS = {"rise_m": 0.0, "slack_m": 0.0, "end_clearance_m": 0.0, "cell_slots": 1}


def fabric(
    slots: int, su_size: int, ports: int, network: dict | None = None, overrides: dict | None = None
) -> dict:
    """One row of ``slots`` slots; compute racks of 8 GPUs in SUs of ``su_size``."""
    compute = {**rack(8, 10), "su_size": su_size, "network_rack": "leaf"}
    leaf = {**rack(0, 5), "su_ports": ports}
    data = instance(
        rows={
            "R": {**row(slots, ["UPS-A", "UPS-B"]), "pitch_m": 1.0, "overrides": overrides or {}}
        },
        devices={"UPS-A": {"rating_kw": 10_000}, "UPS-B": {"rating_kw": 10_000}},
        rack_types={"gpu": compute, "leaf": leaf},
        demand={"gpu": {}},
    )
    data["network"] = {**ZERO_ENDS, **(network or {})}
    return data


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
