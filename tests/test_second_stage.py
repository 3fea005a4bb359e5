"""The second stage (cables and tie-break with the GPU count held): when it stops, what it
records, and how the parts of a facility add up. Costs worked by hand."""

from __future__ import annotations

import itertools
import json
import math
import time

import numpy as np
import pytest
import xarray as xr
from factory import EXACT, fabric, instance, rack, row, site_of
from helpers import run, write_instance

import optimizer.solve.highs as highs
from optimizer.solve.decompose import merge_second_stage
from optimizer.solve.highs import SECOND_STAGE_FLOOR_S, SolveOutcome, second_stage_budget
from optimizer.solve.options import SolveOptions
from optimizer.solve.pipeline import solve_site
from optimizer.verify.check import check_layout


@pytest.mark.parametrize(
    ("share", "primary_s", "time_limit", "seconds", "end"),
    [
        (0.5, 10.0, None, 5.0, "time share reached"),  # half the first stage's 10 s
        (0.5, 0.2, None, SECOND_STAGE_FLOOR_S, "time share reached"),  # never below the floor
        (0.5, 10.0, 3.0, 3.0, "time limit reached"),  # the time limit comes first
        (0.0, 10.0, None, math.inf, "time limit reached"),  # no share: only gap, nodes, limit
    ],
)
def test_second_stage_time_is_a_share_of_the_first_stage(
    share, primary_s, time_limit, seconds, end
):
    options = SolveOptions(time_limit=time_limit, second_stage_share=share)
    budget, reason = second_stage_budget(options, time.perf_counter(), primary_s)
    assert budget == pytest.approx(seconds, abs=0.05)
    assert reason == end


def test_the_tie_break_cost_and_bound_of_one_rack_in_two_slots(tmp_path):
    # Two identical slots form one class whose first slot is slot 0, so the one rack the
    # demand allows costs 0 (waste) + 1/2 + 1/2 x 0/2 = 0.5 in the second stage, proven.
    data = instance(
        rows={"R": row(2, ["UPS-A", "UPS-B"])},
        devices={"UPS-A": {"rating_kw": 100}, "UPS-B": {"rating_kw": 100}},
        rack_types={"gpu": rack(8, 10)},
        demand={"gpu": {"max": 1}},
    )
    outcome = solve_site(site_of(tmp_path, data), EXACT).outcome
    assert outcome.second_stage_objective == pytest.approx(0.5)
    assert outcome.second_stage_bound == pytest.approx(0.5)
    assert outcome.second_stage_gap == 0.0


def test_the_parts_costs_and_bounds_add_up():
    # The worst part's gap is tests/test_optimum.py's; here the sums: 100 + 10 against
    # 90 + 10, and no facility bound when a part has none.
    parts = [SolveOutcome("optimal", True), SolveOutcome("optimal", True)]
    parts[0].record_second_stage(100.0, 90.0)
    parts[1].record_second_stage(10.0, 10.0)
    facility = SolveOutcome("optimal", True)
    merge_second_stage(facility, parts)
    assert facility.second_stage_objective == 110.0
    assert facility.second_stage_bound == 100.0
    parts[1].record_second_stage(10.0, None)
    facility = SolveOutcome("optimal", True)
    merge_second_stage(facility, parts)
    assert facility.second_stage_objective == 110.0
    assert facility.second_stage_bound is None


def test_the_summary_and_layout_report_the_cable_plan_and_its_gap(tmp_path):
    # One leaf with three ports serves two SUs of one rack, cells of four slots: the
    # racks sit 1 m and 2 m from the leaf (tests/test_network.py), 3 m of cable.
    data = fabric(10, 1, 3, {"cell_slots": 4})
    data["demand"]["gpu"]["max"] = 2
    path = write_instance(tmp_path, data)
    out = tmp_path / "layout.nc"
    result = run("solve", path, "-o", out, "--second-stage-gap", "0", "--second-stage-share", "0")
    assert result.exit_code == 0, result.output
    assert "cable 3 m" in result.output
    assert "cable plan (second stage): gap 0.00%, " in result.output
    with xr.open_dataset(out) as ds:
        assert float(ds.total_cable_m) == pytest.approx(3.0)
        assert ds.attrs["second_stage_gap"] == 0.0
        assert ds.attrs["second_stage_objective"] == pytest.approx(ds.attrs["second_stage_bound"])
        options = json.loads(ds.attrs["solver_options"])
    assert options["second_stage_gap"] == 0.0 and options["second_stage_share"] == 0.0


