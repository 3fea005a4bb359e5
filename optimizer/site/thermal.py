"""Thermal preprocessing: inlet and water classes, cooling-plant power, and the
recirculation matrix D.

The inlet temperature of slot i is ``supply(zone of i) + sum_j D[i, j] x air heat of
slot j`` (Tang, Gupta and Varsamopoulos, IEEE TPDS 2008): linear in the racks placed,
so it fits the MILP. D (C per kW) comes either from a matrix file (e.g. exported from
a CFD tool) or from the parametric geometry model of docs/thermal.md, built here once
so that the model, the greedy baseline and the independent checker share one D.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from optimizer.errors import ErrorAt, FieldProblem, InstanceError
from optimizer.instance.files import decode_utf8
from optimizer.instance.schema import FacilityLimits, Recirculation
from optimizer.instance.tables import LineProblems, TableProblem, csv_lines

if TYPE_CHECKING:
    import xarray as xr

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
    if cop <= 0:
        raise FieldProblem(
            f"the COP curve gives {cop:g} at {supply_c:g} C; a plant's COP is positive",
            "give coefficients [a, b, c] of a COP curve that is positive at every supply "
            "temperature used, or a cooling_kw_per_kw for the zone or CDU group",
        )
    movers = facility.fan_kw_per_air_kw if air else facility.pump_kw_per_liquid_kw
    return 1.0 / cop + movers


def _row_axes(
    x_m: np.ndarray,
    y_m: np.ndarray,
    row_code: np.ndarray,
    known: list[tuple[float, float] | None],
) -> np.ndarray:
    """(slot, 2) unit vector along each slot's row: the row's direction where ``known``
    gives it; else from the row's first slot to its last (x for a single slot)."""
    axes = np.tile([1.0, 0.0], (len(x_m), 1))
    for code in np.unique(row_code):
        members = np.flatnonzero(row_code == code)
        span = np.array([x_m[members[-1]] - x_m[members[0]], y_m[members[-1]] - y_m[members[0]]])
        length = float(np.hypot(*span))
        if length > 0:
            axes[members] = span / length
    for s, axis in enumerate(known):
        if axis is not None:
            axes[s] = axis
    return axes


def parametric_matrix(
    halls: dict[str, Recirculation],
    slot_hall: tuple[str, ...],
    row_code: np.ndarray,
    x_m: np.ndarray,
    y_m: np.ndarray,
    known_axes: list[tuple[float, float] | None],
) -> sparse.csr_array:
    """D of the parametric model (docs/thermal.md) for the slots of the halls listed.

    For a receiving slot i and an emitting slot j of the same hall, with ``along`` and
    ``across`` the distances between them along and across i's row:
    share = self_share (i = j), row_share e^(-along/decay) (same row), aisle_share
    e^(-along/decay) (another row within aisle_m across), 0 beyond radius_m along;
    D[i, j] = leakage x share / (rho c_p x inlet airflow).
    """
    n = len(slot_hall)
    axes = _row_axes(x_m, y_m, row_code, known_axes)
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


Triples = tuple[list[int], list[int], list[float]]
"""(receiving slot, emitting slot, C per kW) of the nonzero entries of D."""


def _labels(name: str, what: str, labels: list[str], index: dict[str, int], error: ErrorAt):
    """Slot indices of a file's labels; unknown or repeated labels are errors."""
    seen: set[str] = set()
    for label in labels:
        if label not in index:
            raise error(
                MATRIX_FIELD,
                f"{name}: {what} {label!r} is not a slot of the facility",
                "label rows and columns with slot ids (HALL-ROW-NN or from a slots_csv)",
            )
        if label in seen:
            raise error(
                MATRIX_FIELD,
                f"{name}: {what} {label!r} appears twice",
                "give each slot one line and one column",
            )
        seen.add(label)
    return [index[label] for label in labels]


def _csv_matrix(name: str, raw: bytes, index: dict[str, int], error: ErrorAt) -> Triples:
    """Receiving slots by line, emitting slots by column; absent slots have no entries.
    A bad header is reported alone; bad lines are reported all at once."""
    try:
        lines = list(csv_lines(decode_utf8(raw)))
    except FieldProblem as exc:
        raise error(MATRIX_FIELD, f"{name}: {exc.problem}", exc.fix) from None
    except TableProblem as exc:
        raise error(MATRIX_FIELD, f"{name}:{exc.line}: {exc.problem}", exc.fix) from None
    if len(lines) < 2:
        raise error(
            MATRIX_FIELD,
            f"{name}: no matrix lines after the header",
            "give a header of slot ids and one line per receiving slot",
        )
    columns = _labels(name, "column", [c.strip() for c in lines[0][1][1:]], index, error)
    problems = LineProblems(name)
    rows, cols, values = [], [], []
    first_line: dict[int, int] = {}
    for line, cells in lines[1:]:
        try:
            receiver, entries = _matrix_line(cells, index, columns, first_line, line)
        except FieldProblem as exc:
            problems.add(line, exc.problem, exc.fix)
            continue
        for col, value in entries:
            rows.append(receiver)
            cols.append(col)
            values.append(value)
    problems.raise_at(error, MATRIX_FIELD)
    return rows, cols, values


