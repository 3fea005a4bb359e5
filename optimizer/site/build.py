"""The site builder: a validated instance becomes a :class:`~optimizer.site.arrays.Site`.

The model builder, the independent checker and the layout writer all read that one
preprocessed form, so the instance's compact notation (rows with defaults and
overrides, CSV slot tables, catalog names) is expanded exactly once, here. Building
also checks every cross-reference, since only here is each slot fully known. The
parts are composed in a fixed order (power tree, device limits, slots and their
references, fabric, rack types and demand, thermal model, plant factors, installed
racks, placeability), so an instance with several problems always reports the same
first one. Last, the lint (:mod:`optimizer.site.lint`) adds its warnings to the site.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import sparse

from optimizer.errors import ErrorAt, FieldProblem, did_you_mean
from optimizer.instance.loader import LoadedInstance
from optimizer.instance.schema import AirZone, Cdu, Instance, Thermal
from optimizer.site.arrays import NO_INDEX, RackSpec, Site
from optimizer.site.demand import (
    check_demand_placeable,
    demand_bounds,
    installed_racks,
)
from optimizer.site.eligibility import eligible_slots
from optimizer.site.fabric import (
    Rows,
    fabric_rack_types,
    network_settings,
    network_slots,
    row_codes,
)
from optimizer.site.lint import lint
from optimizer.site.power_tree import PowerTree, resolve_power_tree
from optimizer.site.rack_types import resolve
from optimizer.site.slots import SlotRecord, slot_records
from optimizer.site.thermal import (
    INLET_LIMIT_C,
    WATER_MAX_C,
    matrix_from_file,
    parametric_matrix,
    plant_kw_per_kw,
)


def build_site(loaded: LoadedInstance) -> Site:
    """Expand and cross-check the instance into a :class:`Site`."""
    inst = loaded.instance
    error = loaded.locate_error
    tree = resolve_power_tree(
        {device_id: device.parent for device_id, device in inst.power.devices.items()}, error
    )
    devices = list(inst.power.devices.values())
    rating, limit, failover = _device_ratings(inst, error)
    records = slot_records(loaded)
    feeds, cdu, zone, liquid = _slot_references(inst, records, tree, error)
    slot_ids = tuple(r.id for r in records)
    x_m = np.array([r.x for r in records])
    y_m = np.array([r.y for r in records])
    rows = row_codes(
        tuple(r.hall for r in records), tuple(r.row for r in records), list(inst.halls)
    )
    network = network_settings(inst, loaded.distance_table, slot_ids, x_m, y_m, rows, error)
    marked = np.array([bool(r.props.network) for r in records])
    specs = fabric_rack_types(_resolve_rack_types(inst, error), network, error)
    demand_min, demand_max = demand_bounds(inst, specs, error)

    cdus = list(inst.cooling.cdus.values())
    zones = list(inst.cooling.air_zones.values())
    thermal = inst.thermal or Thermal()
    zone_supply = np.array([_or_nan(z.supply_temp_c) for z in zones])
    recirculation = _recirculation(loaded, thermal, slot_ids, records, rows, x_m, y_m)
    _check_supply_given(inst, recirculation, zone, zone_supply, error)
    _check_objective(inst, demand_min, error)
    cdu_cooling = _plant_factors(inst, cdus, air=False, error=error)
    zone_cooling = _plant_factors(inst, zones, air=True, error=error)
    # Everything but what depends on eligibility: eligibility is a function of these
    # arrays, and the installed racks and final demand maximum are checked against it.
    unchecked = Site(
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
        slot_primary_share=np.array([_primary_share(r) for r in records]),
        device_ids=tuple(inst.power.devices),
        device_kind=tuple(d.kind for d in devices),
        power_tree=tree,
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
        cdu_cooling_kw_per_kw=cdu_cooling,
        air_zone_cooling_kw_per_kw=zone_cooling,
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
        eligible=np.zeros((len(records), len(specs)), dtype=bool),
        slot_row_code=rows.slot_row_code,
        row_hall=rows.row_hall,
        row_order=rows.row_order,
        slot_network_ok=network_slots(marked, x_m, y_m, network),
        slot_network_marked=np.asarray(marked, dtype=bool),
        network=network,
    )
    eligible = eligible_slots(unchecked)
    installed, demand_max = installed_racks(unchecked, inst, eligible, error)
    site = replace(unchecked, eligible=eligible, installed=installed, demand_max=demand_max)
    check_demand_placeable(site, inst, eligible, error)
    return replace(site, warnings=lint(loaded, records, site))


def _device_ratings(inst: Instance, error: ErrorAt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rating, normal limit, failover limit) of every device: the normal continuous limit
    is rating x derating; the failover limit, where given, is never below it."""
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
            raise error(
                ("power", "devices", device_id, "failover_limit_kw"),
                f"failover limit {fo:g} kW is below the normal limit {lim:g} kW",
                "a device may carry at least its normal limit while another device is out",
            )
    return rating, limit, failover


