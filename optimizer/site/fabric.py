"""Preprocessing of the compute fabric: rows, cable geometry, network-rack slots, SU types.

Only an instance with a ``network`` section gets SU rules; without one the catalog's
SU fields are dropped, so the same rack types serve both kinds of study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from optimizer.errors import ErrorAt
from optimizer.instance.schema import Instance, Network
from optimizer.instance.tables import LineProblems, TableProblem, csv_lines
from optimizer.site.arrays import NetworkSettings, RackSpec
from optimizer.site.cabling import CableGeometry, crossings_for_hall, rows_run_along_x


@dataclass(frozen=True)
class Rows:
    slot_row_code: np.ndarray
    row_hall: np.ndarray
    row_order: np.ndarray


def row_codes(slot_hall: tuple[str, ...], slot_row: tuple[str, ...], hall_names: list[str]) -> Rows:
    """Number rows in order of first appearance and halls in instance order (so per-hall
    settings such as cross-aisles find their hall); adjacency is listing order in a hall."""
    codes: dict[tuple[str, str], int] = {}
    halls = {name: i for i, name in enumerate(hall_names)}
    row_hall, row_order = [], []
    per_hall: dict[str, int] = {}
    for hall, row in zip(slot_hall, slot_row, strict=True):
        if (hall, row) not in codes:
            codes[hall, row] = len(codes)
            row_hall.append(halls[hall])
            row_order.append(per_hall.get(hall, 0))
            per_hall[hall] = per_hall.get(hall, 0) + 1
    slot_code = np.array([codes[h, r] for h, r in zip(slot_hall, slot_row, strict=True)])
    return Rows(slot_code, np.array(row_hall), np.array(row_order))


def _distance_matrix(
    table: tuple[str, str], slot_ids: tuple[str, ...], error: ErrorAt
) -> np.ndarray:
    """The (slot x slot) cable lengths of ``network.distance_csv``: a header of slot ids,
    then one line per slot; lines of unknown slots are ignored, bad lines reported at once."""
    field = ("network", "distance_csv")
    path, text = table
    try:
        rows = list(csv_lines(text))
    except TableProblem as exc:
        raise error(field, f"{path}:{exc.line}: {exc.problem}", exc.fix) from None
    header = [c.strip() for c in rows[0][1][1:]] if rows else []
    index = {s: i for i, s in enumerate(slot_ids)}
    missing = [s for s in slot_ids if s not in header]
    repeated = [c for c in header if c in index and header.count(c) > 1]
    if missing or repeated:
        problem = (
            f"no column for slot {missing[0]!r}"
            if missing
            else (f"column {repeated[0]!r} appears twice")
        )
        raise error(field, f"{path}: {problem}", "give one column and one line per slot id")
    matrix = np.full((len(slot_ids), len(slot_ids)), np.nan)
    columns = [index.get(c, -1) for c in header]
    problems = LineProblems(path)
    first_line: dict[str, int] = {}
    for line, cells in rows[1:]:
        slot = cells[0].strip()
        if slot not in index:
            continue
        if slot in first_line:
            problems.add(
                line,
                f"slot {slot!r} has a second line (first at line {first_line[slot]})",
                "give each slot one line",
            )
            continue
        first_line[slot] = line
        try:
            values = [float(c) for c in cells[1:]]
        except ValueError:
            problems.add(line, "a cell is not a number", "write lengths in metres")
            continue
        if len(values) > len(columns) or not all(math.isfinite(v) and v >= 0 for v in values):
            problems.add(
                line,
                "more lengths than columns, or a length negative or not finite",
                "give one finite length >= 0 per column of the header",
            )
            continue
        for col, value in zip(columns, values, strict=False):
            if col >= 0:
                matrix[index[slot], col] = value
    problems.raise_at(error, field)
    gaps = np.argwhere(np.isnan(matrix))
    if len(gaps):
        a, b = gaps[0]
        raise error(
            field,
            f"{path}: no length from {slot_ids[a]} to {slot_ids[b]} "
            f"({len(gaps)} pairs of slots without a length)",
            "give a finite length >= 0 for every pair of slots",
        )
    return matrix


def network_settings(
    instance: Instance,
    distance_table: tuple[str, str] | None,
    slot_ids: tuple[str, ...],
    x_m: np.ndarray,
    y_m: np.ndarray,
    rows: Rows,
    error: ErrorAt,
) -> NetworkSettings | None:
    """Cable geometry and rules, or None when the instance has no network section."""
    net: Network | None = instance.network
    if net is None:
        return None
    hall_names = list(dict.fromkeys(instance.halls))
    unknown = [h for h in net.cross_aisles_m if h not in hall_names]
    if unknown:
        raise error(
            ("network", "cross_aisles_m", unknown[0]),
            f"unknown hall {unknown[0]!r}",
            f"use one of: {', '.join(hall_names)}",
        )
    slot_hall = rows.row_hall[rows.slot_row_code]
    along_x, crossings = [], []
    for h, hall_id in enumerate(hall_names):
        members = slot_hall == h
        on_x = rows_run_along_x(x_m[members], y_m[members], rows.slot_row_code[members])
        along = x_m[members] if on_x else y_m[members]
        along_x.append(on_x)
        crossings.append(
            crossings_for_hall(along, net.end_clearance_m, net.cross_aisles_m.get(hall_id, []))
        )
    matrix = _distance_matrix(distance_table, slot_ids, error) if distance_table else None
    geometry = CableGeometry(
        slot_hall,
        rows.slot_row_code,
        x_m,
        y_m,
        np.array(along_x),
        tuple(crossings),
        net.rise_m + net.slack_m,
        matrix,
    )
    classes = tuple(sorted(net.reach_classes_m.items(), key=lambda item: item[1]))
    spine = (net.spine.x_m, net.spine.y_m, net.spine.reach_m) if net.spine else None
    return NetworkSettings(
        geometry, net.cell_slots, net.su_locality, net.default_reach_m, classes, spine
    )


def network_slots(
    marked: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, settings: NetworkSettings | None
) -> np.ndarray:
    """Slots where a network rack may stand: the marked ones (all when none is marked),
    within reach of the spine when one is given."""
    ok = marked.copy() if marked.any() else np.ones_like(marked)
    if settings is not None and settings.spine is not None:
        ok &= settings.spine_distance(x_m, y_m) <= settings.spine[2] + 1e-9
    return ok


def fabric_rack_types(
    specs: tuple[RackSpec, ...], settings: NetworkSettings | None, error: ErrorAt
) -> tuple[RackSpec, ...]:
    """Drop SU fields without a fabric; with one, check that each SU type's network rack
    exists and has ports."""
    if settings is None:
        return tuple(replace(s, su_size=0, network_rack=None) for s in specs)
    by_name = {s.name: s for s in specs}
    out = []
    for spec in specs:
        if spec.su_size and spec.network_rack is None:
            raise error(
                ("rack_types", spec.name, "network_rack"),
                f"{spec.name} has su_size {spec.su_size} but no network_rack",
                "name the rack type whose switches serve its SUs",
            )
        if spec.network_rack is not None and not spec.su_size:
            spec = replace(spec, network_rack=None)
        if spec.network_rack is not None:
            hub = by_name.get(spec.network_rack)
            if hub is None:
                raise error(
                    ("rack_types", spec.name, "network_rack"),
                    f"network rack type {spec.network_rack!r} is not in rack_types",
                    f"add `{spec.network_rack}: {{}}` under rack_types",
                )
            if hub.su_ports <= 0 or hub.su_size:
                raise error(
                    ("rack_types", hub.name, "su_ports"),
                    f"{hub.name} serves SUs of {spec.name}, so it needs su_ports and no "
                    "su_size of its own",
                    "give su_ports: the number of SUs one network rack serves",
                )
        if spec.reach_m is not None and not math.isfinite(spec.reach_m):
            raise error(("rack_types", spec.name, "reach_m"), "reach must be finite", "give metres")
        out.append(spec)
    return tuple(out)
