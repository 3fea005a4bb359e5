"""Phased build-outs: one plan over all phases against phase-by-phase planning, by hand.

The uprate hall (``uprate_hall``): four air slots in one row, slots 01-02 on PDU-A and
03-04 on PDU-B, single-corded, derating 1.0, no failover. Phase p1 has PDU-A at 100 kW
(it is uprated to 200 kW in p2), PDU-B at 100 kW throughout; ``small`` racks have 8 GPUs
at 50 kW, ``big`` racks 72 GPUs at 150 kW. Phase p1 demands up to 2 small racks; p2 up to
2 small and 1 big (cumulative).

- p1: 2 small racks fit anywhere (100 kW per PDU): 16 GPUs, the optimum of both plans.
- Phase by phase (myopic), p1's tie-break packs both small racks in front, on PDU-A
  (100 kW). In p2 the big rack fits only PDU-A (150 > 100 kW on PDU-B), and PDU-A's
  100 + 150 = 250 kW exceeds its 200 kW: no big rack. p2: 16 GPUs, the uprate stranded.
- One plan: p1 puts the small racks where p2's big rack does not need the room (PDU-B,
  or one on each PDU: 50 + 150 = 200 kW on PDU-A). p2: 16 + 72 = 88 GPUs.

Brute force over every monotone pair of placements confirms (16, 88) is the
lexicographic optimum.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from factory import EXACT, fabric, instance, rack, row
from helpers import TUTORIAL, generated_hall, run, write_instance, write_study

from optimizer.instance.loader import load_instance
from optimizer.results.reader import open_layout
from optimizer.site.phases import phased_site
from optimizer.solve.pipeline import solve_instance
from optimizer.verify.check import EMPTY
from optimizer.verify.phases import check_phases


def uprate_hall(**changes: object) -> dict:
    feeds = {i: {"feeds": ["PDU-A" if i <= 2 else "PDU-B"]} for i in range(1, 5)}
    data = instance(
        rows={"R": {"slots": 4, "slot": {"air_zone": "Z"}, "overrides": feeds}},
        devices={
            "PDU-A": {"rating_kw": 200, "can_fail": False},
            "PDU-B": {"rating_kw": 100, "can_fail": False},
        },
        rack_types={"small": rack(8, 50), "big": rack(72, 150)},
        demand={"small": {"max": 2}, "big": {"max": 1}},
        phases=[
            {
                "name": "p1",
                "date": "2026-Q1",
                "devices": {"PDU-A": {"rating_kw": 100}},
                "demand": {"small": {"max": 2}, "big": {"max": 0}},
            },
            {"name": "p2", "devices": {"PDU-A": {"rating_kw": 200}}},
        ],
    )
    data["power"]["derating"] = 1.0
    data.update(changes)
    return data


def _phase_gpus(report) -> list[int]:
    gpus = np.array([t.gpus for t in report.site.rack_types])
    return [int(gpus[p.placement[p.placement != EMPTY]].sum()) for p in report.plan.phases]


def test_one_plan_uses_the_uprate_that_phase_by_phase_planning_strands(tmp_path):
    path = write_instance(tmp_path, uprate_hall())
    joint = solve_instance(path, EXACT)
    assert _phase_gpus(joint) == [16, 88]
    myopic = solve_instance(path, EXACT.__class__(**{**EXACT.__dict__, "myopic": True}))
    assert _phase_gpus(myopic) == [16, 16]
    # The myopic p1 racks both stand on PDU-A, leaving it 100 kW: less than a big rack.
    p1 = myopic.plan.phases[0]
    assert p1.check.loads.device_normal_kw.tolist() == [100.0, 0.0]


def test_brute_force_agrees_with_the_plan_on_the_tiny_phased_hall(tmp_path):
    phased = phased_site(load_instance(write_instance(tmp_path, uprate_hall())))
    sites = [p.site for p in phased.phases]
    gpus = np.array([t.gpus for t in sites[0].rack_types])
    n = sites[0].n_slots

    def options(site, fixed):
        return [
            [fixed[s]] if fixed[s] != EMPTY else [EMPTY, *np.flatnonzero(site.eligible[s]).tolist()]
            for s in range(n)
        ]

    best = (-1, -1)
    empty = np.full(n, EMPTY)
    for first in itertools.product(*options(sites[0], empty)):
        first = np.array(first)
        if not check_phases(sites[:1], [first])[0].ok:
            continue
        g1 = int(gpus[first[first != EMPTY]].sum())
        for second in itertools.product(*options(sites[1], first)):
            second = np.array(second)
            if all(r.ok for r in check_phases(sites, [first, second])):
                best = max(best, (g1, int(gpus[second[second != EMPTY]].sum())))
    assert best == (16, 88)
    assert _phase_gpus(solve_instance(write_instance(tmp_path, uprate_hall()), EXACT)) == [16, 88]


def test_placement_is_monotone_and_a_moved_rack_is_caught(tmp_path):
    path = write_instance(tmp_path, uprate_hall())
    out = tmp_path / "plan.nc"
    result = run("solve", path, "-o", out, "--gap", 0)
    assert result.exit_code == 0, result.output
    assert "phases (one plan, lexicographic):" in result.output
    with xr.open_dataset(out) as ds:
        assert ds.attrs["layout_format_version"] == 2
        assert ds.attrs["phase_plan"] == "joint lexicographic"
        assert ds["phase"].values.tolist() == ["p1", "p2"]
        assert ds["phase_date"].values.tolist() == ["2026-Q1", ""]
        assert ds["phase_gpus"].values.tolist() == [16, 88]
        assert ds["phase_rack_count"].values.tolist() == [[2, 0], [2, 1]]
        assert ds["phase_device_capacity_kw"].values.tolist() == [[100.0, 100.0], [200.0, 100.0]]
        kinds = ds["rack_type"].values
        when = ds["install_phase"].values
        # The big rack is p2's; both small racks are p1's and still there in p2.
        assert sorted(zip(when[kinds != ""], kinds[kinds != ""], strict=True)) == [
            ("p1", "small"),
            ("p1", "small"),
            ("p2", "big"),
        ]
        load = ds["phase_device_load_kw"].sel(phase="p2").values.tolist()
    assert load[0] <= 200 and load[1] <= 100 and sum(load) == 250
    phased = phased_site(load_instance(path))
    sites = [p.site for p in phased.phases]
    small = 0
    first = np.array([small, EMPTY, small, EMPTY])
    moved = np.array([EMPTY, small, small, EMPTY])
    reports = check_phases(sites, [first, moved])
    assert [v.rule for v in reports[1].violations] == ["phase-monotone"]
    assert "small placed in H-R-01 is empty in a later phase" in reports[1].violations[0].subject


def two_n_hall() -> dict:
    """2N UPS pair feeding six dual-corded slots; 100 kW racks of 8 GPUs. Phase p1 has the
    UPS at 250 kW (200 kW at 0.8), p2 at 500 kW (400 kW)."""
    return instance(
        rows={"R": row(6, ["UPS-A", "UPS-B"])},
        devices={"UPS-A": {"rating_kw": 500}, "UPS-B": {"rating_kw": 500}},
        rack_types={"r100": rack(8, 100)},
        demand={"r100": {"max": 6}},
        phases=[
            {
                "name": "p1",
                "devices": {"UPS-A": {"rating_kw": 250}, "UPS-B": {"rating_kw": 250}},
                "demand": {"r100": {"max": 6}},
            },
            {"name": "p2", "devices": {"UPS-A": {"rating_kw": 500}, "UPS-B": {"rating_kw": 500}}},
        ],
    )


def test_each_phase_meets_its_own_failover_rows(tmp_path):
    # p1: a failed UPS leaves the other carrying every rack whole: 100 n <= 200, n = 2
    # (normal operation would allow 4). p2: 100 n <= 400, n = 4.
    report = solve_instance(write_instance(tmp_path, two_n_hall()), EXACT)
    assert _phase_gpus(report) == [16, 32]
    p1, p2 = report.plan.phases
    assert p1.check.loads.device_failover_kw.tolist() == [200.0, 200.0]
    assert p2.check.loads.device_failover_kw.tolist() == [400.0, 400.0]
    # Four racks in p1 pass p1's normal rows (200 kW per side) but not its failover rows.
    four = np.array([0, 0, 0, 0, EMPTY, EMPTY])
    sites = [p1.site, p2.site]
    failover = {
        (v.subject, v.case, v.load) for v in check_phases(sites, [four, four])[0].violations
    }
    assert failover == {("UPS-A", "UPS-B", 400.0), ("UPS-B", "UPS-A", 400.0)}


def test_gpu_time_and_final_first_weigh_the_phases(tmp_path):
    # Uprate hall: every objective reaches (16, 88), the only plan with p2 at its best.
    path = write_instance(tmp_path, uprate_hall())
    for objective in ("gpu_time", "final_first"):
        options = EXACT.__class__(**{**EXACT.__dict__, "phase_objective": objective})
        assert _phase_gpus(solve_instance(path, options)) == [16, 88]


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        (
            [
                {"name": "p1", "devices": {"PDU-B": {"rating_kw": 100}}, "demand": {"small": {}}},
                {"name": "p2", "devices": {"PDU-B": {"rating_kw": 80}}},
            ],
            "phases.1: phase p2 lowers device PDU-B's normal limit from 100 to 80 kW, "
            "which racks of phase p1 may need",
        ),
        (
            [
                {"name": "p1", "demand": {"small": {"max": 2}}},
                {"name": "p2", "demand": {"small": {"max": 1}}},
            ],
            "phase p2 allows at most 1 small racks but phase p1 allows max 2",
        ),
        (
            [{"name": "p1"}, {"name": "p2"}],
            "phases.0: phase p1 gives no demand",
        ),
        (
            [{"name": "p1", "open": ["H/R9"], "demand": {"small": {}}}, {"name": "p2"}],
            "unknown hall or row 'H/R9'",
        ),
        (
            [{"name": "p1", "devices": {"PDU-C": {"rating_kw": 1}}, "demand": {"small": {}}}],
            "phases.0.devices.PDU-C: unknown device 'PDU-C'",
        ),
    ],
)
def test_contradicting_phases_are_explained(tmp_path, phases, message):
    path = write_instance(tmp_path, uprate_hall(phases=phases))
    result = run("solve", path, "-o", tmp_path / "x.nc")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_a_row_opened_later_takes_no_rack_before(tmp_path):
    data = uprate_hall(
        phases=[
            {"name": "p1", "open": [], "demand": {"small": {"max": 2}, "big": {"max": 0}}},
            {"name": "p2", "open": ["H/R"]},
        ]
    )
    data["halls"]["H"]["rows"]["S"] = {"slots": 2, "slot": {"air_zone": "Z", "feeds": ["PDU-B"]}}
    data["phases"][0]["open"] = ["H/S"]
    data["phases"][1]["open"] = ["H/R"]
    # Only row S (on PDU-B, 100 kW) is open in p1: at most 2 small racks there. In p2 row
    # R opens: the big rack on PDU-A (200 kW) with room for nothing else on it, and
    # PDU-B is full: 16 + 72 GPUs.
    report = solve_instance(write_instance(tmp_path, data), EXACT)
    p1 = report.plan.phases[0].placement
    ids = report.site.slot_ids
    assert all(ids[s].startswith("H-S-") for s in np.flatnonzero(p1 != EMPTY))
    assert _phase_gpus(report) == [16, 88]


def test_compare_shows_the_plan_and_the_myopic_plan_phase_by_phase(tmp_path):
    path = write_instance(tmp_path, uprate_hall())
    plan, myopic = tmp_path / "plan.nc", tmp_path / "myopic.nc"
    assert run("solve", path, "-o", plan, "--gap", 0, "-q").exit_code == 0
    assert run("solve", path, "-o", myopic, "--gap", 0, "--myopic", "-q").exit_code == 0
    # The two plans record how they were made, so batch never reuses one for the other.
    recorded = [json.loads(open_layout(f).attrs["solver_options"]) for f in (plan, myopic)]
    assert [r["myopic"] for r in recorded] == [False, True]
    assert {r["phase_objective"] for r in recorded} == {"lexicographic"}
    table = tmp_path / "table.csv"
    result = run("compare", plan, myopic, "--csv", table)
    assert result.exit_code == 0, result.output
    # No utility limit in this hall: the unused utility power is '-'. Stranded power is
    # each PDU's limit less its load (PDU-A 100 kW in p1, 200 in p2; PDU-B 100): in p1 the
    # two 50 kW racks leave 200 - 100 = 100 kW in both plans. In p2 the plan's big rack
    # (150 kW) and two small ones leave 50 kW wherever the small ones stand; the myopic
    # plan's two small racks on PDU-A leave 100 + 100 kW.
    lines = [line.split() for line in result.output.splitlines()]
    assert ["phase", "plan", "myopic"] in lines
    assert ["plan", "joint", "lexicographic", "myopic"] in lines
    assert ["p1", "16", "(0.10", "/", "-)", "16", "(0.10", "/", "-)"] in lines
    assert ["p2", "88", "(0.05", "/", "-)", "16", "(0.20", "/", "-)"] in lines
    assert "plan over myopic: p1 +0, p2 +72 GPUs" in result.output
    with table.open(encoding="utf-8") as handle:
        rows = {r["scenario"]: r for r in csv.DictReader(handle)}
    assert (rows["plan"]["gpus_p1"], rows["plan"]["gpus_p2"]) == ("16", "88")
    assert (rows["myopic"]["gpus_p1"], rows["myopic"]["gpus_p2"]) == ("16", "16")


def test_verify_checks_every_phase_of_a_plan(tmp_path):
    path = write_instance(tmp_path, uprate_hall())
    plan = tmp_path / "plan.nc"
    assert run("solve", path, "-o", plan, "--gap", 0, "-q").exit_code == 0
    result = run("verify", path, plan)
    assert result.exit_code == 0, result.output
    assert f"{plan}: phase p1: 2 racks pass every rule" in result.output
    assert f"{plan}: phase p2: 3 racks pass every rule" in result.output
    # The big rack installed in p1: p1 demands none, and PDU-A has 100 kW then.
    early = tmp_path / "early.csv"
    early.write_text(
        "slot,rack_type,install_phase\nH-R-01,big,p1\nH-R-03,small,p1\n", encoding="utf-8"
    )
    result = run("verify", path, early)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "phase p1: 2 violations:" in text
    assert "power-normal: PDU-A: 150.0 kW > limit 100.0 kW" in text
    assert "demand-max: big: 1.0 racks > limit 0.0 racks" in text
    assert "phase p2: 2 racks pass every rule" in text
    unphased = tmp_path / "unphased.csv"
    unphased.write_text("slot,rack_type\nH-R-01,small\n", encoding="utf-8")
    result = run("verify", path, unphased)
    assert result.exit_code == 2, result.output
    assert "install_phase: the rack in H-R-01 has install_phase ''" in result.output


def test_the_report_charts_gpus_and_stranded_power_by_phase(tmp_path):
    import matplotlib.pyplot as plt

    from optimizer.results.reader import open_layout
    from optimizer.studies.report import floor_plan, phase_figures

    # Air racks draw 0.25 kW of cooling per kW of IT (the default plant factor): p1 holds
    # 100 kW IT = 125 kW of the 1,000 kW utility, p2 250 kW IT = 312.5 kW. Stranded power
    # is the PDUs' headroom (neither can fail): p1 100 + 100 - 100 kW, p2 200 + 100 - 250
    # kW, wherever the tied layouts put the small racks.
    path = write_instance(tmp_path, uprate_hall(facility={"utility_limit_kw": 1000}))
    plan = tmp_path / "plan.nc"
    assert run("solve", path, "-o", plan, "--gap", 0, "-q").exit_code == 0
    ds = open_layout(plan)
    assert phase_figures(ds) == [("p1", 16, 0.1, 0.875), ("p2", 88, 0.05, 0.6875)]
    figure = floor_plan(ds)
    assert "GPUs and stranded power by phase" in [ax.get_title() for ax in figure.axes]
    plt.close(figure)
    picture = tmp_path / "plan.png"
    assert run("report", plan, "-o", picture).exit_code == 0
    assert picture.stat().st_size > 0


def test_the_report_colours_slots_by_install_phase(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection as PC

    from optimizer.results.reader import open_layout
    from optimizer.studies.report import floor_plan

    # Every optimal plan of the uprate hall installs the two small racks in p1 and the big
    # one in p2 (p1 demands no big rack): two slots of one colour, one of another.
    path = write_instance(tmp_path, uprate_hall())
    plan = tmp_path / "plan.nc"
    assert run("solve", path, "-o", plan, "--gap", 0, "-q").exit_code == 0
    ds = open_layout(plan)
    figure = floor_plan(ds, "phase")
    labels = [t.get_text() for legend in figure.legends for t in legend.get_texts()]
    assert "installed in p1 (2 racks)" in labels
    assert "installed in p2 (1 racks)" in labels
    assert not any(label.startswith("small") for label in labels)
    # The hall's panel is the axes whose first collection is its slots.
    hall = next(ax for ax in figure.axes if isinstance(next(iter(ax.collections), None), PC))
    fills = hall.collections[0].get_facecolors()
    filled = [tuple(c) for c in fills if c[3] > 0]  # empty slots are unfilled
    assert len(filled) == 3 and len(set(filled)) == 2
    assert sorted(filled.count(c) for c in set(filled)) == [1, 2]
    plt.close(figure)
    picture = tmp_path / "phases.svg"
    result = run("report", plan, "-o", picture, "--colour-by", "phase")
    assert result.exit_code == 0, result.output
    assert b"installed in p2" in picture.read_bytes()
    # A one-shot layout has no install phases: a clear error, and nothing written.
    one_shot = tmp_path / "one-shot.yaml"
    data = uprate_hall()
    del data["phases"]
    write_instance(tmp_path, data, "one-shot.yaml")
    single = tmp_path / "single.nc"
    assert run("solve", one_shot, "-o", single, "-q").exit_code == 0
    refused = tmp_path / "refused.png"
    result = run("report", single, "-o", refused, "--colour-by", "phase")
    assert result.exit_code == 2, result.output
    assert "--colour-by: the layout has no install phases" in result.output
    assert not refused.exists()


def test_the_shipped_phased_hall_shows_what_planning_ahead_gains(tmp_path):
    # instances/phased-hall.yaml: each 2N UPS pair (1,600 kW continuous from wave 2) feeds
    # one air and one liquid row of 10 slots. Wave 1: 8 DGX B300 (58 kW, 32 GPUs) = 256
    # GPUs either way. Wave 2: 10 GB300 NVL72 (136 kW, 72 GPUs) more = 976. Wave 3: up to
    # 20 GB300. Phase by phase, the air racks fill the front row R01 on pair 1, leaving
    # 1,600 - 464 = 1,136 kW: 8 liquid racks in R03 (1,088 kW), 10 in R04: 18 x 72 + 256
    # = 1,552. One plan splits the air racks 4 + 4 (1,600 - 232 = 1,368 >= 10 x 136 per
    # pair): 20 x 72 + 256 = 1,696 GPUs, +144 in wave 3.
    path = TUTORIAL.parent / "phased-hall.yaml"
    out = tmp_path / "plan.nc"
    result = run(
        "solve", path, "-o", out, "--gap", 0, "--second-stage-share", 0, "--myopic-baseline"
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "wave1 (2027-Q1) 8 racks 256 GPUs IT 0.464 MW myopic 256" in text
    assert "wave3 (2028-Q1) 28 racks 1,696 GPUs IT 3.184 MW myopic 1,552" in text
    assert "planning ahead gains wave1 +0, wave2 +0, wave3 +144 GPUs" in text
    with xr.open_dataset(out) as ds:
        assert ds["phase_gpus"].values.tolist() == [256, 976, 1696]
    myopic = solve_instance(path, EXACT.__class__(**{**EXACT.__dict__, "myopic": True}))
    assert _phase_gpus(myopic) == [256, 976, 1552]
    # The myopic wave-1 racks all stand on UPS pair 1: 464 kW on each side when one fails.
    wave1 = myopic.plan.phases[0]
    loads = dict(zip(wave1.site.device_ids, wave1.check.loads.device_failover_kw, strict=True))
    assert (loads["UPS-A1"], loads["UPS-A2"]) == (464.0, 0.0)


def test_the_myopic_baseline_says_when_phase_by_phase_planning_meets_no_demand(tmp_path):
    # Uprate hall with p2 demanding the big rack (min 1): phase by phase, p1's small racks
    # leave PDU-A 100 kW of its 200, too little; one plan still places it (16, 88).
    data = uprate_hall()
    data["phases"][1]["demand"] = {"small": {"max": 2}, "big": {"min": 1, "max": 1}}
    path = write_instance(tmp_path, data)
    options = EXACT.__class__(**{**EXACT.__dict__, "myopic_baseline": True})
    report = solve_instance(path, options)
    assert _phase_gpus(report) == [16, 88]
    assert report.myopic_baseline.gpus is None
    assert "phase p2, planned on its own with the earlier racks kept" in (
        report.myopic_baseline.message
    )
    # Which PDU p1's small racks stand on is a tie the tie-break settles (front first):
    # --second-stage-share 0 lets it finish on any machine.
    exact = ["--gap", 0, "--second-stage-share", 0]
    result = run("solve", path, "-o", tmp_path / "plan.nc", *exact, "--myopic-baseline")
    assert result.exit_code == 0, result.output
    assert "planning ahead gains a plan at all: phase by phase, phase p2" in " ".join(
        result.output.split()
    )


def test_a_generated_campus_opens_its_halls_wave_by_wave(tmp_path):
    # scripts/generate_campus.py --phases 2 on two identical halls with their fabric: H2
    # opens in wave 2 (ceil(2 x 2 / 2) = 2), no utility limit, so wave 2 holds exactly
    # twice wave 1's GPUs, whole SUs in both.
    args = ["--halls", "2", "--rows", "2", "--slots", "10", "--phases", "2"]
    path = generated_hall(tmp_path / "campus.yaml", *args)
    report = solve_instance(path, EXACT)
    wave1, wave2 = _phase_gpus(report)
    assert wave1 > 0 and wave2 == 2 * wave1
    ids = report.site.slot_ids
    placed = report.plan.phases[0].placement
    assert all(ids[s].startswith("H1-") for s in np.flatnonzero(placed != EMPTY))


def test_verify_of_a_plan_lints_the_finished_facility_and_obeys_strict(tmp_path):
    path = write_instance(tmp_path, uprate_hall())
    plan = tmp_path / "plan.nc"
    assert run("solve", path, "-o", plan, "--gap", 0, "-q").exit_code == 0
    idle = uprate_hall()
    idle["power"]["devices"]["PDU-C"] = {"rating_kw": 100, "can_fail": False}
    (tmp_path / "idle").mkdir()
    idle_path = write_instance(tmp_path / "idle", idle)
    warned = run("verify", idle_path, plan)
    assert warned.exit_code == 0, warned.output
    assert "PDU-C" in warned.stderr and "warning:" in warned.stderr
    assert "phase p2:" in warned.stdout
    strict = run("verify", idle_path, plan, "--strict")
    assert strict.exit_code == 2
    assert "--strict: 1 lint warning above" in strict.stderr
    assert strict.stdout == ""


def fabric_phases() -> dict:
    """One row of 8 slots 1 m apart; ``gpu`` racks (8 GPUs) in SUs of 2 on ``leaf``
    network racks with 2 SU ports each, no reach or power limit that binds. Phase p1
    demands at most 2 gpu racks, p2 as many as fit."""
    data = fabric(8, 2, 2)
    data["phases"] = [{"name": "p1", "demand": {"gpu": {"max": 2}}}, {"name": "p2"}]
    return data


@pytest.mark.parametrize("myopic", [False, True])
def test_phases_with_a_fabric_keep_every_network_rack_and_su(tmp_path, myopic):
    # p1: one SU of 2 racks on one leaf (3 slots): 16 GPUs. p2: with L leaves at most 4L
    # racks (2 SUs each) and L + racks <= 8 slots: L = 1 gives 4 racks, L = 2 gives 6
    # (8 slots). p1's leaf and SU take 3 slots; the other 5 hold a second SU on it and a
    # new leaf with one SU: 6 racks, 48 GPUs, whether p2 is planned with p1 or after it.
    options = replace(EXACT, myopic=myopic)
    report = solve_instance(write_instance(tmp_path, fabric_phases()), options)
    assert _phase_gpus(report) == [16, 48]
    p1, p2 = report.plan.phases
    leaf = [t.name for t in report.site.rack_types].index("leaf")
    early = np.flatnonzero(p1.placement == leaf)
    assert len(early) == 1 and (p2.placement == leaf).sum() == 2
    assert p2.placement[early[0]] == leaf  # the p1 leaf stands in p2
    # p1's SU stays whole on the same leaf in p2, with the same racks.
    (members,) = np.nonzero(p1.layout.su == 0)
    kept = p2.layout.su[members[0]]
    assert set(np.flatnonzero(p2.layout.su == kept)) == set(members)
    assert p2.layout.su_network_slot[kept] == early[0]


def test_a_myopic_plan_with_a_fabric_names_the_phase_it_cannot_place(tmp_path):
    # p1 asks for 7 gpu racks: in SUs of 2 they need 4 SUs and so 2 leaves (2 ports each),
    # 9 racks in 8 slots. Planned phase by phase, p1 alone has no layout: exit code 3,
    # naming the phase, and nothing written.
    data = fabric_phases()
    data["phases"][0]["demand"] = {"gpu": {"min": 7, "max": 7}}
    out = tmp_path / "myopic.nc"
    result = run("solve", write_instance(tmp_path, data), "-o", out, "--myopic")
    assert result.exit_code == 3, result.output
    assert (
        "phase p1, planned on its own with the earlier racks kept: no layout meets its rules "
        "and demand minimums" in " ".join(result.output.split())
    )
    assert not out.exists()


def test_verify_checks_every_phases_fabric_and_catches_a_removed_network_rack(tmp_path):
    path = write_instance(tmp_path, fabric_phases())
    plan = tmp_path / "plan.nc"
    assert run("solve", path, "-o", plan, "--gap", 0, "-q").exit_code == 0
    result = run("verify", path, plan)
    assert result.exit_code == 0, result.output
    assert f"{plan}: phase p1: 3 racks pass every rule" in result.output
    assert f"{plan}: phase p2: 8 racks pass every rule" in result.output
    with xr.open_dataset(plan) as ds:
        slots = [str(s) for s in ds["slot"].values]
        kinds = [str(t) for t in ds["rack_type"].values]
        su = ds["su"].fillna(-1).astype(int).values.tolist()
        hubs = [str(s) for s in ds["su_network_slot"].values]
        phases = [str(p) for p in ds["install_phase"].values]

    def tampered(name: str, drop: str = "", phase_of: dict | None = None) -> Path:
        lines = ["slot,rack_type,su,network_slot,install_phase"]
        for slot, kind, i, phase in zip(slots, kinds, su, phases, strict=True):
            if kind and slot != drop:
                hub = hubs[i] if i >= 0 else ""
                label = f"su{i}" if i >= 0 else ""
                lines.append(f"{slot},{kind},{label},{hub},{(phase_of or {}).get(slot, phase)}")
        out = tmp_path / name
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return out

    late_leaf = next(
        s for s, k, p in zip(slots, kinds, phases, strict=True) if k == "leaf" and p == "p2"
    )
    result = run("verify", path, tampered("no-leaf.csv", drop=late_leaf))
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "phase p1: 3 racks pass every rule" in text
    assert "phase p2: " in text and f"slot {late_leaf} holds no leaf" in text
    # p1's leaf installed only in p2: p1's SU hangs off a slot that is empty then.
    early_leaf = next(
        s for s, k, p in zip(slots, kinds, phases, strict=True) if k == "leaf" and p == "p1"
    )
    result = run("verify", path, tampered("late-leaf.csv", phase_of={early_leaf: "p2"}))
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    # A CSV's SUs are numbered as their labels first appear, in slot order; which slots
    # p1's SU takes is a tie, so its number is read from the rows written.
    seen = list(dict.fromkeys(i for k, i in zip(kinds, su, strict=True) if k and i >= 0))
    first = next(i for k, i, p in zip(kinds, su, phases, strict=True) if k == "gpu" and p == "p1")
    number = seen.index(first)
    assert (
        f"phase p1: 1 violations: network-rack: SU {number}: slot {early_leaf} holds no leaf"
        in (text)
    )


PHASED_STUDY = TUTORIAL.parents[1] / "studies" / "phased-hall-study.yaml"


def test_the_shipped_phased_study_compares_the_plan_with_the_myopic_plan(tmp_path):
    # studies/phased-hall-study.yaml: instances/phased-hall.yaml planned as one and wave
    # by wave (solve: myopic). GPUs per wave as in the shipped-hall test above: 256, 976
    # and 1,696 planned, 1,552 myopic in wave 3 (18 liquid racks instead of 20).
    out = tmp_path / "study.nc"
    # The myopic wave 3 depends on where wave 1's tied racks stand, which the tie-break
    # decides: --second-stage-share 0 lets it finish on any machine.
    exact = ["--gap", 0, "--second-stage-share", 0, "--workers", 0]
    result = run("batch", PHASED_STUDY, "-o", out, *exact, "-q")
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out) as ds:
        assert ds["phase_gpus"].values.tolist() == [[256, 976, 1696], [256, 976, 1552]]
        assert ds["phase_plan"].values.tolist() == ["joint lexicographic", "myopic"]
        chosen = [json.loads(o)["myopic"] for o in ds["solver_options"].values]
        assert chosen == [False, True]
    compared = run("compare", out)
    assert compared.exit_code == 0, compared.output
    assert "planned over myopic: wave1 +0, wave2 +0, wave3 +144 GPUs" in compared.output
    # Each UPS of a 2N pair (1,600 kW) less its worst-failure load: planned 1,600 - 232 -
    # 1,360 = 8 kW on all four; myopic 1,600 - 464 - 1,088 = 48 on pair 1 and 1,600 -
    # 1,360 = 240 on pair 2: 0.032 and 0.576 MW.
    wave3 = next(line.split() for line in compared.output.splitlines() if line[:6] == "wave3 ")
    assert wave3 == ["wave3", "1,696", "(0.03", "/", "-)", "1,552", "(0.58", "/", "-)"]
    # A rerun reuses both layouts: each was saved with its own solve settings.
    again = run("batch", PHASED_STUDY, "-o", out, *exact)
    assert again.exit_code == 0, again.output
    assert "0 solved, 2 reused, 0 without a layout" in again.output


@pytest.mark.parametrize(
    ("solve", "message"),
    [
        (
            {"myopic": {"myopc": True}},
            "study.yaml:8: solve.myopic.myopc: unknown key 'myopc' (fix: did you mean 'myopic'?)",
        ),
        (
            {"myopik": {"myopic": True}},
            "study.yaml:7: solve.myopik: unknown scenario 'myopik' (fix: did you mean 'myopic'?)",
        ),
        (
            {"myopic": {"phase_objective": "fast"}},
            "study.yaml:8: solve.myopic.phase_objective: Input should be 'lexicographic', "
            "'gpu_time' or 'final_first' (got 'fast')",
        ),
        (
            {"myopic": {}},
            "study.yaml:7: solve.myopic: scenario 'myopic' chooses no solve setting (fix: give "
            "one of: myopic, phase_objective, scenario_objective, or remove the entry)",
        ),
    ],
)
def test_a_bad_solve_setting_in_a_study_names_the_file_line_field_and_fix(tmp_path, solve, message):
    study = {"scenarios": {"planned": [], "myopic": []}, "solve": solve}
    path = write_study(tmp_path, study, base=TUTORIAL.parent / "phased-hall.yaml")
    result = run("batch", path, "-o", tmp_path / "study.nc")
    assert result.exit_code == 2, result.output
    assert f"{tmp_path}/{message}" in " ".join(result.output.split())


def test_solve_settings_in_a_study_without_named_scenarios_are_refused(tmp_path):
    study = {"solve": {"myopic": {"myopic": True}}}
    path = write_study(tmp_path, study, base=TUTORIAL.parent / "phased-hall.yaml")
    result = run("batch", path, "-o", tmp_path / "study.nc")
    assert result.exit_code == 2, result.output
    assert (
        "solve.myopic: unknown scenario 'myopic' (fix: add a scenarios: section and choose "
        "solve settings per scenario)" in " ".join(result.output.split())
    )
    assert not (tmp_path / "study.nc").exists()


def test_a_solve_setting_on_a_study_without_phases_is_refused(tmp_path):
    path = write_study(tmp_path, {"scenarios": {"a": []}, "solve": {"a": {"myopic": True}}})
    result = run("batch", path, "-o", tmp_path / "study.nc")
    assert result.exit_code == 2, result.output
    assert "solve.a.myopic: scenario 'a' has no phases, so solve.myopic changes nothing" in (
        " ".join(result.output.split())
    )


def test_batch_solves_a_scenario_again_when_its_solve_settings_change(tmp_path):
    study = {"scenarios": {"planned": [], "myopic": []}, "solve": {"myopic": {"myopic": True}}}
    path = write_study(tmp_path, study, base=TUTORIAL.parent / "phased-hall.yaml")
    out = tmp_path / "study.nc"
    first = run("batch", path, "-o", out, "--gap", 0, "--workers", 0)
    assert "2 solved, 0 reused" in first.output, first.output
    study["solve"]["planned"] = {"phase_objective": "final_first"}
    write_study(tmp_path, study, base=TUTORIAL.parent / "phased-hall.yaml")
    second = run("batch", path, "-o", out, "--gap", 0, "--workers", 0)
    assert "1 solved, 1 reused" in second.output, second.output
    with xr.open_dataset(out) as ds:
        assert ds["phase_plan"].values.tolist() == ["joint final_first", "myopic"]


def test_the_shipped_campus_study_plans_the_20_60_100_mw_waves_both_ways():
    from optimizer.studies.study import load_study

    study = load_study(PHASED_STUDY.with_name("phased-campus-study.yaml"))
    assert [(s.name, s.solve) for s in study.scenarios] == [
        ("planned", {}),
        ("myopic", {"myopic": True}),
    ]
    for scenario in study.scenarios:
        phases = scenario.loaded.instance.phases
        assert [p.utility_limit_kw for p in phases] == [20_000, 60_000, 100_000]
        assert scenario.options(EXACT).myopic is (scenario.name == "myopic")


def test_solve_study_scenario_takes_the_scenarios_own_solve_settings(tmp_path):
    out = tmp_path / "myopic.nc"
    args = ["--study", PHASED_STUDY, "--scenario", "myopic", "-o", out, "--gap", 0, "-q"]
    result = run("solve", *args)
    assert result.exit_code == 0, result.output
    ds = open_layout(out)
    assert json.loads(ds.attrs["solver_options"])["myopic"] is True
    assert ds["phase_gpus"].values.tolist() == [256, 976, 1552]
