"""The facility as flat arrays: every slot, device, CDU, air zone and rack type by index.

The model builder, the independent checker and the layout writer all read this
one preprocessed form, so the instance's compact notation (rows with defaults and
overrides, CSV slot tables, catalog names) is expanded exactly once. Building it
also checks every cross-reference, since only here is each slot fully known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from scipy import sparse

from optimizer.errors import FieldProblem, InstanceError, choices, did_you_mean
from optimizer.instance.catalog import RackSpec, catalog, resolve
from optimizer.instance.loader import LoadedInstance, explain
from optimizer.instance.schema import (
    MAX_COUNT,
    AirZone,
    Cdu,
    Instance,
    Objective,
    SlotProperties,
    Thermal,
)
from optimizer.instance.tables import LineProblems, TableProblem, csv_lines
from optimizer.instance.yamlio import FieldPath
from optimizer.site.fabric import (
    NetworkSettings,
    Rows,
    fabric_rack_types,
    network_settings,
    network_slots,
    row_codes,
)
from optimizer.site.thermal import (
    INLET_LIMIT_C,
    WATER_MAX_C,
    matrix_from_file,
    parametric_matrix,
    plant_kw_per_kw,
)

NO_INDEX = -1

_DIRECTIONS = {"+x": (1.0, 0.0), "-x": (-1.0, 0.0), "+y": (0.0, 1.0), "-y": (0.0, -1.0)}
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
_CSV_COLUMN_OF = {"feeds": "feed_a", "feeds.0": "feed_a", "feeds.1": "feed_b"}
"""Slot fields whose CSV column has another name."""


@dataclass(frozen=True)
class Site:
    """Preprocessed facility and demand. Index -1 means "none"; inf means "no limit"."""

    name: str
    objective: Objective
    sha256: str
    # slots
    slot_ids: tuple[str, ...]
    slot_hall: tuple[str, ...]
    slot_row: tuple[str, ...]
    slot_position: np.ndarray
    slot_x_m: np.ndarray
    slot_y_m: np.ndarray
    slot_liquid: np.ndarray
    slot_cdu: np.ndarray
    slot_air_zone: np.ndarray
    slot_floor_kg: np.ndarray
    slot_air_kw_max: np.ndarray
    slot_feeds: np.ndarray
    """(slot, 2) device indices; column 1 is -1 for single-corded slots."""
    slot_primary_share: np.ndarray
    # power tree
    device_ids: tuple[str, ...]
    device_kind: tuple[str, ...]
    device_parent: np.ndarray
    device_rating_kw: np.ndarray
    device_limit_kw: np.ndarray
    """Continuous limit in normal operation: rating x derating."""
    device_failover_limit_kw: np.ndarray
    device_can_fail: np.ndarray
    # cooling
    cdu_ids: tuple[str, ...]
    cdu_heat_capacity_kw: np.ndarray
    """Usable heat capacity with the redundant units set aside."""
    cdu_flow_capacity_lpm: np.ndarray
    air_zone_ids: tuple[str, ...]
    air_zone_capacity_kw: np.ndarray
    # thermal and facility power
    cdu_supply_temp_c: np.ndarray
    """Facility water supply temperature per CDU group; NaN where not given."""
    air_zone_supply_temp_c: np.ndarray
    """Supply air temperature per zone; NaN where not given (no inlet rule there)."""
    cdu_cooling_kw_per_kw: np.ndarray
    """Cooling power (plant and pumps) per kW of liquid heat, per CDU group."""
    air_zone_cooling_kw_per_kw: np.ndarray
    """Cooling power (plant and fans) per kW of air heat, per zone."""
    type_inlet_limit_c: np.ndarray
    """Warmest inlet air each rack type may see (its ASHRAE class)."""
    type_water_max_c: np.ndarray
    """Warmest facility water each rack type accepts; inf when unlimited."""
    recirculation: sparse.csr_array | None
    """D (slot x source slot, C per kW of air heat); None without a recirculation model."""
    utility_limit_kw: float | None
    # demand
    rack_types: tuple[RackSpec, ...]
    demand_min: np.ndarray
    demand_max: np.ndarray
    """Maximum count per rack type; -1 when unbounded."""
    installed: dict[int, int]
    """Slot index -> rack type index of racks already on the floor."""
    # rows and fabric
    slot_row_code: np.ndarray
    """Row number per slot, unique across halls, in instance order."""
    row_hall: np.ndarray
    """Hall number per row code."""
    row_order: np.ndarray
    """Position of each row among its hall's rows, as listed (for adjacency)."""
    slot_network_ok: np.ndarray
    """Whether a network rack may stand in the slot (marked, and within spine reach)."""
    network: NetworkSettings | None = None

    def network_type(self, t: int) -> int:
        """Index of the network rack type serving SU type t; -1 when t has no SUs."""
        name = self.rack_types[t].network_rack
        if self.network is None or name is None:
            return NO_INDEX
        return next(i for i, spec in enumerate(self.rack_types) if spec.name == name)

    def is_network_type(self, t: int) -> bool:
        return any(self.network_type(u) == t for u in range(len(self.rack_types)))

    def reach_m(self, t: int) -> float:
        reach = self.rack_types[t].reach_m
        return reach if reach is not None else self.network.default_reach_m

    @property
    def n_slots(self) -> int:
        return len(self.slot_ids)

    @property
    def slot_supply_temp_c(self) -> np.ndarray:
        """Supply air temperature at each slot (its zone's); NaN where not given."""
        return self.air_zone_supply_temp_c[self.slot_air_zone]

    def slot_cooling_kw_per_kw(self) -> tuple[np.ndarray, np.ndarray]:
        """Cooling power per kW of (liquid heat, air heat) at each slot."""
        liquid = np.nan_to_num(_per_slot(self.cdu_cooling_kw_per_kw, self.slot_cdu))
        return liquid, self.air_zone_cooling_kw_per_kw[self.slot_air_zone]

    def self_recirculation(self) -> np.ndarray:
        """D[i, i] per slot: the share of a rack's own exhaust back at its inlet."""
        if self.recirculation is None:
            return np.zeros(self.n_slots)
        return self.recirculation.diagonal()

    def device_path(self, device: int) -> list[int]:
        """The device and all its ancestors up to the root of the power tree."""
        path = []
        while device != NO_INDEX:
            path.append(device)
            device = int(self.device_parent[device])
        return path

    def on_path(self) -> np.ndarray:
        """(device, device) matrix: [a, d] is 1 when power fed from device a flows through d
        (d is a or one of its ancestors)."""
        n = len(self.device_ids)
        on_path = np.zeros((n, n))
        for a in range(n):
            on_path[a, self.device_path(a)] = 1.0
        return on_path

    def slot_rules(self, t: int) -> dict[str, np.ndarray]:
        """Per-slot masks of the rules a rack of type t must pass, in the order they are
        explained: a liquid loop if it needs one, water no warmer than its class, the floor
        rating, the air-heat limit, an inlet within its class even with no neighbours
        (supply air plus its own recirculated exhaust), and for a network rack a network
        slot. NaN temperatures (not given) pass."""
        spec = self.rack_types[t]
        has_loop = self.slot_liquid & (self.slot_cdu != NO_INDEX)
        water = _per_slot(self.cdu_supply_temp_c, np.where(has_loop, self.slot_cdu, NO_INDEX))
        alone = self.slot_supply_temp_c + self.self_recirculation() * spec.air_kw
        return {
            "cooling": has_loop | (not spec.needs_liquid),
            "water": ~(water > self.type_water_max_c[t] + 1e-9) | (not spec.needs_liquid),
            "floor": spec.weight_kg <= self.slot_floor_kg,
            "air": spec.air_kw <= self.slot_air_kw_max + 1e-9,
            "inlet": ~(alone > self.type_inlet_limit_c[t] + 1e-9),
            "network": self.slot_network_ok | (not self.is_network_type(t)),
        }

    def eligible(self) -> np.ndarray:
        """(slot, rack type) mask: which types a slot may take by the rules of
        :meth:`slot_rules`."""
        return (
            np.array(
                [
                    np.logical_and.reduce(list(self.slot_rules(t).values()))
                    for t in range(len(self.rack_types))
                ]
            )
            .reshape(len(self.rack_types), self.n_slots)
            .T
        )


