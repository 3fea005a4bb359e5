"""Campus frontiers: halls that share only the utility limit, solved through each hall's
frontier and an exact master (optimizer.solve.campus), checked against the single model
and against brute force."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from factory import EXACT, brute_force_best, instance, rack, row, site_of

from models.data import build_model_data
from models.objective import primary_weights
from optimizer.solve.campus import (
    SOLVED_AS_CAMPUS,
    SOLVED_AS_SINGLE,
    best_choice,
    campus_parts,
)
from optimizer.solve.pipeline import solve_site
from optimizer.solve.progress import Progress

FRONTIERS = replace(EXACT, campus_frontiers=True)
SINGLE = replace(EXACT, split_parts=False)
RACKS = {"big": rack(72, 136), "small": rack(56, 100), "half": rack(32, 60)}
"""GPUs per kW: big 0.53, small 0.56, half 0.53; none dominates once the UPS binds."""


def _campus(tmp_path, ups_kw: list[float], slots: int, utility_kw: float, shared: bool = False):
    """One hall per UPS rating, each a row of ``slots`` slots on its own A/B UPS pair and
    air zone; with ``shared``, every hall's B feed is one UPS."""
    data = instance(
        rows={"R": row(slots, ["UPS-1-A", "UPS-1-B"])},
        devices={},
        rack_types=RACKS,
        facility={"utility_limit_kw": utility_kw},
    )
    data["halls"] = {}
    for h, rating in enumerate(ups_kw, start=1):
        b_side = "UPS-B" if shared else f"UPS-{h}-B"
        data["power"]["devices"][f"UPS-{h}-A"] = {"rating_kw": rating}
        data["power"]["devices"].setdefault(b_side, {"rating_kw": rating})
        data["cooling"]["air_zones"][f"Z{h}"] = {"crah_kw": 10_000, "units": 2}
        hall_row = {**row(slots, [f"UPS-{h}-A", b_side]), "origin_m": [50 * h, 0]}
        hall_row["slot"]["air_zone"] = f"Z{h}"
        data["halls"][f"H{h}"] = {"rows": {"R": hall_row}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    return site_of(tmp_path, data)


def _gpus(site, placement: np.ndarray) -> int:
    return int(sum(site.rack_types[t].gpus for t in placement if t >= 0))


def test_frontiers_and_the_single_model_agree_on_a_coupled_campus(tmp_path):
    site = _campus(tmp_path, [500, 400, 300], slots=4, utility_kw=900)
    assert campus_parts(build_model_data(site)) is not None
    single = solve_site(site, SINGLE)
    assert single.solved_as == SOLVED_AS_SINGLE
    for utility_kw in (450, 700, 900, 1150):
        site = _campus(tmp_path / str(utility_kw), [500, 400, 300], 4, utility_kw)
        seen: list[Progress] = []
        campus = solve_site(site, FRONTIERS, seen.append)
        whole = solve_site(site, SINGLE)
        assert campus.solved_as == SOLVED_AS_CAMPUS
        assert campus.model_size["parts"] == 3
        assert campus.outcome.status == "optimal" and campus.outcome.gap == 0.0
        assert campus.outcome.objective == whole.outcome.objective
        # The layout, recounted, holds that many GPUs within the limit, and passed the check.
        assert _gpus(site, campus.placement) == campus.outcome.objective
        assert campus.check.ok and campus.check.loads.facility_kw <= utility_kw + 1e-6
        assert campus.outcome.second_stage_objective is not None
        # Progress during the frontiers: the incumbent never falls, the bound never rises,
        # and they meet at the optimum.
        assert [p.stage for p in seen] == ["frontiers"] * len(seen)
        known = [p for p in seen if p.incumbent is not None and p.bound is not None]
        assert [p.incumbent for p in known] == sorted(p.incumbent for p in known)
        assert [p.bound for p in known] == sorted((p.bound for p in known), reverse=True)
        assert known[-1].incumbent == known[-1].bound == campus.outcome.objective


def test_frontiers_match_brute_force_on_a_tiny_campus(tmp_path):
    # Halls of 2 slots on 300 and 200 kW UPSs sharing 420 kW: brute force over all
    # 4^4 layouts, each judged by the independent check.
    site = _campus(tmp_path, [300, 200], slots=2, utility_kw=420)
    best, _ = brute_force_best(site, np.array(primary_weights(build_model_data(site))))
    report = solve_site(site, FRONTIERS)
    assert report.solved_as == SOLVED_AS_CAMPUS
    assert report.outcome.objective == best


def test_halls_sharing_a_device_or_a_site_wide_demand_bound_are_one_model(tmp_path):
    shared = _campus(tmp_path / "ups", [500, 400], slots=3, utility_kw=700, shared=True)
    assert campus_parts(build_model_data(shared)) is None
    assert solve_site(shared, FRONTIERS).solved_as == SOLVED_AS_SINGLE
    site = _campus(tmp_path / "free", [500, 400], slots=3, utility_kw=700)
    assert campus_parts(build_model_data(site)) is not None
    # Frontiers are asked for: without --campus-frontiers the campus is one model.
    assert solve_site(site, EXACT).solved_as == SOLVED_AS_SINGLE
    # A minimum of big racks counted over both halls couples them beyond the utility.
    capped = site.demand_min.copy()
    capped[0] = 1
    demanded = replace(site, demand_min=capped)
    assert campus_parts(build_model_data(demanded)) is None


def test_the_master_is_an_exact_multiple_choice_knapsack():
    # Part A: (0 kW, 0), (60, 10), (100, 15); part B: (0, 0), (50, 9), (90, 12).
    # Within 150 kW: A 100 + B 50 = 24 beats A 60 + B 90 = 22.
    a = [(0.0, 0.0, None), (60.0, 10.0, None), (100.0, 15.0, None)]
    b = [(0.0, 0.0, None), (50.0, 9.0, None), (90.0, 12.0, None)]
    assert best_choice([a, b], 150.0) == (24.0, [2, 1])
    assert best_choice([a, b], 40.0) == (0.0, [0, 0])
    assert best_choice([a[1:], b[1:]], 100.0) is None
