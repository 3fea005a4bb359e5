"""Uncertain demand of the last phase: one committed placement, a recourse per scenario.

The hedge hall (``hedge_hall``): row L (3 liquid slots, air limit 60 kW, floor 2,000 kg)
on PDU-A and row B (3 air slots, air limit 200 kW, floor 3,000 kg) on PDU-B, 200 kW
each, single-corded, no failover. ``small`` racks (8 GPUs, 50 kW air, 500 kg) fit both
rows; ``xbig`` (72 GPUs, 150 kW) and ``xtiny`` (8 GPUs, 50 kW) are liquid, row L only;
``ybig`` and ``ytiny`` (the same figures, air, 2,500 kg) fit row B only. Phase ``now``
installs 2 small racks (16 GPUs), a of them in row L. Phase ``later`` is uncertain:
scenario ``liquid`` wants 1 xbig and 1 xtiny, scenario ``air`` 1 ybig and 1 ytiny.

With a small racks on PDU-A, row L keeps 3 - a slots and 200 - 50 a kW:

    a   liquid: row L takes        air: row B (2 - a small) takes
    0   xbig + xtiny = 80  -> 96   ytiny (1 slot, 100 kW) = 8   -> 24
    1   xbig = 72          -> 88   ybig (150 kW)          = 72  -> 88
    2   xtiny = 8          -> 24   ybig + ytiny           = 80  -> 96

Planning for ``liquid`` alone commits a = 0, for ``air`` alone a = 2. With both at
probability 0.5 the expected GPUs are 60, 88, 60: the plan commits a = 1, which neither
scenario alone would choose. At 0.9 / 0.1: 88.8, 88, 31.2: a = 0 (96 and 24), while the
best worst case is still a = 1 (88 and 88).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import xarray as xr
from factory import EXACT, instance, rack
from helpers import run, write_instance

from optimizer.instance.loader import load_instance
from optimizer.site.phases import phased_site
from optimizer.solve.phases import phase_gpus
from optimizer.solve.pipeline import solve_instance
from optimizer.verify.check import EMPTY, check_layout

NONE = {"xbig": {"max": 0}, "xtiny": {"max": 0}, "ybig": {"max": 0}, "ytiny": {"max": 0}}
LIQUID = {**NONE, "small": {"max": 2}, "xbig": {"max": 1}, "xtiny": {"max": 1}}
AIR = {**NONE, "small": {"max": 2}, "ybig": {"max": 1}, "ytiny": {"max": 1}}


def hedge_hall(p_liquid: float = 0.5) -> dict:
    def slots(cdu: bool, air_kw: float, floor_kg: float, pdu: str) -> dict:
        slot = {"air_zone": "Z", "feeds": [pdu], "air_kw_max": air_kw, "floor_kg": floor_kg}
        return slot | ({"liquid": True, "cdu": "C"} if cdu else {})

    data = instance(
        rows={
            "L": {"slots": 3, "slot": slots(True, 60, 2000, "PDU-A")},
            "B": {"slots": 3, "slot": slots(False, 200, 3000, "PDU-B")},
        },
        devices={
            "PDU-A": {"rating_kw": 200, "can_fail": False},
            "PDU-B": {"rating_kw": 200, "can_fail": False},
        },
        rack_types={
            "small": rack(8, 50),
            "xbig": rack(72, 150, liquid=1.0),
            "xtiny": rack(8, 50, liquid=1.0),
            "ybig": rack(72, 150, weight=2500),
            "ytiny": rack(8, 50, weight=2500),
        },
        phases=[
            {"name": "now", "demand": {**NONE, "small": {"max": 2}}},
            {
                "name": "later",
                "scenarios": [
                    {"name": "liquid", "probability": p_liquid, "demand": LIQUID},
                    {"name": "air", "probability": round(1 - p_liquid, 9), "demand": AIR},
                ],
            },
        ],
    )
    data["power"]["derating"] = 1.0
    return data


def _plan(tmp_path, data: dict, objective: str = "expected"):
    options = dataclasses.replace(EXACT, scenario_objective=objective)
    plan = solve_instance(write_instance(tmp_path, data), options).plan
    committed = [phase_gpus(p) for p in plan.phases]
    return committed, {s.name: phase_gpus(s.layout) for s in plan.scenarios}, plan


def test_the_plan_commits_the_hedge_neither_scenario_alone_would_choose(tmp_path):
    committed, scenarios, plan = _plan(tmp_path, hedge_hall(0.5))
    assert committed == [16]
    assert scenarios == {"liquid": 88, "air": 88}
    assert plan.expected_gpus == 88.0
    # One small rack on each PDU: the committed placement both scenarios start from.
    now = plan.phases[0]
    assert now.check.loads.device_normal_kw.tolist() == [50.0, 50.0]
    # Planned for one scenario alone (that scenario's demand, certain), the plan reaches
    # 96 GPUs in it, by committing both small racks to the other row.
    for demand, pdu_kw in ((LIQUID, [0.0, 100.0]), (AIR, [100.0, 0.0])):
        alone = hedge_hall()
        alone["phases"][1] = {"name": "later", "demand": demand}
        report = solve_instance(write_instance(tmp_path, alone), EXACT)
        assert [phase_gpus(p) for p in report.plan.phases] == [16, 96]
        assert report.plan.phases[0].check.loads.device_normal_kw.tolist() == pdu_kw


def test_likely_liquid_demand_commits_to_it_and_the_worst_case_still_hedges(tmp_path):
    committed, scenarios, plan = _plan(tmp_path, hedge_hall(0.9))
    assert (committed, scenarios) == ([16], {"liquid": 96, "air": 24})
    assert plan.expected_gpus == pytest.approx(0.9 * 96 + 0.1 * 24)  # 88.8
    committed, scenarios, plan = _plan(tmp_path, hedge_hall(0.9), "worst_case")
    assert (committed, scenarios) == ([16], {"liquid": 88, "air": 88})
    assert plan.worst_case


def test_brute_force_agrees_on_the_expected_and_worst_case_plans(tmp_path):
    phased = phased_site(load_instance(write_instance(tmp_path, hedge_hall(0.5))))
    now = phased.phases[0].site
    gpus = np.array([t.gpus for t in now.rack_types])
    n = now.n_slots

    def completions(site, fixed):
        """Every placement of ``site`` keeping ``fixed``, within its demand maxima."""
        allowed = np.flatnonzero(site.demand_max != 0)
        options = [
            [fixed[s]]
            if fixed[s] != EMPTY
            else [EMPTY, *[t for t in allowed if site.eligible[s, t]]]
            for s in range(n)
        ]
        for candidate in itertools.product(*options):
            placement = np.array(candidate)
            counts = np.bincount(placement[placement != EMPTY], minlength=len(gpus))
            capped = site.demand_max >= 0
            within = np.all(counts[capped] <= site.demand_max[capped])
            if within and check_layout(site, placement).ok:
                yield placement

    best: dict[str, float] = {"expected": -1.0, "worst_case": -1.0}
    for first in completions(now, np.full(n, EMPTY)):
        if int(gpus[first[first != EMPTY]].sum()) < 16:
            continue  # lexicographic: the committed phase at its optimum first
        per = [
            max(int(gpus[p[p != EMPTY]].sum()) for p in completions(s.phase.site, first))
            for s in phased.scenarios
        ]
        expected = sum(s.probability * g for s, g in zip(phased.scenarios, per, strict=True))
        best["expected"] = max(best["expected"], expected)
        best["worst_case"] = max(best["worst_case"], min(per))
    assert best == {"expected": 88.0, "worst_case": 88}
    assert _plan(tmp_path, hedge_hall(0.5))[2].expected_gpus == best["expected"]
    assert min(_plan(tmp_path, hedge_hall(0.5), "worst_case")[1].values()) == best["worst_case"]


def test_the_layout_records_the_committed_placement_and_each_scenario(tmp_path):
    path = write_instance(tmp_path, hedge_hall(0.9))
    out = tmp_path / "plan.nc"
    result = run("solve", path, "-o", out, "--gap", 0)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "phases (one plan, lexicographic, expected over scenarios):" in text
    assert "later if liquid (p 0.9) 4 racks 96 GPUs" in text
    assert "later if air (p 0.1) 3 racks 24 GPUs" in text
    assert "later: expected 88.8 GPUs over 2 demand scenarios, worst case 24" in text
    with xr.open_dataset(out) as ds:
        assert ds.attrs["scenario_objective"] == "expected"
        assert ds["phase"].values.tolist() == ["now"]
        assert ds["demand_scenario"].values.tolist() == ["liquid", "air"]
        assert ds["demand_scenario_probability"].values.tolist() == [0.9, 0.1]
        assert ds["demand_scenario_gpus"].values.tolist() == [96, 24]
        assert sorted(ds["rack_type"].values.tolist()) == ["", "", "", "", "small", "small"]
        kinds = ds["demand_scenario_rack_type"]
        committed = ds["rack_type"].values != ""
        for scenario in ("liquid", "air"):
            # The committed racks stand, unmoved, in every scenario.
            placed = kinds.sel(demand_scenario=scenario).values
            assert (placed[committed] == ds["rack_type"].values[committed]).all()
        assert sorted(kinds.sel(demand_scenario="liquid").values[~committed]) == [
            "",
            "",
            "xbig",
            "xtiny",
        ]
    assert run("verify", path, out).exit_code == 0


def _scenarios(*probabilities: float) -> list[dict]:
    return [
        {"name": f"s{i}", "probability": p, "demand": LIQUID} for i, p in enumerate(probabilities)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda phases: phases[1].update(scenarios=_scenarios(0.5, 0.4)),
            "phases.1.scenarios: the probabilities of phase later's scenarios sum to 0.9, not 1",
        ),
        (
            lambda phases: phases.append({"name": "final", "scenarios": _scenarios(0.5, 0.5)}),
            "phases later and final both list demand scenarios",
        ),
        (
            lambda phases: phases[1].update(demand=LIQUID),
            "phase later gives both demand and scenarios",
        ),
        (
            lambda phases: phases.pop(0),
            "phase later lists demand scenarios but no phase comes before it",
        ),
        (
            lambda phases: phases[1].update(
                scenarios=[
                    {"name": "s", "probability": 0.5, "demand": LIQUID},
                    {"name": "s", "probability": 0.5, "demand": AIR},
                ]
            ),
            "scenario 's' is listed twice",
        ),
        (
            lambda phases: phases[1]["scenarios"][0]["demand"].update(small={"max": 1}),
            "phase later allows at most 1 small racks but phase now allows max 2",
        ),
    ],
)
def test_contradicting_scenarios_are_explained(tmp_path, change, message):
    data = hedge_hall()
    data["phases"][1]["scenarios"][0]["demand"] = dict(LIQUID)
    change(data["phases"])
    result = run("solve", write_instance(tmp_path, data), "-o", tmp_path / "x.nc")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_the_myopic_baseline_plans_the_committed_phase_for_today_alone(tmp_path):
    # Phase by phase, the small racks go to row B (an air rack in a liquid slot wastes it,
    # models.objective), so a = 0: 96 GPUs if liquid, 24 if air, 60 expected against 88.
    path = write_instance(tmp_path, hedge_hall(0.5))
    result = run("solve", path, "-o", tmp_path / "plan.nc", "--gap", 0, "--myopic-baseline")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "later if liquid (p 0.5) 3 racks 88 GPUs IT 0.250 MW myopic 96" in text
    assert "later if air (p 0.5) 3 racks 88 GPUs IT 0.250 MW myopic 24" in text
    assert "planning ahead gains now +0, later +28.0 expected GPUs" in text


def three_phase_hedge_hall(p_liquid: float) -> dict:
    """The hedge hall with a third phase ``final`` after the uncertain ``later``: every
    rack type up to one more of each (small up to 2), whichever scenario came true."""
    data = hedge_hall(p_liquid)
    final = {"small": {"max": 2}, **{t: {"max": 1} for t in ("xbig", "xtiny", "ybig", "ytiny")}}
    data["phases"].append({"name": "final", "demand": final})
    return data


@pytest.mark.parametrize(
    ("p_liquid", "objective", "committed_in_l", "gpus"),
    [
        # a = 1 (one small rack in row L): later 88 either way; in final row B (liquid) or
        # row L (air) takes the other big rack on the 150 kW left: 88 + 72 = 160 in both.
        (0.5, "lexicographic", 1, {"liquid": [88, 160], "air": [88, 160]}),
        # At 0.9 later's expected GPUs make the plan commit a = 0 (88.8 against 88); final
        # then adds a ytiny in row B's last slot (liquid: 96 + 8) or fills row L with
        # xbig + xtiny (air: 24 + 80): 104 in both, where a = 1 would have given 160.
        (0.9, "lexicographic", 0, {"liquid": [96, 104], "air": [24, 104]}),
        # final_first values final's expected GPUs first: a = 1, 160 in both.
        (0.9, "final_first", 1, {"liquid": [88, 160], "air": [88, 160]}),
    ],
)
def test_scenarios_on_a_middle_phase_carry_each_scenario_into_the_later_phases(
    tmp_path, p_liquid, objective, committed_in_l, gpus
):
    path = write_instance(tmp_path, three_phase_hedge_hall(p_liquid))
    report = solve_instance(path, dataclasses.replace(EXACT, phase_objective=objective))
    (now,) = report.plan.phases
    rows = np.array(report.site.slot_row)
    assert int((now.placement[rows == "L"] != EMPTY).sum()) == committed_in_l
    found = {s.name: [phase_gpus(layout) for layout in s.layouts] for s in report.plan.scenarios}
    assert found == gpus
    for s in report.plan.scenarios:
        later, final = s.layouts
        assert (later.name, final.name) == ("later", "final")
        kept = later.placement != EMPTY
        assert (final.placement[kept] == later.placement[kept]).all()  # no rack moved
        assert (
            later.placement[now.placement != EMPTY] == now.placement[now.placement != EMPTY]
        ).all()


def test_a_middle_phase_plan_records_each_scenarios_install_phases(tmp_path):
    path = write_instance(tmp_path, three_phase_hedge_hall(0.5))
    out = tmp_path / "plan.nc"
    result = run("solve", path, "-o", out, "--gap", 0)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "later if liquid (p 0.5) 3 racks 88 GPUs" in text
    assert "final if air (p 0.5) 4 racks 160 GPUs" in text
    with xr.open_dataset(out) as ds:
        assert ds["phase"].values.tolist() == ["now"]
        assert ds["demand_scenario_gpus"].values.tolist() == [160, 160]
        for i in range(2):
            installed = [str(p) for p in ds["demand_scenario_install_phase"].values[i] if p]
            assert sorted(installed) == ["final", "later", "now", "now"]
