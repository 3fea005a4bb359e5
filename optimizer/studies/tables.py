"""A layout (or a study) as tidy tables: one table per entity, for spreadsheets and
scripts, instead of ``ds.to_dataframe()``, which crosses every dimension (8 million rows
for the 160-slot GB300 hall).

Each table is one dimension of the layout schema (:mod:`optimizer.results.schema`):
its index coordinate first, then every coordinate and variable along that dimension
alone, named as in the dataset, so every figure's unit is the suffix of its column name
(``_kw``, ``_m``, ``_c``, ``_lpm``; power is always kW). A dimension the schema gains
(phases, say) gains its table with no change here. Derived columns: each slot's
``network_slot`` (so the slot table is a layout CSV ``rackopt verify`` reads back) and
the utilization of every device, CDU group and air zone. Figures are rounded to what
the instance's data can mean (:data:`DECIMALS`), which also drops float noise such as
2281.6000000000004. A study gives the same tables with a ``scenario`` column first,
rows of the scenarios that have a layout; its ``facility`` table has every scenario,
with its status and message.

pandas is here because the tables are DataFrames for the notebook API
(:func:`optimizer.api.tables`) and it writes CSV and, through openpyxl, XLSX.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from optimizer.output import write_files
from optimizer.results.schema import DIMENSION_NAMES, FIELDS
from optimizer.studies.compare import is_study, open_layouts

DECIMALS = {"kW": 3, "m": 2, "C": 2, "L/min": 2}
"""Decimals kept per unit: 1 W, 1 cm, 0.01 K, 0.01 L/min."""
RATIO_DECIMALS = 4
"""Utilizations, the PUE and the gap: 0.01 %."""

TABLE_NAMES = {
    "slot": "slots",
    "type": "rack_types",
    "device": "devices",
    "cdu": "cdus",
    "air_zone": "air_zones",
    "su_id": "sus",
    "reach_class": "cable_classes",
}
"""Table name per dimension; a dimension not listed is named after itself."""
FACILITY = "facility"
_FACILITY_ATTRS = ("status", "objective", "best_bound", "gap")
_UTILIZATION = {
    "device": {
        "utilization": ("device_load_kw", "device_capacity_kw"),
        "failover_utilization": ("device_failover_load_kw", "device_failover_limit_kw"),
    },
    "cdu": {
        "utilization": ("cdu_heat_kw", "cdu_capacity_kw"),
        "flow_utilization": ("cdu_flow_lpm", "cdu_flow_capacity_lpm"),
    },
    "air_zone": {"utilization": ("air_zone_heat_kw", "air_zone_capacity_kw")},
}
"""Derived load / limit columns per dimension."""


def table_name(dim: str) -> str:
    return TABLE_NAMES.get(dim, f"{dim}s")


def _rounded(name: str, values: np.ndarray) -> np.ndarray:
    field = FIELDS.get(name)
    if values.dtype.kind != "f":
        return values
    digits = DECIMALS.get(field.unit, RATIO_DECIMALS) if field else RATIO_DECIMALS
    return np.round(values, digits)


def _entity(ds: xr.Dataset, dim: str) -> pd.DataFrame:
    """The table of one dimension: its labels, then every variable along it alone."""
    columns: dict[str, np.ndarray] = {dim: ds[dim].values}
    for name, var in ds.variables.items():
        if var.dims == (dim,) and name != dim:
            columns[name] = _rounded(name, var.values)
    if dim == "slot" and "su" in columns:
        hubs = ds["su_network_slot"].values
        su = columns["su"]
        # The layout CSV's "no SU" is an empty cell (docs/output-format.md section 8).
        columns["su"] = np.array([str(i) if i >= 0 else "" for i in su], dtype=str)
        columns = _after(columns, "su", "network_slot", [hubs[i] if i >= 0 else "" for i in su])
    for column, (load, limit) in _UTILIZATION.get(dim, {}).items():
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = ds[load].values / ds[limit].values
        columns[column] = np.round(ratio, RATIO_DECIMALS)
    return pd.DataFrame(columns)


def _after(columns: dict, before: str, name: str, values: list[str]) -> dict:
    """``columns`` with ``name`` inserted right after ``before``."""
    out = {}
    for key, column in columns.items():
        out[key] = column
        if key == before:
            out[name] = np.array(values, dtype=str)
    return out


def _facility(ds: xr.Dataset, attrs: dict) -> dict[str, object]:
    """The scalars of a layout and its solve's status, as one row."""
    row: dict[str, object] = {}
    for key in _FACILITY_ATTRS:
        value = attrs.get(key, "" if key == "status" else math.nan)
        row[key] = round(float(value), 9) if key != "status" else str(value)
    for name, var in ds.data_vars.items():
        if var.dims == () and name in FIELDS:
            value = var.values.item()
            row[name] = (
                float(_rounded(name, np.asarray(value, float))) if var.dtype.kind == "f" else value
            )
    return row


