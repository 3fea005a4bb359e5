"""Tidy exports: one table per entity as CSV, XLSX or JSON, which round-trip through
``rackopt verify`` and hold the layout's own numbers, in kW, rounded."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from factory import instance, rack, row
from helpers import run, write_instance, write_study

from optimizer.results.reader import open_layout
from optimizer.solve.options import SolveOptions
from optimizer.studies.batch import run_batch
from optimizer.studies.compare import compare, records
from optimizer.studies.study import load_study
from optimizer.studies.tables import layout_tables

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "instances" / "tutorial.yaml"
ZERO_ENDS = {"rise_m": 0.0, "slack_m": 0.0, "end_clearance_m": 0.0, "cell_slots": 1}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tutorial.nc"
    assert run("solve", TUTORIAL, "-o", out, "-q", "--gap", 0).exit_code == 0
    return out


@pytest.fixture(scope="module")
def fabric(tmp_path_factory) -> tuple[Path, Path]:
    """Eight slots 1 m apart, SUs of two 8-GPU racks on a leaf with two ports: the
    optimum is 2 leaves and 3 SUs (docs: tests/test_network.py, (8, 2, 2) -> 6 racks)."""
    folder = tmp_path_factory.mktemp("fabric")
    data = instance(
        rows={"R": {**row(8, ["UPS-A", "UPS-B"]), "pitch_m": 1.0}},
        devices={"UPS-A": {"rating_kw": 10_000}, "UPS-B": {"rating_kw": 10_000}},
        rack_types={
            "gpu": {**rack(8, 10), "su_size": 2, "network_rack": "leaf"},
            "leaf": {**rack(0, 5), "su_ports": 2},
        },
        demand={"gpu": {}},
    )
    data["network"] = ZERO_ENDS
    path = write_instance(folder, data)
    out = folder / "fabric.nc"
    assert run("solve", path, "-o", out, "-q", "--gap", 0).exit_code == 0
    return path, out


def test_the_slot_table_is_a_layout_csv_verify_accepts(tutorial, tmp_path):
    result = run("export", tutorial, "--to", "csv", "-o", tmp_path / "t")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == [
        "air_zones.csv",
        "cable_classes.csv",
        "cdus.csv",
        "demand_scenarios.csv",
        "devices.csv",
        "facility.csv",
        "phases.csv",
        "rack_types.csv",
        "slots.csv",
        "sus.csv",
    ]
    verified = run("verify", TUTORIAL, tmp_path / "t" / "slots.csv")
    assert verified.exit_code == 0, verified.output
    assert "4 racks pass" in verified.output
    # the tutorial's hand-worked loads (README): 2N UPS at 194 kW each, 388 kW in failover
    devices = {r["device"]: r for r in _rows(tmp_path / "t" / "devices.csv")}
    assert devices["UPS-A"]["device_load_kw"] == "194.0"
    assert devices["UPS-A"]["device_failover_load_kw"] == "388.0"
    assert devices["UPS-A"]["device_worst_failure"] == "UPS-B"
    assert devices["UPS-A"]["failover_utilization"] == "0.97"  # 388 / 400
    (facility,) = _rows(tmp_path / "t" / "facility.csv")
    assert facility["it_kw"] == "388.0" and facility["total_gpus"] == "208"
    assert facility["status"] == "optimal"


def test_a_fabric_layout_round_trips_with_its_sus(fabric, tmp_path):
    instance_path, layout = fabric
    assert run("export", layout, "--to", "csv", "-o", tmp_path).exit_code == 0
    slots = _rows(tmp_path / "slots.csv")
    racks = [r for r in slots if r["rack_type"] == "gpu"]
    assert len(racks) == 6 and all(r["su"] != "" and r["network_slot"] for r in racks)
    assert len({r["su"] for r in racks}) == 3
    assert len(_rows(tmp_path / "sus.csv")) == 3
    verified = run("verify", instance_path, tmp_path / "slots.csv")
    assert verified.exit_code == 0, verified.output
    assert "8 racks pass" in verified.output  # 6 GPU racks and 2 leaves


def test_the_workbook_holds_the_same_numbers_as_the_csv(tutorial, tmp_path):
    assert run("export", tutorial, "--to", "csv", "-o", tmp_path / "csv").exit_code == 0
    book = tmp_path / "t.xlsx"
    assert run("export", tutorial, "--to", "xlsx", "-o", book).exit_code == 0
    workbook = openpyxl.load_workbook(book, read_only=True)
    assert workbook.sheetnames == [p.stem for p in _order(tmp_path / "csv")]
    for sheet in workbook.sheetnames:
        cells = list(workbook[sheet].iter_rows(values_only=True))
        table = _rows(tmp_path / "csv" / f"{sheet}.csv")
        assert list(cells[0]) == list(table[0]) if table else True
        for got, want in zip(cells[1:], table, strict=True):
            for value, text in zip(got, want.values(), strict=True):
                assert _same(value, text), (sheet, value, text)


def _order(folder: Path) -> list[Path]:
    names = [
        "slots",
        "rack_types",
        "devices",
        "cdus",
        "air_zones",
        "sus",
        "cable_classes",
        "phases",
        "demand_scenarios",
    ]
    return [folder / f"{n}.csv" for n in [*names, "facility"]]


def _same(cell: object, text: str) -> bool:
    """A workbook cell against the CSV's text of the same value."""
    if cell is None:
        return text == ""
    if isinstance(cell, bool):
        return str(cell) == text
    if isinstance(cell, int | float):
        return float(text) == pytest.approx(cell, abs=0) if text not in ("inf",) else True
    return str(cell) == text


