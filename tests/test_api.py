"""The notebook API: the same layout, tables and checks as the command line, and the
example of docs/api.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import run, write_instance

from optimizer import api
from optimizer.errors import InfeasibleError, InstanceError

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "instances" / "tutorial.yaml"


@pytest.fixture(scope="module")
def layout():
    return api.solve(TUTORIAL, gap=0.0)


def test_solve_returns_the_layout_the_command_line_writes(layout, tmp_path):
    assert int(layout.total_gpus) == 208 and float(layout.it_kw) == 388.0  # README by hand
    out = tmp_path / "cli.nc"
    assert run("solve", TUTORIAL, "-o", out, "-q", "--gap", 0).exit_code == 0
    written = api.open_layout(out)
    for name in ("device_load_kw", "device_failover_load_kw", "cdu_heat_kw", "rack_count"):
        np.testing.assert_array_equal(written[name].values, layout[name].values)
    assert written.attrs["solver_options"] == layout.attrs["solver_options"]


def test_save_and_open_layout_round_trip(layout, tmp_path):
    api.save(layout, tmp_path / "t.nc")
    back = api.open_layout(tmp_path / "t.nc")
    assert back["installed"].dtype == bool
    np.testing.assert_array_equal(back.rack_type.values, layout.rack_type.values)


def test_tables_are_one_frame_per_entity_in_kw(layout, tmp_path):
    tables = api.tables(layout)
    assert list(tables) == [
        "slots",
        "rack_types",
        "devices",
        "cdus",
        "air_zones",
        "sus",
        "cable_classes",
        "phases",
        "demand_scenarios",
        "facility",
    ]
    devices = tables["devices"].set_index("device")
    assert devices.loc["UPS-A", "device_load_kw"] == 194.0  # 136 + 58, half of each rack
    assert devices.loc["UPS-A", "device_failover_load_kw"] == 388.0
    assert len(tables["slots"]) == 8
    api.save(layout, tmp_path / "t.nc")
    assert api.tables(tmp_path / "t.nc")["facility"]["total_gpus"].item() == 208


def test_verify_checks_an_edited_slot_table(layout, tmp_path):
    slots = api.tables(layout)["slots"]
    slots.to_csv(tmp_path / "slots.csv", index=False)
    checked = api.verify(TUTORIAL, tmp_path / "slots.csv")
    assert checked.ok and checked.racks == 4
    assert checked.report.loads.facility_kw == pytest.approx(438.216)
    slots.loc[slots.slot == "H1-A-03", "rack_type"] = "gb300-nvl72"
    slots.to_csv(tmp_path / "moved.csv", index=False)
    moved = api.verify(TUTORIAL, tmp_path / "moved.csv")
    floor = [v for v in moved.violations if v.rule == "slot-floor"]
    assert [(v.load, v.limit) for v in floor] == [(1500.0, 1200.0)]


def test_errors_are_the_command_lines(tmp_path):
    data = yaml.safe_load(TUTORIAL.read_text(encoding="utf-8"))
    data["demand"]["dgx-b300-rack"] = {"min": 4, "max": 8}
    with pytest.raises(InfeasibleError, match=r"air zone Z1 short by 32\.0 kW"):
        api.solve(write_instance(tmp_path, data))
    with pytest.raises(InstanceError, match="layout file not found"):
        api.verify(TUTORIAL, tmp_path / "missing.csv")


def test_the_documented_example_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (tmp_path / "instances").symlink_to(ROOT / "instances")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "208 GPUs, 388.0 kW IT" in out and "True 4 racks, 438.216 kW" in out
    assert "slot-floor" in out
