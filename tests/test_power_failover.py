"""The failover rule on 2N, distributed 4N/3 and catcher topologies, loads worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from factory import EXACT, brute_force_best, instance, rack, row, site_of

from optimizer.solve.pipeline import solve_site
from optimizer.verify.check import check_layout


def _loads(site, placement):
    report = check_layout(site, np.array(placement))
    names = site.device_ids
    normal = dict(zip(names, report.loads.device_normal_kw.round(6), strict=True))
    worst = dict(zip(names, report.loads.device_failover_kw.round(6), strict=True))
    case = dict(zip(names, report.loads.device_worst_failure, strict=True))
    return report, normal, worst, case


def test_2n_side_carries_everything_when_other_side_fails(tmp_path):
    # Two racks of 100 kW, dual-corded across UPS-A/UPS-B through row PDUs.
    data = instance(
        rows={"R": row(2, ["PDU-A", "PDU-B"])},
        devices={
            "UPS-A": {"rating_kw": 500},
            "UPS-B": {"rating_kw": 500},
            "PDU-A": {"parent": "UPS-A", "rating_kw": 300},
            "PDU-B": {"parent": "UPS-B", "rating_kw": 300},
        },
        rack_types={"r100": rack(8, 100)},
    )
    site = site_of(tmp_path, data)
    report, normal, worst, case = _loads(site, [0, 0])
    # Normal: each side carries half of 200 kW.
    assert normal == {"UPS-A": 100, "UPS-B": 100, "PDU-A": 100, "PDU-B": 100}
    # UPS-A (or PDU-A) fails: the B side carries both racks in full.
    assert worst == {"UPS-A": 200, "UPS-B": 200, "PDU-A": 200, "PDU-B": 200}
    assert case["UPS-B"] == "UPS-A" and case["UPS-A"] == "UPS-B"
    # PDU limit 0.8 x 300 = 240 >= 200: no violation.
    assert report.ok


def test_2n_failover_over_limit_is_reported_with_numbers(tmp_path):
    data = instance(
        rows={"R": row(3, ["UPS-A", "UPS-B"])},
        devices={"UPS-A": {"rating_kw": 300}, "UPS-B": {"rating_kw": 300}},
        rack_types={"r100": rack(8, 100)},
    )
    site = site_of(tmp_path, data)
    report, normal, worst, _ = _loads(site, [0, 0, 0])
    assert normal["UPS-A"] == 150 and worst["UPS-B"] == 300
    # 300 kW on a 300 kW x 0.8 = 240 kW device when the other side is out: excess 60 kW.
    failover = [v for v in report.violations if v.rule == "power-failover"]
    assert {(v.subject, v.case, v.load, v.limit) for v in failover} == {
        ("UPS-A", "UPS-B", 300.0, 240.0),
        ("UPS-B", "UPS-A", 300.0, 240.0),
    }
    assert failover[0].excess == pytest.approx(60.0)


def distributed_4n3(rating_kw: float):
    """Four UPS systems; six slots, one for each pair of systems."""
    pairs = [("1", "2"), ("1", "3"), ("1", "4"), ("2", "3"), ("2", "4"), ("3", "4")]
    rows = {f"P{a}{b}": row(1, [f"UPS-{a}", f"UPS-{b}"]) for a, b in pairs}
    devices = {f"UPS-{i}": {"rating_kw": rating_kw} for i in "1234"}
    return instance(rows=rows, devices=devices, rack_types={"r120": rack(10, 120)})


def test_distributed_4n3_spreads_a_failed_systems_load(tmp_path):
    site = site_of(tmp_path, distributed_4n3(rating_kw=400))
    report, normal, worst, case = _loads(site, [0] * 6)
    # Each UPS feeds three racks at half of 120 kW: 180 kW = 56% of 320 kW.
    assert set(normal.values()) == {180.0}
    # UPS-1 fails: racks (1,2), (1,3), (1,4) move wholly to 2, 3, 4, so UPS-2 carries
    # 120 (rack 1-2) + 60 (rack 2-3) + 60 (rack 2-4) = 240 kW, within 320 kW.
    assert set(worst.values()) == {240.0}
    assert case["UPS-2"] == "UPS-1" and case["UPS-1"] == "UPS-2"
    assert report.ok


def test_distributed_4n3_optimum_is_set_by_failover(tmp_path):
    # 0.8 x 280 = 224 kW per UPS. By hand: five racks over the six pairs give some UPS
    # three racks (degrees sum to 10 over 4 systems); when one of its partners fails it
    # carries 120 + 60 + 60 = 240 kW > 224. Four racks on a cycle (1,2),(2,4),(4,3),(3,1)
    # give every UPS two racks: 120 + 60 = 180 kW in failover. So the optimum is 4 racks.
    site = site_of(tmp_path, distributed_4n3(rating_kw=280))
    best, _ = brute_force_best(site, np.array([10.0]))
    assert best == 40.0
    report = solve_site(site, EXACT)
    assert report.outcome.objective == best
    assert report.check.ok
    worst = report.check.loads.device_failover_kw
    assert sorted(worst) == [180.0] * 4


def test_catcher_reserve_takes_one_block(tmp_path):
    # Block redundant: three primary blocks, one reserve; racks draw only from their
    # primary (primary_share 1.0) until it fails, then wholly from the reserve.
    rows = {f"B{i}": row(2, [f"UPS-{i}", "UPS-R"], primary_share=1.0) for i in "123"}
    devices = {f"UPS-{i}": {"rating_kw": 300} for i in "123R"}
    site = site_of(
        tmp_path, instance(rows=rows, devices=devices, rack_types={"r100": rack(8, 100)})
    )
    report, normal, worst, case = _loads(site, [0] * 6)
    assert normal == {"UPS-1": 200, "UPS-2": 200, "UPS-3": 200, "UPS-R": 0}
    assert worst["UPS-R"] == 200 and case["UPS-R"] == "UPS-1"
    assert worst["UPS-1"] == 200 and case["UPS-1"] == ""
    assert report.ok


def test_catcher_reserve_limit_caps_every_block(tmp_path):
    # Reserve of 0.8 x 250 = 200 kW: no block may exceed 200 kW of rack load, although
    # the primaries could each take 240 kW.
    rows = {f"B{i}": row(3, [f"UPS-{i}", "UPS-R"], primary_share=1.0) for i in "12"}
    devices = {
        "UPS-1": {"rating_kw": 300},
        "UPS-2": {"rating_kw": 300},
        "UPS-R": {"rating_kw": 250},
    }
    site = site_of(
        tmp_path, instance(rows=rows, devices=devices, rack_types={"r100": rack(8, 100)})
    )
    report = solve_site(site, EXACT)
    assert report.outcome.objective == 32  # 2 racks per block x 2 blocks x 8 GPUs
    assert report.check.loads.device_failover_kw[2] == 200


def test_rack_goes_where_failover_allows(tmp_path):
    # One rack fits every slot by space, cooling and normal power, but row F's B-side
    # PDU would exceed its failover limit if its A-side failed: the rack goes to row G
    # although the tie-break prefers the front row F.
    data = instance(
        rows={"F": row(2, ["PDU-FA", "PDU-FB"]), "G": row(2, ["PDU-GA", "PDU-GB"])},
        devices={
            "UPS-A": {"rating_kw": 1000},
            "UPS-B": {"rating_kw": 1000},
            "PDU-FA": {"parent": "UPS-A", "rating_kw": 200},
            "PDU-FB": {"parent": "UPS-B", "rating_kw": 200, "derating": 0.5},
            "PDU-GA": {"parent": "UPS-A", "rating_kw": 200},
            "PDU-GB": {"parent": "UPS-B", "rating_kw": 200},
        },
        rack_types={"r150": rack(8, 150)},
        demand={"r150": {"min": 1, "max": 1}},
    )
    site = site_of(tmp_path, data)
    # In row F the rack's normal share is 75 kW per PDU (limit 100 on FB), but when
    # PDU-FA fails FB must carry 150 kW > 100.
    report = solve_site(site, EXACT)
    placed = [site.slot_ids[s] for s in np.flatnonzero(report.placement >= 0)]
    assert placed == ["H-G-01"]