def _per_slot(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` per slot, NaN where the index is -1 (no CDU)."""
    out = np.full(len(index), np.nan)
    known = index != NO_INDEX
    out[known] = values[index[known]]
    return out


@dataclass(frozen=True)
class _Source:
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


@dataclass
class _SlotRecord:
    id: str
    hall: str
    row: str
    position: int
    x: float
    y: float
    props: SlotProperties
    source: _Source
    axis: tuple[float, float] | None = None
    """Unit vector along the slot's row (from the row's ``direction``); None for a
    slot-table slot, whose row axis is taken from its row's first and last slot."""


def _row_slots(instance: Instance) -> list[_SlotRecord]:
    records = []
    for hall_id, hall in instance.halls.items():
        for row_id, row in hall.rows.items():
            dx, dy = _DIRECTIONS[row.direction]
            defaults = ("halls", hall_id, "rows", row_id, "slot")
            for position in range(1, row.slots + 1):
                props, source = row.slot, _Source(defaults)
                if position in row.overrides:
                    override = row.overrides[position].model_dump(exclude_none=True)
                    props = SlotProperties.model_validate(
                        {**props.model_dump(exclude_none=True), **override}
                    )
                    source = _Source(
                        defaults,
                        ("halls", hall_id, "rows", row_id, "overrides", str(position)),
                        frozenset(override),
                    )
                offset = (position - 1) * row.pitch_m
                records.append(
                    _SlotRecord(
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


class _Builder:
    """Resolves references; every failure is an InstanceError at the field that holds it."""

    def __init__(self, loaded: LoadedInstance) -> None:
        self.loaded = loaded
        self.instance = loaded.instance

    def error(self, path: FieldPath, problem: str, fix: str) -> InstanceError:
        return self.loaded.locate_error(path, problem, fix)

    def slot_error(self, source: _Source, field: str, problem: str, fix: str) -> InstanceError:
        """An error at one field of a slot (``feeds.1`` for the second feed): its CSV cell,
        or the override or row default that set it."""
        if source.table is not None:
            file, line = source.table
            return InstanceError(file, _CSV_COLUMN_OF.get(field, field), problem, fix, line)
        parts = tuple(field.split(".")) if field else ()
        base = source.path
        if source.override is not None and parts and parts[0] in source.override_fields:
            base = source.override
        return self.error((*base, *parts), problem, fix)

    def check_power_tree(self, device_index: dict[str, int]) -> np.ndarray:
        devices = self.instance.power.devices
        parent = np.full(len(devices), NO_INDEX, dtype=np.int64)
        for i, (device_id, device) in enumerate(devices.items()):
            field = ("power", "devices", device_id, "parent")
            if device.parent is None:
                continue
            if device.parent == device_id:
                raise self.error(
                    field,
                    f"device {device_id} is its own parent",
                    "name the device that feeds it, or drop parent for a root device",
                )
            if device.parent not in device_index:
                raise self.error(
                    field,
                    f"unknown device {device.parent!r}",
                    did_you_mean(
                        device.parent,
                        devices,
                        "name a device defined under power.devices, or drop parent for a root",
                    ),
                )
            parent[i] = device_index[device.parent]
        for start in range(len(devices)):
            cycle = _cycle_from(parent, start)
            if cycle:
                ids = [list(devices)[d] for d in cycle]
                raise self.error(
                    ("power", "devices", ids[0], "parent"),
                    f"cycle in the power tree: {' -> '.join(ids)}",
                    "every chain of parents must end at a root device without parent",
                )
        return parent

    def unknown_rack_type(self, field: FieldPath, name: str, known: Iterable[str]) -> InstanceError:
        """A name that is not among the instance's rack types (maybe a catalog name)."""
        if name in catalog():
            fix = f"add {name}: {{}} under rack_types to use the catalog entry"
        else:
            fix = did_you_mean(name, known, f"use one of the rack_types: {choices(known)}")
        return self.error(field, f"unknown rack type {name!r}", fix)

    def resolve_rack_types(self) -> tuple[RackSpec, ...]:
        specs = []
        for name, entry in self.instance.rack_types.items():
            try:
                spec = resolve(name, entry)
            except FieldProblem as exc:
                field = ("rack_types", name, *([exc.field] if exc.field else []))
                raise self.error(field, exc.problem, exc.fix) from None
            if spec.needs_liquid and spec.flow_lpm_per_kw <= 0:
                raise self.error(
                    ("rack_types", name, "flow_lpm_per_kw"),
                    "a liquid-cooled rack needs coolant flow > 0",
                    "set flow_lpm_per_kw (about 1.5 L/min per kW at a 10 K rise)",
                )
            specs.append(spec)
        return tuple(specs)

    def table_slots(self, hall_id: str, file: str, text: str) -> list[_SlotRecord]:
        """The slots of one hall's CSV table; errors name the file, line and column, and
        every bad line is reported at once."""
        lines = csv_lines(text)
        problems = LineProblems(file)
        records: list[_SlotRecord] = []
        try:
            header = [column.strip() for column in next(lines, (1, []))[1]]
            self.check_header(file, header)
            for line, cells in lines:
                source = _Source(("halls", hall_id, "slots_csv"), table=(file, line))
                with problems.line():
                    if len(cells) > len(header):
                        raise self.slot_error(
                            source,
                            "",
                            f"{len(cells)} cells but the header has {len(header)} columns",
                            "remove the extra cells, or name the column in the header",
                        )
                    values = {
                        c: v.strip() for c, v in zip(header, cells, strict=False) if v.strip()
                    }
                    records.append(self.table_slot(hall_id, source, values, len(records) + 1))
        except TableProblem as exc:
            problems.add(exc.line, exc.problem, exc.fix)
        problems.raise_in_table()
        return records

    def check_header(self, file: str, header: list[str]) -> None:
        unknown = [c for c in header if c not in CSV_COLUMNS]
        repeated = [c for c in header if header.count(c) > 1]
        if unknown or repeated or "id" not in header:
            if unknown:
                problem = f"unknown column {unknown[0]!r}"
            elif repeated:
                problem = f"column {repeated[0]!r} appears twice"
            else:
                problem = "no 'id' column"
            fix = f"columns are {', '.join(CSV_COLUMNS)}"
            if unknown:
                fix = did_you_mean(unknown[0], CSV_COLUMNS, fix)
            raise InstanceError(file, "header", problem, fix, 1)

    def table_slot(
        self, hall_id: str, source: _Source, values: dict[str, str], count: int
    ) -> _SlotRecord:
        if "id" not in values:
            raise self.slot_error(source, "id", "empty slot id", "give every slot an id")
        try:
            props = SlotProperties.from_table(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = tuple(str(p) for p in error["loc"])
            raise self.slot_error(source, ".".join(loc), *explain(error, loc)) from None
        return _SlotRecord(
            values["id"],
            hall_id,
            values.get("row", ""),
            int(self.table_number(source, values, "position", count)),
            self.table_number(source, values, "x_m", 0.0),
            self.table_number(source, values, "y_m", 0.0),
            props,
            source,
        )

    def table_number(
        self, source: _Source, values: dict[str, str], column: str, default: float
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
            raise self.slot_error(source, column, f"{text!r} is not a {kind}", f"write a {kind}")
        return value

    def slot_records(self) -> list[_SlotRecord]:
        records = _row_slots(self.instance)
        for hall_id, (file, text) in self.loaded.slot_tables.items():
            records.extend(self.table_slots(hall_id, file, text))
        seen: dict[str, _Source] = {}
        for record in records:
            if record.id in seen:
                raise self.slot_error(
                    record.source,
                    "id" if record.source.table else "",
                    f"duplicate slot id {record.id!r}, already defined by "
                    f"{seen[record.id].describe()}",
                    "give every slot a unique id (rows generate HALL-ROW-NN ids)",
                )
            seen[record.id] = record.source
        if not records:
            raise self.error(("halls",), "the facility has no slots", "add rows or a slots_csv")
        return records

    def lookup(
        self, record: _SlotRecord, name: str | None, table: dict[str, int], what: str, field: str
    ) -> int:
        if name is None:
            return NO_INDEX
        if name not in table:
            raise self.slot_error(
                record.source,
                field,
                f"slot {record.id} names unknown {what} {name!r}",
                did_you_mean(name, table),
            )
        return table[name]


def _cycle_from(parent: np.ndarray, start: int) -> list[int]:
    """The cycle reached by following parents from ``start`` (first node repeated at the
    end), or an empty list when the chain ends at a root."""
    order: list[int] = []
    position: dict[int, int] = {}
    node = start
    while node != NO_INDEX:
        if node in position:
            return [*order[position[node] :], node]
        position[node] = len(order)
        order.append(node)
        node = int(parent[node])
    return []


def build_site(loaded: LoadedInstance) -> Site:
    """Expand and cross-check the instance into a :class:`Site`."""
    builder = _Builder(loaded)
    inst = loaded.instance
    device_index = {d: i for i, d in enumerate(inst.power.devices)}
    cdu_index = {c: i for i, c in enumerate(inst.cooling.cdus)}
    zone_index = {z: i for i, z in enumerate(inst.cooling.air_zones)}
    parent = builder.check_power_tree(device_index)
    devices = list(inst.power.devices.values())
    rating = np.array([d.rating_kw for d in devices])
    derating = np.array(
        [d.derating if d.derating is not None else inst.power.derating for d in devices]
    )
    limit = rating * derating
    failover = np.array(
        [
            d.failover_limit_kw if d.failover_limit_kw is not None else lim
            for d, lim in zip(devices, limit, strict=True)
        ]
    )
    for device_id, lim, fo in zip(inst.power.devices, limit, failover, strict=True):
        if fo < lim - 1e-9:
            raise builder.error(
                ("power", "devices", device_id, "failover_limit_kw"),
                f"failover limit {fo:g} kW is below the normal limit {lim:g} kW",
                "a device may carry at least its normal limit while another device is out",
            )

    records = builder.slot_records()
    n = len(records)
    feeds = np.full((n, 2), NO_INDEX, dtype=np.int64)
    cdu = np.full(n, NO_INDEX, dtype=np.int64)
    zone = np.full(n, NO_INDEX, dtype=np.int64)
    liquid = np.zeros(n, dtype=bool)
    for i, rec in enumerate(records):
        props = rec.props
        if not props.feeds:
            raise builder.slot_error(
                rec.source,
                "feeds",
                f"slot {rec.id} has no power feeds",
                "give feeds: [A-side device, B-side device]",
            )
        if props.air_zone is None:
            raise builder.slot_error(
                rec.source,
                "air_zone",
                f"slot {rec.id} has no air zone",
                "give air_zone: every rack rejects some heat to air",
            )
        for k, feed in enumerate(props.feeds):
            feeds[i, k] = builder.lookup(rec, feed, device_index, "device", f"feeds.{k}")
        cdu[i] = builder.lookup(rec, props.cdu, cdu_index, "CDU", "cdu")
        zone[i] = builder.lookup(rec, props.air_zone, zone_index, "air zone", "air_zone")
        liquid[i] = bool(props.liquid) if props.liquid is not None else props.cdu is not None
        if liquid[i] and props.cdu is None:
            raise builder.slot_error(
                rec.source,
                "cdu",
                f"slot {rec.id} is liquid but names no CDU",
                "add cdu: the CDU whose loop reaches it, or set liquid: false",
            )
        if props.liquid is False and props.cdu is not None:
            raise builder.slot_error(
                rec.source,
                "liquid",
                f"slot {rec.id} names CDU {props.cdu} but liquid: false",
                "drop the cdu or set liquid: true",
            )
        if len(props.feeds) == 2 and _shares_path(parent, feeds[i, 0], feeds[i, 1]):
            raise builder.slot_error(
                rec.source,
                "feeds.1",
                f"slot {rec.id}: feed {props.feeds[1]} is upstream or downstream of "
                f"feed {props.feeds[0]}",
                "the two feeds of a slot must be on separate branches of the power tree",
            )

    slot_ids = tuple(r.id for r in records)
    x_m = np.array([r.x for r in records])
    y_m = np.array([r.y for r in records])
    rows = row_codes(
        tuple(r.hall for r in records), tuple(r.row for r in records), list(inst.halls)
    )
    network = network_settings(inst, loaded.distance_table, slot_ids, x_m, y_m, rows, builder.error)
    marked = np.array([bool(r.props.network) for r in records])
    specs = fabric_rack_types(builder.resolve_rack_types(), network, builder.error)
    type_index = {t.name: i for i, t in enumerate(specs)}
    hub_names = {t.network_rack for t in specs if t.network_rack}
    demand_min = np.zeros(len(specs), dtype=np.int64)
    demand_max = np.zeros(len(specs), dtype=np.int64)
    for name in hub_names - set(inst.demand):
        demand_max[type_index[name]] = NO_INDEX  # network racks: as many as the SUs need
    for name, entry in inst.demand.items():
        if name not in type_index:
            raise builder.unknown_rack_type(("demand", name), name, type_index)
        demand_min[type_index[name]] = entry.min
        demand_max[type_index[name]] = NO_INDEX if entry.max is None else entry.max

    cdus = list(inst.cooling.cdus.values())
    zones = list(inst.cooling.air_zones.values())
    thermal = inst.thermal or Thermal()
    zone_supply = np.array([_or_nan(z.supply_temp_c) for z in zones])
    recirculation = _recirculation(builder, thermal, slot_ids, records, rows, x_m, y_m)
    _check_supply_given(builder, recirculation, zone, zone_supply)
    _check_objective(builder, demand_min)
    site = Site(
        name=inst.name,
        objective=inst.objective,
        sha256=loaded.sha256,
        slot_ids=slot_ids,
        slot_hall=tuple(r.hall for r in records),
        slot_row=tuple(r.row for r in records),
        slot_position=np.array([r.position for r in records], dtype=np.int64),
        slot_x_m=x_m,
        slot_y_m=y_m,
        slot_liquid=liquid,
        slot_cdu=cdu,
        slot_air_zone=zone,
        slot_floor_kg=np.array([r.props.floor_kg or np.inf for r in records]),
        slot_air_kw_max=np.array([r.props.air_kw_max or np.inf for r in records]),
        slot_feeds=feeds,
        slot_primary_share=np.array(
            [
                (r.props.primary_share if r.props.primary_share is not None else 0.5)
                if len(r.props.feeds or ()) == 2
                else 1.0
                for r in records
            ]
        ),
        device_ids=tuple(inst.power.devices),
        device_kind=tuple(d.kind for d in devices),
        device_parent=parent,
        device_rating_kw=rating,
        device_limit_kw=limit,
        device_failover_limit_kw=failover,
        device_can_fail=np.array([d.can_fail for d in devices], dtype=bool),
        cdu_ids=tuple(inst.cooling.cdus),
        cdu_heat_capacity_kw=np.array([c.unit_kw * (c.units - c.redundant_units) for c in cdus]),
        cdu_flow_capacity_lpm=np.array(
            [c.unit_flow_lpm * (c.units - c.redundant_units) for c in cdus]
        ),
        air_zone_ids=tuple(inst.cooling.air_zones),
        air_zone_capacity_kw=np.array([z.crah_kw * (z.units - z.redundant_units) for z in zones]),
        cdu_supply_temp_c=np.array([_or_nan(c.supply_temp_c) for c in cdus]),
        air_zone_supply_temp_c=zone_supply,
        cdu_cooling_kw_per_kw=_plant_factors(builder, cdus, air=False),
        air_zone_cooling_kw_per_kw=_plant_factors(builder, zones, air=True),
        type_inlet_limit_c=np.array(
            [INLET_LIMIT_C[t.inlet_class or thermal.inlet_class] for t in specs]
        ),
        type_water_max_c=np.array(
            [WATER_MAX_C[t.water_class] if t.water_class else np.inf for t in specs]
        ),
        recirculation=recirculation,
        utility_limit_kw=inst.facility.utility_limit_kw,
        rack_types=specs,
        demand_min=demand_min,
        demand_max=demand_max,
        installed={},
        slot_row_code=rows.slot_row_code,
        row_hall=rows.row_hall,
        row_order=rows.row_order,
        slot_network_ok=network_slots(marked, x_m, y_m, network),
        network=network,
    )
    installed = _installed(builder, site, type_index)
    _check_demand_placeable(builder, site, installed)
    return Site(**{**site.__dict__, "installed": installed})


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _plant_factors(builder: _Builder, groups: list[Cdu] | list[AirZone], air: bool) -> np.ndarray:
    """Cooling power per kW of heat for each CDU group or air zone (optimizer.site.thermal)."""
    facility = builder.instance.facility
    try:
        return np.array(
            [plant_kw_per_kw(facility, g.supply_temp_c, g.cooling_kw_per_kw, air) for g in groups]
        )
    except FieldProblem as exc:
        raise builder.error(("facility", "cop_curve"), exc.problem, exc.fix) from None


def _recirculation(
    builder: _Builder,
    thermal: Thermal,
    slot_ids: tuple[str, ...],
    records: list[_SlotRecord],
    rows: Rows,
    x_m: np.ndarray,
    y_m: np.ndarray,
) -> sparse.csr_array | None:
    """D from the matrix file or the parametric model; None when neither is given."""
    if builder.loaded.recirculation_file is not None:
        name, raw = builder.loaded.recirculation_file
        return matrix_from_file(name, raw, slot_ids, builder.error)
    if not thermal.recirculation:
        return None
    for hall in thermal.recirculation:
        if hall not in builder.instance.halls:
            raise builder.error(
                ("thermal", "recirculation", hall),
                f"unknown hall {hall!r}",
                did_you_mean(hall, builder.instance.halls),
            )
    slot_hall = tuple(r.hall for r in records)
    axes = [r.axis for r in records]
    return parametric_matrix(thermal.recirculation, slot_hall, rows.slot_row_code, x_m, y_m, axes)


def _check_supply_given(
    builder: _Builder, recirculation: sparse.csr_array | None, zone: np.ndarray, supply: np.ndarray
) -> None:
    """A slot under a recirculation model needs its zone's supply temperature: the inlet
    temperature is the supply plus the recirculated heat."""
    if recirculation is None:
        return
    receiving = np.flatnonzero(np.diff(recirculation.indptr))
    missing = [int(z) for z in np.unique(zone[receiving]) if np.isnan(supply[z])]
    if missing:
        zone_id = list(builder.instance.cooling.air_zones)[missing[0]]
        raise builder.error(
            ("cooling", "air_zones", zone_id),
            f"air zone {zone_id} has slots under the recirculation model but no supply temperature",
            "give supply_temp_c: the CRAH supply air temperature, e.g. 20",
        )


def _check_objective(builder: _Builder, minimum: np.ndarray) -> None:
    """Least facility power is only meaningful for a required set of racks."""
    if builder.instance.objective.minimizes and not minimum.any():
        raise builder.error(
            ("objective",),
            "objective min_facility_kw needs racks to place, but no demand has a min",
            "give demand.<rack type>.min for the racks required, or maximize instead",
        )


def _shares_path(parent: np.ndarray, a: int, b: int) -> bool:
    """True when one device lies on the other's path to the root."""

    def path(d: int) -> set[int]:
        out = set()
        while d != NO_INDEX:
            out.add(d)
            d = int(parent[d])
        return out

    return a in path(b) or b in path(a)


def _installed(builder: _Builder, site: Site, type_index: dict[str, int]) -> dict[int, int]:
    slot_index = {s: i for i, s in enumerate(site.slot_ids)}
    eligible = site.eligible()
    installed: dict[int, int] = {}
    counts = np.zeros(len(site.rack_types), dtype=np.int64)
    for slot_id, type_name in builder.instance.installed.items():
        field = ("installed", slot_id)
        if slot_id not in slot_index:
            raise builder.error(
                field,
                f"unknown slot {slot_id!r}",
                did_you_mean(
                    slot_id,
                    slot_index,
                    "use a slot id of the form HALL-ROW-NN or one from a slots_csv",
                ),
            )
        if type_name not in type_index:
            raise builder.unknown_rack_type(field, type_name, type_index)
        s, t = slot_index[slot_id], type_index[type_name]
        if not eligible[s, t]:
            only = np.arange(site.n_slots) == s
            raise builder.error(field, *_misfit(site, t, only, f"slot {slot_id}"))
        installed[s] = t
        counts[t] += 1
    for t, spec in enumerate(site.rack_types):
        if spec.name not in builder.instance.demand and not site.is_network_type(t):
            site.demand_max[t] = counts[t]  # not demanded: only the installed ones
        elif 0 <= site.demand_max[t] < counts[t]:
            raise builder.error(
                ("demand", spec.name, "max"),
                f"{counts[t]} {spec.name} racks are installed but max is {site.demand_max[t]}",
                "raise max to at least the installed count",
            )
    return installed


def _check_demand_placeable(builder: _Builder, site: Site, installed: dict[int, int]) -> None:
    """A demanded rack type that fits no slot at all is a contradiction, not an optimum of 0."""
    eligible = site.eligible()
    every = np.ones(site.n_slots, dtype=bool)
    for t, spec in enumerate(site.rack_types):
        demanded = site.demand_max[t] != 0 and spec.name in builder.instance.demand
        if demanded and not eligible[:, t].any():
            raise builder.error(("demand", spec.name), *_misfit(site, t, every, "any slot"))


def _misfit(site: Site, t: int, slots: np.ndarray, scope: str) -> tuple[str, str]:
    """Problem and fix saying why rack type ``t`` fits none of ``slots`` (a mask): the first
    limit that rules them all out, in the order of :meth:`Site.eligible`. ``scope`` names
    the slots ("slot H1-A-01", "any slot")."""
    spec = site.rack_types[t]
    rules = site.slot_rules(t)
    cooled = slots & rules["cooling"]
    if not cooled.any():
        return (
            f"{spec.name} is liquid-cooled but no liquid loop reaches {scope}",
            "give slots liquid: true and a cdu, or use an air-cooled rack type",
        )
    watered = cooled & rules["water"]
    if not watered.any():
        water = site.cdu_supply_temp_c[site.slot_cdu[cooled]]
        return (
            f"{spec.name} accepts facility water up to {site.type_water_max_c[t]:g} C "
            f"({spec.water_class}), but the loops reaching {scope} supply "
            f"{np.nanmin(water):g} C or warmer",
            "lower the CDU's supply_temp_c, or give the rack type a warmer water_class",
        )
    carried = watered & rules["floor"]
    if not carried.any():
        which = " that can cool it" if watered.sum() < slots.sum() else ""
        return (
            f"{spec.name} weighs {spec.weight_kg:g} kg, more than the floor rating of "
            f"{scope}{which} (at most {site.slot_floor_kg[watered].max():g} kg)",
            "raise floor_kg where the floor is reinforced, or use a lighter rack type",
        )
    aired = carried & rules["air"]
    if not aired.any():
        which = " that can cool and carry it" if carried.sum() < slots.sum() else ""
        return (
            f"{spec.name} rejects {spec.air_kw:g} kW to air, more than the air_kw_max of "
            f"{scope}{which} (at most {site.slot_air_kw_max[carried].max():g} kW)",
            "raise air_kw_max where the airflow allows, or use a rack type with less air heat",
        )
    if not (aired & rules["inlet"]).any():
        alone = site.slot_supply_temp_c + site.self_recirculation() * spec.air_kw
        return (
            f"{spec.name} would breathe {np.nanmin(alone[aired]):.1f} C or warmer in {scope} "
            f"even with no neighbours, above its inlet limit {site.type_inlet_limit_c[t]:g} C",
            "lower the zone's supply_temp_c, add containment, or rate the rack type for a "
            "warmer inlet_class",
        )
    return (
        f"{spec.name} is a network rack but {scope} may not take one "
        "(network: true, within reach of the spine)",
        "mark suitable slots network: true, or move the spine",
    )
