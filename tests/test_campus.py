"""Campus frontiers: halls that share only the utility limit, solved through each hall's
frontier and an exact master (optimizer.solve.campus), checked against the single model
and against brute force."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from factory import EXACT, brute_force_best, instance, rack, row, site_of
from helpers import local_cluster, run

from models.data import build_model_data
from models.objective import primary_weights
from optimizer.errors import EXIT_INVALID_INPUT, EXIT_UNAVAILABLE
from optimizer.solve.campus import (
    SOLVED_AS_CAMPUS,
    SOLVED_AS_SINGLE,
    PartFrontier,
    _Lattice,
    _Tracer,
    best_choice,
    campus_parts,
    twins,
)
from optimizer.solve.decompose import restrict
from optimizer.solve.frontier import FrontierPoint, PartSolver, Step, Tangent
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


# Part A's frontier: (0 kW, 0), (60, 10), (100, 15); part B's: (0, 0), (50, 9), (90, 12).
# Within 150 kW the optimum is A at 100 kW + B at 50 kW = 24 (the knapsack test above).
HAND_FRONTIERS = [
    [(0.0, 0.0), (60.0, 10.0), (100.0, 15.0)],
    [(0.0, 0.0), (50.0, 9.0), (90.0, 12.0)],
]


def _oracle_step(frontier: list[tuple[float, float]], budget_kw: float) -> Step:
    """What PartSolver.step returns at ``budget_kw``: the most objective within the
    budget, at the least power reaching it, proven."""
    kw, value = max((p for p in frontier if p[0] <= budget_kw), key=lambda p: (p[1], -p[0]))
    return Step(FrontierPoint(kw, value, budget_kw, None), value, "optimal")


def _oracle_tangent(frontier: list[tuple[float, float]], price: float) -> Tangent:
    """What PartSolver.lagrange returns: the most of G - price * F, and its point."""
    kw, value = max(frontier, key=lambda p: p[1] - price * p[0])
    return Tangent(price, value - price * kw, FrontierPoint(kw, value, kw, None), "optimal")


def test_the_lagrangian_bound_is_above_the_optimum():
    # At any price mu, the sum over parts of max(G - mu F) plus mu U bounds the campus
    # optimum (24).
    for price in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3):
        bound = sum(_oracle_tangent(f, price).bound for f in HAND_FRONTIERS) + price * 150
        assert bound >= 24 - 1e-9
    # e.g. at 0.1: A max(0, 10 - 6, 15 - 10) = 5, B max(0, 9 - 5, 12 - 9) = 4: 9 + 15 = 24.
    assert sum(_oracle_tangent(f, 0.1).bound for f in HAND_FRONTIERS) + 15 == 24
    # Each part's line lies above its whole frontier.
    for frontier in HAND_FRONTIERS:
        t = _oracle_tangent(frontier, 0.1)
        assert all(value <= t.bound + 0.1 * kw + 1e-9 for kw, value in frontier)


def test_the_lagrangian_bound_of_a_real_campus_is_above_its_optimum(tmp_path):
    # Three halls sharing 700 kW: each hall's Lagrangian solve at a price per kW gives a
    # line above its frontier, so their sum plus price * 700 bounds the campus optimum.
    site = _campus(tmp_path, [500, 400, 300], slots=4, utility_kw=700)
    data = build_model_data(site)
    optimum = solve_site(site, SINGLE).outcome.objective
    solvers = [PartSolver(restrict(data, g), EXACT) for g in campus_parts(data)]
    for price in (0.2, 0.4, 0.53):
        tangents = [s.lagrange(price, None) for s in solvers]
        assert sum(t.bound for t in tangents) + price * 700 >= optimum - 1e-6
        # Each layout found lies under its own line and within its hall's limit.
        for t in tangents:
            assert t.point.objective <= t.bound + price * t.point.facility_kw + 1e-6


def test_tracing_where_the_bound_chooses_never_loses_the_optimum():
    # The tracer starts from lines at one price per part and the free line at the
    # steepest price, steps where its bound's choice is relaxed, and must end proven at 24.
    frontiers = [PartFrontier(1.0, 150.0, 1e-4) for _ in HAND_FRONTIERS]
    for part, exact in zip(frontiers, HAND_FRONTIERS, strict=True):
        part.tangents.append((max(v / kw for kw, v in exact if kw), 0.0))
        part.take(_oracle_tangent(exact, 0.15))
    tracer = _Tracer(frontiers, 150.0, "GPUs")
    for _ in range(40):
        tracer.update()
        assert tracer.upper >= 24  # never below the optimum
        if tracer.proven:
            break
        for part, exact, budget_kw in zip(frontiers, HAND_FRONTIERS, tracer.wanted, strict=True):
            if budget_kw is not None:
                part.record(_oracle_step(exact, budget_kw), budget_kw)
    assert tracer.proven and tracer.lower == 24
    assert sorted(p.facility_kw for p in tracer.chosen) == [50.0, 100.0]


def _twins(site) -> list[int]:
    """Per hall, the first hall whose compiled model is the same (campus.twins)."""
    data = build_model_data(site)
    return twins([PartSolver(restrict(data, g), EXACT).fingerprint for g in campus_parts(data)])


def test_halls_with_the_same_model_share_one_frontier(tmp_path):
    # Halls 1 and 2 are the same but for their names and positions; hall 3's UPS is
    # smaller, and a hall whose UPS differs by half a kW is not the same either.
    site = _campus(tmp_path / "same", [400, 400, 300], slots=4, utility_kw=800)
    assert _twins(site) == [0, 0, 2]
    assert _twins(_campus(tmp_path / "near", [400, 400.5, 400], 4, 800)) == [0, 1, 0]
    for utility_kw in (500, 800, 1000):
        site = _campus(tmp_path / str(utility_kw), [400, 400, 300], 4, utility_kw)
        campus = solve_site(site, FRONTIERS)
        assert campus.solved_as == SOLVED_AS_CAMPUS
        assert campus.model_size["parts"] == 3 and campus.model_size["frontiers"] == 2
        assert campus.outcome.status == "optimal"
        assert campus.outcome.objective == solve_site(site, SINGLE).outcome.objective
        # The twin hall's layout is its own (recounted on its slots), and the whole
        # campus passed the independent check within the limit.
        assert _gpus(site, campus.placement) == campus.outcome.objective
        assert campus.check.ok and campus.check.loads.facility_kw <= utility_kw + 1e-6


def test_shared_frontiers_match_brute_force_on_a_tiny_campus(tmp_path):
    # Two identical 2-slot halls on 200 kW UPSs and one on 300 kW, sharing 450 kW:
    # brute force over all 4^6 layouts, each judged by the independent check.
    site = _campus(tmp_path, [200, 200, 300], slots=2, utility_kw=450)
    assert _twins(site) == [0, 0, 2]
    best, _ = brute_force_best(site, np.array(primary_weights(build_model_data(site))))
    report = solve_site(site, FRONTIERS)
    assert report.model_size["frontiers"] == 2
    assert report.outcome.objective == best


def test_frontiers_run_on_a_dask_cluster(tmp_path):
    # The same coupled campus, its frontier solves on a one-worker dask cluster in this
    # process: the optimum of the single model, its layout checked.
    distributed = pytest.importorskip("distributed")
    site = _campus(tmp_path, [400, 400, 300], slots=4, utility_kw=800)
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        campus = solve_site(site, FRONTIERS, client=client)
    assert campus.solved_as == SOLVED_AS_CAMPUS and campus.outcome.status == "optimal"
    assert campus.outcome.objective == solve_site(site, SINGLE).outcome.objective
    assert _gpus(site, campus.placement) == campus.outcome.objective and campus.check.ok


def test_solve_takes_a_scheduler_only_for_campus_frontiers(tmp_path):
    site = _campus(tmp_path, [400, 300], slots=2, utility_kw=500)
    path = tmp_path / "instance.yaml"
    address = "tcp://127.0.0.1:1"
    alone = run("solve", path, "-o", tmp_path / "x.nc", "--scheduler", address)
    assert alone.exit_code == EXIT_INVALID_INPUT, alone.output
    assert "--scheduler" in alone.output and "--campus-frontiers" in alone.output
    with local_cluster() as cluster:
        result = run(
            "solve", path, "-o", tmp_path / "y.nc", "-q", "--campus-frontiers",
            "--scheduler", cluster.scheduler_address,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    # The frontiers were traced (not a single model run instead), to the single model's optimum.
    with xr.open_dataset(tmp_path / "y.nc") as ds:
        assert ds.attrs["solved_as"] == SOLVED_AS_CAMPUS
        assert int(ds["total_gpus"]) == solve_site(site, SINGLE).outcome.objective


def test_a_dask_cluster_without_workers_is_an_environment_error(tmp_path):
    # The scheduler answers, but no worker could hold a hall's frontier: exit 69 naming
    # what is missing, before any solve, and no layout written.
    pytest.importorskip("distributed")
    _campus(tmp_path, [400, 300], slots=2, utility_kw=500)
    out = tmp_path / "x.nc"
    with local_cluster(workers=0) as cluster:
        result = run(
            "solve", tmp_path / "instance.yaml", "-o", out, "-q", "--campus-frontiers",
            "--scheduler", cluster.scheduler_address,
        )  # fmt: skip
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert "the dask scheduler has no workers" in result.output
    assert "campus's frontiers" in result.output
    assert not out.exists()


def test_the_lattice_bound_proves_what_the_lagrangian_line_cannot():
    # Two parts with the same frontier: (100 kW, 40), (200, 80) on the line G = 0.4 F,
    # and (150, 48), 12 below it; 330 kW shared. The line bounds the campus by
    # 0.4 x 330 = 132, the optimum is 120 (200 + 100 kW), and objectives are multiples of 8.
    frontier = PartFrontier(8.0, 330.0, 1e-4)
    frontier.tangents.append((0.4, 0.0))
    frontier.feasible += [FrontierPoint(kw, g, kw, None) for kw, g in [(100, 40), (200, 80)]]
    tracer = _Tracer([frontier, frontier], 330.0, "GPUs")
    tracer.update()
    assert tracer.lower == 120 and not tracer.proven
    # Every layout beating 120 by 8 lies within 132 - 128 = 4 of the line; the known
    # ones there hold multiples of 40 GPUs.
    lattice = _Lattice(tracer, [0, 0])
    assert lattice.start() == [0] and lattice.modulus == 40
    assert lattice.slack == pytest.approx(4, abs=1e-3)  # (the master's 1e-7 room on 330 kW)
    # The off-lattice MILP first finds (150, 60) on the line: 60 is no multiple of 40,
    # so the modulus falls to gcd(40, 60) = 20 and the check runs again.
    on_line = Tangent(0.4, 0.0, FrontierPoint(150, 60, 150, None), "optimal")
    assert lattice.take(0, on_line) and lattice.modulus == 20
    # Off the multiples of 20 the best layout is 12 below the line: more than 4, so
    # every better campus holds a multiple of 20 GPUs and at most 132: 120. Proven.
    off = Tangent(0.4, -12.0, FrontierPoint(150, 48, 150, None), "optimal")
    assert not lattice.take(0, off)
    assert tracer.upper == 120 and tracer.proven
    # Had the MILP found a near layout at 8 GPUs off the lattice, nothing is proven.
    tracer.upper = 132.0
    again = _Lattice(tracer, [0, 0])
    assert again.start() == [0]
    near = Tangent(0.4, -2.0, FrontierPoint(150, 58, 145, None), "optimal")
    assert not again.take(0, near) and tracer.upper == 132
