"""Thermal preprocessing: inlet and water classes, cooling-plant power, and the
recirculation matrix D.

The inlet temperature of slot i is ``supply(zone of i) + sum_j D[i, j] x air heat of
slot j`` (Tang, Gupta and Varsamopoulos, IEEE TPDS 2008): linear in the racks placed,
so it fits the MILP. D (C per kW) comes either from a matrix file (e.g. exported from
a CFD tool) or from the parametric geometry model of docs/thermal.md, built here once
so that the model, the greedy baseline and the independent checker share one D.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import sparse

from optimizer.errors import InstanceError
from optimizer.schema import FacilityLimits, Recirculation

ErrorAt = Callable[[tuple[str, ...], str, str], InstanceError]

INLET_LIMIT_C = {
    "recommended": 27.0,  # ASHRAE TC 9.9 recommended envelope 18-27 C, classes A1-A4 (A)
    "A1": 32.0,  # ASHRAE TC 9.9 allowable A1 15-32 C (A)
    "A2": 35.0,  # allowable A2 10-35 C (A)
    "A3": 40.0,  # allowable A3 5-40 C (A)
    "A4": 45.0,  # allowable A4 5-45 C (A)
    "H1": 22.0,  # high-density class H1, recommended 18-22 C (ASHRAE 5th edition, 2021; A)
}
WATER_MAX_C = {
    # ASHRAE TC 9.9 liquid classes (5th edition, 2021; A): the warmest facility water
    # supply the equipment accepts. W+ is above 45 C with no stated ceiling.
    "W17": 17.0,
    "W27": 27.0,
    "W32": 32.0,
    "W40": 40.0,
    "W45": 45.0,
    "W+": math.inf,
}
CONTAINMENT_LEAKAGE = {
    # Share of the uncontained recirculation left with aisle containment: a planning
    # assumption (docs/thermal.md), to be replaced by a CFD matrix for real decisions.
    "none": 1.0,
    "hot_aisle": 0.2,
    "cold_aisle": 0.2,
}
AIR_RHO_CP_KJ_M3K = 1.2
"""Volumetric heat capacity of air near 20 C: 1.2 kg/m3 x 1.005 kJ/(kg K)."""
MATRIX_VARIABLE = "recirculation_c_per_kw"
MATRIX_FIELD = ("thermal", "matrix_file")


def plant_kw_per_kw(
    facility: FacilityLimits, supply_c: float | None, override: float | None, air: bool
) -> float:
    """Cooling power per kW of heat for one air zone (``air``) or CDU group: its own
    figure if given; else 1/COP at its supply temperature plus fans or pumps; else the
    facility's flat per-kW figure."""
    if override is not None:
        return override
    if supply_c is None:
        return facility.cooling_kw_per_air_kw if air else facility.cooling_kw_per_liquid_kw
    a, b, c = facility.cop_curve
    cop = a * supply_c**2 + b * supply_c + c
    movers = facility.fan_kw_per_air_kw if air else facility.pump_kw_per_liquid_kw
    return 1.0 / cop + movers


def _row_axes(x_m: np.ndarray, y_m: np.ndarray, row_code: np.ndarray) -> np.ndarray:
    """(slot, 2) unit vector along each slot's row: from its first slot to its last."""
    axes = np.tile([1.0, 0.0], (len(x_m), 1))
    for code in np.unique(row_code):
        members = np.flatnonzero(row_code == code)
        span = np.array([x_m[members[-1]] - x_m[members[0]], y_m[members[-1]] - y_m[members[0]]])
        length = float(np.hypot(*span))
        if length > 0:
            axes[members] = span / length
    return axes


