"""verify, explain, next, determinism and atomic writes, with numbers worked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from helpers import write_instance

from optimizer.cli import main

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "instances" / "tutorial.yaml"


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def tutorial_layout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layout") / "tutorial.nc"
    result = run("solve", TUTORIAL, "-o", out, "--gap", "0")
    assert result.exit_code == 0, result.output
    return out


def test_verify_accepts_the_solved_layout(tutorial_layout):
    result = run("verify", TUTORIAL, tutorial_layout)
    assert result.exit_code == 0
    assert "4 racks pass every rule of tutorial (IT 0.388 MW" in result.output


def test_verify_reports_each_violation_with_numbers(tmp_path):
    # Three GB300 + one B300: 3 x 136 + 58 = 466 kW on one UPS when the other fails
    # (limit 400), 3 x 116.96 = 350.88 kW on the CDU (limit 250).
    layout = tmp_path / "mine.csv"
    layout.write_text(
        "slot,rack_type\nH1-L-01,gb300-nvl72\nH1-L-02,gb300-nvl72\n"
        "H1-L-03,gb300-nvl72\nH1-A-01,dgx-b300-rack\n"
    )
    result = run("verify", TUTORIAL, layout)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"{layout}: 4 violations in 4 racks:"
    assert (
        "  power-failover: UPS-B (if UPS-A fails): 466.0 kW > limit 400.0 kW (excess 66.0 kW)"
    ) in lines
    assert "  cdu-heat: CDU1: 350.9 kW > limit 250.0 kW (excess 100.9 kW)" in lines
    assert "  cdu-flow: CDU1: 526.3 L/min > limit 400.0 L/min (excess 126.3 L/min)" in lines


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("slot,rack_type\nH1-Z-01,gb300-nvl72\n", "slot: unknown slot 'H1-Z-01'"),
        ("slot,rack_type\nH1-L-01,gb300\n", "rack_type: unknown rack type 'gb300'"),
        ("slot,kind\nH1-L-01,gb300-nvl72\n", "header: a layout CSV needs columns slot,rack_type"),
        ("slot,rack_type\nH1-L-01,gb300-nvl72\nH1-L-01,gb300-nvl72\n", "a slot is listed twice"),
    ],
)
def test_verify_rejects_bad_layout_files(tmp_path, text, fragment):
    layout = tmp_path / "bad.csv"
    layout.write_text(text)
    result = run("verify", TUTORIAL, layout)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and fragment in result.output


def test_verify_checks_a_netcdf_against_a_changed_facility(tmp_path, tutorial_layout):
    # The same layout against UPS systems of 450 kW (360 kW usable): 388 kW in failover.
    data = yaml_of(TUTORIAL)
    data["power"]["devices"]["UPS-A"]["rating_kw"] = 450
    data["power"]["devices"]["UPS-B"]["rating_kw"] = 450
    result = run("verify", write_instance(tmp_path, data), tutorial_layout)
    assert result.exit_code == 1
    assert "power-failover: UPS-A (if UPS-B fails): 388.0 kW > limit 360.0 kW" in result.output


def yaml_of(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def short_demand(tmp_path: Path) -> Path:
    data = yaml_of(TUTORIAL)
    data["demand"]["gb300-nvl72"] = {"min": 4}
    return write_instance(tmp_path, data)


def test_explain_names_each_resource_that_falls_short(tmp_path):
    # Four GB300 (the only liquid slots) need 4 x 116.96 = 467.84 kW of CDU heat (250
    # usable), 4 x 175.44 = 701.76 L/min (400 usable) and 4 x 136 = 544 kW on the
    # surviving UPS (400 usable).
    result = run("explain", short_demand(tmp_path))
    assert result.exit_code == 3
    assert result.output.splitlines() == [
        "tutorial: to place 4 gb300-nvl72, these resources fall short:",
        "  CDU CDU1 heat short by 217.8 kW (needs 467.8, has 250.0)",
        "  CDU CDU1 flow short by 301.8 L/min (needs 701.8, has 400.0)",
        "  UPS-B (if UPS-A fails) short by 144.0 kW (needs 544.0, has 400.0)",
        "  UPS-A (if UPS-B fails) short by 144.0 kW (needs 544.0, has 400.0)",
    ]


def test_explain_counts_missing_slots(tmp_path):
    # Five GB300 demanded, four liquid slots: one slot short besides the rest.
    data = yaml_of(TUTORIAL)
    data["demand"]["gb300-nvl72"] = {"min": 5}
    result = run("explain", write_instance(tmp_path, data))
    assert "slots for gb300-nvl72, dgx-b300-rack (the 4 like H1-L-01) short by 1.0 slots" in (
        " ".join(result.output.split())  # the line is wrapped to 80 columns
    )


def test_solve_explains_an_infeasible_demand(tmp_path):
    out = tmp_path / "x.nc"
    result = run("solve", short_demand(tmp_path), "-o", out)
    assert result.exit_code == 3
    assert "(the MILP is infeasible)" in result.output
    assert "CDU CDU1 heat short by 217.8 kW" in result.output
    assert not out.exists()


def test_explain_when_the_demand_fits():
    result = run("explain", TUTORIAL)
    assert result.exit_code == 0
    assert "nothing falls short" in result.output


def test_next_names_what_blocks_and_ranks_free_slots(tmp_path, tutorial_layout):
    result = run("next", TUTORIAL, tutorial_layout, "--type", "dgx-b300-rack")
    # 388 + 58 = 446 kW > 400 on the surviving UPS, in each of the 4 empty slots that
    # take a B300 (2 liquid, 2 air).
    assert "no empty slot takes one more dgx-b300-rack" in result.output
    # Both UPS carry 446 kW when the other fails; the tie goes to the first in the table.
    assert "blocked in 4 slots by UPS-A (if UPS-B fails)" in result.output
    # Larger UPS systems alone do not help: the air zone then blocks (154.08 + 58 > 200).
    data = yaml_of(TUTORIAL)
    for side in ("UPS-A", "UPS-B"):
        data["power"]["devices"][side]["rating_kw"] = 600  # 480 kW usable
    result = run("next", write_instance(tmp_path, data), tutorial_layout, "--type", "dgx-b300-rack")
    assert "blocked in 4 slots by air zone Z1" in result.output
    # With a fourth CRAH (300 kW usable) it fits anywhere; the tightest resource is the
    # surviving UPS at 446 / 480 = 92.9%; air slots rank before liquid ones.
    data["cooling"]["air_zones"]["Z1"]["units"] = 4
    result = run(
        "next",
        write_instance(tmp_path, data, "more.yaml"),
        tutorial_layout,
        "--type",
        "dgx-b300-rack",
    )
    lines = result.output.splitlines()
    assert lines[0].startswith("best slots for one more dgx-b300-rack")
    assert [line.split()[0] for line in lines[1:]] == ["H1-A-03", "H1-A-04", "H1-L-03", "H1-L-04"]
    assert "92.9%" in lines[1] and "UPS-A (if UPS-B fails)" in lines[1]


def test_same_instance_gives_the_identical_layout(tmp_path):
    instance = ROOT / "instances" / "gb300-hall.yaml"
    layouts = []
    for name in ("a.nc", "b.nc"):
        # No time share for the second stage: its stop must not depend on the machine.
        result = run("solve", instance, "-o", tmp_path / name, "-q", "--second-stage-share", "0")
        assert result.exit_code == 0
        with xr.open_dataset(tmp_path / name) as ds:
            layouts.append(ds.load())
    a, b = layouts
    np.testing.assert_array_equal(a.rack_type.values, b.rack_type.values)
    for name in ("device_load_kw", "device_failover_load_kw", "cdu_heat_kw"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert a.attrs["instance_sha256"] == b.attrs["instance_sha256"]


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    out = tmp_path / "layout.nc"

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    result = run("solve", TUTORIAL, "-o", out)
    assert result.exit_code == 74
    assert "cannot write" in result.output and "disk full" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_minimum_no_free_slot_can_take_is_refused_with_the_reason(tmp_path):
    # Every liquid slot already holds an installed GB300; a GB200 minimum cannot be met.
    data = yaml_of(TUTORIAL)
    data["rack_types"]["gb200-nvl72"] = {}
    data["demand"]["gb200-nvl72"] = {"min": 1}
    data["demand"]["gb300-nvl72"] = {"max": 4}
    data["installed"] = {f"H1-L-0{i}": "gb300-nvl72" for i in range(1, 5)}
    result = run("solve", write_instance(tmp_path, data), "-o", tmp_path / "x.nc")
    assert result.exit_code == 3
    assert "gb200-nvl72: at least 1 demanded, but no free slot takes it" in result.output


def test_verify_reports_an_unmet_minimum_as_a_shortfall(tmp_path, tutorial_layout):
    data = yaml_of(TUTORIAL)
    data["demand"]["gb300-nvl72"] = {"min": 3}
    result = run("verify", write_instance(tmp_path, data), tutorial_layout)
    assert result.exit_code == 1
    assert (
        "demand-min: gb300-nvl72: 2.0 racks < minimum 3.0 racks (short 1.0 racks)" in result.output
    )


def test_verify_refuses_a_missing_or_foreign_layout_file(tmp_path):
    result = run("verify", TUTORIAL, tmp_path / "nowhere.nc")
    assert result.exit_code == 2
    assert "nowhere.nc: layout file not found" in result.output
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("a", [1, 2])}).to_netcdf(foreign, engine="h5netcdf")
    result = run("verify", TUTORIAL, foreign)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "layout_format_version: not a rackopt layout of format 1" in result.output


def test_verify_refuses_an_su_with_two_network_racks(tmp_path):
    layout = tmp_path / "su.csv"
    layout.write_text(
        "slot,rack_type,su,network_slot\nH1-L-01,gb300-nvl72,a,H1-A-01\n"
        "H1-L-02,gb300-nvl72,a,H1-A-02\n"
    )
    result = run("verify", TUTORIAL, layout)
    assert result.exit_code == 2
    assert "network_slot: SU 'a' names two network racks" in result.output


def test_next_refuses_an_unknown_rack_type(tutorial_layout):
    result = run("next", TUTORIAL, tutorial_layout, "--type", "gb300")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "unknown rack type 'gb300'" in result.output and "did you mean" in result.output
