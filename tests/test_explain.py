"""`explain`: a demand asked on the command line, one line per device over its failure
cases, and nothing reported that the checker would not call a violation. Numbers by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from factory import EXACT, instance, rack, site_of
from helpers import TUTORIAL, run, write_instance

from optimizer.solve.explain import DemandAsk, Shortfall, asked_site, explain, grouped

THREE_GB300 = [
    # 3 x 116.96 = 350.88 kW of liquid heat on 250 usable; 3 x 175.44 = 526.32 L/min on
    # 400; 3 x 136 = 408 kW on the surviving UPS, 400 usable.
    "tutorial: to place 3 gb300-nvl72, these resources fall short:",
    "  CDU CDU1 heat short by 100.9 kW (needs 350.9, has 250.0)",
    "  CDU CDU1 flow short by 126.3 L/min (needs 526.3, has 400.0)",
    "  UPS-B (if UPS-A fails) short by 8.0 kW (needs 408.0, has 400.0)",
    "  UPS-A (if UPS-B fails) short by 8.0 kW (needs 408.0, has 400.0)",
]


def test_demand_on_the_command_line_leaves_the_file_alone():
    before = TUTORIAL.read_bytes()
    result = run("explain", TUTORIAL, "--demand", "gb300-nvl72=3")
    assert result.exit_code == 3
    assert sorted(result.output.splitlines()[1:]) == sorted(THREE_GB300[1:])
    assert result.output.splitlines()[0] == THREE_GB300[0]
    assert TUTORIAL.read_bytes() == before


def test_plus_n_asks_for_n_more_than_the_instance_does(tmp_path: Path):
    data = yaml.safe_load(TUTORIAL.read_text())
    data["demand"]["gb300-nvl72"] = {"min": 2}  # 2 fit (the tutorial's optimum has 2)
    path = write_instance(tmp_path, data)
    assert run("explain", path).exit_code == 0
    result = run("explain", path, "--demand", "gb300-nvl72=+1")
    assert result.exit_code == 3
    assert sorted(result.output.splitlines()) == sorted(THREE_GB300)


def test_plus_n_counts_from_the_installed_racks_when_there_are_more(tmp_path: Path):
    site = site_of(tmp_path, _installed_two())
    asked = asked_site(site, [DemandAsk("r", 1, more=True)])
    assert asked.demand_min.tolist() == [3]  # two installed, one more
    assert asked.demand_max.tolist() == [3]  # raised: the file allowed only the two


def _installed_two() -> dict:
    data = instance(
        rows={"R": {"slots": 4, "slot": {"air_zone": "Z", "feeds": ["UPS-A"]}}},
        devices={"UPS-A": {"rating_kw": 1000}},
        rack_types={"r": rack(8, 10)},
        demand={"r": {"max": 2}},
    )
    data["installed"] = {"H-R-01": "r", "H-R-02": "r"}
    return data


def test_a_bad_demand_is_refused_with_exit_2():
    result = run("explain", TUTORIAL, "--demand", "gb300-nvl72")
    assert result.exit_code == 2 and "is not TYPE=N or TYPE=+N" in result.output
    result = run("explain", TUTORIAL, "--demand", "gb300=2")
    assert result.exit_code == 2
    assert "--demand: unknown rack type 'gb300'" in result.output
    assert "did you mean 'gb300-nvl72'" in result.output


def test_a_device_short_in_several_failure_cases_is_one_line(tmp_path: Path):
    # Two rows of two 60 kW racks; row 1 on PDU-A1/PDU-B1, row 2 on PDU-A2/PDU-B2; PDU-Ax
    # under UPS-A (100 kW, derating 1), PDU-Bx under UPS-B. Four racks: 240 kW. UPS-A
    # carries 240 kW if UPS-B fails (140 short), 120 + 60 = 180 if PDU-B1 or PDU-B2 fails
    # (80 short), and 120 in normal operation (20 short).
    pdus = {
        f"PDU-{side}{n}": {"parent": f"UPS-{side}", "rating_kw": 1000}
        for side in "AB"
        for n in (1, 2)
    }
    ups = {f"UPS-{side}": {"rating_kw": 100, "derating": 1.0} for side in "AB"}
    data = instance(
        rows={
            f"R{n}": {"slots": 2, "slot": {"air_zone": "Z", "feeds": [f"PDU-A{n}", f"PDU-B{n}"]}}
            for n in (1, 2)
        },
        devices={**ups, **pdus},
        rack_types={"r": rack(8, 60)},
        demand={"r": {"min": 4}},
    )
    shortfalls = {s.resource: s for s in explain(site_of(tmp_path, data), EXACT)}
    assert set(shortfalls) == {
        "UPS-A (if UPS-B fails)",
        "UPS-B (if UPS-A fails)",
        "UPS-A (normal)",
        "UPS-B (normal)",
    }
    worst = shortfalls["UPS-A (if UPS-B fails)"]
    assert (worst.short_by, worst.cases) == (pytest.approx(140.0), 3)
    assert worst.describe() == (
        "UPS-A (if UPS-B fails) short by 140.0 kW (needs 240.0, has 100.0) "
        "(worst of 3 failure cases)"
    )
    assert shortfalls["UPS-A (normal)"].short_by == pytest.approx(20.0)


def test_nothing_within_the_checkers_tolerance_is_reported_and_nothing_reads_0_0():
    inlet = "inlet_temperature"
    found = [
        Shortfall("inlet at H-R-01", 0.004, math.nan, "K", inlet, "H-R-01"),  # < 0.01 K
        Shortfall("inlet at H-R-02", 0.03, math.nan, "K", inlet, "H-R-02"),
        Shortfall("UPS-A (normal)", 1e-5, 400.0, "kW", "power_normal", "UPS-A"),  # < 4e-4
    ]
    (kept,) = grouped(found)
    assert kept.resource == "inlet at H-R-02"
    assert kept.describe() == "inlet at H-R-02 over its limit by 0.03 K"
