"""The resource table: one list of capacities, one label per resource, in every output.

The instance here is worked by hand: one row of four air slots on a 2N pair, UPS-A
(250 kW, 200 kW continuous) and UPS-B (300 kW, 240 kW continuous), for 64 kW racks of
32 GPUs. When UPS-B fails UPS-A carries every rack: 3 x 64 = 192 kW <= 200 kW, a
fourth rack would make 256 kW. So every optimal layout holds 3 racks (96 GPUs) and the
failover of UPS-A binds at 96%, ahead of UPS-B's (192 / 240 = 80%), the slots (3 of
4) and the roomy cooling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from factory import EXACT, instance, rack, row, site_of
from helpers import write_instance

from optimizer.cli import main
from optimizer.instance.loader import load_instance
from optimizer.results.layout import layout_dataset
from optimizer.results.resources import layout_resources
from optimizer.site.build import build_site
from optimizer.solve.pipeline import solve_site
from optimizer.studies.compare import compare
from optimizer.studies.report import utilization_bars
from optimizer.verify.resources import (
    FAMILIES,
    Kind,
    Resource,
    binding,
    condensed,
    ranked,
    resources,
)

BINDING = "UPS-A (if UPS-B fails)"


def _failover_bound(demand: dict | None = None) -> dict:
    return instance(
        {"R": row(4, ["UPS-A", "UPS-B"])},
        {"UPS-A": {"rating_kw": 250}, "UPS-B": {"rating_kw": 300}},
        {"r": rack(32, 64.0)},
        demand,
    )


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> tuple[Path, Path, str]:
    """(instance, layout, solve's output) of the failover-bound instance."""
    folder = tmp_path_factory.mktemp("failover")
    path = write_instance(folder, _failover_bound())
    layout = folder / "layout.nc"
    result = run("solve", path, "-o", layout, "--gap", "0")
    assert result.exit_code == 0, result.output
    return path, layout, result.output


def test_the_table_of_the_failover_bound_layout_by_hand(solved):
    path, _, _ = solved
    site = build_site(load_instance(path))
    report = solve_site(site, EXACT)
    assert report.outcome.objective == pytest.approx(96)
    table = resources(site, report.check.loads, report.placement)
    assert [(r.label, r.family, r.load, r.limit, r.unit) for r in table] == [
        ("UPS-A (normal)", "power", pytest.approx(96.0), pytest.approx(200.0), "kW"),
        (BINDING, "power", pytest.approx(192.0), pytest.approx(200.0), "kW"),
        ("UPS-B (normal)", "power", pytest.approx(96.0), pytest.approx(240.0), "kW"),
        ("UPS-B (if UPS-A fails)", "power", pytest.approx(192.0), pytest.approx(240.0), "kW"),
        ("air zone Z", "air cooling", pytest.approx(192.0), pytest.approx(10_000.0), "kW"),
        ("slots", "slots", 3.0, 4.0, "slots"),
    ]
    assert binding(table).label == BINDING
    assert binding(table).utilization == pytest.approx(0.96)
    # The dataset written from this layout gives the same table, row for row.
    assert layout_resources(layout_dataset(report)) == table


def test_one_label_in_solve_next_compare_report_and_explain(solved, tmp_path):
    path, layout, output = solved
    # solve: the most loaded resource, first in the summary's list
    lines = output.splitlines()
    first = lines[lines.index(next(x for x in lines if x.startswith("most loaded"))) + 1]
    assert first.split() == [*BINDING.split(), "96.0%", "(192.0", "of", "200.0", "kW)"]
    # next: a fourth rack would put 256 kW on UPS-A (128%) and 256 on UPS-B (107%)
    result = run("next", path, layout, "--type", "r")
    assert result.exit_code == 0, result.output
    assert f"  blocked in 1 slots by {BINDING}: over by 56.0 kW or more" in (
        result.output.splitlines()
    )
    # compare: the binding resource
    (kpis,) = compare([layout])
    assert (kpis.bound_by, kpis.bound_by_family) == (BINDING, "power")
    assert kpis.bound_by_utilization == pytest.approx(0.96)
    result = run("compare", layout)
    assert f"{BINDING} 96.0%" in result.output
    # report: every bar is a table row, labelled as everywhere else
    with xr.open_dataset(layout) as ds:
        bars = utilization_bars(ds.load())
    assert ranked(bars)[0].label == BINDING
    assert run("report", layout, "-o", tmp_path / "plan.png").exit_code == 0
    # explain: demanding one rack more than fits names the same device first
    short = write_instance(tmp_path, _failover_bound({"r": {"min": 4}}), "short.yaml")
    result = run("explain", short)
    assert result.exit_code == 3
    assert result.output.splitlines()[1:] == [
        f"  {BINDING} short by 56.0 kW (needs 256.0, has 200.0)",
        "  UPS-B (if UPS-A fails) short by 16.0 kW (needs 256.0, has 240.0)",
    ]


def _row(kind: Kind, subject: str, load: float, limit: float) -> Resource:
    return Resource(kind, subject, load, limit)


def test_ties_between_resources_go_to_the_first_in_the_table():
    # 2N sides carry the same load up to rounding noise: the first listed binds.
    table = [
        _row(Kind.POWER_NORMAL, "UPS-A", 50.0, 100.0),
        Resource(Kind.POWER_FAILOVER, "UPS-A", 0.3 * 3, 1.0, "UPS-B"),  # 0.8999999999999999
        Resource(Kind.POWER_FAILOVER, "UPS-B", 0.9, 1.0, "UPS-A"),
        _row(Kind.SLOTS, "", 9.0, 10.0),
    ]
    assert [r.label for r in ranked(table)] == [
        "UPS-A (if UPS-B fails)",
        "UPS-B (if UPS-A fails)",
        "slots",
        "UPS-A (normal)",
    ]
    assert binding(table[::-1]).label == "slots"
    assert binding([]) is None


def test_condensed_keeps_the_tightest_inlet_only():
    table = [
        _row(Kind.AIR_ZONE_HEAT, "Z", 10.0, 100.0),
        _row(Kind.INLET, "H-R-01", 2.0, 7.0),
        _row(Kind.INLET, "H-R-02", 6.0, 7.0),
        _row(Kind.INLET, "H-R-03", 6.0, 7.0),
    ]
    assert [r.label for r in condensed(table)] == ["air zone Z", "inlet at H-R-02"]


def test_a_zero_allowance_is_full_until_loaded():
    assert _row(Kind.INLET, "s", 0.0, 0.0).utilization == 1.0
    assert _row(Kind.INLET, "s", 0.1, 0.0).utilization == np.inf
    assert _row(Kind.INLET, "s", 0.0, 0.0).family == "inlet temperature" in FAMILIES


def test_no_utility_limit_and_no_liquid_slots_are_no_resources(tmp_path):
    site = site_of(tmp_path, _failover_bound())
    report = solve_site(site, EXACT)
    kinds = {r.kind for r in resources(site, report.check.loads, report.placement)}
    assert Kind.UTILITY not in kinds and Kind.LIQUID_SLOTS not in kinds
