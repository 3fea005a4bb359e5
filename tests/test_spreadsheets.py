"""The power tree, CDU groups, air zones and slots from spreadsheets: CSV as Excel saves it
(byte-order mark, CRLF, TRUE) or an .xlsx workbook, read to the same site as the YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pytest
import yaml
from helpers import run, write_instance

from optimizer.errors import InstanceError
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "instances" / "tutorial.yaml"


def workbook(path: Path, rows: list[list[object]]) -> None:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)


def tutorial_with_tables(folder: Path) -> Path:
    """The tutorial with its power tree from an Excel "CSV UTF-8" file, its CDU group from
    a workbook and its air zone from a plain CSV."""
    data = yaml.safe_load(TUTORIAL.read_text(encoding="utf-8"))
    data["power"]["devices"] = "power.csv"
    data["cooling"]["cdus"] = "cdus.xlsx"
    data["cooling"]["air_zones"] = "zones.csv"
    (folder / "power.csv").write_bytes(
        "\ufeffid,kind,rating_kw,can_fail\r\nUPS-A,ups,500,TRUE\r\nUPS-B,ups,500,TRUE\r\n".encode()
    )
    workbook(
        folder / "cdus.xlsx",
        [["id", "unit_kw", "unit_flow_lpm", "units", "redundant_units"], ["CDU1", 250, 400, 2, 1]],
    )
    (folder / "zones.csv").write_text("id,crah_kw,units\nZ1,100,3\n", encoding="utf-8")
    return write_instance(folder, data)


def test_tables_give_the_same_site_as_the_yaml(tmp_path):
    from_tables = build_site(load_instance(tutorial_with_tables(tmp_path)))
    from_yaml = build_site(load_instance(TUTORIAL))
    assert from_tables.device_ids == from_yaml.device_ids == ("UPS-A", "UPS-B")
    # 500 kW UPS derated to 400 (the 0.8 default); 1 of 2 CDUs of 250 kW; 2 of 3 CRAHs of 100
    assert from_tables.device_limit_kw.tolist() == [400.0, 400.0]
    np.testing.assert_array_equal(from_tables.device_rating_kw, from_yaml.device_rating_kw)
    assert from_tables.cdu_heat_capacity_kw.tolist() == [250.0]
    assert from_tables.cdu_flow_capacity_lpm.tolist() == [400.0]
    assert from_tables.air_zone_capacity_kw.tolist() == [200.0]
    assert from_tables.sha256 != from_yaml.sha256  # the tables are hashed too


def test_a_layout_of_the_yaml_instance_verifies_against_the_tables(tmp_path):
    layout = tmp_path / "t.nc"
    assert run("solve", TUTORIAL, "-o", layout, "-q").exit_code == 0
    result = run("verify", tutorial_with_tables(tmp_path), layout)
    assert result.exit_code == 0, result.output
    assert "4 racks pass" in result.output


def test_every_bad_line_is_reported_at_once(tmp_path):
    path = tutorial_with_tables(tmp_path)
    (tmp_path / "power.csv").write_text(
        "id,kind,rating_kw,can_fail\nUPS-A,ups,heavy,true\n,ups,500\nUPS-B,ups,500,maybe\n",
        encoding="utf-8",
    )
    with pytest.raises(InstanceError) as caught:
        load_instance(path)
    message = str(caught.value)
    assert "power.csv:2: 3 bad lines:" in message
    assert "line 2: rating_kw: Input should be a valid number (got 'heavy')" in message
    assert "line 3: id: empty id" in message
    assert "line 4: can_fail: Input should be a valid boolean (got 'maybe')" in message


def test_a_cross_reference_error_points_at_the_table_line(tmp_path):
    path = tutorial_with_tables(tmp_path)
    workbook(
        tmp_path / "power.xlsx",
        [
            ["id", "kind", "rating_kw", "parent"],
            ["UPS-A", "ups", 500],
            ["UPS-B", "ups", 500, "UPS-X"],
        ],
    )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["power"]["devices"] = "power.xlsx"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = run("explain", path)
    assert result.exit_code == 2
    assert "power.xlsx:3: power.devices.UPS-B.parent: unknown device 'UPS-X'" in result.output


def test_a_misspelt_column_is_named_with_the_close_one(tmp_path):
    path = tutorial_with_tables(tmp_path)
    (tmp_path / "zones.csv").write_text("id,crah_kws,units\nZ1,100,3\n", encoding="utf-8")
    with pytest.raises(InstanceError, match=r"unknown column 'crah_kws'.*did you mean 'crah_kw'"):
        load_instance(path)


def test_a_slot_table_may_be_a_workbook(tmp_path):
    header = ["id", "row", "x_m", "y_m", "liquid", "cdu", "air_zone", "feed_a", "feed_b"]
    lines = [
        ["H2-P-01", "P", 20.0, 0.0, True, "CDU1", "Z1", "UPS-A", "UPS-B"],
        ["H2-P-02", "P", 20.6, 0.0, True, "CDU1", "Z1", "UPS-A", "UPS-B"],
    ]
    workbook(tmp_path / "h2.xlsx", [header, *lines])
    text = "\n".join(",".join(str(c).lower() if c is True else str(c) for c in r) for r in lines)
    (tmp_path / "h2.csv").write_text(",".join(header) + "\n" + text + "\n", encoding="utf-8")
    sites = []
    for table in ("h2.xlsx", "h2.csv"):
        data = yaml.safe_load(TUTORIAL.read_text(encoding="utf-8"))
        data["halls"]["H2"] = {"slots_csv": table}
        sites.append(build_site(load_instance(write_instance(tmp_path, data, f"{table}.yaml"))))
    book, csv = sites
    assert book.slot_ids[-2:] == csv.slot_ids[-2:] == ("H2-P-01", "H2-P-02")
    np.testing.assert_array_equal(book.slot_x_m, csv.slot_x_m)
    np.testing.assert_array_equal(book.slot_liquid, csv.slot_liquid)


def test_a_file_that_is_no_workbook_is_refused(tmp_path):
    path = tutorial_with_tables(tmp_path)
    (tmp_path / "cdus.xlsx").write_text("id,unit_kw\n", encoding="utf-8")
    with pytest.raises(InstanceError, match=r"cdus.xlsx: not a readable \.xlsx workbook"):
        load_instance(path)


def test_a_workbook_that_unpacks_past_the_table_limit_is_refused(tmp_path, monkeypatch):
    # A compressed sheet can unpack to far more than its file size: the text is capped.
    path = tutorial_with_tables(tmp_path)
    workbook(tmp_path / "cdus.xlsx", [["id", "unit_kw"], *[[f"C{i}", 1] for i in range(200)]])
    monkeypatch.setattr("optimizer.instance.tables.MAX_TABLE_BYTES", 1024)
    with pytest.raises(InstanceError, match=r"cdus\.xlsx: the first sheet holds more than"):
        load_instance(path)
