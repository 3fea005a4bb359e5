"""Every malformed or contradictory instance is one clear line, exit code 2, no layout.

Each case is the small valid base instance of :mod:`helpers` with one thing broken.
The CLI must answer with exactly one line ``error: FILE[:LINE]: FIELD: problem (fix: ...)``
naming the file at fault, the field path and the problem, exit with 2, print no
traceback and write no output file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner
from helpers import base_instance, write_instance

from optimizer.cli import main
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site

Change = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], Path]
    """Writes the files of the case into a folder and returns the instance path."""
    field: str | None
    """Field path the message must name; None for errors before any field exists."""
    fragments: tuple[str, ...]
    """Parts of the problem (and fix) the message must contain."""
    file: str = "instance.yaml"
    """Name of the file the message must point at."""
    line: int | str | None = None
    """Expected line: a number, or a text whose first occurrence in ``file`` marks it."""


def _walk(data: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    *parents, key = dotted.split(".")
    for part in parents:
        data = data[part]
    return data, key


def at(dotted: str, value: Any) -> Change:
    """Set one value by dotted path (ids here contain no dots)."""

    def change(data: dict[str, Any]) -> None:
        node, key = _walk(data, dotted)
        node[key] = value

    return change


def drop(dotted: str) -> Change:
    def change(data: dict[str, Any]) -> None:
        node, key = _walk(data, dotted)
        del node[key]

    return change


def rename(dotted: str, new_key: str) -> Change:
    def change(data: dict[str, Any]) -> None:
        node, key = _walk(data, dotted)
        node[new_key] = node.pop(key)

    return change


def edit(*changes: Change, files: dict[str, str] | None = None) -> Callable[[Path], Path]:
    """The base instance with ``changes`` applied, plus extra files (CSV, includes)."""

    def make(directory: Path) -> Path:
        data = base_instance()
        for change in changes:
            change(data)
        for name, text in (files or {}).items():
            write_instance(directory, text, name)
        return write_instance(directory, data)

    return make


def with_matrix(dims: tuple[str, str], labels: list[str], variable: str) -> Callable[[Path], Path]:
    """The base instance reading its recirculation matrix from ``d.nc``, a NetCDF file
    holding ``variable`` over ``dims``, both labelled with ``labels``."""

    def make(directory: Path) -> Path:
        values = np.full((len(labels), len(labels)), 0.1)
        xr.Dataset({variable: (dims, values)}, coords={dims[0]: labels, dims[1]: labels}).to_netcdf(
            directory / "d.nc", engine="h5netcdf"
        )
        return edit(at("thermal", {"matrix_file": "d.nc"}))(directory)

    return make


def raw(text: str | Callable[[Path], str]) -> Callable[[Path], Path]:
    """An instance file with exactly this text (or the text made for the case's folder)."""

    def make(directory: Path) -> Path:
        return write_instance(directory, text(directory) if callable(text) else text)

    return make


def base_text_then(extra: str) -> Callable[[Path], Path]:
    """The base instance with ``power`` moved last and ``extra`` appended after it."""

    def make(directory: Path) -> Path:
        data = base_instance()
        data["power"] = data.pop("power")
        return write_instance(directory, yaml.safe_dump(data, sort_keys=False) + extra)

    return make


def case(
    name: str,
    make: Callable[[Path], Path],
    field: str | None,
    *fragments: str,
    file: str = "instance.yaml",
    line: int | str | None = None,
) -> Any:
    return pytest.param(Case(make, field, fragments, file, line), id=name)


SLOT_L = "halls.H1.rows.L.slot"
SLOT_A = "halls.H1.rows.A.slot"
CSV_HEAD = "id,feed_a,feed_b,air_zone,floor_kg\n"
CSV_ROW = "S1,PDU-A1,PDU-B1,Z1,1200\n"
with_table = at("halls.H1.slots_csv", "slots.csv")


def _system_call(directory: Path) -> str:
    """A YAML node that an unsafe loader would turn into running a shell command."""
    return f'!!python/object/apply:os.system ["touch {directory}/PWNED"]'


def yaml_text(*changes: Change, old: str, new: str) -> Callable[[Path], Path]:
    """The base instance with ``changes`` applied, dumped, then ``old`` replaced by ``new``
    in its text (for YAML that a dumped dict cannot hold: tags, keys spelt twice)."""

    def make(directory: Path) -> Path:
        data = base_instance()
        for change in changes:
            change(data)
        text = yaml.safe_dump(data, sort_keys=False)
        assert old in text
        return write_instance(directory, text.replace(old, new, 1))

    return make


def override_2_and(key: str) -> Callable[[Path], Path]:
    """Row L overriding position 2, then the same position again spelt ``key``."""
    return yaml_text(
        at("halls.H1.rows.L.overrides", {2: {"floor_kg": 900}}),
        old="            floor_kg: 900\n",
        new=f"            floor_kg: 900\n          {key}:\n            floor_kg: 1500\n",
    )


def override_key(key: str) -> Callable[[Path], Path]:
    """Row L overriding one position, its key written as ``key``."""
    return yaml_text(
        at("halls.H1.rows.L.overrides", {2: {"floor_kg": 900}}),
        old="          2:\n",
        new=f"          {key}:\n",
    )


def file_bytes(name: str, raw: bytes, *changes: Change) -> Callable[[Path], Path]:
    """The base instance with ``changes`` and a file of exactly these bytes."""

    def make(directory: Path) -> Path:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(raw)
        return edit(*changes)(directory)

    return make


SECRET = "root:x:0:0:root:/root:/bin/bash"
"""First line of the file outside the instance's tree: no message may quote it."""


def outside_file(
    dotted: str, value: Callable[[str], Any], link: str | None = None
) -> Callable[[Path], Path]:
    """The base instance naming a file that lies outside its folder: beside the folder,
    reached by ``value(name)`` (or through a symlink ``link`` inside the folder)."""

    def make(directory: Path) -> Path:
        name = f"{directory.name}-outside.csv"
        (directory.parent / name).write_text(SECRET + "\n", encoding="utf-8")
        if link:
            (directory / link).symlink_to(directory.parent / name)
        data = base_instance()
        at(dotted, value(name))(data)
        return write_instance(directory, data)

    return make


def with_text_matrix(directory: Path) -> Path:
    """A NetCDF recirculation matrix whose values are text."""
    labels = ["H1-A-01"]
    values = np.array([["warm"]])
    xr.Dataset(
        {"recirculation_c_per_kw": (("slot", "source_slot"), values)},
        coords={"slot": labels, "source_slot": labels},
    ).to_netcdf(directory / "d.nc", engine="h5netcdf")
    return edit(at("thermal", {"matrix_file": "d.nc"}))(directory)


CASES = [
    # --- schema: keys, types, values -------------------------------------------------
    case(
        "unknown-top-level-key",
        edit(at("objectiv", "max_value")),
        "objectiv",
        "unknown key 'objectiv'",
        "did you mean 'objective'",
        line="objectiv:",
    ),
    case(
        "typo-in-device-field",
        edit(rename("power.devices.PDU-A1.rating_kw", "rating_kW")),
        "power.devices.PDU-A1.rating_kW",
        "unknown key 'rating_kW'",
        "did you mean 'rating_kw'",
        line="rating_kW:",
    ),
    case(
        "unknown-key-in-override",
        edit(at("halls.H1.rows.L.overrides", {2: {"flor_kg": 1000}})),
        "halls.H1.rows.L.overrides.2.flor_kg",
        "unknown key 'flor_kg'",
        "did you mean 'floor_kg'",
        line="flor_kg:",
    ),
    case(
        "missing-required-field",
        edit(drop("power.devices.PDU-A1.rating_kw")),
        "power.devices.PDU-A1.rating_kw",
        "missing required field 'rating_kw'",
        line="PDU-A1:",
    ),
    case(
        "missing-format-version",
        edit(drop("format_version")),
        "format_version",
        "missing required field",
        "format_version: 1",
    ),
    case(
        "string-where-number",
        edit(at("power.devices.PDU-A1.rating_kw", "lots")),
        "power.devices.PDU-A1.rating_kw",
        "valid number",
        "'lots'",
        line="rating_kw: lots",
    ),
    case(
        "fraction-where-whole-number",
        edit(at("cooling.cdus.CDU1.units", 2.5)),
        "cooling.cdus.CDU1.units",
        "whole number",
        "2.5",
    ),
    case(
        "negative-capacity",
        edit(at("cooling.cdus.CDU1.unit_kw", -250)),
        "cooling.cdus.CDU1.unit_kw",
        "greater than 0",
        "-250",
        line="unit_kw: -250",
    ),
    case(
        "zero-rating",
        edit(at("power.devices.PDU-A1.rating_kw", 0)),
        "power.devices.PDU-A1.rating_kw",
        "greater than 0",
        line="rating_kw: 0",
    ),
    case(
        "zero-derating",
        edit(at("power.devices.PDU-A1.derating", 0)),
        "power.devices.PDU-A1.derating",
        "greater than 0",
    ),
    case(
        "infinite-rating",
        edit(at("power.devices.UPS-A.rating_kw", float("inf"))),
        "power.devices.UPS-A.rating_kw",
        "finite number",
        line=".inf",
    ),
    case(
        "nan-floor-rating",
        edit(at(f"{SLOT_L}.floor_kg", float("nan"))),
        f"{SLOT_L}.floor_kg",
        "finite number",
        line=".nan",
    ),
    case(
        "wrong-format-version",
        edit(at("format_version", 2)),
        "format_version",
        "(got 2)",
        "reads format_version: 1",
        line="format_version: 2",
    ),
    case(
        "unknown-objective",
        edit(at("objective", "max_racks")),
        "objective",
        "'max_racks'",
        "max_gpus",
    ),
    case(
        "id-with-space",
        edit(rename("power.devices.UPS-A", "UPS A")),
        "power.devices.UPS A",
        "letters, digits",
    ),
    case(
        "section-not-a-mapping",
        edit(at("power", 5)),
        "power",
        "mapping",
        "(got 5)",
        line="power: 5",
    ),
    case(
        "no-halls",
        edit(at("halls", {})),
        "halls",
        "at least one",
    ),
    case(
        "cdu-redundant-units-not-below-units",
        edit(at("cooling.cdus.CDU1.redundant_units", 2)),
        "cooling.cdus.CDU1.redundant_units",
        "redundant_units (2) must be fewer than units (2)",
        line="redundant_units: 2",
    ),
    case(
        "single-cdu-with-default-spare",
        edit(at("cooling.cdus.CDU1.units", 1)),
        "cooling.cdus.CDU1.redundant_units",
        "redundant_units (1) must be fewer than units (1)",
        line="CDU1:",
    ),
    case(
        "air-zone-redundant-units-not-below-units",
        edit(at("cooling.air_zones.Z1.redundant_units", 3)),
        "cooling.air_zones.Z1.redundant_units",
        "redundant_units (3) must be fewer than units (3)",
    ),
    case(
        "demand-min-above-max",
        edit(at("demand.gb300-nvl72", {"min": 3, "max": 2})),
        "demand.gb300-nvl72.max",
        "min (3) is above max (2)",
    ),
    case(
        "override-outside-row",
        edit(at("halls.H1.rows.L.overrides", {5: {"floor_kg": 1000}})),
        "halls.H1.rows.L.overrides",
        "position 5",
        "slots 1..2",
    ),
    case(
        "slot-fed-twice-by-same-device",
        edit(at(f"{SLOT_L}.feeds", ["PDU-A1", "PDU-A1"])),
        f"{SLOT_L}.feeds",
        "fed twice by the same device 'PDU-A1'",
    ),
    # --- YAML itself ------------------------------------------------------------------
    case(
        "yaml-syntax-error",
        raw("format_version: 1\nname: broken\nhalls:\n  H1: {rows: {}\npower: {}\n"),
        None,
        "YAML syntax error",
        line=5,
    ),
    case(
        "yaml-bad-indentation",
        raw("format_version: 1\nname: broken\nhalls:\n  H1:\n    rows: {}\n   bad: 1\n"),
        None,
        "YAML syntax error",
        line=6,
    ),
    case(
        "yaml-python-object-tag",
        raw(lambda d: f"format_version: 1\nname: {_system_call(d)}\n"),
        "name",
        "YAML tag",
        "python/object/apply:os.system",
        line=2,
    ),
    case(
        "yaml-python-tag-on-a-key",
        raw(lambda d: f"format_version: 1\n? {_system_call(d)}\n: 1\n"),
        "?",
        "YAML tag '!!python/object/apply:os.system'",
        line=2,
    ),
    case(
        "yaml-custom-tag",
        raw("format_version: 1\nname: x\ninclude: !include other.yaml\n"),
        "include",
        "YAML tag '!include'",
        line=3,
    ),
    case(
        "duplicate-device-id",
        base_text_then("    UPS-A: {kind: ups, rating_kw: 100}\n"),
        "power.devices.UPS-A",
        "duplicate key 'UPS-A' (first at line",
        line="rating_kw: 100}",
    ),
    case(
        "top-level-list",
        raw("- format_version: 1\n- name: x\n"),
        None,
        "mapping at top level",
        "a list",
    ),
    case(
        "empty-file",
        raw("# nothing here\n"),
        None,
        "file is empty",
    ),
    # --- the power tree ---------------------------------------------------------------
    case(
        "parent-is-missing-device",
        edit(at("power.devices.PDU-A1.parent", "UPS-A2")),
        "power.devices.PDU-A1.parent",
        "unknown device 'UPS-A2'",
        "did you mean 'UPS-A'",
        line="parent: UPS-A2",
    ),
    case(
        "cycle-in-power-tree",
        edit(at("power.devices.UPS-A.parent", "PDU-A1")),
        "power.devices.UPS-A.parent",
        "cycle in the power tree",
        "UPS-A -> PDU-A1 -> UPS-A",
    ),
    case(
        "device-is-its-own-parent",
        edit(at("power.devices.UPS-B.parent", "UPS-B")),
        "power.devices.UPS-B.parent",
        "UPS-B is its own parent",
        line="parent: UPS-B",
    ),
    case(
        "failover-limit-below-normal",
        edit(at("power.devices.UPS-A.failover_limit_kw", 300)),
        "power.devices.UPS-A.failover_limit_kw",
        "failover limit 300 kW is below the normal limit 400 kW",
        line="failover_limit_kw: 300",
    ),
    # --- slots ------------------------------------------------------------------------
    case(
        "feed-names-missing-device",
        edit(at(f"{SLOT_L}.feeds", ["PDU-A1", "PDU-X"])),
        f"{SLOT_L}.feeds.1",
        "unknown device 'PDU-X'",
        line="- PDU-X",
    ),
    case(
        "two-feeds-on-one-branch",
        edit(at(f"{SLOT_L}.feeds", ["UPS-A", "PDU-A1"])),
        f"{SLOT_L}.feeds.1",
        "feed PDU-A1 is upstream or downstream of feed UPS-A",
    ),
    case(
        "slot-without-feeds",
        edit(drop(f"{SLOT_A}.feeds")),
        f"{SLOT_A}.feeds",
        "has no power feeds",
    ),
    case(
        "slot-names-missing-cdu",
        edit(at(f"{SLOT_L}.cdu", "CDU9")),
        f"{SLOT_L}.cdu",
        "unknown CDU 'CDU9'",
        "did you mean 'CDU1'",
        line="cdu: CDU9",
    ),
    case(
        "slot-names-missing-air-zone",
        edit(at(f"{SLOT_A}.air_zone", "Z9")),
        f"{SLOT_A}.air_zone",
        "unknown air zone 'Z9'",
        line="air_zone: Z9",
    ),
    case(
        "slot-without-air-zone",
        edit(drop(f"{SLOT_A}.air_zone")),
        f"{SLOT_A}.air_zone",
        "has no air zone",
    ),
    case(
        "liquid-slot-without-cdu",
        edit(drop(f"{SLOT_L}.cdu")),
        f"{SLOT_L}.cdu",
        "liquid but names no CDU",
    ),
    case(
        "cdu-on-air-slot",
        edit(at(f"{SLOT_L}.liquid", False)),
        f"{SLOT_L}.liquid",
        "names CDU CDU1 but liquid: false",
        line="liquid: false",
    ),
    # --- slot tables (CSV) ------------------------------------------------------------
    case(
        "csv-repeats-row-generated-slot-id",
        edit(with_table, files={"slots.csv": CSV_HEAD + CSV_ROW.replace("S1", "H1-L-01")}),
        "id",
        "duplicate slot id 'H1-L-01'",
        "halls.H1.rows.L",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-repeats-its-own-slot-id",
        edit(with_table, files={"slots.csv": CSV_HEAD + CSV_ROW + CSV_ROW}),
        "id",
        "duplicate slot id 'S1'",
        "line 2",
        file="slots.csv",
        line=3,
    ),
    case(
        "csv-unknown-column",
        edit(with_table, files={"slots.csv": "id,feed_a,colour\nS1,PDU-A1,red\n"}),
        "header",
        "unknown column 'colour'",
        file="slots.csv",
        line=1,
    ),
    case(
        "csv-feed-names-missing-device",
        edit(with_table, files={"slots.csv": CSV_HEAD + CSV_ROW.replace("PDU-B1", "PDU-X")}),
        "feed_b",
        "unknown device 'PDU-X'",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-cell-not-a-number",
        edit(with_table, files={"slots.csv": CSV_HEAD + CSV_ROW.replace("1200", "heavy")}),
        "floor_kg",
        "valid number",
        "'heavy'",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-position-not-positive",
        edit(with_table, files={"slots.csv": "id,position,feed_a,air_zone\nS1,0,PDU-A1,Z1\n"}),
        "position",
        "'0' is not a whole number from 1",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-row-with-extra-cells",
        edit(with_table, files={"slots.csv": CSV_HEAD + CSV_ROW.replace("\n", ",x\n")}),
        None,
        "6 cells but the header has 5 columns",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-file-missing",
        edit(with_table),
        "halls.H1.slots_csv",
        "slots.csv not found",
        line="slots_csv:",
    ),
    # --- rack types and demand --------------------------------------------------------
    case(
        "unknown-catalog-base",
        edit(at("rack_types.mine", {"base": "gb301-nvl72"})),
        "rack_types.mine.base",
        "'gb301-nvl72' is not in the catalog",
        "did you mean 'gb300-nvl72'",
        line="base: gb301-nvl72",
    ),
    case(
        "rack-type-missing-figures",
        edit(at("rack_types.mine", {"gpus": 8})),
        "rack_types.mine",
        "missing it_kw, liquid_fraction, weight_kg",
        "base",
        line="mine:",
    ),
    case(
        "liquid-rack-without-flow",
        edit(at("rack_types.gb300-nvl72", {"flow_lpm_per_kw": 0})),
        "rack_types.gb300-nvl72.flow_lpm_per_kw",
        "coolant flow",
    ),
    case(
        "demand-names-unknown-rack-type",
        edit(at("demand.gb400", {"max": 1})),
        "demand.gb400",
        "unknown rack type 'gb400'",
        line="gb400:",
    ),
    case(
        "demand-names-undeclared-catalog-type",
        edit(at("demand.gb200-nvl72", {"max": 1})),
        "demand.gb200-nvl72",
        "unknown rack type 'gb200-nvl72'",
        "add gb200-nvl72: {} under rack_types",
    ),
    case(
        "rack-heavier-than-every-floor",
        edit(at(f"{SLOT_L}.floor_kg", 1000)),
        "demand.gb300-nvl72",
        "weighs 1500 kg",
        "floor rating",
    ),
    case(
        "liquid-rack-but-no-liquid-slot",
        edit(drop("halls.H1.rows.L")),
        "demand.gb300-nvl72",
        "liquid-cooled",
        "no liquid loop",
    ),
    # --- installed racks --------------------------------------------------------------
    case(
        "installed-in-unknown-slot",
        edit(at("installed", {"H1-L-09": "gb300-nvl72"})),
        "installed.H1-L-09",
        "unknown slot 'H1-L-09'",
        line="H1-L-09:",
    ),
    case(
        "installed-unknown-rack-type",
        edit(at("installed", {"H1-L-01": "gb999"})),
        "installed.H1-L-01",
        "unknown rack type 'gb999'",
    ),
    case(
        "installed-liquid-rack-in-air-slot",
        edit(at("installed", {"H1-A-01": "gb300-nvl72"})),
        "installed.H1-A-01",
        "liquid-cooled",
        "slot H1-A-01",
        line="H1-A-01:",
    ),
    case(
        "installed-count-above-demand-max",
        edit(
            at("installed", {"H1-L-01": "gb300-nvl72", "H1-L-02": "gb300-nvl72"}),
            at("demand.gb300-nvl72.max", 1),
        ),
        "demand.gb300-nvl72.max",
        "2 gb300-nvl72 racks are installed but max is 1",
    ),
    # --- thermal ----------------------------------------------------------------------
    case(
        "recirculation-for-unknown-hall",
        edit(
            at("thermal", {"recirculation": {"H9": {}}}),
            at("cooling.air_zones.Z1.supply_temp_c", 20),
        ),
        "thermal.recirculation.H9",
        "unknown hall 'H9'",
        "use one of: H1",
    ),
    case(
        "recirculation-zone-without-supply-temperature",
        edit(at("thermal", {"recirculation": {"H1": {}}})),
        "cooling.air_zones.Z1",
        "no supply temperature",
        "supply_temp_c",
    ),
    case(
        "recirculation-model-and-matrix-file",
        edit(at("thermal", {"recirculation": {"H1": {}}, "matrix_file": "d.csv"})),
        "thermal.matrix_file",
        "both a recirculation model and a matrix_file",
    ),
    case(
        "recirculation-matrix-file-missing",
        edit(at("thermal", {"matrix_file": "nope.csv"})),
        "thermal.matrix_file",
        "nope.csv not found",
    ),
    case(
        "recirculation-matrix-unknown-slot",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            files={"d.csv": "slot,H1-A-01,H1-X-07\nH1-A-01,0.1,0.1\n"},
        ),
        "thermal.matrix_file",
        "column 'H1-X-07' is not a slot",
    ),
    case(
        "recirculation-matrix-not-a-number",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            at("cooling.air_zones.Z1.supply_temp_c", 20),
            files={"d.csv": "slot,H1-A-01,H1-A-02\nH1-A-01,0.1,warm\n"},
        ),
        "thermal.matrix_file",
        "d.csv:2: a cell is not a number",
    ),
    case(
        "recirculation-matrix-negative",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            at("cooling.air_zones.Z1.supply_temp_c", 20),
            files={"d.csv": "slot,H1-A-01,H1-A-02\nH1-A-01,0.1,-0.2\n"},
        ),
        "thermal.matrix_file",
        "d.csv:2: recirculation values must be finite and >= 0",
    ),
    case(
        "recirculation-matrix-slot-twice",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            at("cooling.air_zones.Z1.supply_temp_c", 20),
            files={"d.csv": "slot,H1-A-01,H1-A-01\nH1-A-02,0.5,0\n"},
        ),
        "thermal.matrix_file",
        "column 'H1-A-01' appears twice",
    ),
    case(
        "recirculation-matrix-without-lines",
        edit(at("thermal", {"matrix_file": "d.csv"}), files={"d.csv": "slot,H1-A-01\n"}),
        "thermal.matrix_file",
        "no matrix lines after the header",
    ),
    case(
        "cop-curve-not-positive",
        edit(
            at("facility", {"cop_curve": [0, -0.1, 1]}),
            at("cooling.air_zones.Z1.supply_temp_c", 20),
        ),
        "facility.cop_curve",
        "the COP curve gives -1 at 20 C",
    ),
    case(
        "recirculation-matrix-unknown-line-slot",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            files={"d.csv": "slot,H1-A-01\nH1-X-03,0.1\n"},
        ),
        "thermal.matrix_file",
        "line 'H1-X-03' is not a slot of the facility",
    ),
    case(
        "recirculation-matrix-line-twice",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            files={"d.csv": "slot,H1-A-01\nH1-A-01,0.1\nH1-A-01,0.2\n"},
        ),
        "thermal.matrix_file",
        "line 'H1-A-01' appears twice",
    ),
    case(
        "recirculation-matrix-more-values-than-columns",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            files={"d.csv": "slot,H1-A-01\nH1-A-01,0.1,0.2\n"},
        ),
        "thermal.matrix_file",
        "d.csv:2: 2 values but 1 columns",
    ),
    case(
        "recirculation-matrix-not-csv",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            files={"d.csv": 'slot,H1-A-01\nH1-A-01,"' + "x" * 200_000 + '"\n'},
        ),
        "thermal.matrix_file",
        "d.csv:2: a cell is longer than 131,072 characters",
    ),
    case(
        "recirculation-netcdf-without-the-variable",
        with_matrix(("slot", "source_slot"), ["H1-A-01"], "d"),
        "thermal.matrix_file",
        "no variable 'recirculation_c_per_kw'",
    ),
    case(
        "recirculation-netcdf-dimensions-swapped",
        with_matrix(("source_slot", "slot"), ["H1-A-01"], "recirculation_c_per_kw"),
        "thermal.matrix_file",
        "has dimensions ('source_slot', 'slot')",
    ),
    case(
        "recirculation-netcdf-unknown-slot",
        with_matrix(("slot", "source_slot"), ["H1-X-03"], "recirculation_c_per_kw"),
        "thermal.matrix_file",
        "slot 'H1-X-03' is not a slot of the facility",
    ),
    case(
        "recirculation-netcdf-unreadable",
        edit(at("thermal", {"matrix_file": "d.nc"}), files={"d.nc": "not netcdf\n"}),
        "thermal.matrix_file",
        "d.nc: not a readable NetCDF file",
    ),
    case(
        "unknown-inlet-class",
        edit(at("rack_types.dgx-b300-rack", {"inlet_class": "A9"})),
        "rack_types.dgx-b300-rack.inlet_class",
        "'recommended'",
    ),
    case(
        "supply-temperature-out-of-range",
        edit(at("cooling.air_zones.Z1.supply_temp_c", 90)),
        "cooling.air_zones.Z1.supply_temp_c",
        "70",
    ),
    case(
        "loop-too-warm-for-the-rack-water-class",
        edit(at("cooling.cdus.CDU1.supply_temp_c", 50)),
        "demand.gb300-nvl72",
        "accepts facility water up to 45 C (W45)",
        "supply 50 C",
    ),
    case(
        "supply-air-above-every-inlet-limit",
        edit(at("cooling.air_zones.Z1.supply_temp_c", 28)),
        "demand.gb300-nvl72",
        "would breathe 28.0 C",
        "inlet limit 27 C",
    ),
    case(
        "least-power-objective-without-minimums",
        edit(at("objective", "min_facility_kw")),
        "objective",
        "needs racks to place",
        "demand.<rack type>.min",
    ),
    # --- strict scalars (issue 12: values that used to load as something else) ---------
    case(
        "boolean-rating",
        edit(at("power.devices.UPS-A.rating_kw", True)),
        "power.devices.UPS-A.rating_kw",
        "valid number",
        "(got True)",
        line="rating_kw: true",
    ),
    case(
        "boolean-demand-max",
        yaml_text(at("demand.gb300-nvl72.max", "PH"), old="max: PH", new="max: no"),
        "demand.gb300-nvl72.max",
        "valid integer",
        "(got False)",
        line="max: no",
    ),
    case(
        "boolean-gpu-count",
        edit(at("rack_types.mine", {"base": "gb300-nvl72", "gpus": True})),
        "rack_types.mine.gpus",
        "valid integer",
        "(got True)",
    ),
    case(
        "boolean-format-version",
        edit(at("format_version", True)),
        "format_version",
        "must be the whole number 1 (got True)",
    ),
    case(
        "text-where-boolean",
        edit(at(f"{SLOT_L}.liquid", "yes please")),
        f"{SLOT_L}.liquid",
        "valid boolean",
    ),
    case(
        "number-where-boolean",
        edit(at("power.devices.UPS-A.can_fail", 0)),
        "power.devices.UPS-A.can_fail",
        "valid boolean",
        "(got 0)",
    ),
    case(
        "quoted-number",
        edit(at("cooling.cdus.CDU1.unit_kw", "250")),
        "cooling.cdus.CDU1.unit_kw",
        "valid number",
        "(got '250')",
    ),
    case(
        "huge-count",
        edit(at("demand.gb300-nvl72.max", 2**70)),
        "demand.gb300-nvl72.max",
        "less than or equal to 1000000",
    ),
    case(
        "huge-coordinate",
        edit(at("halls.H1.rows.A.origin_m", [0.0, 1e300])),
        "halls.H1.rows.A.origin_m.1",
        "less than or equal to 1000000000",
    ),
    case(
        "number-as-id",
        edit(at("name", 7)),
        "name",
        "valid string",
    ),
    # --- equal keys spelt differently (issue 12) -----------------------------------------
    case(
        "override-keys-2-and-02",
        override_2_and("02"),
        "halls.H1.rows.L.overrides.2",
        "duplicate key '02' (reads as 2, like '2') (first at line",
        line="02:",
    ),
    case(
        "override-keys-2-and-2.0",
        override_2_and("2.0"),
        "halls.H1.rows.L.overrides.2.0",
        "duplicate key '2.0' (reads as 2.0, like '2')",
    ),
    case(
        "override-keys-2-and-0x2",
        override_2_and("0x2"),
        "halls.H1.rows.L.overrides.2",
        "duplicate key '0x2' (reads as 2, like '2')",
    ),
    case(
        "override-key-not-whole",
        override_key("1.5"),
        "halls.H1.rows.L.overrides.1.5",
        "invalid key",
        "valid integer",
    ),
    case(
        "override-key-quoted",
        override_key("'2'"),
        "halls.H1.rows.L.overrides.2",
        "invalid key",
        "valid integer",
    ),
    case(
        "device-ids-true-and-1",
        base_text_then("    true: {rating_kw: 10}\n    1: {rating_kw: 10}\n"),
        "power.devices.1",
        "duplicate key '1' (reads as 1, like 'true')",
    ),
    # --- non-plain YAML (issue 12) --------------------------------------------------------
    case(
        "feeds-as-a-set",
        yaml_text(
            at(f"{SLOT_A}.feeds", "PLACEHOLDER"),
            old="feeds: PLACEHOLDER",
            new="feeds: !!set {PDU-A1, PDU-B1}",
        ),
        f"{SLOT_A}.feeds",
        "YAML tag '!!set' is not allowed",
        line="!!set",
    ),
    case(
        "ordered-map",
        raw("format_version: 1\nname: x\ndemand: !!omap [a: 1]\n"),
        "demand",
        "YAML tag '!!omap' is not allowed",
        line=3,
    ),
    case(
        "binary-value",
        raw("format_version: 1\nname: !!binary aGVsbG8=\n"),
        "name",
        "YAML tag '!!binary' is not allowed",
        line=2,
    ),
    case(
        "unquoted-date",
        raw("format_version: 1\nname: x\ndescription: 2024-05-01\n"),
        "description",
        "YAML reads '2024-05-01' as a date",
        "quote it",
        line=3,
    ),
    case(
        "merge-of-a-single-value",
        raw("format_version: 1\nname: x\nfacility:\n  <<: 5\n"),
        "facility.<<",
        "merge key << must name a mapping",
        line=4,
    ),
    case(
        "control-characters-in-a-key-are-escaped",
        base_text_then('    "\\e[2J\\a": {rating_kw: 10}\n'),
        "power.devices.\\x1b[2J\\x07",
        "letters, digits",
    ),
    # --- tables --------------------------------------------------------------------------
    case(
        "csv-cell-over-the-csv-module-limit",
        edit(with_table, files={"slots.csv": CSV_HEAD + 'S1,"' + "x" * 200_000 + '"\n'}),
        None,
        "a cell is longer than 131,072 characters",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-not-utf8",
        file_bytes("slots.csv", (CSV_HEAD + CSV_ROW).encode() + b"S\xc4,PDU-A1,,Z1,\n", with_table),
        None,
        "line 3 is not UTF-8 text (byte 0xc4)",
        "CSV UTF-8",
        file="slots.csv",
    ),
    case(
        "csv-boolean-cell-not-a-boolean",
        edit(
            with_table,
            files={"slots.csv": "id,feed_a,air_zone,liquid,cdu\nS1,PDU-A1,Z1,maybe,CDU1\n"},
        ),
        "liquid",
        "valid boolean",
        "'maybe'",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-nan-is-not-a-number",
        edit(with_table, files={"slots.csv": CSV_HEAD + CSV_ROW.replace("1200", "nan")}),
        "floor_kg",
        "valid number",
        "'nan'",
        file="slots.csv",
        line=2,
    ),
    case(
        "csv-three-bad-lines-at-once",
        edit(
            with_table,
            files={
                "slots.csv": CSV_HEAD
                + CSV_ROW.replace("1200", "heavy")
                + "S2,PDU-A1,PDU-B1,Z1,1200\n"
                + "S3,PDU-A1,PDU-B1,Z1,1200,x\n"
                + "\n"
                + "S4,PDU-A1,PDU-B1,Z1,-5\n"
            },
        ),
        None,
        "3 bad lines: line 2: floor_kg: Input should be a valid number (got 'heavy')",
        "; line 4: 6 cells but the header has 5 columns (fix: ",
        "; line 6: floor_kg: Input should be greater than 0 (got -5.0) (fix: use a larger",
        file="slots.csv",
        line=2,
    ),
    case(
        "recirculation-matrix-bad-lines-at-once",
        edit(
            at("thermal", {"matrix_file": "d.csv"}),
            files={
                "d.csv": "slot,H1-A-01,H1-A-02\nH1-A-01,0.1,warm\nH1-X-09,0\n"
                "H1-A-02,0.1,0.1,0.1\nH1-A-01,0,0\n"
            },
        ),
        "thermal.matrix_file",
        "d.csv: 4 bad lines: line 2: a cell is not a number",
        "line 3: line 'H1-X-09' is not a slot of the facility",
        "line 4: 3 values but 2 columns",
        "line 5: line 'H1-A-01' appears twice (first at line 2)",
    ),
    # --- limits and special files --------------------------------------------------------
    case(
        "slot-table-is-dev-zero",
        edit(at("halls.H1.slots_csv", "/dev/zero")),
        "halls.H1.slots_csv",
        "lies outside",
        "--allow-paths-outside",
        line="slots_csv: /dev/zero",
    ),
    case(
        "slot-table-is-a-folder",
        file_bytes("tables/keep", b"", at("halls.H1.slots_csv", "tables")),
        "halls.H1.slots_csv",
        "is not a regular file",
    ),
    case(
        "netcdf-matrix-larger-than-the-facility",
        with_matrix(
            ("slot", "source_slot"),
            ["H1-L-01", "H1-L-02", "H1-A-01", "H1-A-02", "H1-X-01"],
            "recirculation_c_per_kw",
        ),
        "thermal.matrix_file",
        "recirculation_c_per_kw is 5 x 5 but the facility has 4 slots",
    ),
    case(
        "netcdf-matrix-of-text",
        with_text_matrix,
        "thermal.matrix_file",
        "holds <U4 values, not numbers",
    ),
    # --- paths that leave the instance's folder tree (issue 12) ---------------------------
    case(
        "slot-table-up-and-out",
        outside_file("halls.H1.slots_csv", lambda name: f"../{name}"),
        "halls.H1.slots_csv",
        "lies outside",
        line="slots_csv:",
    ),
    case(
        "slot-table-absolute",
        outside_file("halls.H1.slots_csv", lambda name: "/etc/passwd"),
        "halls.H1.slots_csv",
        "/etc/passwd lies outside",
    ),
    case(
        "include-up-and-out",
        outside_file("include", lambda name: [f"../{name}"]),
        "include.0",
        "lies outside",
    ),
    case(
        "distance-table-through-a-symlink",
        outside_file("network", lambda name: {"distance_csv": "link.csv"}, link="link.csv"),
        "network.distance_csv",
        "link.csv lies outside",
    ),
    case(
        "recirculation-matrix-up-and-out",
        outside_file("thermal", lambda name: {"matrix_file": f"../{name}"}),
        "thermal.matrix_file",
        "lies outside",
    ),
    # --- includes ---------------------------------------------------------------------
    case(
        "include-of-missing-file",
        edit(at("include", ["common.yaml"])),
        "include.0",
        "common.yaml not found",
        line="- common.yaml",
    ),
    case(
        "include-cycle",
        edit(at("include", ["a.yaml"]), files={"a.yaml": "include: [instance.yaml]\n"}),
        "include.0",
        "include cycle",
        "instance.yaml -> a.yaml -> instance.yaml",
        file="a.yaml",
        line=1,
    ),
    case(
        "error-inside-included-file",
        edit(
            drop("power"),
            at("include", ["power.yaml"]),
            files={"power.yaml": "power:\n  devices:\n    UPS-A: {rating_kw: 0}\n"},
        ),
        "power.devices.UPS-A.rating_kw",
        "greater than 0",
        file="power.yaml",
        line=3,
    ),
]


