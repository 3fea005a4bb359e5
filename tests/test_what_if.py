"""What-if without editing a file: ``solve --set KEY=VALUE`` and ``solve --study FILE
--scenario NAME``, and the resolved instance written beside their layouts (and
``batch``'s) that ``verify`` checks them against.

The optima are the tutorial's, worked by hand in the README: with at most g GB300 NVL72
(72 GPUs, 136 kW, 116.96 kW to liquid, 19.04 kW to air) and DGX B300 racks (32 GPUs,
58 kW to air), the 200 kW air zone allows b <= 3 when g <= 1, and 2N failover (400 kW)
with the CDU (250 kW) allows g = 2, b = 2. So max g = 0 gives 96 GPUs, g = 1 gives
72 + 96 = 168, and the unconstrained optimum is 208.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr
import yaml
from helpers import TUTORIAL, base_instance, run, write_instance, write_study

from optimizer.errors import EXIT_INVALID_INPUT
from optimizer.studies.batch import scenario_path


def _layout(path: Path) -> tuple[int, dict]:
    with xr.open_dataset(path) as ds:
        return int(ds["total_gpus"]), dict(ds.attrs)


@pytest.mark.parametrize(
    ("setting", "gpus"),
    [
        ("demand.gb300-nvl72.max=1", 168),
        ("demand.gb300-nvl72={max: 0}", 96),  # a flow mapping replaces the whole entry
    ],
)
def test_set_changes_the_optimum_as_worked_by_hand(tmp_path, setting, gpus):
    out = tmp_path / "what-if.nc"
    result = run("solve", TUTORIAL, "-o", out, "--set", setting, "-q")
    assert result.exit_code == 0, result.output
    total, attrs = _layout(out)
    assert total == gpus
    key, value = setting.split("=", 1)
    assert json.loads(attrs["overrides"]) == [[key, yaml.safe_load(value)]]
    resolved = tmp_path / "what-if.instance.yaml"
    assert "include" not in yaml.safe_load(resolved.read_text())
    assert run("verify", resolved, out).exit_code == 0
    # The base instance's own optimum is unchanged, and so is its file.
    assert run("verify", TUTORIAL, out).exit_code == 0  # the smaller layout fits the base


def test_settings_apply_in_order_and_a_plain_solve_records_none(tmp_path):
    out = tmp_path / "x.nc"
    sets = ["--set", "demand.gb300-nvl72.max=0", "--set", "demand.gb300-nvl72.max=1"]
    assert run("solve", TUTORIAL, "-o", out, *sets, "-q").exit_code == 0
    assert _layout(out)[0] == 168
    plain = tmp_path / "plain.nc"
    assert run("solve", TUTORIAL, "-o", plain, "-q").exit_code == 0
    total, attrs = _layout(plain)
    assert total == 208 and attrs["overrides"] == "[]"
    assert not (tmp_path / "plain.instance.yaml").exists()


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("power.devices.UPS-C.rating_kw=600", "is not a key of power.devices (fix: did you mean"),
        ("power.devices.UPS-A.rating_kw=true", "power.devices.UPS-A.rating_kw: Input should be"),
        ("power.devices.UPS-A.rating_kw=.nan", "power.devices.UPS-A.rating_kw"),
        ("power.devices.UPS-A.rating_kw=[1", "power.devices.UPS-A.rating_kw: YAML syntax error"),
        ("power.devices.UPS-A.rating_kw=!!python/object:os.system x", "is not allowed"),
        ("halls.H1.rows.L.slot.feeds=!!set {UPS-A, UPS-B}", "'!!set' is not allowed"),
        ("include=[other.yaml]", "'include'"),
        ("demand.gb300-nvl72.max", "expected KEY=VALUE"),
        ("=5", "expected KEY=VALUE"),
    ],
)
def test_a_bad_setting_is_one_error_line_naming_the_key(tmp_path, setting, fragment):
    out = tmp_path / "x.nc"
    result = run("solve", TUTORIAL, "-o", out, "--set", setting)
    assert result.exit_code == EXIT_INVALID_INPUT, result.output
    assert result.output.startswith("error: --set: "), result.output
    assert len(result.output.splitlines()) == 1, result.output
    assert fragment in result.output
    assert not out.exists()


def test_a_scenario_solves_as_batch_does_and_its_resolved_instance_verifies(tmp_path):
    study = write_study(tmp_path, {"sweeps": {"demand.gb300-nvl72.max": [0, 1]}})
    combined = tmp_path / "study.nc"
    assert run("batch", study, "-o", combined, "--workers", "0", "-q").exit_code == 0
    for name, gpus in (("max=0", 96), ("max=1", 168)):
        solved = tmp_path / f"{name}.nc"
        result = run("solve", "--study", study, "--scenario", name, "-o", solved, "-q")
        assert result.exit_code == 0, result.output
        total, attrs = _layout(solved)
        batch_total, batch_attrs = _layout(scenario_path(combined, name))
        assert total == batch_total == gpus
        for key in ("instance_sha256", "solver_options", "overrides"):
            assert attrs[key] == batch_attrs[key]
        assert json.loads(attrs["overrides"]) == [["demand.gb300-nvl72.max", int(name[-1])]]
        for layout in (solved, scenario_path(combined, name)):
            resolved = layout.with_name(f"{layout.stem}.instance.yaml")
            result = run("verify", resolved, layout)
            assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--study", "{study}", "--scenario", "max=7"], "unknown scenario 'max=7'"),
        (["--study", "{study}"], "needs --scenario (fix: use one of: max=0, max=1)"),
        (["--scenario", "max=0", "{instance}"], "--scenario: needs --study"),
        (["--study", "{study}", "--scenario", "max=0", "{instance}"], "takes no INSTANCE"),
        (["--study", "{study}", "--scenario", "max=0", "--set", "name=x"], "or --set"),
        ([], "no instance given"),
    ],
)
def test_a_wrong_scenario_request_is_invalid_input(tmp_path, args, fragment):
    study = write_study(tmp_path, {"sweeps": {"demand.gb300-nvl72.max": [0, 1]}})
    filled = [a.format(study=study, instance=TUTORIAL) for a in args]
    result = run("solve", *filled, "-o", tmp_path / "x.nc")
    assert result.exit_code == EXIT_INVALID_INPUT, result.output
    assert fragment in result.output


def _instance_with_a_slot_table(folder: Path) -> Path:
    """The helpers' base instance with a third row given as a slot table in tables/."""
    (folder / "tables").mkdir(parents=True)
    (folder / "tables" / "slots.csv").write_text(
        "id,row,x_m,y_m,air_zone,floor_kg,air_kw_max,feed_a,feed_b\n"
        "H1-T-01,T,0,7.2,Z1,1200,60,PDU-A1,PDU-B1\n",
        encoding="utf-8",
    )
    data = base_instance()
    data["halls"]["H1"]["slots_csv"] = "tables/slots.csv"
    return write_instance(folder, data)


def test_the_resolved_instance_names_tables_relative_to_itself(tmp_path):
    instance = _instance_with_a_slot_table(tmp_path / "site")
    beside = tmp_path / "site" / "out" / "x.nc"
    assert run("solve", instance, "-o", beside, "--set", "demand.gb300-nvl72.max=1").exit_code == 0
    resolved = beside.with_name("x.instance.yaml")
    assert yaml.safe_load(resolved.read_text())["halls"]["H1"]["slots_csv"] == (
        "../tables/slots.csv"
    )
    # From site/out the table lies outside the resolved file's folder tree.
    assert run("verify", resolved, beside).exit_code == EXIT_INVALID_INPUT
    assert run("verify", resolved, beside, "--allow-paths-outside").exit_code == 0
    inside = tmp_path / "site" / "y.nc"
    assert run("solve", instance, "-o", inside, "--set", "demand.gb300-nvl72.max=1").exit_code == 0
    resolved = inside.with_name("y.instance.yaml")
    assert yaml.safe_load(resolved.read_text())["halls"]["H1"]["slots_csv"] == "tables/slots.csv"
    assert run("verify", resolved, inside).exit_code == 0