def test_the_json_export_parses_with_the_layouts_numbers(tutorial, tmp_path):
    out = tmp_path / "t.json"
    assert run("export", tutorial, "--to", "json", "-o", out).exit_code == 0
    tables = json.loads(out.read_text(encoding="utf-8"))["tables"]
    ds = open_layout(tutorial)
    assert [r["cdu_heat_kw"] for r in tables["cdus"]] == [233.92]
    assert sum(r["gpus"] for r in tables["rack_types"]) == int(ds.total_gpus) == 208
    # a rack type without a water class: inf in the dataset, null in JSON
    water = {r["type"]: r["type_water_max_c"] for r in tables["rack_types"]}
    assert water == {"gb300-nvl72": 45.0, "dgx-b300-rack": None}


def test_figures_are_rounded_and_in_kw(tutorial):
    ds = open_layout(tutorial)
    ds["it_kw"] = 2281.6000000000004
    ds["device_load_kw"] = ds["device_load_kw"] + 1e-9
    tables = layout_tables(ds)
    assert tables["facility"]["it_kw"].item() == 2281.6
    assert tables["devices"]["device_load_kw"].tolist() == [194.0, 194.0]
    (row_,) = records(compare([tutorial]))
    assert row_["it_kw"] == 388.0 and row_["facility_kw"] == 438.216
    assert "it_mw" not in row_


def test_a_study_exports_one_table_per_entity_with_a_scenario_column(tmp_path):
    path = write_study(
        tmp_path,
        {
            "overrides": {"too-many": {"demand.dgx-b300-rack": {"min": 4, "max": 8}}},
            "scenarios": {"ref": [], "bad": ["too-many"]},
        },
    )
    output = tmp_path / "study.nc"
    run_batch(load_study(path), output, SolveOptions(gap=0.0, threads=1, seed=0), workers=0)
    result = run("export", output, "--to", "csv")  # default: beside the study
    assert result.exit_code == 0, result.output
    folder = tmp_path / "study.tables"
    devices = _rows(folder / "devices.csv")
    assert list(devices[0])[:2] == ["scenario", "device"]
    assert [(r["scenario"], r["device"]) for r in devices] == [("ref", "UPS-A"), ("ref", "UPS-B")]
    facility = {r["scenario"]: r for r in _rows(folder / "facility.csv")}
    assert facility["ref"]["total_gpus"] == "208" and facility["bad"]["status"] == "infeasible"
    assert "short by" in facility["bad"]["message"]