def _expected_line(case: Case, directory: Path) -> int | None:
    if not isinstance(case.line, str):
        return case.line
    lines = (directory / case.file).read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, start=1) if case.line in text)


def test_base_instance_is_valid(tmp_path: Path) -> None:
    """The cases differ from a valid instance only by what they break."""
    site = build_site(load_instance(write_instance(tmp_path, base_instance())))
    assert site.slot_ids == ("H1-L-01", "H1-L-02", "H1-A-01", "H1-A-02")


@pytest.mark.parametrize("bad", CASES)
def test_bad_instance_is_one_clear_line(bad: Case, tmp_path: Path) -> None:
    path = bad.make(tmp_path)
    out = tmp_path / "out.nc"
    result = CliRunner().invoke(main, ["solve", str(path), "-o", str(out)])
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("error: "), text
    line = _expected_line(bad, tmp_path)
    where = re.escape(str(tmp_path / bad.file)) + (f":{line}: " if line else r"(:\d+)?: ")
    assert re.match("error: " + where, text), text
    if bad.field is not None:
        assert f": {bad.field}: " in text, text
    for fragment in bad.fragments:
        assert fragment in text, text
    assert "(fix: " in text, text
    assert all(c.isprintable() for c in lines[0]), "control characters reach the terminal"
    assert SECRET not in text, "a message quotes a file outside the instance's tree"
    assert not out.exists()
    assert not (tmp_path / "PWNED").exists(), "a YAML tag ran a command"


def test_case_ids_are_distinct() -> None:
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)) >= 28