def layout_tables(ds: xr.Dataset) -> dict[str, pd.DataFrame]:
    """One layout's tables (see the module docstring), named by :func:`table_name`."""
    tables = {table_name(dim): _entity(ds, dim) for dim in ds.dims if dim in ds.coords}
    tables[FACILITY] = pd.DataFrame([_facility(ds, ds.attrs)])
    return _ordered(tables)


def _ordered(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The schema's dimensions in their order, then any other, then the facility."""
    known = [table_name(d) for d in DIMENSION_NAMES]
    order = [n for n in known if n in tables]
    order += [n for n in tables if n not in known and n != FACILITY] + [FACILITY]
    return {name: tables[name] for name in order}


def file_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """The tables of a layout file, or of a study dataset with a ``scenario`` column."""
    found = open_layouts([path])
    if len(found) == 1 and found[0][1] is not None and not is_study(found[0][1]):
        return layout_tables(found[0][1])
    by_table: dict[str, list[pd.DataFrame]] = {}
    for name, ds, attrs in found:
        if ds is None:
            row = {"scenario": name, "status": attrs.get("status", ""), "message": attrs["message"]}
            by_table.setdefault(FACILITY, []).append(pd.DataFrame([row]))
            continue
        for table, frame in layout_tables(ds).items():
            if table == FACILITY:
                frame = frame.assign(message=attrs.get("message", ""))
            by_table.setdefault(table, []).append(frame.assign(scenario=name))
    return _ordered({table: _stacked(frames) for table, frames in by_table.items()})


def _stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The scenarios' tables as one, ``scenario`` first; an integer column stays whole
    where a scenario lacks it (pandas' nullable Int64, an empty cell), not float."""
    whole = {c for f in frames for c in f.columns if f[c].dtype.kind in "iu"}
    df = pd.concat(frames, ignore_index=True)
    df = df.astype({c: "Int64" for c in whole})
    return df[["scenario", *(c for c in df.columns if c != "scenario")]]


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """A table's rows as JSON-ready dicts: numpy scalars as Python ones, NaN and
    infinity (a rack type without a water class) as None, which JSON can hold."""
    out = []
    for row in frame.to_dict("records"):
        out.append(
            {
                key: None
                if value is pd.NA or (isinstance(value, float) and not math.isfinite(value))
                else value.item()
                if isinstance(value, np.generic)
                else value
                for key, value in row.items()
            }
        )
    return out


def _csv(tables: dict[str, pd.DataFrame], output: Path) -> dict[Path, bytes]:
    return {
        output / f"{name}.csv": frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
        for name, frame in tables.items()
    }


def _xlsx(tables: dict[str, pd.DataFrame], output: Path) -> dict[Path, bytes]:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as book:
        for name, frame in tables.items():
            frame.to_excel(book, sheet_name=name, index=False)
    return {output: buffer.getvalue()}


def _json(tables: dict[str, pd.DataFrame], output: Path) -> dict[Path, bytes]:
    document = {"tables": {name: records(frame) for name, frame in tables.items()}}
    return {output: (json.dumps(document, indent=1) + "\n").encode("utf-8")}


WRITERS = {"csv": _csv, "xlsx": _xlsx, "json": _json}
"""Per format: (tables, -o) -> files. csv writes a folder of NAME.csv; xlsx one workbook
with a sheet per table; json one document ``{"tables": {NAME: [row, ...]}}``."""


def export_tables(layout: str | Path, to: str, output: str | Path) -> list[Path]:
    """Write the tables of ``layout`` (a layout or study file) as ``to``; the files written."""
    files = WRITERS[to](file_tables(layout), Path(output))
    write_files(files)
    return list(files)
