"""Capped failover: racks capped after a feed failure free failover headroom, by hand.

The hall: two UPS of 250 kW at the 0.8 default derating (200 kW each, no separate
failover limit), eight dual-corded slots sharing A and B. Both rack types carry 8 GPUs
and draw 100 kW; ``train`` is capped to 60 kW after a failure, ``legacy`` never is.

- normal operation: each UPS carries half of every rack, 50 (x + y) <= 200: 4 racks;
- a UPS fails: the other carries every rack whole, at its failover draw:
  60 x + 100 y <= 200.

The most racks: x = 3, y = 0 (180 kW); x = 2, y = 1 needs 220 kW. With capping, 3 racks
(24 GPUs); without it (100 x + 100 y <= 200), 2 racks (16 GPUs): capping lets exactly one
more rack in.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from factory import EXACT, brute_force_best, instance, rack, row, site_of
from helpers import run, write_instance

from optimizer.solve.pipeline import solve_site
from optimizer.verify.check import EMPTY, check_layout

TRAIN, LEGACY = 0, 1


def two_ups_hall(**train: float) -> dict:
    return instance(
        rows={"R": row(8, ["UPS-A", "UPS-B"])},
        devices={"UPS-A": {"rating_kw": 250}, "UPS-B": {"rating_kw": 250}},
        rack_types={
            "train": {**rack(8, 100), **(train or {"capped_kw": 60})},
            "legacy": rack(8, 100),
        },
    )


def _placement(*kinds: int) -> np.ndarray:
    return np.array([*kinds, *[EMPTY] * (8 - len(kinds))])


def test_capping_lets_exactly_one_more_rack_in(tmp_path):
    site = site_of(tmp_path, two_ups_hall())
    report = solve_site(site, EXACT)
    placed = report.placement
    assert (placed == TRAIN).sum() == 3 and (placed == LEGACY).sum() == 0
    assert report.outcome.objective == pytest.approx(24)
    baseline = solve_site(site.uncapped(), EXACT)
    assert baseline.outcome.objective == pytest.approx(16)
    gpus = np.array([t.gpus for t in site.rack_types], dtype=float)
    assert brute_force_best(site, gpus)[0] == 24
    assert brute_force_best(site.uncapped(), gpus)[0] == 16


def test_capped_fraction_is_the_same_draw(tmp_path):
    site = site_of(tmp_path, two_ups_hall(capped_fraction=0.6))
    assert site.rack_types[TRAIN].failover_kw == pytest.approx(60)
    assert solve_site(site, EXACT).outcome.objective == pytest.approx(24)


def test_the_checker_recomputes_the_capped_failover_loads(tmp_path):
    site = site_of(tmp_path, two_ups_hall())
    report = check_layout(site, _placement(TRAIN, TRAIN, TRAIN))
    loads = report.loads
    assert report.ok
    # Normal: 3 x 50 kW per side. UPS-A fails: UPS-B carries 3 x 60 kW capped, 300 uncapped.
    assert loads.device_normal_kw.tolist() == [150.0, 150.0]
    assert loads.device_failover_kw.tolist() == [180.0, 180.0]
    capping = loads.capping
    assert capping.uncapped_failover_kw.tolist() == [300.0, 300.0]
    # Each failure relies on capping all three racks, shedding 3 x 40 kW.
    assert capping.racks.tolist() == [3, 3]
    assert capping.shed_kw.tolist() == [120.0, 120.0]
    assert capping.slot_cases[:4] == [["UPS-A", "UPS-B"]] * 3 + [[]]

    # Two capped racks and one that cannot be capped: 2 x 60 + 100 = 220 kW > 200 kW.
    mixed = check_layout(site, _placement(TRAIN, TRAIN, LEGACY))
    failover = {(v.subject, v.case, v.load, v.limit) for v in mixed.violations}
    assert failover == {("UPS-A", "UPS-B", 220.0, 200.0), ("UPS-B", "UPS-A", 220.0, 200.0)}

    # Two racks fit without capping: nothing relies on it, the legacy rack is never capped.
    light = check_layout(site, _placement(TRAIN, LEGACY)).loads.capping
    assert light.racks.tolist() == [0, 0] and light.shed_kw.tolist() == [0.0, 0.0]
    assert light.uncapped_failover_kw.tolist() == [200.0, 200.0]


def test_solve_reports_gpus_with_and_without_capping(tmp_path):
    path = write_instance(tmp_path, two_ups_hall())
    out = tmp_path / "capped.nc"
    result = run("solve", path, "-o", out, "--capping-baseline", "--gap", 0)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the summary wraps long lines
    assert "GPUs 24 with capping, without: 16" in text
    assert "UPS-A failing, caps 3 racks (120.0 kW shed)" in text
    # The row's 300 kW of IT exceeds its feeds' 200 kW failover limit only uncapped.
    assert "300.0 (180.0 capped) of 200.0 kW" in text
    with xr.open_dataset(out) as ds:
        assert int(ds["gpus_without_capping"]) == 16
        assert ds["type_capped_kw"].values.tolist() == [60.0, 100.0]
        assert ds["failure_capped_racks"].values.tolist() == [3, 3]
        assert ds["failure_shed_kw"].values.tolist() == [120.0, 120.0]
        assert ds["device_failover_uncapped_kw"].values.tolist() == [300.0, 300.0]
        capped = ds["capped_if_failed"].values
        assert sorted(capped[capped != ""].tolist()) == ["UPS-A UPS-B"] * 3
    plain = run("solve", path, "-o", tmp_path / "plain.nc", "--gap", 0)
    assert "without: not solved (add --capping-baseline)" in " ".join(plain.output.split())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"capped_kw": 60, "capped_fraction": 0.6}, "both capped_kw and capped_fraction"),
        ({"capped_kw": 120}, "capped_kw 120 is above it_kw 100"),
        ({"capped_fraction": 0}, "capped_fraction"),
    ],
)
def test_a_wrong_capped_draw_is_a_clear_error(tmp_path, entry, message):
    path = write_instance(tmp_path, two_ups_hall(**entry))
    result = run("solve", path, "-o", tmp_path / "x.nc")
    assert result.exit_code == 2, result.output
    assert message in result.output and "rack_types.train" in result.output
