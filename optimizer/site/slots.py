"""Every slot of the facility, expanded once from the instance's compact notation.

A hall's slots come from its rows (the row's ``slot`` defaults, each position's
``overrides`` over them) and from its ``slots_csv`` table (one slot per line). Each
expanded slot remembers where it was defined, so an error about one of its fields
points at the override, the row default or the CSV cell that set it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from optimizer.errors import ErrorAt, InstanceError
from optimizer.instance.loader import LoadedInstance, explain
from optimizer.instance.schema import MAX_COUNT, Instance, SlotProperties
from optimizer.instance.tables import LineProblems, TableProblem, check_header, csv_lines
from optimizer.instance.yamlio import FieldPath

DIRECTIONS = {"+x": (1.0, 0.0), "-x": (-1.0, 0.0), "+y": (0.0, 1.0), "-y": (0.0, -1.0)}
"""Unit vector of each row ``direction``."""
CSV_COLUMNS = (
    "id",
    "row",
    "position",
    "x_m",
    "y_m",
    "liquid",
    "cdu",
    "air_zone",
    "floor_kg",
    "air_kw_max",
    "feed_a",
    "feed_b",
    "primary_share",
    "network",
)
"""The columns a slot table may have (docs/instance-format.md, section 5.5)."""
_CSV_COLUMN_OF = {"feeds": "feed_a", "feeds.0": "feed_a", "feeds.1": "feed_b"}
"""Slot fields whose CSV column has another name."""


@dataclass(frozen=True)
class SlotSource:
    """Where a slot was defined, so an error about one of its fields points there.

    A row slot takes each field from the row's ``slot`` defaults unless the position's
    override sets it; a slot-table slot is one line of a CSV file.
    """

    path: FieldPath
    """The row's ``slot`` defaults, or the hall's ``slots_csv`` for a table slot."""
    override: FieldPath | None = None
    override_fields: frozenset[str] = frozenset()
    table: tuple[str, int] | None = None
    """(CSV file, line) of a slot-table slot."""

    def describe(self) -> str:
        if self.table is not None:
            return f"line {self.table[1]} of {Path(self.table[0]).name}"
        return "row " + ".".join(self.path[:4])

    def error(self, field: str, problem: str, fix: str, error: ErrorAt) -> InstanceError:
        """An error at one field of the slot (``feeds.1`` for the second feed): its CSV
        cell, or the override or row default that set it (located by ``error``)."""
        if self.table is not None:
            file, line = self.table
            return InstanceError(file, _CSV_COLUMN_OF.get(field, field), problem, fix, line)
        parts = tuple(field.split(".")) if field else ()
        base = self.path
        if self.override is not None and parts and parts[0] in self.override_fields:
            base = self.override
        return error((*base, *parts), problem, fix)


@dataclass
class SlotRecord:
    """One expanded slot, before its names are resolved to indices."""

    id: str
    hall: str
    row: str
    position: int
    x: float
    y: float
    props: SlotProperties
    source: SlotSource
    axis: tuple[float, float] | None = None
    """Unit vector along the slot's row (from the row's ``direction``); None for a
    slot-table slot, whose row axis is taken from its row's first and last slot."""


def slot_records(loaded: LoadedInstance) -> list[SlotRecord]:
    """Every slot in instance order: each hall's rows, then each hall's table. Slot
    ids must be unique across all of them."""
    records = _row_slots(loaded.instance)
    for hall_id, (file, text) in loaded.slot_tables.items():
        records.extend(_table_slots(hall_id, file, text, loaded.locate_error))
    seen: dict[str, SlotSource] = {}
    for record in records:
        if record.id in seen:
            raise record.source.error(
                "id" if record.source.table else "",
                f"duplicate slot id {record.id!r}, already defined by {seen[record.id].describe()}",
                "give every slot a unique id (rows generate HALL-ROW-NN ids)",
                loaded.locate_error,
            )
        seen[record.id] = record.source
    if not records:
        raise loaded.locate_error(
            ("halls",), "the facility has no slots", "add rows or a slots_csv"
        )
    return records


def _row_slots(instance: Instance) -> list[SlotRecord]:
    records = []
    for hall_id, hall in instance.halls.items():
        for row_id, row in hall.rows.items():
            dx, dy = DIRECTIONS[row.direction]
            defaults = ("halls", hall_id, "rows", row_id, "slot")
            for position in range(1, row.slots + 1):
                props, source = row.slot, SlotSource(defaults)
                if position in row.overrides:
                    override = row.overrides[position].model_dump(exclude_none=True)
                    props = SlotProperties.model_validate(
                        {**props.model_dump(exclude_none=True), **override}
                    )
                    source = SlotSource(
                        defaults,
                        ("halls", hall_id, "rows", row_id, "overrides", str(position)),
                        frozenset(override),
                    )
                offset = (position - 1) * row.pitch_m
                records.append(
                    SlotRecord(
                        f"{hall_id}-{row_id}-{position:02d}",
                        hall_id,
                        row_id,
                        position,
                        row.origin_m[0] + dx * offset,
                        row.origin_m[1] + dy * offset,
                        props,
                        source,
                        (dx, dy),
                    )
                )
    return records


def _table_slots(hall_id: str, file: str, text: str, error: ErrorAt) -> list[SlotRecord]:
    """The slots of one hall's CSV table; errors name the file, line and column, and
    every bad line is reported at once."""
    lines = csv_lines(text)
    problems = LineProblems(file)
    records: list[SlotRecord] = []
    try:
        header = [column.strip() for column in next(lines, (1, []))[1]]
        check_header(file, header, CSV_COLUMNS)
        for line, cells in lines:
            source = SlotSource(("halls", hall_id, "slots_csv"), table=(file, line))
            with problems.line():
                if len(cells) > len(header):
                    raise source.error(
                        "",
                        f"{len(cells)} cells but the header has {len(header)} columns",
                        "remove the extra cells, or name the column in the header",
                        error,
                    )
                values = {c: v.strip() for c, v in zip(header, cells, strict=False) if v.strip()}
                records.append(_table_slot(hall_id, source, values, len(records) + 1, error))
    except TableProblem as exc:
        problems.add(exc.line, exc.problem, exc.fix)
    problems.raise_in_table()
    return records


def _table_slot(
    hall_id: str, source: SlotSource, values: dict[str, str], count: int, error: ErrorAt
) -> SlotRecord:
    if "id" not in values:
        raise source.error("id", "empty slot id", "give every slot an id", error)
    try:
        props = SlotProperties.from_table(values)
    except ValidationError as exc:
        details = exc.errors()[0]
        loc = tuple(str(p) for p in details["loc"])
        raise source.error(".".join(loc), *explain(details, loc), error) from None
    return SlotRecord(
        values["id"],
        hall_id,
        values.get("row", ""),
        int(_table_number(source, values, "position", count, error)),
        _table_number(source, values, "x_m", 0.0, error),
        _table_number(source, values, "y_m", 0.0, error),
        props,
        source,
    )


def _table_number(
    source: SlotSource, values: dict[str, str], column: str, default: float, error: ErrorAt
) -> float:
    """A finite number from a CSV cell, or ``default`` if empty; ``position`` is a
    whole number counted from 1 like a row's positions (and small enough for int64)."""
    text = values.get(column)
    if text is None:
        return default
    whole = column == "position"
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (whole and not 1 <= value <= MAX_COUNT):
        kind = f"whole number from 1 to {MAX_COUNT}" if whole else "finite number"
        raise source.error(column, f"{text!r} is not a {kind}", f"write a {kind}", error)
    return value