def _matrix_line(
    cells: list[str],
    index: dict[str, int],
    columns: list[int],
    first_line: dict[int, int],
    line: int,
) -> tuple[int, list[tuple[int, float]]]:
    """(receiving slot, nonzero (column, value) entries) of one matrix line; a
    :class:`FieldProblem` says what makes it bad. ``first_line`` records each
    receiver's line."""
    label = cells[0].strip()
    if label not in index:
        raise FieldProblem(
            f"line {label!r} is not a slot of the facility",
            "label rows and columns with slot ids (HALL-ROW-NN or from a slots_csv)",
        )
    receiver = index[label]
    if receiver in first_line:
        raise FieldProblem(
            f"line {label!r} appears twice (first at line {first_line[receiver]})",
            "give each slot one line and one column",
        )
    first_line[receiver] = line
    if len(cells) - 1 > len(columns):
        raise FieldProblem(
            f"{len(cells) - 1} values but {len(columns)} columns",
            "give one value per column of the header",
        )
    try:
        found = [float(cell) if cell.strip() else 0.0 for cell in cells[1:]]
    except ValueError:
        raise FieldProblem(
            "a cell is not a number", "write C per kW as numbers; leave a cell empty for 0"
        ) from None
    if not all(math.isfinite(v) and v >= 0 for v in found):
        raise FieldProblem(
            "recirculation values must be finite and >= 0",
            "give C per kW of air heat, 0 where no exhaust reaches",
        )
    return receiver, [(col, v) for col, v in zip(columns, found, strict=False) if v != 0.0]


def _netcdf_matrix(name: str, raw: bytes, index: dict[str, int], error: ErrorAt) -> Triples:
    """The variable ``recirculation_c_per_kw`` over dimensions (slot, source_slot).

    Its dimensions, size and type are checked before its values are read: a small
    compressed file may declare a matrix far larger than the facility. xarray is imported
    here, not with the module: every site build imports this module, and ``verify`` of a
    facility without a recirculation file need not pay for xarray and pandas (issue 14)."""
    import xarray as xr

    try:
        with xr.open_dataset(io.BytesIO(raw), engine="h5netcdf") as ds:
            if MATRIX_VARIABLE not in ds:
                raise error(
                    MATRIX_FIELD,
                    f"{name}: no variable {MATRIX_VARIABLE!r}",
                    f"store D as {MATRIX_VARIABLE}(slot, source_slot) in C per kW",
                )
            var = ds[MATRIX_VARIABLE]
            _check_declared(name, var, len(index), error)
            var = var.load()
    except InstanceError:
        raise
    except Exception as exc:  # h5py and h5netcdf fail in many ways on a damaged file
        raise error(
            MATRIX_FIELD,
            f"{name}: not a readable NetCDF file ({type(exc).__name__}: {exc})",
            "export NetCDF4 or CSV",
        ) from None

    def text(value: object) -> str:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    receivers = _labels(name, "slot", [text(v) for v in var["slot"].values], index, error)
    sources = _labels(
        name, "source_slot", [text(v) for v in var["source_slot"].values], index, error
    )
    values = np.asarray(var.values, dtype=float)
    i, j = np.nonzero(values)
    return (
        [receivers[a] for a in i],
        [sources[b] for b in j],
        values[i, j].tolist(),
    )


def _check_declared(name: str, var: xr.DataArray, slots: int, error: ErrorAt) -> None:
    """Refuse a matrix variable of other dimensions, of text, or larger than the
    facility's slot count (each label must be a distinct slot)."""
    if var.dims != ("slot", "source_slot") or any(d not in var.coords for d in var.dims):
        raise error(
            MATRIX_FIELD,
            f"{name}: {MATRIX_VARIABLE} has dimensions {var.dims}",
            "use dimensions (slot, source_slot) with slot ids as coordinates",
        )
    if var.dtype.kind not in "iuf":
        raise error(
            MATRIX_FIELD,
            f"{name}: {MATRIX_VARIABLE} holds {var.dtype} values, not numbers",
            "store C per kW as floating-point numbers",
        )
    if max(var.shape) > slots:
        raise error(
            MATRIX_FIELD,
            f"{name}: {MATRIX_VARIABLE} is {var.shape[0]} x {var.shape[1]} but the facility "
            f"has {slots} slots",
            "give one line and one column per slot, at most",
        )


def matrix_from_file(
    name: str, raw: bytes, slot_ids: tuple[str, ...], error: ErrorAt
) -> sparse.csr_array:
    """D from ``thermal.matrix_file``: NetCDF by its .nc or .nc4 suffix, CSV otherwise.
    Kept sparse from the start: a CFD export of a large hall is mostly zeros."""
    index = {s: i for i, s in enumerate(slot_ids)}
    netcdf = Path(name).suffix.lower() in (".nc", ".nc4")
    rows, cols, values = (_netcdf_matrix if netcdf else _csv_matrix)(name, raw, index, error)
    found = np.array(values, dtype=float)
    if not np.isfinite(found).all() or (found < 0).any():
        raise error(
            MATRIX_FIELD,
            f"{name}: recirculation values must be finite and >= 0",
            "give C per kW of air heat, 0 where no exhaust reaches",
        )
    n = len(slot_ids)
    return sparse.csr_array((found, (rows, cols)), shape=(n, n))


def rise_share(rise: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Share of its allowed inlet rise each rack uses: a rack at a 0 K allowance counts as
    full (1.0) while nothing warms it, and as over (inf) once something does."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(allowed > 0, rise / allowed, np.where(rise > 0, np.inf, 1.0))


def inlet_temperatures(
    supply_c: np.ndarray, recirculation: sparse.csr_array | None, slot_air_kw: np.ndarray
) -> np.ndarray:
    """Inlet temperature per slot given the air heat placed in every slot (NaN where
    the zone gives no supply temperature)."""
    rise = recirculation @ slot_air_kw if recirculation is not None else 0.0
    return supply_c + rise
