"""`next`: whole SUs where the type grows by SUs, each blocked place's margin, and slots
kept for network racks never offered to compute racks. Numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from factory import instance, rack, row, site_of
from helpers import run, write_instance

from optimizer.site.arrays import Site
from optimizer.site.placement import Assignment
from optimizer.verify.check import EMPTY, check_layout
from optimizer.verify.headroom import next_rack

GPU, LEAF, CPU = 0, 1, 2
NO_ENDS = {"rise_m": 0.0, "slack_m": 0.0, "end_clearance_m": 0.0, "cell_slots": 1}


def fabric_row(ups_kw: float, floor_kg: dict[int, float] | None = None) -> dict:
    """One row of 8 slots 1 m apart; slot 01 alone is marked for network racks. SUs of 2
    compute racks (8 GPUs, 10 kW) on a 5 kW leaf with 2 ports; a 4 kW single 'cpu' rack
    of 600 kg. 2N UPS with derating 1: the surviving side carries every rack in full."""
    overrides = {1: {"network": True}}
    for position, kg in (floor_kg or {}).items():
        overrides[position] = {"floor_kg": kg}
    data = instance(
        rows={"R": {**row(8, ["UPS-A", "UPS-B"]), "pitch_m": 1.0, "overrides": overrides}},
        devices={side: {"rating_kw": ups_kw, "derating": 1.0} for side in ("UPS-A", "UPS-B")},
        rack_types={
            "gpu": {**rack(8, 10), "su_size": 2, "network_rack": "leaf"},
            "leaf": {**rack(0, 5), "su_ports": 2},
            "cpu": rack(4, 4, weight=600),
        },
        demand={"gpu": {}, "cpu": {}},
    )
    data["network"] = NO_ENDS
    return data


def one_su(site: Site) -> Assignment:
    """A leaf in H-R-01 serving one SU in H-R-02 and H-R-03 (25 kW in all)."""
    placement = np.full(site.n_slots, EMPTY)
    placement[0], placement[1:3] = LEAF, GPU
    su = np.full(site.n_slots, EMPTY)
    su[1:3] = 0
    layout = Assignment(placement, su, [0])
    assert check_layout(site, placement, su, [0]).ok
    return layout


def test_an_su_type_is_tried_as_a_whole_su_on_the_leaf_with_a_spare_port(tmp_path):
    # The only network slot holds the leaf, which has one spare port: the one place is a
    # whole SU of 2 racks on it. The surviving UPS would carry 25 + 2 x 10 = 45 kW.
    site = site_of(tmp_path, fabric_row(ups_kw=40))
    answer = next_rack(site, one_su(site), "gpu")
    assert answer.racks == 2 and answer.places == 1 and answer.ranked == []
    (blocked,) = answer.blocked
    assert len(blocked.place.slots) == 2 and blocked.place.network_slot == "H-R-01"
    assert not blocked.place.new_network_rack
    assert blocked.binding == "UPS-A (if UPS-B fails)"
    assert (blocked.excess, blocked.unit) == (pytest.approx(5.0), "kW")  # 45 - 40
    # With 60 kW per UPS the SU fits, at 45 / 60 = 75% of the surviving UPS.
    site = site_of(tmp_path, fabric_row(ups_kw=60))
    (fits,) = next_rack(site, one_su(site), "gpu").ranked
    assert fits.utilization == pytest.approx(0.75)
    assert fits.tightest == "UPS-A (if UPS-B fails)"
    assert "H-R-01" not in fits.place.slots


def test_on_an_empty_floor_the_su_brings_its_leaf_to_the_network_slot(tmp_path):
    # H-R-01 is the only network slot: the one place is a new leaf there with the two
    # nearest free slots (1 m and 2 m away), 2 x 10 + 5 = 25 kW of 60 on the surviving UPS.
    site = site_of(tmp_path, fabric_row(ups_kw=60))
    empty = Assignment(np.full(site.n_slots, EMPTY), np.full(site.n_slots, EMPTY))
    (fits,) = next_rack(site, empty, "gpu").ranked
    assert fits.place.network_slot == "H-R-01" and fits.place.new_network_rack
    assert fits.place.slots == ("H-R-02", "H-R-03")
    assert fits.utilization == pytest.approx(25 / 60)


def test_a_single_rack_type_never_takes_the_network_slot(tmp_path):
    # The network slot H-R-01 is free here: the cpu rack is offered the 7 others only.
    site = site_of(tmp_path, fabric_row(ups_kw=60))
    empty = Assignment(np.full(site.n_slots, EMPTY), np.full(site.n_slots, EMPTY))
    answer = next_rack(site, empty, "cpu")
    assert answer.racks == 1 and answer.places == 7
    assert sorted(c.slot for c in answer.ranked) == [f"H-R-0{i}" for i in range(2, 9)]
    # Every place fits with 4 of 60 kW on the surviving UPS.
    assert {round(c.utilization, 6) for c in answer.ranked} == {round(4 / 60, 6)}


def test_a_blocked_slot_gives_its_floor_margin_in_kg(tmp_path):
    # H-R-05 carries 450 kg: a 600 kg cpu rack is 150 kg too heavy there, and fits elsewhere.
    site = site_of(tmp_path, fabric_row(ups_kw=60, floor_kg={5: 450}))
    empty = Assignment(np.full(site.n_slots, EMPTY), np.full(site.n_slots, EMPTY))
    answer = next_rack(site, empty, "cpu")
    (blocked,) = answer.blocked
    assert blocked.place.slots == ("H-R-05",)
    assert blocked.binding.startswith("slot-floor")
    assert (blocked.excess, blocked.unit) == (pytest.approx(150.0), "kg")
    assert len(answer.ranked) == 6


def test_next_prints_the_su_and_the_margin(tmp_path):
    data = fabric_row(ups_kw=40)
    path = write_instance(tmp_path, data)
    layout = tmp_path / "one.csv"
    layout.write_text(
        "slot,rack_type,su,network_slot\nH-R-01,leaf,,\nH-R-02,gpu,a,H-R-01\nH-R-03,gpu,a,H-R-01\n"
    )
    result = run("next", path, layout, "--type", "gpu")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "no place takes one more SU of 2 gpu; the closest, over by:"
    assert lines[1].endswith("via H-R-01: UPS-A (if UPS-B fails) by 5.0 kW")
    assert lines[2] == "  blocked in 1 places by UPS-A (if UPS-B fails): over by 5.0 kW or more"
    assert all(len(line) <= 80 for line in lines)


def test_a_type_whose_slots_are_all_taken_says_so(tmp_path):
    # One liquid slot (H-R-01) of four; a liquid rack stands there, so the next has none.
    data = instance(
        rows={"R": {**row(4, ["UPS-A"]), "overrides": {1: {"liquid": True, "cdu": "C"}}}},
        devices={"UPS-A": {"rating_kw": 1000}},
        rack_types={"liq": rack(8, 10, liquid=0.8)},
    )
    site = site_of(tmp_path, data)
    placement = np.full(site.n_slots, EMPTY)
    placement[0] = 0
    answer = next_rack(site, Assignment(placement, np.full(site.n_slots, EMPTY)), "liq")
    assert answer.places == 0 and answer.ranked == [] and answer.blocked == []
    assert answer.no_room == "the 1 slots that may take it are all taken"
