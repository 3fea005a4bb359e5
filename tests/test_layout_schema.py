"""The declared layout schema against docs/output-format.md and the files the writer makes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from optimizer.cli import main
from optimizer.results.layout import build_dataset
from optimizer.results.schema import ATTRIBUTES, DIMENSION_NAMES, FIELDS, Group

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "output-format.md"
TUTORIAL = ROOT / "instances" / "tutorial.yaml"


def documented() -> tuple[list[str], dict[str, tuple[tuple[str, ...], str, str]]]:
    """The dimensions (section 2) and every coordinate and variable (sections 3 and 4)
    of docs/output-format.md: name -> (dims, dtype, unit), unit '' where it says '–'."""
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    by_number = {s.split(".", 1)[0]: s for s in sections if s[:1].isdigit()}
    dims = re.findall(r"^\| `(\w+)` \|", by_number["2"], flags=re.M)
    fields: dict[str, tuple[tuple[str, ...], str, str]] = {}
    for section in (by_number["3"], by_number["4"]):
        header: list[str] = []
        for line in section.splitlines():
            if not line.startswith("|"):
                header = []
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not header:
                header = cells
                continue
            match = re.fullmatch(r"`(\w+)`", cells[0])
            if not match:
                continue
            row = dict(zip(header, cells, strict=True))
            names = tuple(d.strip() for d in row.get("dims", "").split(",") if d.strip())
            unit = "" if row["unit"] == "–" else row["unit"]
            assert match[1] not in fields, f"{match[1]} documented twice"
            fields[match[1]] = (names, row["dtype"], unit)
    return dims, fields


def test_the_docs_describe_exactly_the_declared_schema():
    dims, fields = documented()
    assert dims == list(DIMENSION_NAMES)
    declared = {f.name: (f.dims, f.dtype, f.unit) for f in FIELDS.values()}
    assert sorted(set(declared) - set(fields)) == [], "declared but not documented"
    assert sorted(set(fields) - set(declared)) == [], "documented but not declared"
    wrong = {
        name: (fields[name], declared[name]) for name in declared if fields[name] != declared[name]
    }
    assert wrong == {}


def documented_attributes() -> dict[str, str]:
    """Section 5 of docs/output-format.md: attribute name -> type."""
    section = DOC.read_text(encoding="utf-8").split("## 5. Attributes")[1].split("### 5.1")[0]
    return dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section, flags=re.M))


def test_the_docs_list_exactly_the_declared_attributes():
    assert documented_attributes() == ATTRIBUTES


def test_the_docs_reader_sees_a_wrong_unit(tmp_path, monkeypatch):
    # The comparison above can fail: a doc with cdu_flow_lpm in m3/h disagrees.
    broken = tmp_path / "output-format.md"
    broken.write_text(
        DOC.read_text(encoding="utf-8").replace(
            "| `cdu_flow_lpm` | cdu | float64 | L/min |",
            "| `cdu_flow_lpm` | cdu | float64 | m3/h |",
        ),
        encoding="utf-8",
    )
    monkeypatch.setattr(f"{__name__}.DOC", broken)
    assert documented()[1]["cdu_flow_lpm"] == (("cdu",), "float64", "m3/h")


def test_a_written_layout_holds_every_declared_variable_with_its_attributes(tmp_path):
    out = tmp_path / "t.nc"
    result = CliRunner().invoke(main, ["solve", str(TUTORIAL), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out) as ds:
        assert set(ds.variables) == set(FIELDS)
        assert set(ds.coords) == {f.name for f in FIELDS.values() if f.coordinate}
        for field in FIELDS.values():
            assert ds[field.name].dims == field.dims, field.name
            assert ds[field.name].attrs["long_name"] == field.long_name
        assert ds["inlet_temp_c"].attrs["units"] == "degC"
        assert ds["inlet_temp_c"].attrs["standard_name"] == "air_temperature"
        assert ds["cdu_flow_lpm"].attrs["units"] == "L/min"
        assert ds["rack_count"].attrs["units"] == "1"
        assert "units" not in ds["rack_type"].attrs
        assert ds["rack_type"].dtype.kind == "U" and ds["rack_count"].dtype == np.int64
        assert set(ds.attrs) == set(ATTRIBUTES)
        assert ds.attrs["Conventions"] == "CF-1.13" and ds.attrs["layout_format_version"] == 2
        # The tutorial's second stage ends at its root: nothing beats the first stage's
        # plan by more than the second stage's 1% gap (optimizer.solve.highs).
        assert 0.0 <= ds.attrs["second_stage_gap"] <= 0.01 + 1e-12


def test_the_public_name_of_the_device_limit_is_the_datasets():
    assert FIELDS["device_capacity_kw"].site_field == "device_limit_kw"
    assert "device_limit_kw" not in FIELDS


def test_only_the_thermal_and_fabric_groups_are_optional():
    optional = {f.name for f in FIELDS.values() if not f.required}
    assert "inlet_temp_c" in optional and "su" in optional and "pue" in optional
    assert {f.group for f in FIELDS.values() if f.required} == {Group.CORE}
    assert not {"slot", "rack_type", "device_load_kw", "it_kw"} & optional


def _values() -> dict[str, object]:
    """One value per declared name, for a one-slot, empty-everything-else layout."""
    sizes = {
        "slot": 1,
        "type": 1,
        "device": 1,
        "cdu": 0,
        "air_zone": 1,
        "su_id": 0,
        "reach_class": 0,
        "phase": 0,
        "demand_scenario": 0,
    }
    sample = {"str": "x", "int64": 1, "float64": 1.0, "bool": False}
    return {
        f.name: np.full(tuple(sizes[d] for d in f.dims), sample[f.dtype]) for f in FIELDS.values()
    }


def test_the_writer_builds_from_the_schema_and_refuses_what_it_does_not_declare():
    ds = build_dataset(_values(), {"layout_format_version": 1})
    assert ds["x_m"].attrs == {
        "long_name": "x of the slot centre",
        "units": "m",
        "standard_name": "projection_x_coordinate",
        "axis": "X",
    }
    with pytest.raises(ValueError, match=r"undeclared \['device_limit_kw'\]"):
        build_dataset({**_values(), "device_limit_kw": np.ones(1)}, {})
    values = _values()
    del values["pue"]
    with pytest.raises(ValueError, match=r"missing \['pue'\]"):
        build_dataset(values, {})
    with pytest.raises(TypeError, match="'su' is float64, declared int64"):
        build_dataset({**_values(), "su": np.array([0.5])}, {})


def test_the_docs_list_the_optional_groups_as_declared():
    row = next(
        line
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if "the fabric variables (" in line
    )
    fabric, thermal = (re.findall(r"`(\w+)`", part.split(")")[0]) for part in row.split("(")[1:3])
    assert set(fabric) == {f.name for f in FIELDS.values() if f.group is Group.FABRIC}
    assert set(thermal) == {f.name for f in FIELDS.values() if f.group is Group.THERMAL}


def test_the_cf_metadata_comes_from_the_declarations():
    for field in FIELDS.values():
        attrs = field.attrs()
        assert attrs["long_name"] == field.long_name
        assert ("units_metadata" in attrs) == (field.unit == "C"), field.name
        assert ("flag_meanings" in attrs) == (field.dtype == "bool"), field.name
        if field.dtype == "bool":
            assert attrs["flag_values"].tolist() == [0, 1]
            assert len(attrs["flag_meanings"].split()) == 2
        # only integers that can say "none" carry the fill; labels never do
        assert field.fill(study=False) == (-1 if field.name == "su" else None), field.name
        study_fill = field.fill(study=True)
        assert study_fill == (-1 if field.dtype == "int64" and not field.index else None)
    assert {f.name: f.axis for f in FIELDS.values() if f.axis} == {"x_m": "X", "y_m": "Y"}