def _slot_references(
    inst: Instance, records: list[SlotRecord], tree: PowerTree, error: ErrorAt
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(feeds, CDU, air zone, liquid) of every slot, by index: each name a slot gives
    must exist, and what it gives must make sense together."""
    device_index = {d: i for i, d in enumerate(inst.power.devices)}
    cdu_index = {c: i for i, c in enumerate(inst.cooling.cdus)}
    zone_index = {z: i for i, z in enumerate(inst.cooling.air_zones)}
    n = len(records)
    feeds = np.full((n, 2), NO_INDEX, dtype=np.int64)
    cdu = np.full(n, NO_INDEX, dtype=np.int64)
    zone = np.full(n, NO_INDEX, dtype=np.int64)
    liquid = np.zeros(n, dtype=bool)
    for i, rec in enumerate(records):
        props, source = rec.props, rec.source
        if not props.feeds:
            raise source.error(
                "feeds",
                f"slot {rec.id} has no power feeds",
                "give feeds: [A-side device, B-side device]",
                error,
            )
        if props.air_zone is None:
            raise source.error(
                "air_zone",
                f"slot {rec.id} has no air zone",
                "give air_zone: every rack rejects some heat to air",
                error,
            )
        for k, feed in enumerate(props.feeds):
            feeds[i, k] = _lookup(rec, feed, device_index, "device", f"feeds.{k}", error)
        cdu[i] = _lookup(rec, props.cdu, cdu_index, "CDU", "cdu", error)
        zone[i] = _lookup(rec, props.air_zone, zone_index, "air zone", "air_zone", error)
        liquid[i] = bool(props.liquid) if props.liquid is not None else props.cdu is not None
        if liquid[i] and props.cdu is None:
            raise source.error(
                "cdu",
                f"slot {rec.id} is liquid but names no CDU",
                "add cdu: the CDU whose loop reaches it, or set liquid: false",
                error,
            )
        if props.liquid is False and props.cdu is not None:
            raise source.error(
                "liquid",
                f"slot {rec.id} names CDU {props.cdu} but liquid: false",
                "drop the cdu or set liquid: true",
                error,
            )
        if len(props.feeds) == 2 and tree.shares_path(feeds[i, 0], feeds[i, 1]):
            raise source.error(
                "feeds.1",
                f"slot {rec.id}: feed {props.feeds[1]} is upstream or downstream of "
                f"feed {props.feeds[0]}",
                "the two feeds of a slot must be on separate branches of the power tree",
                error,
            )
    return feeds, cdu, zone, liquid


def _lookup(
    record: SlotRecord,
    name: str | None,
    table: dict[str, int],
    what: str,
    field: str,
    error: ErrorAt,
) -> int:
    """Index of the device, CDU or zone a slot names; NO_INDEX when it names none."""
    if name is None:
        return NO_INDEX
    if name not in table:
        raise record.source.error(
            field,
            f"slot {record.id} names unknown {what} {name!r}",
            did_you_mean(name, table),
            error,
        )
    return table[name]


def _primary_share(record: SlotRecord) -> float:
    """Share of the rack's load on the first feed: 1 for a single-corded slot, else as
    given (0.5 by default)."""
    props = record.props
    if len(props.feeds or ()) != 2:
        return 1.0
    return props.primary_share if props.primary_share is not None else 0.5


def _resolve_rack_types(inst: Instance, error: ErrorAt) -> tuple[RackSpec, ...]:
    """Every rack type merged over its catalog entry."""
    specs = []
    for name, entry in inst.rack_types.items():
        try:
            spec = resolve(name, entry)
        except FieldProblem as exc:
            field = ("rack_types", name, *([exc.field] if exc.field else []))
            raise error(field, exc.problem, exc.fix) from None
        if spec.needs_liquid and spec.flow_lpm_per_kw <= 0:
            raise error(
                ("rack_types", name, "flow_lpm_per_kw"),
                "a liquid-cooled rack needs coolant flow > 0",
                "set flow_lpm_per_kw (about 1.5 L/min per kW at a 10 K rise)",
            )
        specs.append(spec)
    return tuple(specs)


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _plant_factors(
    inst: Instance, groups: list[Cdu] | list[AirZone], air: bool, error: ErrorAt
) -> np.ndarray:
    """Cooling power per kW of heat for each CDU group or air zone (optimizer.site.thermal)."""
    try:
        return np.array(
            [
                plant_kw_per_kw(inst.facility, g.supply_temp_c, g.cooling_kw_per_kw, air)
                for g in groups
            ]
        )
    except FieldProblem as exc:
        raise error(("facility", "cop_curve"), exc.problem, exc.fix) from None


def _recirculation(
    loaded: LoadedInstance,
    thermal: Thermal,
    slot_ids: tuple[str, ...],
    records: list[SlotRecord],
    rows: Rows,
    x_m: np.ndarray,
    y_m: np.ndarray,
) -> sparse.csr_array | None:
    """D from the matrix file or the parametric model; None when neither is given."""
    if loaded.recirculation_file is not None:
        name, raw = loaded.recirculation_file
        return matrix_from_file(name, raw, slot_ids, loaded.locate_error)
    if not thermal.recirculation:
        return None
    for hall in thermal.recirculation:
        if hall not in loaded.instance.halls:
            raise loaded.locate_error(
                ("thermal", "recirculation", hall),
                f"unknown hall {hall!r}",
                did_you_mean(hall, loaded.instance.halls),
            )
    slot_hall = tuple(r.hall for r in records)
    axes = [r.axis for r in records]
    return parametric_matrix(thermal.recirculation, slot_hall, rows.slot_row_code, x_m, y_m, axes)


def _check_supply_given(
    inst: Instance,
    recirculation: sparse.csr_array | None,
    zone: np.ndarray,
    supply: np.ndarray,
    error: ErrorAt,
) -> None:
    """A slot under a recirculation model needs its zone's supply temperature: the inlet
    temperature is the supply plus the recirculated heat."""
    if recirculation is None:
        return
    receiving = np.flatnonzero(np.diff(recirculation.indptr))
    missing = [int(z) for z in np.unique(zone[receiving]) if np.isnan(supply[z])]
    if missing:
        zone_id = list(inst.cooling.air_zones)[missing[0]]
        raise error(
            ("cooling", "air_zones", zone_id),
            f"air zone {zone_id} has slots under the recirculation model but no supply temperature",
            "give supply_temp_c: the CRAH supply air temperature, e.g. 20",
        )


def _check_objective(inst: Instance, minimum: np.ndarray, error: ErrorAt) -> None:
    """Least facility power is only meaningful for a required set of racks."""
    if inst.objective.minimizes and not minimum.any():
        raise error(
            ("objective",),
            "objective min_facility_kw needs racks to place, but no demand has a min",
            "give demand.<rack type>.min for the racks required, or maximize instead",
        )
