"""The whole-SU knapsack rows: their power bound by hand, and that they keep the optimum."""

from __future__ import annotations

import pytest
from factory import instance, rack, row, site_of
from test_power_failover import distributed_4n3

from models.data import build_model_data
from models.su_knapsack import power_cover_bound


def test_power_bound_of_2n_is_one_side(tmp_path):
    # Two row pairs, each on its own A/B UPS pair of 0.8 x 500 = 400 kW: whichever side
    # fails, the twin carries its pair alone, so total IT <= 2 x 400 kW.
    rows = {f"R{i}": row(2, [f"UPS-A{i}", f"UPS-B{i}"]) for i in "12"}
    devices = {f"UPS-{side}{i}": {"rating_kw": 500} for side in "AB" for i in "12"}
    site = site_of(tmp_path, instance(rows=rows, devices=devices, rack_types={"r": rack(8, 100)}))
    assert power_cover_bound(build_model_data(site)) == pytest.approx(800.0)


def test_power_bound_of_distributed_4n3_is_three_systems(tmp_path):
    # Every slot pair of four 320 kW systems: weights 1/4 on the twelve failover rows
    # give each class coefficient 1/4 x (1 + 1 + 4 x 0.5) = 1, bound 12/4 x 320 = 960 kW,
    # the 3-of-4 capacity that distributed redundancy promises.
    site = site_of(tmp_path, distributed_4n3(rating_kw=400))
    assert power_cover_bound(build_model_data(site)) == pytest.approx(960.0)
