"""Inlet temperature, water classes, cooling power and PUE, worked out by hand.

The small recirculation matrices here are chosen so that every inlet temperature is
a short sum: the optimum, the binding slot and its temperature follow on paper, and
brute-force enumeration (every assignment, judged by the independent checker)
confirms them.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import yaml
from factory import EXACT, brute_force_best, fabric, instance, rack, row, site_of
from helpers import generated_hall, write_instance

from models.data import ModelData, build_model_data
from optimizer.instance.loader import load_instance
from optimizer.results.layout import layout_dataset
from optimizer.site.arrays import Site
from optimizer.site.build import build_site
from optimizer.site.placement import Assignment
from optimizer.solve import greedy
from optimizer.solve.explain import explain
from optimizer.solve.greedy import Construction, greedy_layout, packed_layout, start_layout
from optimizer.solve.options import SolveOptions
from optimizer.solve.pipeline import solve_site
from optimizer.studies.report import utilization_bars
from optimizer.verify.check import (
    EMPTY,
    INLET_TOLERANCE_K,
    TOLERANCE,
    check_layout,
    occupied_inlet_rise,
)
from optimizer.verify.headroom import next_rack

HOT, COOL = 0, 1
"""Rack type indices of :func:`_three_slots`: 40 kW / 32 GPUs and 10 kW / 8 GPUs, air."""
D_THREE = np.array(
    [
        [0.05, 0.10, 0.02],
        [0.10, 0.05, 0.10],
        [0.02, 0.10, 0.05],
    ]
)
"""C per kW: a rack heats its own inlet by 0.05, a neighbour's by 0.10, the far end's
by 0.02."""


def _cop(t: float) -> float:
    """The default COP curve (Moore et al., USENIX ATC 2005)."""
    return 0.0068 * t * t + 0.0008 * t + 0.458


def _three_slots(**sections: Any) -> dict[str, Any]:
    data = instance(
        {"R": row(3, ["A", "B"])},
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"hot": rack(32, 40.0), "cool": rack(8, 10.0)},
        **sections,
    )
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 20
    return data


def _matrix_csv(folder: Path, matrix: np.ndarray, slots: list[str]) -> None:
    lines = ["slot," + ",".join(slots)]
    lines += [f"{s}," + ",".join(f"{v:g}" for v in r) for s, r in zip(slots, matrix, strict=True)]
    (folder / "d.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


SLOTS = ["H-R-01", "H-R-02", "H-R-03"]


def test_recirculation_decides_the_optimum_of_three_slots(tmp_path: Path) -> None:
    """Three 40 kW racks would heat the middle inlet to 20 + 2 + 4 + 4 = 30 C > 27 C.
    The best is two hot racks side by side and a cool one at the end: the middle inlet
    is 20 + 0.05 x 40 + 0.10 x 40 + 0.10 x 10 = 27.0 C, exactly its limit: 72 GPUs."""
    _matrix_csv(tmp_path, D_THREE, SLOTS)
    site = site_of(tmp_path, _three_slots(thermal={"matrix_file": "d.csv"}))
    report = solve_site(site, EXACT)
    assert report.outcome.objective == pytest.approx(72)
    placed = tuple(report.placement)
    assert placed in {(COOL, HOT, HOT), (HOT, HOT, COOL)}
    expected = {
        (COOL, HOT, HOT): [20 + 0.5 + 4 + 0.8, 27.0, 20 + 0.2 + 4 + 2],
        (HOT, HOT, COOL): [20 + 2 + 4 + 0.2, 27.0, 20 + 0.8 + 4 + 0.5],
    }[placed]
    assert report.check.loads.inlet_temp_c == pytest.approx(expected)
    best, _ = brute_force_best(site, np.array([32.0, 8.0]))
    assert best == pytest.approx(72)
    every_hot = check_layout(site, np.array([HOT, HOT, HOT]))
    assert [(v.rule, v.subject, v.load) for v in every_hot.violations] == [
        ("inlet-temp", "hot in H-R-02", pytest.approx(30.0))
    ]


def test_explain_reports_the_inlet_that_three_hot_racks_overheat(tmp_path: Path) -> None:
    """Demanding three hot racks: the middle inlet would be 30 C, 3 K over its limit."""
    _matrix_csv(tmp_path, D_THREE, SLOTS)
    data = _three_slots(thermal={"matrix_file": "d.csv"}, demand={"hot": {"min": 3}})
    (shortfall,) = explain(site_of(tmp_path, data), EXACT)
    assert shortfall.resource == "inlet at H-R-02"
    assert shortfall.short_by == pytest.approx(3.0)
    assert shortfall.describe() == "inlet at H-R-02 over its limit by 3.0 K"


def test_next_rack_ranks_slots_by_the_inlet_they_heat(tmp_path: Path) -> None:
    """With a hot rack in H-R-01: another in H-R-03 warms H-R-01 to 20 + 2 + 0.8 = 22.8 C
    (rise 2.8 of 7 K, 40%); in H-R-02 it warms H-R-01 and itself by 6 K (86%)."""
    _matrix_csv(tmp_path, D_THREE, SLOTS)
    site = site_of(tmp_path, _three_slots(thermal={"matrix_file": "d.csv"}))
    one = Assignment(np.array([HOT, EMPTY, EMPTY]), np.full(3, EMPTY))
    ranked = next_rack(site, one, "hot").ranked
    assert [(c.slot, round(c.utilization, 3)) for c in ranked] == [
        ("H-R-03", 0.4),
        ("H-R-02", 0.857),
    ]


def test_without_recirculation_all_three_hot_racks_fit(tmp_path: Path) -> None:
    site = site_of(tmp_path, _three_slots())
    report = solve_site(site, EXACT)
    assert report.outcome.objective == pytest.approx(96)
    assert report.check.loads.inlet_temp_c == pytest.approx([20.0] * 3)


def _matrix_netcdf(path: Path, labels: Any) -> None:
    matrix = xr.Dataset(
        {"recirculation_c_per_kw": (("slot", "source_slot"), D_THREE)},
        coords={"slot": labels, "source_slot": labels},
    )
    matrix.to_netcdf(path, engine="h5netcdf")


def test_netcdf_matrix_reads_like_the_csv(tmp_path: Path) -> None:
    _matrix_netcdf(tmp_path / "d.nc", SLOTS)
    site = site_of(tmp_path, _three_slots(thermal={"matrix_file": "d.nc"}))
    assert site.recirculation.toarray() == pytest.approx(D_THREE)
    assert solve_site(site, EXACT).outcome.objective == pytest.approx(72)


def test_netcdf_matrix_with_byte_labels_and_upper_case_suffix(tmp_path: Path) -> None:
    """Fixed-width byte strings (netCDF char arrays) label slots as well as text does."""
    _matrix_netcdf(tmp_path / "D.NC", np.array(SLOTS, dtype="S6"))
    site = site_of(tmp_path, _three_slots(thermal={"matrix_file": "D.NC"}))
    assert site.recirculation.toarray() == pytest.approx(D_THREE)


def _two_rows(model: dict[str, Any]) -> dict[str, Any]:
    """Rows R1 (y = 0) and R2 (y = 3 m) of three slots at 0.6 m pitch along x."""
    data = instance(
        {
            "R1": row(3, ["A", "B"]),
            "R2": {**row(3, ["A", "B"]), "origin_m": [0.0, 3.0]},
        },
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"hot": rack(32, 40.0)},
        thermal={"recirculation": {"H": model}},
    )
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 20
    return data


def test_parametric_matrix_entries_by_hand(tmp_path: Path) -> None:
    """Defaults: shares 0.10 self / 0.10 row / 0.05 aisle, decay 1.2 m, 2.5 m3/s of inlet
    air, so one kW of exhaust at share 1 warms an inlet by 1 / (1.2 x 2.5) = 1/3 K."""
    d = site_of(tmp_path, _two_rows({})).recirculation.toarray()
    k = 1 / 3
    assert d[0, 0] == pytest.approx(0.10 * k)
    assert d[0, 1] == pytest.approx(0.10 * math.exp(-0.5) * k)
    assert d[0, 2] == pytest.approx(0.10 * math.exp(-1.0) * k)
    assert d[0, 3] == pytest.approx(0.05 * k)  # straight across, 3 m <= aisle_m 4 m
    assert d[0, 4] == pytest.approx(0.05 * math.exp(-0.5) * k)
    assert d[4, 0] == pytest.approx(d[0, 4])


def test_parametric_axis_of_a_single_slot_row_follows_its_direction(tmp_path: Path) -> None:
    """A one-slot row running +y at x = 0 faces a three-slot +y row at x = 3 m: the slot
    straight across gets the full aisle share, not one decayed over 3 m."""
    data = _two_rows({})
    data["halls"]["H"]["rows"] = {
        "R1": {**row(1, ["A", "B"]), "direction": "+y"},
        "R2": {**row(3, ["A", "B"]), "direction": "+y", "origin_m": [3.0, 0.0]},
    }
    d = site_of(tmp_path, data).recirculation.toarray()
    assert d[0, 1] == pytest.approx(0.05 / 3)
    assert d[0, 2] == pytest.approx(0.05 * math.exp(-0.5) / 3)
    assert d[1, 0] == pytest.approx(0.05 / 3)


def test_parametric_matrix_containment_radius_and_aisle(tmp_path: Path) -> None:
    contained = site_of(tmp_path, _two_rows({"containment": "hot_aisle"})).recirculation
    plain = site_of(tmp_path, _two_rows({})).recirculation
    assert contained.toarray() == pytest.approx(0.2 * plain.toarray())
    short = site_of(tmp_path, _two_rows({"radius_m": 1.0, "aisle_m": 2.0})).recirculation
    d = short.toarray()
    assert d[0, 1] > 0 and d[0, 2] == 0  # 1.2 m along the row is beyond the radius
    assert d[0, 3:].sum() == 0  # the other row is 3 m away, beyond aisle_m


def test_dense_air_racks_spread_out_instead_of_clustering(tmp_path: Path) -> None:
    """Four slots in a row, two 40 kW racks wanted, supply 25.3 C (1.7 K of headroom).
    A rack alone adds 0.1 x 40 / 3 = 1.333 K to its own inlet; a neighbour d slots away
    adds 0.1 e^(-0.6 d / 1.2) x 40 / 3 = 0.809, 0.491, 0.298 K for d = 1, 2, 3. Only the
    two ends (1.333 + 0.298 = 1.631 K) stay within 1.7 K."""
    data = instance(
        {"R": row(4, ["A", "B"])},
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"hot": rack(32, 40.0)},
        {"hot": {"max": 2}},
        thermal={"recirculation": {"H": {}}},
    )
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 25.3
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    assert report.placement.tolist() == [0, EMPTY, EMPTY, 0]
    assert report.check.loads.inlet_temp_c[[0, 3]] == pytest.approx([25.3 + 1.631] * 2, abs=1e-3)
    assert not check_layout(site, np.array([0, EMPTY, 0, EMPTY])).ok


def test_rack_stays_off_a_loop_warmer_than_its_water_class(tmp_path: Path) -> None:
    data = instance(
        {
            "C": row(1, ["A", "B"], cdu="C"),
            "W": {**row(1, ["A", "B"], cdu="W"), "origin_m": [0.0, 3.0]},
        },
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"w32": {**rack(72, 100.0, liquid=0.8), "water_class": "W32"}},
    )
    data["cooling"]["cdus"] = {
        "C": {"unit_kw": 500, "unit_flow_lpm": 5000, "units": 2, "supply_temp_c": 30},
        "W": {"unit_kw": 500, "unit_flow_lpm": 5000, "units": 2, "supply_temp_c": 40},
    }
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    assert report.placement.tolist() == [0, EMPTY]
    warm = check_layout(site, np.array([EMPTY, 0]))
    assert [(v.rule, v.load, v.limit) for v in warm.violations] == [("slot-water", 40.0, 32.0)]


def test_cooling_power_per_zone_and_loop_and_pue(tmp_path: Path) -> None:
    """A 100 kW rack, 80 kW to a 45 C loop and 20 kW to 20 C air: cooling is
    80 (1/COP(45) + 0.02 pumps) + 20 (1/COP(20) + 0.04 fans)."""
    data = instance(
        {"L": row(1, ["A", "B"], cdu="C")},
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"nvl": rack(72, 100.0, liquid=0.8)},
    )
    data["cooling"]["cdus"]["C"]["supply_temp_c"] = 45
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 20
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    cooling = 80 * (1 / _cop(45) + 0.02) + 20 * (1 / _cop(20) + 0.04)
    loads = report.check.loads
    assert loads.cooling_kw == pytest.approx(cooling)
    assert loads.pue == pytest.approx((100 + cooling) / 100)
    ds = layout_dataset(report)
    assert float(ds["pue"]) == pytest.approx((100 + cooling) / 100)
    assert float(ds["cdu_cooling_kw"][0]) == pytest.approx(80 * (1 / _cop(45) + 0.02))


def test_flat_factors_and_overrides(tmp_path: Path) -> None:
    data = _three_slots()
    data["cooling"]["cdus"] = {"C": {"unit_kw": 100, "unit_flow_lpm": 200, "units": 2}}
    data["cooling"]["air_zones"]["Z"]["cooling_kw_per_kw"] = 0.1
    assert site_of(tmp_path, data).air_zone_cooling_kw_per_kw == pytest.approx([0.1])
    del data["cooling"]["air_zones"]["Z"]["supply_temp_c"]
    del data["cooling"]["air_zones"]["Z"]["cooling_kw_per_kw"]
    site = site_of(tmp_path, data)
    assert site.air_zone_cooling_kw_per_kw == pytest.approx([0.25])  # facility default
    assert site.cdu_cooling_kw_per_kw == pytest.approx([0.05])


def test_least_facility_power_puts_required_racks_in_the_warmer_zone(tmp_path: Path) -> None:
    """Two 40 kW air racks must be placed; zone C supplies 20 C air, zone W 25 C. Per kW
    of air, C costs 1/COP(20) + 0.04 and W 1/COP(25) + 0.04, so both go to W."""
    data = instance(
        {
            "C": row(2, ["A", "B"], air_zone="C"),
            "W": {**row(2, ["A", "B"], air_zone="W"), "origin_m": [0.0, 3.0]},
        },
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"hot": rack(32, 40.0)},
        {"hot": {"min": 2}},
        objective="min_facility_kw",
    )
    data["cooling"]["air_zones"] = {
        "C": {"crah_kw": 500, "units": 2, "supply_temp_c": 20},
        "W": {"crah_kw": 500, "units": 2, "supply_temp_c": 25},
    }
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    assert report.placement.tolist() == [EMPTY, EMPTY, 0, 0]
    assert report.outcome.objective == pytest.approx(80 * (1 + 1 / _cop(25) + 0.04))
    assert report.outcome.bound <= report.outcome.objective + 1e-6
    assert report.outcome.gap == 0.0
    assert report.check.loads.facility_kw == pytest.approx(report.outcome.objective)


def test_an_installed_hot_rack_limits_its_neighbours(tmp_path: Path) -> None:
    """With a hot rack installed in the middle (2 K of its own), a hot end adds 4 K to
    the middle inlet and a cool end 1 K: one of each (2 + 4 + 1 = 7 K) is the best."""
    _matrix_csv(tmp_path, D_THREE, SLOTS)
    data = _three_slots(thermal={"matrix_file": "d.csv"}, installed={"H-R-02": "hot"})
    report = solve_site(site_of(tmp_path, data), EXACT)
    assert report.outcome.objective == pytest.approx(72)
    assert report.placement[1] == HOT
    assert sorted(report.placement[[0, 2]].tolist()) == [HOT, COOL]


def test_matrix_file_is_hashed_into_the_instance_digest(tmp_path: Path) -> None:
    _matrix_csv(tmp_path, D_THREE, SLOTS)
    path = write_instance(tmp_path, _three_slots(thermal={"matrix_file": "d.csv"}))
    first = load_instance(path).sha256
    _matrix_csv(tmp_path, D_THREE * 0.5, SLOTS)
    assert load_instance(path).sha256 != first


ROOT = Path(__file__).resolve().parents[1]


def test_air_hall_recirculation_not_capacity_decides() -> None:
    """The shipped air hall: every slot fits power and CRAH capacity, but a full hall
    would heat the middle of row R02 to the generator's hand sum (32.8 C). The optimum
    is 36 of 48 racks, spread out, and beats first-fit; with hot-aisle containment the
    same hall takes all 48."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import generate_instances as generator

    site = build_site(load_instance(ROOT / "instances" / "air-hall.yaml"))
    full = check_layout(site, np.zeros(site.n_slots, dtype=np.int64))
    assert {v.rule for v in full.violations} == {"inlet-temp"}
    middle = site.slot_ids.index("H1-R02-07")
    b200 = generator.rack_catalog()["dgx-b200-rack"]
    assert full.loads.inlet_temp_c[middle] == pytest.approx(generator._full_hall_inlet_c(b200))
    report = solve_site(site, EXACT)
    assert report.outcome.objective == pytest.approx(36 * 32)
    assert report.outcome.status == "optimal"
    assert (report.check.loads.air_zone_heat_kw < site.air_zone_capacity_kw).all()
    rule = greedy_layout(site)
    assert check_layout(site, rule.placement).ok
    assert (rule.placement != EMPTY).sum() < 36


