"""The pooled relaxation (models.relaxation): the model without cable reach, its alike
classes merged. Its bound must never cut off a layout, and where reach does not decide
the optimum it proves the optimum by itself."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from factory import EXACT, fabric, instance, rack, row, site_of
from helpers import generated_hall

from models.data import build_model_data
from models.relaxation import pooled_data
from optimizer.solve.campus import SOLVED_AS_CAMPUS, SOLVED_AS_SINGLE
from optimizer.solve.pipeline import solve_instance, solve_site


def _one_leaf_row(tmp_path, reach_m: float):
    """Ten slots 1 m apart (cells of one slot); only slot 01 may take the leaf, which
    serves three SUs of two 8-GPU racks: at most 6 racks, 48 GPUs, whatever the reach."""
    data = fabric(10, 2, 2, {"default_reach_m": reach_m}, {1: {"network": True}})
    data["rack_types"]["leaf"]["su_ports"] = 3
    return site_of(tmp_path, data)


def test_pooling_merges_the_cells_that_only_cable_reach_tells_apart(tmp_path):
    data = build_model_data(_one_leaf_row(tmp_path, 3.5))
    pooled = pooled_data(data)
    # One class per slot (cells of one slot); pooled: the leaf's slot and the nine others.
    assert len(data.classes) == 10
    assert sorted(c.size for c in pooled.classes) == [1, 9]
    assert pooled.cable_pairs == () and pooled.inlet_rows == ()


@pytest.mark.parametrize(("reach", "racks"), [(3.5, 2), (4.5, 4), (100.0, 6)])
def test_the_pooled_bound_never_cuts_off_the_optimum(tmp_path, reach, racks):
    # Racks within reach of slot 01: slots 02-04 at 3.5 m (one SU), 02-05 at 4.5 m (two),
    # all at 100 m, where the leaf's three ports bind (tests/test_network.py). The pooled
    # model ignores reach: 3 SUs, 48 GPUs, in every case; the solve still proves the
    # optimum below it where reach binds.
    report = solve_site(_one_leaf_row(tmp_path, reach), EXACT)
    assert report.outcome.relaxed_bound == pytest.approx(48)
    assert report.outcome.status == "optimal"
    assert report.outcome.objective == 8 * racks
    assert report.check.ok


def test_no_relaxation_without_a_fabric(tmp_path):
    # Without cable rows pooling would merge nothing: the relaxation is not solved.
    site = site_of(
        tmp_path,
        instance(
            rows={"R": row(4, ["UPS-A", "UPS-B"])},
            devices={"UPS-A": {"rating_kw": 100}, "UPS-B": {"rating_kw": 100}},
            rack_types={"r": rack(8, 30)},
        ),
    )
    report = solve_site(site, EXACT)
    assert report.outcome.relaxed_bound is None
    assert report.outcome.objective == 16  # 100 kW x 0.8 derating a side: two 30 kW racks


@pytest.mark.parametrize(("utility_kw", "gpus"), [(1_200, 576), (1_600, 832)])
def test_a_coupled_mixed_campus_is_proven_at_the_pooled_bound(tmp_path, utility_kw, gpus):
    # scripts/generate_campus.py --mixed on two halls of two 10-slot rows under one utility
    # limit: every slot is within the 50 m reach of every network slot of its hall, so the
    # pooled relaxation loses nothing and its bound is the optimum; the frontier path,
    # whose layouts come from its own hall solves, finds the same GPU count.
    args = ["--halls", "2", "--rows", "2", "--slots", "10", "--mixed"]
    path = generated_hall(tmp_path / "campus.yaml", *args, "--utility-kw", str(utility_kw))
    single = solve_instance(path, EXACT)
    assert single.solved_as == SOLVED_AS_SINGLE and single.outcome.status == "optimal"
    assert single.outcome.relaxed_bound == pytest.approx(gpus)
    assert single.outcome.objective == gpus
    placed = single.placement[single.placement >= 0]
    assert sum(single.site.rack_types[t].gpus for t in placed) == gpus
    frontiers = solve_instance(path, replace(EXACT, campus_frontiers=True))
    assert frontiers.solved_as == SOLVED_AS_CAMPUS and frontiers.outcome.objective == gpus
    # The frontier path takes the pooled bound as its starting bound (no row to add).
    assert frontiers.outcome.status == "optimal"
    assert frontiers.outcome.relaxed_bound == pytest.approx(gpus)


def test_installed_racks_keep_their_own_pools(tmp_path):
    # Two racks already stand in slots 03 and 04 (one whole SU). Each stays a class of
    # one slot fixed to its rack, so pooling merges only the seven free compute slots; the
    # leaf's three ports still cap the row at 6 racks, the installed two among them.
    data = fabric(10, 2, 2, {"default_reach_m": 100.0}, {1: {"network": True}})
    data["rack_types"]["leaf"]["su_ports"] = 3
    data["installed"] = {"H-R-03": "gpu", "H-R-04": "gpu"}
    site = site_of(tmp_path, data)
    pooled = pooled_data(build_model_data(site))
    assert sorted(c.size for c in pooled.classes) == [1, 1, 1, 7]
    assert sum(c.installed_type != -1 for c in pooled.classes) == 2
    report = solve_site(site, EXACT)
    assert report.outcome.relaxed_bound == pytest.approx(48)
    assert report.outcome.status == "optimal" and report.outcome.objective == 48
    ids = site.slot_ids
    assert report.placement[ids.index("H-R-03")] == report.placement[ids.index("H-R-04")] == 0


def test_without_a_time_limit_the_search_proper_has_none(tmp_path, monkeypatch):
    # The completion of the relaxation's SU counts runs on the model's HiGHS copy under
    # its own budget (at most 30 s). Without --time-limit the search proper that follows
    # on the same copy, and the second stage after it, must run without a limit: a 30 s
    # limit left behind would end a long proof with status time_limit.
    import optimizer.solve.highs as highs

    limits: list[tuple[int, float]] = []
    run = highs.SolveWatch.run

    def recorded(self, solve):
        h = getattr(solve, "__self__", None)
        if h is not None:  # HiGHS's own run, not the completion's wrapper
            limits.append((h.getNumCol(), h.getOptionValue("time_limit")[1]))
        return run(self, solve)

    monkeypatch.setattr(highs.SolveWatch, "run", recorded)
    report = solve_site(_one_leaf_row(tmp_path, 4.5), EXACT)
    assert report.outcome.status == "optimal" and report.outcome.objective == 32
    model_columns = max(n for n, _ in limits)
    on_the_model = [limit for n, limit in limits if n == model_columns]
    assert on_the_model and all(limit == math.inf for limit in on_the_model)
    assert any(n < model_columns for n, _ in limits)  # the relaxation ran, on its own copy


def test_idle_network_racks_do_not_loosen_the_pooled_bound(tmp_path):
    # Every slot may take the leaf (5 kW, one port) and reach spans the row, so the most
    # IT kW is 3 SUs of two 10 kW racks and their 3 leaves in 9 of the 10 slots: 75 kW. A
    # fourth leaf would add 5 kW but serve no SU, which the model forbids; the pooled
    # relaxation forbids it per hall too, so its bound is the optimum, not 80 kW.
    every_slot = {k: {"network": True} for k in range(1, 11)}
    data = fabric(10, 2, 1, {"default_reach_m": 100.0}, every_slot)
    data["objective"] = "max_it_kw"
    report = solve_site(site_of(tmp_path, data), EXACT)
    assert report.outcome.relaxed_bound == pytest.approx(75.0)
    assert report.outcome.status == "optimal" and report.outcome.objective == pytest.approx(75.0)
    leaf = [t.name for t in report.site.rack_types].index("leaf")
    assert int((report.placement == leaf).sum()) == 3
    assert report.check.ok


def test_no_warm_start_hands_highs_no_completed_layout(tmp_path, monkeypatch):
    # --no-warm-start means HiGHS starts from nothing: the relaxation's bound row stays
    # (it is a proven bound, not a layout), but its SU counts are not completed into a
    # start.
    import optimizer.solve.highs as highs

    completed = []
    complete = highs._complete

    def recorded(*args):
        completed.append(True)
        return complete(*args)

    monkeypatch.setattr(highs, "_complete", recorded)
    site = _one_leaf_row(tmp_path, 100.0)
    cold = solve_site(site, replace(EXACT, warm_start=False))
    assert not completed
    assert cold.outcome.relaxed_bound == pytest.approx(48) and cold.outcome.objective == 48
    solve_site(site, EXACT)
    assert completed