def test_by_default_the_second_stage_stops_within_its_gap_of_the_bound(tmp_path):
    data = fabric(10, 1, 3, {"cell_slots": 4})
    data["demand"]["gpu"]["max"] = 2
    outcome = solve_site(site_of(tmp_path, data), SolveOptions()).outcome
    assert outcome.second_stage_bound is not None
    assert outcome.second_stage_bound <= outcome.second_stage_objective
    # Ten slots solve long before the floor of the time share.
    assert outcome.second_stage_gap <= 0.01


def _every_cable_plan(site, placement):
    """Every way to group the compute racks of ``placement`` into SUs of two and hang
    each SU off its own leaf in a leaf slot (one port each), as (su, hubs) per plan."""
    racks = [int(s) for s in np.flatnonzero(placement == 0)]
    leaf_slots = [s for s in range(site.n_slots) if placement[s] == -1]
    first = racks[0]
    for partner in racks[1:]:
        pair = (first, partner)
        rest = tuple(s for s in racks if s not in pair)
        for hubs in itertools.permutations(leaf_slots, 2):
            su = np.full(site.n_slots, -1)
            su[list(pair)], su[list(rest)] = 0, 1
            layout = placement.copy()
            layout[list(hubs)] = 1
            yield layout, su, list(hubs)


def test_the_cable_re_plan_finds_the_shortest_plan_for_the_racks_where_they_stand(
    tmp_path, monkeypatch
):
    # Seven slots 1 m apart (positions 1-7, slots 0-6); four compute racks stand in slots
    # 1, 2, 4 and 5 (installed, so the first stage cannot move them); SUs of two racks, a
    # leaf of one port in slot 0, 3 or 6. The first stage cables them any way that fits;
    # the re-plan, with the racks held, must reach the brute-force shortest plan: 6 m
    # (1 + 2 per SU).
    data = fabric(7, 2, 1, None, {p: {"network": True} for p in (1, 4, 7)})
    data["demand"]["gpu"]["max"] = 4
    site = site_of(tmp_path, data)
    data["installed"] = {site.slot_ids[s]: "gpu" for s in (1, 2, 4, 5)}
    site = site_of(tmp_path, data)
    placement = np.full(site.n_slots, -1)
    placement[[1, 2, 4, 5]] = 0
    shortest = math.inf
    for layout, su, hubs in _every_cable_plan(site, placement):
        report = check_layout(site, layout, su, hubs)
        if report.ok:
            shortest = min(shortest, float(report.loads.cable_m.sum()))
    assert shortest == pytest.approx(6.0)

    costs: list[tuple[float, float]] = []
    replan = highs._cable_replan

    def watched(h, compiled, x, cost, *args):
        found = replan(h, compiled, x, cost, *args)
        costs.append((cost, cost if found is None else float(compiled.objectives[1] @ found)))
        return found

    monkeypatch.setattr(highs, "_cable_replan", watched)
    report = solve_site(site, EXACT)
    ((first_stage, replanned),) = costs
    assert replanned <= first_stage
    # Nothing else can move, so the whole second stage keeps the re-plan's cost.
    assert report.outcome.second_stage_objective == pytest.approx(replanned)
    assert float(report.check.loads.cable_m.sum()) == pytest.approx(shortest)
    assert report.outcome.objective == 32  # the four racks' GPUs, never fewer
    assert report.check.ok