def parametric_matrix(
    halls: dict[str, Recirculation],
    slot_hall: tuple[str, ...],
    row_code: np.ndarray,
    x_m: np.ndarray,
    y_m: np.ndarray,
) -> sparse.csr_array:
    """D of the parametric model (docs/thermal.md) for the slots of the halls listed.

    For a receiving slot i and an emitting slot j of the same hall, with ``along`` and
    ``across`` the distances between them along and across i's row:
    share = self_share (i = j), row_share e^(-along/decay) (same row), aisle_share
    e^(-along/decay) (another row within aisle_m across), 0 beyond radius_m along;
    D[i, j] = leakage x share / (rho c_p x inlet airflow).
    """
    n = len(slot_hall)
    axes = _row_axes(x_m, y_m, row_code)
    hall_of = np.array(slot_hall)
    rows, cols, values = [], [], []
    for hall, model in halls.items():
        members = np.flatnonzero(hall_of == hall)
        scale = CONTAINMENT_LEAKAGE[model.containment] / (
            AIR_RHO_CP_KJ_M3K * model.inlet_airflow_m3_s
        )
        for i in members:  # one receiving slot at a time keeps memory at one hall's size
            dx, dy = x_m[members] - x_m[i], y_m[members] - y_m[i]
            along = np.abs(dx * axes[i, 0] + dy * axes[i, 1])
            across = np.abs(dx * axes[i, 1] - dy * axes[i, 0])
            same_row = row_code[members] == row_code[i]
            decay = np.exp(-along / model.decay_m)
            share = np.where(
                same_row,
                model.row_share * decay,
                np.where(across <= model.aisle_m + 1e-9, model.aisle_share * decay, 0.0),
            )
            share = np.where(along <= model.radius_m + 1e-9, share, 0.0)
            share[members == i] = model.self_share
            keep = np.flatnonzero(share > 0)
            rows.append(np.full(len(keep), i))
            cols.append(members[keep])
            values.append(scale * share[keep])
    if not rows:
        return sparse.csr_array((n, n))
    return sparse.csr_array(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


def _csv_matrix(name: str, raw: bytes, index: dict[str, int], error: ErrorAt) -> np.ndarray:
    """Receiving slots by line, emitting slots by column; absent slots have no entries."""
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8", errors="replace"))))
    header = [cell.strip() for cell in lines[0][1:]] if lines else []
    for slot in header:
        if slot not in index:
            raise error(
                MATRIX_FIELD,
                f"{name}: column {slot!r} is not a slot of the facility",
                "name columns by slot id (HALL-ROW-NN or an id from a slots_csv)",
            )
    matrix = np.zeros((len(index), len(index)))
    columns = [index[slot] for slot in header]
    for line, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        slot = cells[0].strip()
        if slot not in index:
            raise error(
                MATRIX_FIELD,
                f"{name}:{line}: {slot!r} is not a slot of the facility",
                "start each line with a slot id",
            )
        try:
            values = [float(cell) if cell.strip() else 0.0 for cell in cells[1:]]
        except ValueError:
            raise error(
                MATRIX_FIELD,
                f"{name}:{line}: a cell is not a number",
                "write C per kW as numbers; leave a cell empty for 0",
            ) from None
        if len(values) > len(columns):
            raise error(
                MATRIX_FIELD,
                f"{name}:{line}: {len(values)} values but {len(columns)} columns",
                "give one value per column of the header",
            )
        matrix[index[slot], columns[: len(values)]] = values
    return matrix


def _netcdf_matrix(name: str, raw: bytes, index: dict[str, int], error: ErrorAt) -> np.ndarray:
    """The variable ``recirculation_c_per_kw`` over dimensions (slot, source_slot)."""
    try:
        with xr.open_dataset(io.BytesIO(raw), engine="h5netcdf") as ds:
            if MATRIX_VARIABLE not in ds:
                raise error(
                    MATRIX_FIELD,
                    f"{name}: no variable {MATRIX_VARIABLE!r}",
                    f"store D as {MATRIX_VARIABLE}(slot, source_slot) in C per kW",
                )
            var = ds[MATRIX_VARIABLE].load()
    except (OSError, ValueError) as exc:
        raise error(
            MATRIX_FIELD, f"{name}: not a readable NetCDF file ({exc})", "export NetCDF4 or CSV"
        ) from None
    if var.dims != ("slot", "source_slot"):
        raise error(
            MATRIX_FIELD,
            f"{name}: {MATRIX_VARIABLE} has dimensions {var.dims}",
            "use dimensions (slot, source_slot) with slot ids as coordinates",
        )
    matrix = np.zeros((len(index), len(index)))
    ids = {dim: [str(v) for v in var[dim].values] for dim in var.dims}
    for dim, labels in ids.items():
        unknown = [s for s in labels if s not in index]
        if unknown:
            raise error(
                MATRIX_FIELD,
                f"{name}: {dim} {unknown[0]!r} is not a slot of the facility",
                "label both dimensions with slot ids",
            )
    rows = [index[s] for s in ids["slot"]]
    cols = [index[s] for s in ids["source_slot"]]
    matrix[np.ix_(rows, cols)] = np.asarray(var.values, dtype=float)
    return matrix


def matrix_from_file(
    name: str, raw: bytes, slot_ids: tuple[str, ...], error: ErrorAt
) -> sparse.csr_array:
    """D from ``thermal.matrix_file``: NetCDF by its .nc suffix, CSV otherwise."""
    index = {s: i for i, s in enumerate(slot_ids)}
    reader = _netcdf_matrix if Path(name).suffix in (".nc", ".nc4") else _csv_matrix
    matrix = reader(name, raw, index, error)
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise error(
            MATRIX_FIELD,
            f"{name}: recirculation values must be finite and >= 0",
            "give C per kW of air heat, 0 where no exhaust reaches",
        )
    return sparse.csr_array(matrix)


def inlet_temperatures(
    supply_c: np.ndarray, recirculation: sparse.csr_array | None, slot_air_kw: np.ndarray
) -> np.ndarray:
    """Inlet temperature per slot given the air heat placed in every slot (NaN where
    the zone gives no supply temperature)."""
    rise = recirculation @ slot_air_kw if recirculation is not None else 0.0
    return supply_c + rise
