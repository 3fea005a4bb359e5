"""The floor-plan table: what NetBox does not hold about a rack's place in the hall.

NetBox knows racks, their location (hall) and power feeds, but not where a rack stands
on the floor, which air zone or CDU group serves it, or what the floor bears. A planner
gives that as one CSV line per rack (``rack`` is the NetBox rack name, ``location`` its
NetBox location when rack names repeat across locations). Every cell is checked here, so
a mistake is reported at its floor-plan line, not later in a generated slot table.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from optimizer.errors import InstanceError, did_you_mean

COLUMNS = (
    "rack",
    "location",
    "row",
    "position",
    "x_m",
    "y_m",
    "air_zone",
    "cdu",
    "liquid",
    "floor_kg",
    "air_kw_max",
    "primary_share",
    "network",
)
_ID = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class FloorPlanLine:
    """One rack's line: its NetBox name and location, the checked cells (strings for
    ids and ``row``, float for numbers, bool for flags, int for ``position``) and its line."""

    rack: str
    location: str | None
    cells: dict[str, str | float | bool | int]
    line: int


def _cell(file: str, line: int, column: str, text: str) -> str | float | bool | int:
    def refuse(what: str) -> InstanceError:
        return InstanceError(file, column, f"{text!r} is not {what}", f"write {what}", line)

    if column in ("liquid", "network"):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise refuse("true or false")
    if column == "position":
        if not text.isdigit() or int(text) < 1:
            raise refuse("a whole number from 1")
        return int(text)
    if column in ("x_m", "y_m", "floor_kg", "air_kw_max", "primary_share"):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if column in ("x_m", "y_m") and not math.isfinite(value):
            raise refuse("a finite number")
        if column == "primary_share" and not 0 <= value <= 1:
            raise refuse("a fraction from 0 to 1")
        if column in ("floor_kg", "air_kw_max") and not (math.isfinite(value) and value > 0):
            raise refuse("a number > 0")
        return value
    if column in ("air_zone", "cdu") and not _ID.match(text):
        raise refuse("an id of letters, digits and _ . : + - (at most 64)")
    return text


def read_floor_plan(path: str | Path) -> list[FloorPlanLine]:
    """Every line of the floor plan, checked; the header names columns of ``COLUMNS``."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(file, "", f"cannot read: {exc}", "save it as UTF-8 CSV") from None
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter=max(",;\t", key=first.count))
    header = [c.strip() for c in next(reader, [])]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown or "rack" not in header or len(set(header)) < len(header):
        problem = (
            f"unknown column {unknown[0]!r}"
            if unknown
            else "no 'rack' column"
            if "rack" not in header
            else "a column appears twice"
        )
        fix = f"columns are {', '.join(COLUMNS)}"
        raise InstanceError(
            file, "header", problem, did_you_mean(unknown[0], COLUMNS, fix) if unknown else fix, 1
        )
    lines: list[FloorPlanLine] = []
    seen: dict[tuple[str | None, str], int] = {}
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        line = reader.line_num
        if len(cells) > len(header):
            raise InstanceError(
                file, "", f"{len(cells)} cells but the header has {len(header)}", "fix it", line
            )
        values = {c: v.strip() for c, v in zip(header, cells, strict=False) if v.strip()}
        if "rack" not in values:
            raise InstanceError(file, "rack", "empty rack name", "name the NetBox rack", line)
        key = (values.get("location"), values["rack"])
        if key in seen:
            raise InstanceError(
                file,
                "rack",
                f"rack {values['rack']!r} appears twice (first at line {seen[key]})",
                "give each rack one line",
                line,
            )
        seen[key] = line
        checked = {
            c: _cell(file, line, c, v) for c, v in values.items() if c not in ("rack", "location")
        }
        lines.append(FloorPlanLine(values["rack"], values.get("location"), checked, line))
    return lines