def _gpus(site, placement: np.ndarray) -> int:
    return sum(site.rack_types[t].gpus for t in placement[placement != EMPTY])


def test_the_spreading_start_beats_first_fit_in_the_air_hall_and_passes_the_check() -> None:
    # First-fit fills the front rows hot and strands the rest: 33 racks of 32 GPUs. Putting
    # each rack where it uses the least of the worst inlet's headroom places 35; weighing
    # every inlet it heats (the 8-norm) places the optimum, 36 (proven above). Every
    # layout is recomputed by the independent checker.
    site = build_site(load_instance(ROOT / "instances" / "air-hall.yaml"))
    data = build_model_data(site)
    first_fit = greedy_layout(site, data)
    worst_inlet = greedy_layout(site, data, spread=math.inf)
    eight_norm = greedy_layout(site, data, spread=8.0)
    for layout in (first_fit, worst_inlet, eight_norm):
        assert check_layout(site, layout.placement).ok
    assert _gpus(site, first_fit.placement) == 33 * 32
    assert _gpus(site, worst_inlet.placement) == 35 * 32
    assert _gpus(site, eight_norm.placement) == 36 * 32
    assert _gpus(site, start_layout(data).placement) == 36 * 32


def test_the_spreading_start_leaves_the_liquid_slot_to_the_liquid_rack(tmp_path: Path) -> None:
    # Slot 1 has a CDU and takes either rack, slot 2 takes only the air rack. The air rack
    # (50 kW, 32 GPUs) is placed first, being the larger. Its exhaust warms slot 2's inlet
    # by 0.10 C/kW from slot 2 and 0.05 from slot 1, so by inlet pressure alone slot 1 is
    # the cooler choice (2.5 of 7 K against 5), and the liquid rack (40 kW, 8 of them to
    # air, 72 GPUs) then has nowhere to go: 32 GPUs, as first-fit. Filling the least
    # versatile slot first puts the air rack in slot 2 and the liquid rack in slot 1
    # (slot 2 at 20 + 5 + 0.05 x 8 = 25.4 C): 104 GPUs, the brute-force optimum.
    d = np.array([[0.02, 0.02], [0.05, 0.10]])
    _matrix_csv(tmp_path, d, ["H-R-01", "H-R-02"])
    spec = instance(
        {"R": {**row(2, ["A", "B"]), "overrides": {1: {"cdu": "C"}}}},
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"air": rack(32, 50.0), "liquid": rack(72, 40.0, liquid=0.8)},
        thermal={"matrix_file": "d.csv"},
    )
    spec["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 20
    site = site_of(tmp_path, spec)
    data = build_model_data(site)
    assert [r.slot for r in data.inlet_rows] == [1]  # only slot 2 can overheat
    first_fit = greedy_layout(site, data)
    spread = greedy_layout(site, data, spread=math.inf)
    assert _gpus(site, first_fit.placement) == 32
    assert _gpus(site, spread.placement) == 104
    assert check_layout(site, spread.placement).ok
    assert check_layout(site, spread.placement).loads.inlet_temp_c[1] == pytest.approx(25.4)
    best, _ = brute_force_best(site, np.array([32.0, 72.0]))
    assert best == 104


def test_the_spreading_start_tries_network_racks_in_the_least_versatile_slot(
    tmp_path: Path,
) -> None:
    # Six slots 1 m apart; slots 1 and 6 may take a network rack (one SU each), slots 1-2
    # have a CDU. The air SU (one 50 kW rack, 32 GPUs, reach 10 m) is placed first; the
    # liquid SU (one 40 kW rack, 72 GPUs, reach 1.5 m) can only hang off slot 1. Opening
    # the air SU's network rack at the first free network slot takes slot 1: 32 GPUs, as
    # first-fit. Opening it in the least versatile network slot (slot 6 takes a network or
    # an air rack, slot 1 also a liquid one) leaves slot 1 to the liquid SU: 104 GPUs,
    # which the start keeps. Slot 4 is the one hot inlet, so the spreading construction runs.
    from factory import ZERO_ENDS

    d = np.zeros((6, 6))
    d[3, 2], d[3, 3] = 0.10, 0.05
    _matrix_csv(tmp_path, d, [f"H-R-0{i}" for i in range(1, 7)])
    spec = instance(
        {
            "R": {
                **row(6, ["A", "B"]),
                "pitch_m": 1.0,
                "overrides": {
                    1: {"cdu": "C", "network": True},
                    2: {"cdu": "C"},
                    6: {"network": True},
                },
            }
        },
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {
            "air": {**rack(32, 50.0), "su_size": 1, "network_rack": "leaf", "reach_m": 10.0},
            "liquid": {
                **rack(72, 40.0, liquid=0.8),
                "su_size": 1,
                "network_rack": "leaf",
                "reach_m": 1.5,
            },
            "leaf": {**rack(0, 5.0), "su_ports": 1},
        },
        demand={"air": {"max": 1}, "liquid": {}},
        thermal={"matrix_file": "d.csv"},
        network=dict(ZERO_ENDS),
    )
    spec["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 20
    site = site_of(tmp_path, spec)
    data = build_model_data(site)
    assert [r.slot for r in data.inlet_rows] == [3]
    first_slot = greedy_layout(site, data, spread=math.inf)
    versatile_last = greedy_layout(site, data, spread=math.inf, versatile_hubs_last=True)
    assert _gpus(site, greedy_layout(site, data).placement) == 32
    assert _gpus(site, first_slot.placement) == 32
    assert _gpus(site, versatile_last.placement) == 104
    layout = versatile_last
    assert check_layout(site, layout.placement, layout.su, layout.su_network_slot).ok
    assert _gpus(site, start_layout(data).placement) == 104


def test_a_short_time_limit_never_returns_less_than_first_fit() -> None:
    # 0.05 s is too short to prove anything in the air hall; the layout written is at
    # least the best start (36 racks here), so never below first-fit's GPUs.
    site = build_site(load_instance(ROOT / "instances" / "air-hall.yaml"))
    first_fit = _gpus(site, greedy_layout(site).placement)
    report = solve_site(site, SolveOptions(time_limit=0.05))
    assert report.check.ok
    assert _gpus(site, report.placement) >= first_fit
    assert report.outcome.objective >= 36 * 32


def test_containment_lets_the_air_hall_fill(tmp_path: Path) -> None:
    text = (ROOT / "instances" / "air-hall.yaml").read_text(encoding="utf-8")
    path = tmp_path / "contained.yaml"
    path.write_text(text.replace("{containment: none}", "{containment: hot_aisle}"), "utf-8")
    report = solve_site(build_site(load_instance(path)), EXACT)
    assert report.outcome.objective == pytest.approx(48 * 32)


def test_compare_and_report_read_the_air_hall_as_the_checker_does(tmp_path: Path) -> None:
    """The air hall has many optimal layouts, and which one HiGHS returns depends on the
    CPU: which inlet binds, and how close it comes, differ between them. Asserted here is
    only what every optimal layout shares (36 racks, 1,152 GPUs, every load within its
    limit) and that compare and report read the written dataset exactly as the checker's
    resource table reads the layout."""
    from optimizer.results.layout import write_layout
    from optimizer.results.resources import layout_resources
    from optimizer.studies.compare import compare
    from optimizer.verify.resources import binding, resources

    site = build_site(load_instance(ROOT / "instances" / "air-hall.yaml"))
    report = solve_site(site, EXACT)
    assert report.outcome.objective == pytest.approx(36 * 32)
    assert report.check.ok
    table = resources(site, report.check.loads, report.placement)
    slack = {"K": INLET_TOLERANCE_K}  # the checker's tolerances
    assert all(r.load <= r.limit + slack.get(r.unit, TOLERANCE * r.limit) for r in table)
    assert sum(r.kind == "inlet-temp" for r in table) == 36
    write_layout(layout_dataset(report), tmp_path / "air.nc")
    with xr.open_dataset(tmp_path / "air.nc") as ds:
        ds = ds.load()
    assert layout_resources(ds) == table
    (row,) = compare([tmp_path / "air.nc"])
    bound = binding(table)
    assert (row.bound_by, row.bound_by_family) == (bound.label, bound.family)
    assert row.bound_by_utilization == bound.utilization <= 1.0 + 1e-3
    assert row.gpus == 36 * 32
    assert row.pue == pytest.approx(report.check.loads.pue)
    (inlet,) = [b for b in utilization_bars(ds) if b.family == "inlet temperature"]
    tightest = binding([r for r in table if r.family == "inlet temperature"])
    assert inlet == tightest


def test_utility_knapsack_weighs_a_type_only_where_it_may_stand(tmp_path: Path) -> None:
    """A liquid rack can only stand on the CDU loop, so its least facility power is
    100 + 0.05 x 80 + 0.25 x 20 = 109 kW, not the 105 kW it would cost in the air row
    (no liquid plant there): the weaker weight slowed the utility-bound campus 3x."""
    from models.data import build_model_data
    from models.facility import least_facility_kw

    data = instance(
        {
            "L": row(1, ["A", "B"], cdu="C"),
            "R": {**row(1, ["A", "B"]), "origin_m": [0.0, 3.0]},
        },
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"nvl": rack(72, 100.0, liquid=0.8), "air": rack(32, 40.0)},
    )
    site = site_of(tmp_path, data)
    assert least_facility_kw(build_model_data(site)) == pytest.approx([109.0, 50.0])


def test_ctrl_c_at_once_keeps_a_checked_thermal_start_no_worse_than_first_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stop requested from the first moment (as Ctrl-C): the search stops at once, and
    # the layout written is still the checked thermal start.
    import optimizer.solve.progress as progress

    monkeypatch.setattr(progress, "_stop_requests", [lambda: True])
    monkeypatch.setattr(progress, "_pressed", threading.Event())  # noted here, not after
    site = build_site(load_instance(ROOT / "instances" / "air-hall.yaml"))
    report = solve_site(site, SolveOptions(time_limit=10.0))
    assert report.outcome.status == "interrupted"
    assert report.check.ok
    assert _gpus(site, report.placement) >= _gpus(site, greedy_layout(site).placement)


STRANDED_INLET = [0.1, 0.15, 0.25, 0.15, 0.05, 0.05, 0.03, 0.02, 0.05, 0.0]
"""C per kW from each slot of :func:`_stranded_fabric`'s row to the inlet of slot 3, the
only hot one."""


def _stranded_fabric(folder: Path) -> Any:
    """Ten slots 1 m apart, network slots 1, 5 and 10, SUs of two 10 kW racks of 8 GPUs
    on a 5 kW leaf of one port, 3 m of reach (leaf 1 reaches slots 2-4, leaf 5 slots 2-8,
    leaf 10 slots 7-9), supply air 20 C, inlet limit 27 C (7 K of headroom)."""
    data = fabric(10, 2, 1, {"default_reach_m": 3.0}, {k: {"network": True} for k in (1, 5, 10)})
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 20
    d = np.zeros((10, 10))
    d[2] = STRANDED_INLET
    _matrix_csv(folder, d, [f"H-R-{i:02d}" for i in range(1, 11)])
    data["thermal"] = {"matrix_file": "d.csv"}
    return site_of(folder, data)


def test_whole_sus_cut_from_a_packing_add_the_su_that_the_start_strands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three network slots of one port each: at most 3 SUs of 2 racks, 48 GPUs.
    # First-fit: leaf 1 + racks 2, 3; leaf 5 + racks 4, 6; inlet 3 is then at
    # 0.1 x 5 + (0.15 + 0.25 + 0.15) x 10 + 0.05 x 5 + 0.05 x 10 = 6.75 K, and of the
    # slots leaf 10 reaches only slot 8 still fits (+0.2 K; slot 7 +0.3, slot 9 +0.5):
    # 32 GPUs. Spreading keeps slot 3 empty (its inlet then has no limit), but the SU
    # of leaf 5 takes slots 7 and 8, where it heats inlet 3 least, and leaf 10 reaches
    # slot 9 alone: 32 GPUs. The packing stands a leaf in all three network slots and
    # every rack where it fits, one at a time (slots 2, 4, 6-9); cutting whole SUs from
    # it gives all three SUs, 48 GPUs, the bound.
    import optimizer.solve.highs as highs

    site = _stranded_fabric(tmp_path)
    data = build_model_data(site)
    assert _gpus(site, greedy_layout(site, data).placement) == 32
    assert _gpus(site, start_layout(data).placement) == 32
    gpu, leaf = 0, 1
    packing = packed_layout(data, math.inf)
    assert np.flatnonzero(packing == leaf).tolist() == [0, 4, 9]
    assert np.count_nonzero(packing == gpu) == 6

    cuts = []
    cut = highs._Neighbourhoods.cut_from_pack

    def recorded(self, most, deadline):
        start_gpus = self.best
        cut(self, most, deadline)
        cuts.append((start_gpus, self.best))

    monkeypatch.setattr(highs._Neighbourhoods, "cut_from_pack", recorded)
    report = solve_site(site, SolveOptions(time_limit=10.0))
    assert cuts[0] == (32, 48)  # the first pack already holds three whole SUs
    assert report.check.ok
    assert _gpus(site, report.placement) == 48
    assert len(report.layout.su_network_slot) == 3


LIMITS = {
    "failover": {"power-failover", "own inlet", "neighbour's inlet"},
    "cdu-heat": {"cdu-heat"},
    "cdu-flow": {"cdu-flow"},
    "air": {"air-zone-heat", "facility-power"},
}
"""The rules that, each alone, turn racks away in each variant of :func:`_mixed_hall`."""


def _mixed_hall(tmp_path: Path, limits: str) -> Site:
    """scripts/generate_campus.py's mixed hall of 4 rows of 8 slots (GB300 and GB200
    NVL72, DGX H100 and B200; 2N failover; one CDU group; two air zones; recirculation on
    every slot at 23 C supply air), in the variant where the rules of ``limits`` bind
    (:data:`LIMITS`): "failover", the hall as generated; "cdu-heat" and "cdu-flow", one
    CDU beyond the redundant one, with twice the flow or twice the heat so that the other
    binds first; "air", one CRAH per zone beyond the redundant one and a 1.8 MW utility
    limit."""
    args = ["--rows", "4", "--slots", "8", "--supply-temp-c", "23", "--no-fabric", "--mixed"]
    path = generated_hall(tmp_path / "mixed.yaml", *args)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cdu = data["cooling"]["cdus"]["CDU-H1-1"]
    if limits == "cdu-heat":
        cdu.update(units=2, unit_flow_lpm=2 * cdu["unit_flow_lpm"])
    if limits == "cdu-flow":
        cdu.update(units=2, unit_kw=2 * cdu["unit_kw"])
    if limits == "air":
        for zone in data["cooling"]["air_zones"].values():
            zone["units"] = 2
        data["facility"] = {"utility_limit_kw": 1800.0}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return build_site(load_instance(path))


def _independent_pressure(
    data: ModelData, placement: np.ndarray, t: int, norm: float
) -> np.ndarray:
    """Per class, from D and the layout alone: the shares of the hot slots' headroom left
    (the standing rack's, or t's at an empty hot slot) that a rack of type t in the
    class's first slot would take, as a ``norm``-norm."""
    site = data.site
    d = site.recirculation.toarray()
    air_kw = np.array([r.air_kw for r in site.rack_types] + [0.0])  # index -1: empty
    hot = np.array([r.slot for r in data.inlet_rows])
    headroom = np.array([r.headroom_c for r in data.inlet_rows])
    occupant = placement[hot]
    allowed = np.where(occupant != EMPTY, headroom[np.arange(len(hot)), occupant], headroom[:, t])
    left = np.maximum(allowed - d[hot] @ air_kw[placement], greedy.TOLERANCE)
    first = [c.slots[0] for c in data.classes]
    shares = d[np.ix_(hot, first)] * air_kw[t] / left[:, None]
    return shares.max(axis=0) if math.isinf(norm) else (shares**norm).sum(axis=0)


@pytest.mark.parametrize("limits", sorted(LIMITS))
def test_the_construction_s_answers_agree_with_the_independent_check(
    tmp_path: Path, limits: str
) -> None:
    # The construction keeps every row's load and every inlet's rise as racks come and
    # go, and answers, per rack type, where one more fits, how much inlet headroom it
    # takes, and which class the next rack goes to (greedy.py; the local search asks
    # hundreds of times a second). A seeded walk of puts and take-backs checks each
    # answer: fits against the independent checker on the layout with the rack put down;
    # the pressure of every class, by each norm, against one from D and the layout; the
    # chosen class against the least versatile, least pressed, first free class found
    # from the layout. Each rule that binds in the hall's variant (an inlet of the rack's
    # own, a neighbour's, failover power, CDU heat, CDU flow, air zones, the utility)
    # turns racks away on its own, so a check of it made lenient fails here.
    site = _mixed_hall(tmp_path, limits)
    data = build_model_data(site)
    construction = Construction(data, spread=math.inf)
    hot = np.array([r.slot for r in data.inlet_rows])
    generator = np.random.default_rng(0)
    refused: set[str] = set()
    verdicts = {True: 0, False: 0}
    for _ in range(400):
        placement = construction.placement
        placed = np.flatnonzero(placement != EMPTY)
        if len(placed) and generator.random() < 0.3:
            s = int(generator.choice(placed))
            construction.take_back(int(construction.class_of[s]), s, int(placement[s]))
            continue
        wanted = [
            t
            for t in range(len(site.rack_types))
            if site.demand_max[t] < 0 or construction.counts[t] < site.demand_max[t]
        ]  # the demand is the construction's own rule, not a row
        t = int(generator.choice(wanted))
        for norm in greedy.SPREAD_NORMS:
            assert construction.loads.inlets.pressure(t, norm) == pytest.approx(
                _independent_pressure(data, placement, t, norm)
            )
        construction.spread = float(generator.choice(greedy.SPREAD_NORMS))
        fits = construction.loads.fits(t)
        free = [[s for s in c.slots if placement[s] == EMPTY] for c in data.classes]
        pressure = _independent_pressure(data, placement, t, construction.spread)
        chosen = min(
            (k for k, c in enumerate(data.classes) if t in c.types and free[k] and fits[k]),
            key=lambda k: (construction.versatility[k], pressure[k], free[k][0]),
            default=None,
        )
        assert construction.first_class(t) == chosen
        k = int(
            generator.choice([k for k, c in enumerate(data.classes) if t in c.types and free[k]])
        )
        slot = construction.put(k, t)
        # The construction keeps every inlet within its limit; the checker allows 0.01 K
        # for the solver's rounding, so an inlet within that band is judged without it.
        report = check_layout(site, construction.placement)
        slots, heat, limit = occupied_inlet_rise(
            site, construction.placement, report.loads.inlet_temp_c
        )
        hot_inlets = set(slots[heat > limit + greedy.TOLERANCE].tolist())
        assert (report.ok and not hot_inlets) == bool(fits[k]), (site.slot_ids[slot], t)
        verdicts[bool(fits[k])] += 1
        if not fits[k]:
            # Each rule that turned the rack away alone: a lenient check of it fails here.
            rows = {v.rule for v in report.violations if v.rule != "inlet-temp"}
            inlets = {"own inlet"} if hot_inlets == {slot} else set()
            inlets |= {"neighbour's inlet"} if hot_inlets - {slot} else set()
            if len(rows | inlets) == 1:
                refused |= rows | inlets
            construction.take_back(k, slot, t)
        occupant = construction.placement[hot]
        standing = np.array(
            [
                r.headroom_c[o] if o != EMPTY else np.inf
                for r, o in zip(data.inlet_rows, occupant, strict=True)
            ]
        )
        assert np.array_equal(construction.loads.inlets.limit, standing)
    assert min(verdicts.values()) >= 40, verdicts
    assert LIMITS[limits] <= refused, refused