def test_the_cable_re_plan_moves_no_rack_but_network_racks(tmp_path, monkeypatch):
    # Ten free slots, SUs of two racks on one-port leaves: three leaf + SU groups of 3
    # slots, the tenth slot empty, 6 racks of 8 GPUs (tests/test_network.py). Whatever
    # the first stage chose, a re-planned layout has the same count of every non-network
    # rack in every class, and so the same GPU count.
    site = site_of(tmp_path, fabric(10, 2, 1))
    seen = []
    replan = highs._cable_replan

    def watched(h, compiled, x, cost, *args):
        found = replan(h, compiled, x, cost, *args)
        seen.append((compiled, x, found))
        return found

    monkeypatch.setattr(highs, "_cable_replan", watched)
    report = solve_site(site, EXACT)
    ((compiled, first, found),) = seen
    held = compiled.replan_held
    assert len(held) > 0
    if found is not None:
        assert np.round(found[held]) == pytest.approx(np.round(first[held]))
        assert compiled.objectives[0] @ found == pytest.approx(compiled.objectives[0] @ first)
    assert report.outcome.objective == 48
    assert report.check.ok


def test_the_lp_bound_proves_the_first_stage_within_gap_and_the_stage_ends(tmp_path, monkeypatch):
    # The two-slot hall above: the one rack costs 0.5 wherever it stands, and so does the
    # LP relaxation (place = 1 in the one class, 0 + 1/2 + 0). With the default 1% gap
    # the LP proves the first stage within it, and HiGHS's whole second stage never runs.
    data = instance(
        rows={"R": row(2, ["UPS-A", "UPS-B"])},
        devices={"UPS-A": {"rating_kw": 100}, "UPS-B": {"rating_kw": 100}},
        rack_types={"gpu": rack(8, 10)},
        demand={"gpu": {"max": 1}},
    )
    bounds: list[float] = []
    relaxation = highs._relaxation_bound

    def watched(*args):
        bounds.append(relaxation(*args))
        return bounds[-1]

    monkeypatch.setattr(highs, "_relaxation_bound", watched)
    path = write_instance(tmp_path, data)
    out = tmp_path / "layout.nc"
    result = run("solve", path, "-o", out)
    assert result.exit_code == 0, result.output
    # (less the primary row's 1e-6 relative slack: place >= 1 - 1e-6)
    assert bounds == [pytest.approx(0.5, abs=1e-5)]
    assert "cable plan (second stage): gap 0.00%, first stage within gap" in result.output
    with xr.open_dataset(out) as ds:
        assert ds.attrs["tie_break_status"] == "first stage within gap"
        assert ds.attrs["second_stage_bound"] == pytest.approx(0.5, abs=1e-5)
        assert ds.attrs["second_stage_objective"] == pytest.approx(0.5)
        assert int(ds.total_gpus) == 8
    assert run("verify", path, out).exit_code == 0


def test_a_stage_cut_short_still_reports_its_gap_from_the_lp_bound(tmp_path, monkeypatch):
    # No time for the re-plan or the whole stage (no floor, a vanishing share): the
    # first stage's plan is kept, and its gap comes from the LP relaxation, a true lower
    # bound: at most the cost of the best plan (both stages to optimality).
    data = fabric(10, 1, 3, {"cell_slots": 4})
    data["demand"]["gpu"]["max"] = 2
    site = site_of(tmp_path, data)
    best = solve_site(site, EXACT).outcome
    monkeypatch.setattr(highs, "SECOND_STAGE_FLOOR_S", 0.0)
    cut = solve_site(site, SolveOptions(second_stage_share=1e-12))
    outcome = cut.outcome
    assert outcome.objective == best.objective == 16  # the GPU count stays proven
    assert cut.check.ok
    assert outcome.second_stage_bound is not None
    assert outcome.second_stage_bound <= best.second_stage_objective + 1e-6
    assert outcome.second_stage_bound <= outcome.second_stage_objective
    assert outcome.second_stage_gap == pytest.approx(
        1 - outcome.second_stage_bound / outcome.second_stage_objective
    )
    # The LP bound (3.51 here) is below every plan's cost by more than the 1% gap (the
    # best costs 4), so it proves nothing within the gap and the stage ends on time.
    assert outcome.second_stage_bound < 0.99 * best.second_stage_objective
    assert outcome.tie_break_status == "kept first stage: time share reached"
