"""Optima of small instances: by hand, and against brute-force enumeration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factory import EXACT, brute_force_best, instance, rack, row, site_of

from models.data import build_model_data
from models.objective import primary_weights
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site
from optimizer.solve.pipeline import solve_instance, solve_site

ROOT = Path(__file__).resolve().parent.parent


def test_tutorial_optimum_by_hand():
    # README "The tutorial by hand": UPS failover caps IT at 400 kW, the CDU caps liquid
    # heat at 250 kW (two GB300 at 116.96 kW), the air zone caps air heat at 200 kW.
    report = solve_instance(ROOT / "instances" / "tutorial.yaml", EXACT)
    names = [report.site.rack_types[t].name for t in report.placement if t >= 0]
    assert report.outcome.status == "optimal"
    assert report.outcome.objective == 208
    assert sorted(names) == ["dgx-b300-rack"] * 2 + ["gb300-nvl72"] * 2
    loads = report.check.loads
    assert loads.it_kw == pytest.approx(2 * 136 + 2 * 58)
    assert loads.device_failover_kw == pytest.approx([388.0, 388.0])
    assert loads.cdu_heat_kw == pytest.approx([2 * 136 * 0.86])
    assert loads.air_zone_heat_kw == pytest.approx([2 * 136 * 0.14 + 2 * 58])
    # Tie-break: liquid slots keep the liquid racks, air racks go to the air row.
    by_slot = dict(zip(report.site.slot_ids, report.placement, strict=True))
    assert by_slot["H1-L-01"] == by_slot["H1-L-02"] == 0
    assert by_slot["H1-A-01"] == by_slot["H1-A-02"] == 1


def _mixed():
    """Four liquid and three air slots behind 2N PDUs, with tight shared resources."""
    data = instance(
        rows={
            "L": row(4, ["PDU-A1", "PDU-B1"], cdu="C", floor_kg=1600),
            "A": row(3, ["PDU-A2", "PDU-B2"], floor_kg=900, air_kw_max=45),
        },
        devices={
            "UPS-A": {"rating_kw": 600},
            "UPS-B": {"rating_kw": 600},
            "PDU-A1": {"parent": "UPS-A", "rating_kw": 450},
            "PDU-B1": {"parent": "UPS-B", "rating_kw": 450},
            "PDU-A2": {"parent": "UPS-A", "rating_kw": 200},
            "PDU-B2": {"parent": "UPS-B", "rating_kw": 200},
        },
        rack_types={
            "nvl": rack(72, 130, liquid=0.85, weight=1500),
            "hgx": rack(32, 40, weight=700),
            "big-air": rack(32, 50, weight=800),
        },
    )
    data["cooling"]["cdus"]["C"] = {"unit_kw": 240, "unit_flow_lpm": 500, "units": 2}
    data["cooling"]["air_zones"]["Z"] = {"crah_kw": 60, "units": 4}
    return data


CASES = {
    "power-and-cdu": {},
    "utility-binds": {"facility__utility_limit_kw": 420.0},
    "value-objective": {"objective__": "max_value"},
    "it-objective": {"objective__": "max_it_kw"},
    "demand-bounds": {"demand__nvl": {"max": 1}, "demand__big-air": {"min": 2}},
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_matches_brute_force(tmp_path, case):
    data = _mixed()
    for key, value in CASES[case].items():
        section, _, field = key.partition("__")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[section] = value
    if case == "value-objective":
        data["rack_types"]["hgx"]["value"] = 40
    site = site_of(tmp_path, data)
    weights = np.array(primary_weights(build_model_data(site)))
    best, _ = brute_force_best(site, weights)
    report = solve_site(site, EXACT)
    assert report.outcome.status == "optimal"
    assert report.outcome.objective == pytest.approx(best)
    assert report.check.ok


def test_installed_racks_stay(tmp_path):
    data = _mixed()
    data["installed"] = {"H-A-03": "hgx", "H-L-04": "nvl"}
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    by_slot = dict(zip(site.slot_ids, report.placement, strict=True))
    names = [t.name for t in site.rack_types]
    assert names[by_slot["H-A-03"]] == "hgx"
    assert names[by_slot["H-L-04"]] == "nvl"
    best, _ = brute_force_best(site, np.array([72.0, 32.0, 32.0]))
    assert report.outcome.objective == best


def test_tutorial_loads_from_file_and_catalog():
    site = build_site(load_instance(ROOT / "instances" / "tutorial.yaml"))
    gb300 = site.rack_types[0]
    assert (gb300.name, gb300.gpus, gb300.it_kw, gb300.weight_kg) == ("gb300-nvl72", 72, 136, 1500)
    assert site.n_slots == 8
    assert site.device_limit_kw.tolist() == [400.0, 400.0]
    assert site.cdu_heat_capacity_kw.tolist() == [250.0]
    assert site.air_zone_capacity_kw.tolist() == [200.0]


def test_shipped_generated_instances_are_up_to_date():
    import subprocess
    import sys

    script = ROOT / "scripts" / "generate_instances.py"
    result = subprocess.run(
        [sys.executable, str(script), "--verify"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_gb300_hall_with_fabric_by_hand():
    # 17 SUs x (8 x 136 + 20) = 18,836 kW; an 18th SU would need 19,944 > 4 x 4,800 kW.
    report = solve_instance(ROOT / "instances" / "gb300-hall.yaml", EXACT)
    assert report.outcome.objective == 17 * 8 * 72
    assert report.outcome.status == "optimal"
    assert report.check.loads.it_kw == pytest.approx(17 * (8 * 136 + 20))
    assert len(report.layout.su_network_slot) == 17


def test_largest_first_greedy_strands_power_the_optimum_uses(tmp_path):
    # 2N, 400 kW usable per side, 4 slots. Greedy takes two 136 kW racks first (272 kW),
    # then one 100 kW rack (372 kW): 2 x 72 + 56 = 200 GPUs, 28 kW stranded. The optimum
    # is four 100 kW racks: 400 kW, 224 GPUs.
    from optimizer.solve.greedy import greedy_layout

    data = instance(
        rows={"R": row(4, ["UPS-A", "UPS-B"])},
        devices={"UPS-A": {"rating_kw": 500}, "UPS-B": {"rating_kw": 500}},
        rack_types={"big": rack(72, 136), "small": rack(56, 100)},
    )
    site = site_of(tmp_path, data)
    rule = greedy_layout(site)
    assert sorted(rule.placement.tolist()) == [-1, 0, 0, 1]
    report = solve_site(site, EXACT)
    assert report.outcome.objective == 224
    assert sorted(report.placement.tolist()) == [1, 1, 1, 1]


def _two_halls(tmp_path, **facility):
    rows = {"R": row(3, ["UPS-A", "UPS-B"])}
    data = instance(
        rows=rows,
        devices={
            "UPS-A": {"rating_kw": 500},
            "UPS-B": {"rating_kw": 500},
            "UPS-C": {"rating_kw": 300},
            "UPS-D": {"rating_kw": 300},
        },
        rack_types={"big": rack(72, 136), "small": rack(56, 100)},
    )
    data["halls"]["G"] = {"rows": {"R": {**row(3, ["UPS-C", "UPS-D"]), "origin_m": [50, 0]}}}
    data["cooling"]["air_zones"]["Z2"] = {"crah_kw": 10_000, "units": 2}
    data["halls"]["G"]["rows"]["R"]["slot"]["air_zone"] = "Z2"
    if facility:
        data["facility"] = facility
    return site_of(tmp_path, data)


def test_independent_halls_are_solved_as_parts_with_the_same_optimum(tmp_path):
    # Hall H: 400 kW per side -> four 100 kW racks would fit but there are 3 slots:
    # 2 x 136 + 100 = 372 kW, 200 GPUs (3 small: 168; 2 big + 1 small is best).
    # Hall G: 240 kW per side -> 2 small = 200 kW (112) or 1 big + 1 small = 236 (128).
    from models.data import build_model_data
    from optimizer.solve.decompose import parts

    site = _two_halls(tmp_path)
    assert len(parts(build_model_data(site))) == 2
    split = solve_site(site, EXACT)
    whole = solve_site(site, EXACT.__class__(gap=0.0, split_parts=False))
    assert split.model_size["parts"] == 2
    assert split.outcome.objective == whole.outcome.objective == 200 + 128
    assert split.outcome.status == "optimal" and split.check.ok


def test_a_shared_utility_joins_the_halls_into_one_part(tmp_path):
    from models.data import build_model_data
    from optimizer.solve.decompose import parts

    site = _two_halls(tmp_path, utility_limit_kw=10_000)
    assert len(parts(build_model_data(site))) == 1


def test_the_layouts_second_stage_gap_is_its_worst_parts(tmp_path):
    # Parts merge into one layout; its cable plan is as far from proven as the worst part's.
    from models.data import build_model_data
    from optimizer.site.placement import Assignment
    from optimizer.solve.decompose import PartResult, _merge
    from optimizer.solve.highs import SolveOutcome

    data = build_model_data(_two_halls(tmp_path))
    empty = Assignment(np.full(data.site.n_slots, -1), np.full(data.site.n_slots, -1))

    def part(gap: float | None) -> PartResult:
        outcome = SolveOutcome("optimal", True, 10.0, 10.0, 0.0, second_stage_gap=gap)
        return PartResult(empty, outcome, 0.0, 0)

    merged = _merge(data, [part(0.02), part(None), part(0.05)], 1.0, 0.0)[1]
    assert merged.second_stage_gap == 0.05
    assert _merge(data, [part(None), part(None)], 1.0, 0.0)[1].second_stage_gap is None


def test_parts_prove_the_gpu_count_when_the_last_parts_first_stage_ends(tmp_path):
    # Three parts on two workers: each first stage takes 0.3 s, but the third starts only
    # when a worker is free, so the facility's GPU count is proven 0.9 s after the parts
    # started, not 0.3 s (the longest single first stage).
    from models.data import build_model_data
    from optimizer.site.placement import Assignment
    from optimizer.solve.decompose import PartResult, _merge
    from optimizer.solve.highs import SolveOutcome

    data = build_model_data(_two_halls(tmp_path))
    empty = Assignment(np.full(data.site.n_slots, -1), np.full(data.site.n_slots, -1))

    def part(done: float) -> PartResult:
        outcome = SolveOutcome("optimal", True, 10.0, 10.0, 0.0, primary_s=0.3)
        outcome.primary_done = done
        return PartResult(empty, outcome, 0.0, 0)

    clock = 1_000.0
    merged = _merge(data, [part(clock + 0.3), part(clock + 0.9), part(clock + 0.4)], 1.5, clock)
    assert merged[1].primary_s == pytest.approx(0.9)
    assert merged[1].primary_done == clock + 0.9  # the moment the count was proven
    assert merged[1].solve_s == 1.5
    # A part that never reached its first stage's end (stopped before it) leaves no proof
    # time of its own: the facility's is then the whole solve.
    unfinished = _merge(data, [part(0.0)], 1.5, clock)[1]
    assert (unfinished.primary_s, unfinished.primary_done) == (1.5, 0.0)
