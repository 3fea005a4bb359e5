"""The local search over packings (optimizer.solve.packing_search): every packing it
keeps is a valid layout, it finds racks the spreading packings strand, and on
hall-300-thermal it gives the solver the start of 8,704 GPUs that the spreading
packings (8,448) miss."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from factory import ZERO_ENDS, brute_force_best, instance, rack, row, site_of
from helpers import generated_hall

import optimizer.solve.highs as highs
import optimizer.solve.packing_search as packing_search
from models.data import build_model_data
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site
from optimizer.solve.greedy import SPREAD_NORMS, packing
from optimizer.solve.options import SolveOptions
from optimizer.solve.pipeline import solve_site
from optimizer.verify.check import check_layout

ROOT = Path(__file__).resolve().parents[1]
NEVER = float("inf")
TYPES = ("gb300-nvl72", "dgx-h100-rack", "network-rack")


def _nine_slots(tmp_path: Path):
    """Nine slots of one row, 40 kW air racks of 32 GPUs, the parametric recirculation
    model (docs/thermal.md) and 22.9 C supply air: 4.1 K of headroom per inlet."""
    data = instance(
        {"R": row(9, ["A", "B"])},
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"hot": rack(32, 40.0)},
        thermal={"recirculation": {"H": {}}},
    )
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 22.9
    return site_of(tmp_path, data)


def test_the_search_finds_the_rack_the_spreading_packings_strand(tmp_path: Path) -> None:
    site = _nine_slots(tmp_path)
    data = build_model_data(site)
    spread = [packing(data, norm).placement for norm in SPREAD_NORMS]
    assert max(int((p >= 0).sum()) for p in spread) == 7
    best, _ = brute_force_best(site, np.array([1.0]))
    assert best == 8
    # 500 moves (it finds the eighth rack within 50; all 8,000 would take 1.8 s here).
    found = packing_search.searched_packing(data, NEVER, lambda: False, iterations=500)
    assert int((found >= 0).sum()) == 8
    assert check_layout(site, found).ok


def _surplus_network_slots(tmp_path: Path, **more: dict):
    """The nine-slot row with SUs: 40 kW racks of 32 GPUs in SUs of 2, each served by a
    20 kW network rack (one SU per rack) in one of four network slots (1, 3, 7, 9);
    ``more``: rack type -> (type, demand entry), added."""
    compute = {**rack(32, 40.0), "su_size": 2, "network_rack": "leaf"}
    overrides = {position: {"network": True} for position in (1, 3, 7, 9)}
    data = instance(
        {"R": {**row(9, ["A", "B"]), "pitch_m": 1.0, "overrides": overrides}},
        {"A": {"rating_kw": 10_000}, "B": {"rating_kw": 10_000}},
        {"gpu": compute, "leaf": {**rack(0, 20.0), "su_ports": 1}},
        {"gpu": {}},
        thermal={"recirculation": {"H": {}}},
        network=dict(ZERO_ENDS),
    )
    for name, (spec, demand) in more.items():
        data["rack_types"][name] = spec
        data["demand"][name] = demand
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 22.9
    return site_of(tmp_path, data)


def test_the_search_takes_out_the_network_rack_no_su_needs(tmp_path: Path) -> None:
    # The packings stand a network rack in each of the four network slots, and their heat
    # leaves room for four or five compute racks: 2 whole SUs, 128 GPUs. Three network
    # racks serve the 3 SUs of the optimum (192 GPUs, proven by the solver); the search,
    # which counts the racks the network racks can serve and may take one out, finds them.
    site = _surplus_network_slots(tmp_path)
    data = build_model_data(site)
    for norm in SPREAD_NORMS:
        spread = packing(data, norm).placement
        compute, network = np.bincount(spread[spread >= 0], minlength=2)
        assert network == 4 and compute in (4, 5)
    found = packing_search.searched_packing(data, NEVER, lambda: False, iterations=500)
    assert np.bincount(found[found >= 0], minlength=2).tolist() == [6, 3]
    # The i-th network rack serves the i-th two compute racks in slot order (every slot is
    # within reach here): a whole layout, checked.
    hubs = np.flatnonzero(found == 1).tolist()
    racks = np.flatnonzero(found == 0)
    su = np.full(site.n_slots, -1)
    su[racks] = np.argsort(np.argsort(racks)) // 2
    assert check_layout(site, found, su, hubs).ok
    report = solve_site(site, SolveOptions(time_limit=60.0, threads=1))
    assert report.outcome.status == "optimal"
    assert report.outcome.objective == pytest.approx(192)


def test_a_demand_minimum_of_network_racks_holds_in_the_search(tmp_path: Path) -> None:
    # With at least four network racks demanded, the search may not take one out (a
    # packing with three cuts into no layout): it keeps all four.
    site = _surplus_network_slots(tmp_path, leaf=({**rack(0, 20.0), "su_ports": 1}, {"min": 4}))
    data = build_model_data(site)
    leaf = [t.name for t in site.rack_types].index("leaf")
    found = packing_search.searched_packing(data, NEVER, lambda: False, iterations=500)
    assert int((found == leaf).sum()) == 4


def test_whole_sus_take_the_ports_before_an_su_short_of_racks(tmp_path: Path) -> None:
    # Two network racks; 3 racks of a 96-GPU SU type (one whole SU and one short) and 2
    # of the 32-GPU type (one whole SU). The whole SUs take both ports: 2 x 96 + 2 x 32
    # = 256 GPUs, what the best cut holds. Given out by value per SU alone, the short
    # SU would take the second port: 3 x 96 = 288, more than any cut of the packing.
    big = {**rack(96, 40.0), "su_size": 2, "network_rack": "leaf"}
    site = _surplus_network_slots(tmp_path, big=(big, {}))
    data = build_model_data(site)
    names = [t.name for t in site.rack_types]
    search = packing_search._Search(data, packing_search.held_packing(data)[1], seed=0)
    counts = np.zeros(len(names), dtype=np.int64)
    counts[[names.index("big"), names.index("gpu"), names.index("leaf")]] = [3, 2, 2]
    search.construction.counts = counts
    assert search.score() == pytest.approx(2 * 96 + 2 * 32)
    counts[names.index("leaf")] = 3  # a third port: the short SU counts too
    assert search.score() == pytest.approx(3 * 96 + 2 * 32)


def test_a_stop_at_once_returns_the_spreading_packing(tmp_path: Path) -> None:
    # Ctrl-C before the first move: the packing the search starts from, which is valid.
    data = build_model_data(_nine_slots(tmp_path))
    found = packing_search.searched_packing(data, NEVER, lambda: True)
    assert found.tolist() == packing(data, SPREAD_NORMS[0]).placement.tolist()


def test_no_packings_without_inlet_rows(tmp_path: Path) -> None:
    data = instance(
        {"R": row(4, ["A", "B"])},
        {"A": {"rating_kw": 1000}, "B": {"rating_kw": 1000}},
        {"hot": rack(32, 40.0)},
    )
    model_data = build_model_data(site_of(tmp_path, data))
    assert packing_search.Packings.of(model_data, object()) is None


def test_a_hall_the_first_search_proves_never_waits_for_the_local_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The shipped air hall is proven optimal (1,152 GPUs) within the first search proper,
    # so the local search never runs (it would only cost time there).
    searched = []
    monkeypatch.setattr(
        packing_search.Packings, "searched", lambda *args: searched.append(args) or []
    )
    site = build_site(load_instance(ROOT / "instances" / "air-hall.yaml"))
    report = solve_site(site, SolveOptions(time_limit=60.0, threads=1))
    assert report.outcome.status == "optimal"
    assert report.outcome.objective == pytest.approx(1152)
    assert searched == []


@pytest.fixture(scope="module")
def hall_300_thermal(tmp_path_factory: pytest.TempPathFactory):
    """hall-300-thermal of docs/benchmarks.md: five liquid rows of GB300 NVL72 (SUs of 8
    racks, 576 GPUs), five air rows of DGX H100 (SUs of 8 racks, 256 GPUs), 20 network
    slots at the row ends, 23 C supply air with recirculation on every slot."""
    path = tmp_path_factory.mktemp("hall") / "hall-300-thermal.yaml"
    args = ["--rows", "10", "--slots", "30", "--supply-temp-c", "23"]
    return build_site(load_instance(generated_hall(path, *args)))


def test_gb300_held_at_whole_sus_leaves_the_headroom_for_seven_h100_sus(
    hall_300_thermal,
) -> None:
    data = build_model_data(hall_300_thermal)
    names = [t.name for t in hall_300_thermal.rack_types]
    gb300, h100, leaf = (names.index(n) for n in TYPES)
    start = packing(data, SPREAD_NORMS[0]).placement
    # The spreading packing places 100 GB300 racks: 12 whole SUs and 4 that strand.
    assert np.bincount(start[start >= 0], minlength=3)[gb300] == 100
    assert packing_search.whole_su_caps(data, start) == {gb300: 96}
    # Every move (about 5 s; seed 0 finds it after some 1,000): 96 GB300 and at least 56
    # DGX H100 racks (7 SUs) beside network racks for all 19 SUs; the spreading packings
    # place at most 50 DGX H100 racks.
    found = packing_search.searched_packing(data, NEVER, lambda: False)
    counts = np.bincount(found[found >= 0], minlength=3)
    assert counts[gb300] == 96 and counts[h100] >= 56 and counts[leaf] >= 12 + 7


def _pressing_at_hand_over(monkeypatch: pytest.MonkeyPatch, nth: int = 2) -> list[bool]:
    """Ctrl-C pressed as the search proper is handed its start for the ``nth`` time (the
    first: the probe's, after the cuts from the spreading packings; the second: the
    search again's, after the local search and its cut): that search stops at once, and
    the outcome is the layout handed over (whole, so HiGHS keeps it) with no wall clock
    deciding what it holds."""
    import optimizer.solve.progress as progress

    pressed: list[bool] = []
    hand_over = highs._Neighbourhoods.hand_over

    def pressing(self, h):
        pressed.append(True)
        hand_over(self, h)

    monkeypatch.setattr(highs._Neighbourhoods, "hand_over", pressing)
    monkeypatch.setattr(progress, "_stop_requests", [lambda: len(pressed) >= nth])
    monkeypatch.setattr(progress, "_pressed", threading.Event())  # noted here, not after
    return pressed


def test_whole_sus_cut_from_the_searched_packing_give_8704_gpus(
    hall_300_thermal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 0.1 s probe, then the local search held to its moves (not to a share of the
    # limit), then the cut: 96 GB300 and at least 56 DGX H100 racks in the packing give
    # 12 GB300 SUs and 7 DGX H100 SUs, 8,704 GPUs (the spreading packings give 8,448),
    # a layout that passes the independent check.
    pressed = _pressing_at_hand_over(monkeypatch)
    monkeypatch.setattr(highs, "probe_budget", lambda _options: 0.1)
    monkeypatch.setattr(highs, "search_budget", lambda _options: NEVER)
    report = solve_site(hall_300_thermal, SolveOptions(time_limit=600.0, threads=1))
    assert len(pressed) == 2  # the probe's start, then the search again
    assert report.outcome.status == "interrupted"
    assert report.check.ok
    assert report.outcome.objective == pytest.approx(8704)
    placed = report.placement[report.placement >= 0]
    assert sum(hall_300_thermal.rack_types[t].gpus for t in placed) == 8704


def test_the_probe_s_bound_holds_the_search_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The nine-slot row is proven in the probe (8 racks, 256 GPUs); made to search again
    # anyway, the search again gets the probe's bound as a row of its model, and the
    # answer keeps the optimum and its bound.
    capped: list[float] = []
    cap_primary = highs._cap_primary

    def recording(h, compiled, bound):
        capped.append(bound)
        cap_primary(h, compiled, bound)

    monkeypatch.setattr(highs, "_probe_ended", lambda *_args: True)
    monkeypatch.setattr(highs, "_cap_primary", recording)
    report = solve_site(_nine_slots(tmp_path), SolveOptions(time_limit=60.0, threads=1))
    assert capped == [pytest.approx(256)]
    assert report.outcome.status == "optimal"
    assert report.outcome.objective == pytest.approx(256)
    assert report.outcome.bound == pytest.approx(256)
    assert report.check.ok


def test_ctrl_c_during_the_local_search_keeps_a_checked_layout(
    hall_300_thermal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C as soon as the local search starts (after the probe ended unproven): the
    # search stops within a move, the search proper starts again from the best whole
    # layout and stops at once, and the layout is checked: 8,448 GPUs or more.
    import optimizer.solve.progress as progress

    pressed: list[bool] = []
    searched = packing_search.Packings.searched

    def pressing(self, deadline, stop):
        pressed.append(True)
        return searched(self, deadline, stop)

    monkeypatch.setattr(packing_search.Packings, "searched", pressing)
    monkeypatch.setattr(progress, "_stop_requests", [lambda: bool(pressed)])
    monkeypatch.setattr(progress, "_pressed", threading.Event())  # noted here, not after
    report = solve_site(hall_300_thermal, SolveOptions(time_limit=30.0, threads=1))
    assert pressed
    assert report.outcome.status == "interrupted"
    assert report.check.ok
    assert report.outcome.objective >= 8448


def test_a_probe_stopped_at_once_keeps_the_layout_cut_from_a_packing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 1,000-slot air hall of docs/benchmarks.md: the cut from a packing reaches the
    # bound, 11,840 GPUs, before HiGHS starts. A probe stopped at once (here by Ctrl-C,
    # while HiGHS is still presolving; at a 1 s limit, by the time limit) still returns
    # it: HiGHS gets it whole, and the solve keeps it itself when HiGHS stopped before
    # taking it. Handed the placements alone, a 1 s limit had ended with no layout, and
    # this Ctrl-C with "interrupted before the solver found any layout".
    _pressing_at_hand_over(monkeypatch, nth=1)
    args = ["--rows", "20", "--slots", "50", "--liquid-share", "0.1", "--supply-temp-c", "23"]
    site = build_site(load_instance(generated_hall(tmp_path / "air-hall-1000.yaml", *args)))
    report = solve_site(site, SolveOptions(time_limit=60.0, threads=1))
    assert report.outcome.status == "interrupted"
    assert report.check.ok
    assert report.outcome.objective == pytest.approx(11840)


def test_only_placed_su_types_count_for_the_caps(tmp_path: Path) -> None:
    # A third SU type the demand keeps out (max 0) is placed by no packing: the caps are
    # those of hall-300-thermal alone, GB300 at 96, and the DGX H100 racks stay free.
    path = generated_hall(
        tmp_path / "hall.yaml", "--rows", "10", "--slots", "30", "--supply-temp-c", "23"
    )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["rack_types"]["small-su"] = {"base": "dgx-h100-rack", "it_kw": 10, "gpus": 8}
    data["demand"]["small-su"] = {"max": 0}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    site = build_site(load_instance(path))
    model_data = build_model_data(site)
    names = [t.name for t in site.rack_types]
    start = packing(model_data, SPREAD_NORMS[0]).placement
    assert packing_search.whole_su_caps(model_data, start) == {names.index(TYPES[0]): 96}
