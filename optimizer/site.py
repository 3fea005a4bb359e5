"""The facility as flat arrays: every slot, device, CDU, air zone and rack type by index.

The model builder, the independent checker and the layout writer all read this
one preprocessed form, so the instance's compact notation (rows with defaults and
overrides, CSV slot tables, catalog names) is expanded exactly once. Building it
also checks every cross-reference, since only here is each slot fully known.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from optimizer.catalog import RackSpec, resolve
from optimizer.errors import InstanceError
from optimizer.loader import LoadedInstance
from optimizer.schema import Instance, Objective, SlotProperties

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
)


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
    # facility
    utility_limit_kw: float | None
    cooling_kw_per_liquid_kw: float
    cooling_kw_per_air_kw: float
    # demand
    rack_types: tuple[RackSpec, ...]
    demand_min: np.ndarray
    demand_max: np.ndarray
    """Maximum count per rack type; -1 when unbounded."""
    installed: dict[int, int]
    """Slot index -> rack type index of racks already on the floor."""

    @property
    def n_slots(self) -> int:
        return len(self.slot_ids)

    def device_path(self, device: int) -> list[int]:
        """The device and all its ancestors up to the root of the power tree."""
        path = []
        while device != NO_INDEX:
            path.append(device)
            device = int(self.device_parent[device])
        return path

    def eligible(self) -> np.ndarray:
        """(slot, rack type) mask: which types a slot may take by cooling, weight and air heat."""
        liquid_need = np.array([t.needs_liquid for t in self.rack_types])
        weight = np.array([t.weight_kg for t in self.rack_types])
        air = np.array([t.air_kw for t in self.rack_types])
        has_loop = self.slot_liquid & (self.slot_cdu != NO_INDEX)
        return (
            (has_loop[:, None] | ~liquid_need[None, :])
            & (weight[None, :] <= self.slot_floor_kg[:, None])
            & (air[None, :] <= self.slot_air_kw_max[:, None] + 1e-9)
        )


@dataclass
class _SlotRecord:
    id: str
    hall: str
    row: str
    position: int
    x: float
    y: float
    props: SlotProperties
    where: tuple[str, ...]


def _row_slots(instance: Instance) -> list[_SlotRecord]:
    records = []
    for hall_id, hall in instance.halls.items():
        for row_id, row in hall.rows.items():
            dx, dy = _DIRECTIONS[row.direction]
            for position in range(1, row.slots + 1):
                props = row.slot
                where = ("halls", hall_id, "rows", row_id, "slot")
                if position in row.overrides:
                    merged = props.model_dump(exclude_none=True)
                    merged.update(row.overrides[position].model_dump(exclude_none=True))
                    props = SlotProperties.model_validate(merged)
                    where = ("halls", hall_id, "rows", row_id, "overrides", str(position))
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
                        where,
                    )
                )
    return records


def _csv_cell(cell: str) -> Any:
    return cell.strip() or None


def _table_slots(hall_id: str, file: str, text: str) -> list[_SlotRecord]:
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown or "id" not in header:
        problem = f"unknown column {unknown[0]!r}" if unknown else "no 'id' column"
        raise InstanceError(file, "header", problem, f"columns are {', '.join(CSV_COLUMNS)}", 1)
    records = []
    for line, row in enumerate(reader, start=2):
        cells = {k: _csv_cell(v or "") for k, v in row.items() if k is not None}
        try:
            feeds = [f for f in (cells.get("feed_a"), cells.get("feed_b")) if f]
            props = SlotProperties.model_validate(
                {
                    "liquid": cells.get("liquid"),
                    "cdu": cells.get("cdu"),
                    "air_zone": cells.get("air_zone"),
                    "floor_kg": cells.get("floor_kg"),
                    "air_kw_max": cells.get("air_kw_max"),
                    "feeds": feeds or None,
                    "primary_share": cells.get("primary_share"),
                }
            )
            position = int(cells.get("position") or line - 1)
            x = float(cells.get("x_m") or 0.0)
            y = float(cells.get("y_m") or 0.0)
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError("x_m and y_m must be finite")
        except (ValidationError, ValueError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise InstanceError(file, f"row {line}", detail, "fix the cell values", line) from None
        if not cells.get("id"):
            raise InstanceError(
                file, f"row {line}.id", "empty slot id", "give every slot an id", line
            )
        records.append(
            _SlotRecord(
                cells["id"],
                hall_id,
                cells.get("row") or "",
                position,
                x,
                y,
                props,
                (file, f"row {line}"),
            )
        )
    return records


class _Builder:
    """Resolves references; every failure is an InstanceError at the field that holds it."""

    def __init__(self, loaded: LoadedInstance) -> None:
        self.loaded = loaded
        self.instance = loaded.instance

    def error(self, path: tuple[str, ...], problem: str, fix: str) -> InstanceError:
        if len(path) == 2 and path[1].startswith("row "):  # a CSV slot table line
            return InstanceError(path[0], path[1], problem, fix, int(path[1][4:]))
        return self.loaded.locate_error(path, problem, fix)

    def check_power_tree(self, device_index: dict[str, int]) -> np.ndarray:
        devices = self.instance.power.devices
        parent = np.full(len(devices), NO_INDEX, dtype=np.int64)
        for i, (device_id, device) in enumerate(devices.items()):
            if device.parent is None:
                continue
            if device.parent not in device_index:
                raise self.error(
                    ("power", "devices", device_id, "parent"),
                    f"unknown device {device.parent!r}",
                    "name a device defined under power.devices, or drop parent for a root",
                )
            parent[i] = device_index[device.parent]
        for start, device_id in enumerate(devices):
            seen = {start}
            node = int(parent[start])
            while node != NO_INDEX:
                if node in seen:
                    raise self.error(
                        ("power", "devices", device_id, "parent"),
                        "cycle in the power tree",
                        "every chain of parents must end at a root device without parent",
                    )
                seen.add(node)
                node = int(parent[node])
        return parent

    def resolve_rack_types(self) -> tuple[RackSpec, ...]:
        specs = []
        for name, entry in self.instance.rack_types.items():
            spec, problem = resolve(name, entry)
            if spec is None:
                raise self.error(("rack_types", name), problem, "give the missing figures")
            if spec.needs_liquid and spec.flow_lpm_per_kw <= 0:
                raise self.error(
                    ("rack_types", name, "flow_lpm_per_kw"),
                    "a liquid-cooled rack needs coolant flow > 0",
                    "set flow_lpm_per_kw (about 1.5 L/min per kW at a 10 K rise)",
                )
            specs.append(spec)
        return tuple(specs)

    def slot_records(self) -> list[_SlotRecord]:
        records = _row_slots(self.instance)
        for hall_id, (file, text) in self.loaded.slot_tables.items():
            records.extend(_table_slots(hall_id, file, text))
        seen: dict[str, tuple[str, ...]] = {}
        for record in records:
            if record.id in seen:
                raise self.error(
                    record.where,
                    f"duplicate slot id {record.id!r}",
                    "give every slot a unique id (rows generate HALL-ROW-NN ids)",
                )
            seen[record.id] = record.where
        if not records:
            raise self.error(("halls",), "the facility has no slots", "add rows or a slots_csv")
        return records

    def lookup(
        self, record: _SlotRecord, name: str | None, table: dict[str, int], what: str, field: str
    ) -> int:
        if name is None:
            return NO_INDEX
        if name not in table:
            raise self.error(
                (*record.where, field),
                f"slot {record.id} names unknown {what} {name!r}",
                f"use one of: {', '.join(table) or '(none defined)'}",
            )
        return table[name]


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
            raise builder.error(
                rec.where,
                f"slot {rec.id} has no power feeds",
                "give feeds: [A-side device, B-side device]",
            )
        if props.air_zone is None:
            raise builder.error(
                rec.where,
                f"slot {rec.id} has no air zone",
                "give air_zone: every rack rejects some heat to air",
            )
        for k, feed in enumerate(props.feeds):
            feeds[i, k] = builder.lookup(rec, feed, device_index, "device", "feeds")
        cdu[i] = builder.lookup(rec, props.cdu, cdu_index, "CDU", "cdu")
        zone[i] = builder.lookup(rec, props.air_zone, zone_index, "air zone", "air_zone")
        liquid[i] = bool(props.liquid) if props.liquid is not None else props.cdu is not None
        if liquid[i] and props.cdu is None:
            raise builder.error(
                rec.where,
                f"slot {rec.id} is liquid but names no CDU",
                "add cdu: the CDU whose loop reaches it, or set liquid: false",
            )
        if props.liquid is False and props.cdu is not None:
            raise builder.error(
                rec.where,
                f"slot {rec.id} names CDU {props.cdu} but liquid: false",
                "drop the cdu or set liquid: true",
            )
        if len(props.feeds) == 2 and _shares_path(parent, feeds[i, 0], feeds[i, 1]):
            raise builder.error(
                (*rec.where, "feeds"),
                f"slot {rec.id}: feed {props.feeds[1]} is upstream or downstream of "
                f"feed {props.feeds[0]}",
                "the two feeds of a slot must be on separate branches of the power tree",
            )

    specs = builder.resolve_rack_types()
    type_index = {t.name: i for i, t in enumerate(specs)}
    demand_min = np.zeros(len(specs), dtype=np.int64)
    demand_max = np.zeros(len(specs), dtype=np.int64)
    for name, entry in inst.demand.items():
        if name not in type_index:
            raise builder.error(
                ("demand", name),
                f"unknown rack type {name!r}",
                f"use one of the rack_types: {', '.join(type_index)}",
            )
        demand_min[type_index[name]] = entry.min
        demand_max[type_index[name]] = NO_INDEX if entry.max is None else entry.max

    cdus = list(inst.cooling.cdus.values())
    zones = list(inst.cooling.air_zones.values())
    site = Site(
        name=inst.name,
        objective=inst.objective,
        sha256=loaded.sha256,
        slot_ids=tuple(r.id for r in records),
        slot_hall=tuple(r.hall for r in records),
        slot_row=tuple(r.row for r in records),
        slot_position=np.array([r.position for r in records], dtype=np.int64),
        slot_x_m=np.array([r.x for r in records]),
        slot_y_m=np.array([r.y for r in records]),
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
        utility_limit_kw=inst.facility.utility_limit_kw,
        cooling_kw_per_liquid_kw=inst.facility.cooling_kw_per_liquid_kw,
        cooling_kw_per_air_kw=inst.facility.cooling_kw_per_air_kw,
        rack_types=specs,
        demand_min=demand_min,
        demand_max=demand_max,
        installed={},
    )
    installed = _installed(builder, site, type_index)
    _check_demand_placeable(builder, site, installed)
    return Site(**{**site.__dict__, "installed": installed})


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
                "use a slot id of the form HALL-ROW-NN or one from a slots_csv",
            )
        if type_name not in type_index:
            raise builder.error(
                field,
                f"unknown rack type {type_name!r}",
                f"use one of the rack_types: {', '.join(type_index)}",
            )
        s, t = slot_index[slot_id], type_index[type_name]
        if not eligible[s, t]:
            raise builder.error(
                field,
                f"installed {type_name} does not fit slot {slot_id} "
                "(cooling, floor rating or air-heat limit)",
                "correct the slot's properties or the installed rack type",
            )
        installed[s] = t
        counts[t] += 1
    for t, spec in enumerate(site.rack_types):
        if spec.name not in builder.instance.demand:
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
    for t, spec in enumerate(site.rack_types):
        demanded = site.demand_max[t] != 0 and spec.name in builder.instance.demand
        if not demanded or eligible[:, t].any():
            continue
        if spec.needs_liquid and not site.slot_liquid.any():
            problem = f"{spec.name} is liquid-cooled but no slot has a liquid loop"
            fix = "give some slots liquid: true and a cdu, or drop the rack type from demand"
        elif spec.weight_kg > site.slot_floor_kg.max():
            problem = (
                f"{spec.name} weighs {spec.weight_kg:g} kg, more than every slot's "
                f"floor rating (at most {site.slot_floor_kg.max():g} kg)"
            )
            fix = "raise floor_kg where the floor is reinforced, or drop the rack type"
        else:
            problem = f"{spec.name} fits no slot (cooling, floor rating or air-heat limit)"
            fix = "check the slots' liquid, floor_kg and air_kw_max against the rack"
        raise builder.error(("demand", spec.name), problem, fix)
