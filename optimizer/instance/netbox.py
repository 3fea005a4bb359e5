"""Turn NetBox's exports of one site into an include-able instance fragment.

What maps (docs/netbox.md has the full table):

- every NetBox **rack** of the site is a slot (its name is the slot id), in a hall per
  NetBox **location**; its row is the floor plan's ``row``, else its NetBox rack group;
- every **power feed** is a power device: ``rating_kw`` = |V| x A (x sqrt(3) three-phase)
  and ``derating`` = ``max_utilization`` / 100, so the normal limit is NetBox's own
  *available power*; its parent is its **power panel**, a device whose rating is the sum
  of its feeds' available power (NetBox holds no panel rating, so it never binds);
- a rack's feeds (NetBox ``rack`` of the feed) are its slot's feeds, primary before
  redundant: the A/B pair of the failover rule;
- v4.7 ``cooling_capability`` makes a slot liquid (``liquid-only``, ``hybrid``) or air
  (``air-only``); an air-only rack's ``cooling_capacity`` is its ``air_kw_max``.

What NetBox does not hold (air zones, CDU groups, rack types, demand, network,
recirculation, floor ratings, coordinates) comes from the floor plan or from the
planner's instance file, which includes this fragment. Nothing is guessed: a
contradiction between NetBox and the floor plan is an error.

Three files are written together (all or none): the YAML fragment, one slot table per
hall, and the NetBox map (JSON) that ``rackopt export --to netbox`` reads to name each
slot's NetBox rack and feeds.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from optimizer.errors import InstanceError, did_you_mean
from optimizer.instance.floor_plan import FloorPlanLine, read_floor_plan
from optimizer.instance.netbox_files import (
    NetBoxExport,
    NetBoxFeed,
    NetBoxPanel,
    NetBoxRack,
    Ref,
    read_exports,
)
from optimizer.textfiles import write_text_files

MAP_FORMAT = "rackopt-netbox-map"
MAP_VERSION = 1
SLOT_COLUMNS = (
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
POWERED = ("active", "planned")
"""Feed statuses that count as power: a planned feed is capacity being planned for."""
_ID = re.compile(r"[^A-Za-z0-9_.:+-]+")


def feed_rating_kw(feed: NetBoxFeed) -> float:
    """A feed's nameplate power, kW: |V| x A, times sqrt(3) for three-phase.

    NetBox's available power is this times ``max_utilization`` / 100 (PowerFeed.save in
    netbox/dcim/models/power.py: ``kva = abs(voltage) * amperage * (max_utilization /
    100)``, times 1.732 when three-phase, rounded to whole VA). rackopt keeps sqrt(3)
    unrounded (0.001% apart) and, like NetBox, takes the VA figure as watts
    (power factor 1).
    """
    three = math.sqrt(3) if feed.phase == "three-phase" else 1.0
    return abs(feed.voltage) * feed.amperage * three / 1000.0


def feed_available_kw(feed: NetBoxFeed) -> float:
    """NetBox's available power of a feed, kW: the device's normal limit in rackopt."""
    return feed_rating_kw(feed) * feed.max_utilization / 100.0


def identifier(name: str) -> str:
    """A NetBox name as a rackopt id: every run of other characters becomes ``-``."""
    return _ID.sub("-", name).strip("-")[:64]


@dataclass
class _Slot:
    id: str
    hall: str
    rack: NetBoxRack
    feeds: list[NetBoxFeed]
    cells: dict[str, str | float | bool | int]
    notes: list[str]


@dataclass
class ImportedFacility:
    """The facility of one NetBox site, ready to write."""

    site: str
    halls: dict[str, str]
    """Hall id -> the NetBox location (or site) it comes from."""
    slots: list[_Slot]
    panels: dict[str, list[NetBoxFeed]]
    """Panel device id -> its powered feeds, in export order."""
    panel_records: dict[str, NetBoxPanel | None]
    feed_ids: dict[int, str]
    """``id(feed)`` -> device id."""
    sources: dict[str, list[str]]
    floor_plan: str | None
    warnings: list[str] = field(default_factory=list)

    def needed_ids(self) -> tuple[list[str], list[str]]:
        """Air zone and CDU ids the slots name: the planner defines them in YAML."""
        zones = sorted({str(s.cells["air_zone"]) for s in self.slots})
        cdus = sorted({str(s.cells["cdu"]) for s in self.slots if "cdu" in s.cells})
        return zones, cdus


def _choose_site(export: NetBoxExport, site: str | None) -> str:
    names = sorted({r.site.name for r in export.racks})
    if site is not None:
        if site not in names:
            problem = f"no rack of the exports is in site {site!r}"
            raise InstanceError("--site", "", problem, did_you_mean(site, names))
        return site
    if len(names) > 1:
        raise InstanceError(
            export.files["racks"][0],
            "site",
            f"the racks are in {len(names)} sites ({', '.join(names)})",
            "pass --site NAME, or export one site (filter the list by site in NetBox)",
        )
    if not names:
        raise InstanceError(
            export.files["racks"][0], "", "the export holds no racks", "export the site's racks"
        )
    return names[0]


def _rack_label(rack: NetBoxRack) -> str:
    where = rack.location.name if rack.location else "no location"
    return f"{rack.name!r} ({where})"


class _RackIndex:
    """Racks of the site by NetBox id and by the names an export may use for them."""

    def __init__(self, racks: list[NetBoxRack]) -> None:
        self.by_id = {r.id: r for r in racks if r.id is not None}
        self.by_name: dict[str, list[NetBoxRack]] = defaultdict(list)
        for rack in racks:
            self.by_name[rack.name].append(rack)
            if rack.facility_id:  # how NetBox's tables print a rack: "name (facility id)"
                self.by_name[f"{rack.name} ({rack.facility_id})"].append(rack)

    def find(self, ref: Ref, where_error) -> NetBoxRack:
        if ref.id is not None and ref.id in self.by_id:
            return self.by_id[ref.id]
        found = self.by_name.get(ref.name, [])
        if len(found) == 1:
            return found[0]
        if found:
            raise where_error(
                "rack",
                f"rack {ref.name!r} is ambiguous: " + ", ".join(map(_rack_label, found)),
                "export JSON from the API, which names racks by id, or give the racks "
                "unique names or facility ids",
            )
        raise where_error(
            "rack",
            f"rack {ref.name!r} is not among the exported racks of the site",
            did_you_mean(ref.name, self.by_name, "export that rack too"),
        )


def _panel_site(feed: NetBoxFeed, panels: dict[str, NetBoxPanel], racks: _RackIndex) -> str | None:
    """The site of a feed: its panel's, else its rack's (the CSV's ``Site`` column)."""
    panel = panels.get(feed.panel.name)
    if panel is not None:
        return panel.site.name
    if feed.rack_site:
        return feed.rack_site
    if feed.rack is not None:
        rack = racks.by_id.get(feed.rack.id) if feed.rack.id is not None else None
        found = [rack] if rack else racks.by_name.get(feed.rack.name, [])
        return found[0].site.name if found else None
    return None


def _unique_ids(names: dict[int, str], what: str, where) -> None:
    """Refuse two NetBox objects that become the same rackopt id."""
    seen: dict[str, int] = {}
    for key, name in names.items():
        if not name:
            raise where[key].error("name", f"the {what} name gives an empty id", "rename it")
        if name in seen:
            raise where[key].error(
                "name",
                f"{what} id {name!r} is also the id of {where[seen[name]].describe()}",
                f"rename one of the two {what}s in NetBox",
            )
        seen[name] = key


def _device_ids(panels: dict[str, list[NetBoxFeed]]) -> dict[int, str]:
    """Feed device ids: the feed's name as an id, qualified with its panel's id where
    two feeds (or a feed and a panel) would share it."""
    feeds = [f for group in panels.values() for f in group]
    plain = [identifier(f.name) for f in feeds]
    taken = set(panels)
    ids = {}
    for feed, name in zip(feeds, plain, strict=True):
        clash = plain.count(name) > 1 or name in taken
        panel_id = identifier(feed.panel.name)
        ids[id(feed)] = f"{panel_id}.{name}" if clash else name
    _unique_ids(ids, "power feed", {id(f): f.where for f in feeds})
    return ids


def _floor_lines(
    lines: list[FloorPlanLine], racks: list[NetBoxRack], file: str
) -> dict[int, FloorPlanLine]:
    """Each rack's floor-plan line, by ``id(rack)``; every line must name a rack."""
    by_name: dict[str, list[NetBoxRack]] = defaultdict(list)
    for rack in racks:
        by_name[rack.name].append(rack)
    found: dict[int, FloorPlanLine] = {}
    for line in lines:
        candidates = by_name.get(line.rack, [])
        if line.location is not None:
            candidates = [
                r
                for r in candidates
                if r.location and line.location in (r.location.name, identifier(r.location.name))
            ]
        if not candidates:
            raise InstanceError(
                file,
                "rack",
                f"no NetBox rack {line.rack!r}"
                + (f" in location {line.location!r}" if line.location else ""),
                did_you_mean(line.rack, by_name, "name a rack of the NetBox export"),
                line.line,
            )
        if len(candidates) > 1:
            raise InstanceError(
                file,
                "location",
                f"rack {line.rack!r} is in several locations: "
                + ", ".join(map(_rack_label, candidates)),
                "give the rack's NetBox location in the location column",
                line.line,
            )
        found[id(candidates[0])] = line
    return found


def _cooling_cells(rack: NetBoxRack, cells: dict, hall: str, where: str, notes: list[str]) -> None:
    """Liquid loop and air limit from NetBox's cooling fields, completed by the floor plan;
    a floor-plan value that contradicts NetBox is an error."""

    def clash(column: str, problem: str) -> InstanceError:
        return InstanceError(where, column, f"rack {rack.name!r}: {problem}", "make them agree")

    capability = rack.cooling_capability
    if capability == "air-only":
        if cells.get("liquid") is True or "cdu" in cells:
            raise clash("cdu", "NetBox says cooling_capability air-only, the floor plan a loop")
        cells["liquid"] = False
        notes.append("air slot (NetBox cooling_capability air-only)")
        capacity = rack.cooling_capacity_kw
        if capacity is not None:
            if capacity <= 0:
                raise rack.where.error(
                    "cooling_capacity",
                    f"rack {rack.name!r} has cooling_capacity {capacity} kW: no rack fits",
                    "give the rack's real cooling capacity, or clear it",
                )
            given = cells.get("air_kw_max")
            if given is not None and not math.isclose(float(given), capacity):
                raise clash(
                    "air_kw_max", f"NetBox cooling_capacity {capacity} kW, floor plan {given} kW"
                )
            cells["air_kw_max"] = capacity
            notes.append(f"air_kw_max {capacity:g} kW (NetBox cooling_capacity)")
    elif capability in ("liquid-only", "hybrid"):
        if cells.get("liquid") is False:
            raise clash("liquid", f"NetBox says cooling_capability {capability}, floor plan air")
        cells["liquid"] = True
        cells.setdefault("cdu", f"{hall}-cdu")
        notes.append(f"liquid slot on CDU group {cells['cdu']} (NetBox {capability})")
        if rack.cooling_capacity_kw is not None:
            notes.append(
                f"NetBox cooling_capacity {rack.cooling_capacity_kw:g} kW not mapped "
                "(rackopt has no per-slot liquid limit)"
            )
    elif "cdu" in cells or cells.get("liquid"):
        cells.setdefault("cdu", f"{hall}-cdu")
        notes.append(f"liquid slot on CDU group {cells['cdu']} (floor plan)")


def _rack_feeds(rack: NetBoxRack, feeds: list[NetBoxFeed]) -> list[NetBoxFeed]:
    """The slot's feeds, A then B: primary before redundant, then by panel and name."""
    if not feeds:
        raise rack.where.error(
            "name",
            f"rack {rack.name!r} has no active or planned power feed",
            "set the rack on its power feeds in NetBox (PowerFeed.rack), or filter the "
            "rack out of the export",
        )
    if len(feeds) > 2:
        names = ", ".join(f"{f.panel.name}/{f.name}" for f in feeds)
        raise rack.where.error(
            "name",
            f"rack {rack.name!r} has {len(feeds)} power feeds ({names}); a rackopt slot takes "
            "one feed or an A/B pair",
            "model the rack's power in YAML (one device per side), or leave the rack unset "
            "on the extra feeds in NetBox",
        )
    return sorted(feeds, key=lambda f: (f.type != "primary", f.panel.name, f.name))


def build_facility(
    export: NetBoxExport,
    floor_plan: list[FloorPlanLine] | None,
    floor_plan_file: str | None,
    site: str | None = None,
) -> ImportedFacility:
    """Map the records of one site to halls, slots and the power tree."""
    warnings = list(export.warnings)
    site_name = _choose_site(export, site)
    all_racks = [r for r in export.racks if r.site.name == site_name]
    racks = [r for r in all_racks if r.status != "deprecated"]
    for rack in all_racks:
        if rack.status == "deprecated":
            warnings.append(f"rack {_rack_label(rack)} is deprecated in NetBox: not a slot")
    index = _RackIndex(all_racks)
    panel_records = {p.name: p for p in export.power_panels if p.site.name == site_name}

    feeds_of_rack: dict[int, list[NetBoxFeed]] = defaultdict(list)
    panels: dict[str, list[NetBoxFeed]] = {}
    for feed in export.power_feeds:
        if _panel_site(feed, panel_records, index) not in (site_name, None):
            continue
        if export.power_panels and feed.panel.name not in panel_records:
            raise feed.where.error(
                "power_panel",
                f"power panel {feed.panel.name!r} is not among the exported panels of "
                f"site {site_name!r}",
                did_you_mean(feed.panel.name, panel_records, "export that panel too"),
            )
        if feed.status not in POWERED:
            warnings.append(
                f"power feed {feed.panel.name}/{feed.name} is {feed.status} in NetBox: "
                "not a power device"
            )
            continue
        panels.setdefault(identifier(feed.panel.name), []).append(feed)
        if feed.rack is not None:
            rack = index.find(feed.rack, feed.where.error)
            feeds_of_rack[id(rack)].append(feed)
    panel_where = {
        key: (panel_records.get(group[0].panel.name) or group[0]).where
        for key, group in panels.items()
    }
    _unique_ids({k: k for k in panels}, "power panel", panel_where)
    feed_ids = _device_ids(panels)

    halls: dict[str, str] = {}
    for rack in racks:
        source = rack.location.name if rack.location else site_name
        hall = identifier(source)
        if halls.setdefault(hall, source) != source:
            raise rack.where.error(
                "location",
                f"locations {halls[hall]!r} and {source!r} both give hall id {hall!r}",
                "rename one of them in NetBox",
            )
    floor = _floor_lines(floor_plan, racks, floor_plan_file or "") if floor_plan else {}
    if floor_plan is not None:
        missing = [r for r in racks if id(r) not in floor]
        if missing:
            raise InstanceError(
                floor_plan_file or "",
                "rack",
                f"rack {_rack_label(missing[0])} has no line in the floor plan"
                + (f" ({len(missing)} racks lack one)" if len(missing) > 1 else ""),
                "add a line for every rack of the export (or filter the export in NetBox)",
            )
    else:
        warnings.append(
            "no floor plan: every slot stands at (0, 0) and its air zone is its hall's; "
            "cable lengths and recirculation need --floor-plan"
        )

    names = [r.name for r in racks]
    slots = []
    for rack in racks:
        hall = identifier(rack.location.name if rack.location else site_name)
        line = floor.get(id(rack))
        cells = dict(line.cells) if line else {}
        notes = [f"NetBox rack {rack.where.describe()}" + (f" (id {rack.id})" if rack.id else "")]
        if line:
            notes.append(f"floor plan line {line.line}")
        cells.setdefault("air_zone", f"{hall}-air")
        if "row" not in cells and rack.group:
            cells["row"] = rack.group
            notes.append(f"row {rack.group!r} (NetBox rack group)")
        _cooling_cells(rack, cells, hall, floor_plan_file or rack.where.file, notes)
        feeds = _rack_feeds(rack, feeds_of_rack[id(rack)])
        if rack.device_count:
            warnings.append(
                f"rack {_rack_label(rack)} holds {rack.device_count} devices in NetBox; rackopt "
                "sees an empty slot unless the instance lists it under installed:"
            )
        slot_id = rack.name if names.count(rack.name) == 1 else f"{hall}.{rack.name}"
        slots.append(_Slot(slot_id, hall, rack, feeds, cells, notes))
    _unique_ids({id(s): s.id for s in slots}, "rack", {id(s): s.rack.where for s in slots})
    return ImportedFacility(
        site=site_name,
        halls=halls,
        slots=slots,
        panels=panels,
        panel_records={k: panel_records.get(g[0].panel.name) for k, g in panels.items()},
        feed_ids=feed_ids,
        sources=dict(export.files),
        floor_plan=floor_plan_file,
        warnings=warnings,
    )


# ---------------------------------------------------------------- writing


def _yaml_scalar(text: str) -> str:
    """``text`` as a YAML scalar that reads back as the same string: plain when it is an
    id YAML reads as itself (not ``yes``, ``01``, ``12:30``), else double-quoted."""
    if re.fullmatch(r"[A-Za-z0-9_.:+-]+", text):
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _number(value: float) -> str:
    return repr(round(value, 6))


def _feed_comment(feed: NetBoxFeed) -> str:
    three = " x sqrt(3)" if feed.phase == "three-phase" else ""
    nb_id = f", id {feed.id}" if feed.id is not None else ""
    return _comment(
        f"NetBox power feed {feed.name!r} ({feed.where.describe()}{nb_id}; {feed.type}, "
        f"{feed.status}): {abs(feed.voltage)} V x {feed.amperage} A{three} = "
        f"{feed_rating_kw(feed):.3f} kW, max_utilization {feed.max_utilization}% -> "
        f"{feed_available_kw(feed):.3f} kW available"
    )


def _power_lines(facility: ImportedFacility) -> list[str]:
    lines = ["power:", "  devices:"]
    for panel_id, feeds in facility.panels.items():
        record = facility.panel_records[panel_id]
        total = sum(feed_available_kw(f) for f in feeds)
        origin = (
            f"NetBox power panel {record.name!r} ({record.where.describe()})"
            if record
            else f"NetBox power panel {feeds[0].panel.name!r} (named by its feeds)"
        )
        lines += [
            f"    # {_comment(origin)}.",
            "    # NetBox holds no panel rating: rating_kw is the sum of its feeds' available",
            "    # power, so it never binds; set the real rating and a parent (UPS,",
            "    # switchboard) in the including file.",
            f"    {_yaml_scalar(panel_id)}: {{kind: power_panel, rating_kw: {_number(total)}, "
            "derating: 1.0}",
        ]
        for feed in feeds:
            device = _yaml_scalar(facility.feed_ids[id(feed)])
            lines += [
                f"    # {_feed_comment(feed)}",
                f"    {device}: {{kind: power_feed, parent: {_yaml_scalar(panel_id)}, "
                f"rating_kw: {_number(feed_rating_kw(feed))}, "
                f"derating: {_number(feed.max_utilization / 100)}}}",
            ]
    return lines


def _hall_lines(facility: ImportedFacility, tables: dict[str, str]) -> list[str]:
    lines = ["halls:"]
    for hall, source in facility.halls.items():
        slots = [s for s in facility.slots if s.hall == hall]
        lines += [
            f"  {_yaml_scalar(hall)}:",
            f"    # {_comment(f'NetBox location {source!r}: {len(slots)} racks, one slot each')}",
        ]
        for slot in slots:
            feeds = ", ".join(f"{facility.feed_ids[id(f)]} ({f.type})" for f in slot.feeds)
            notes = "; ".join([*slot.notes, f"feeds {feeds}"])
            lines.append(f"    #   {_comment(f'{slot.id}: {notes}')}")
        lines.append(f"    slots_csv: {_yaml_scalar(tables[hall])}")
    return lines


def _header_lines(facility: ImportedFacility, fragment: str) -> list[str]:
    zones, cdus = facility.needed_ids()
    sources = [
        f"#   {kind.replace('_', ' ')}: {_comment(', '.join(files))}"
        for kind, files in sorted(facility.sources.items())
    ]
    lines = [
        f"# Facility of NetBox site {facility.site!r}, written by `rackopt import-netbox` from:",
        *sources,
        f"#   floor plan: {facility.floor_plan or 'none (every slot at x = y = 0)'}",
        "#",
        "# An include-able fragment: halls, slots and the power tree. NetBox holds no air zones,",
        "# CDU groups, rack types, demand, network or recirculation: define them in the",
        "# instance that includes this file (re-running the import leaves that file alone):",
        "#",
        "#   format_version: 1",
        f"#   include: [{fragment}]",
        "#   cooling:",
        "#     air_zones:",
        *[f"#       {z}: {{crah_kw: ..., units: ...}}" for z in zones],
    ]
    if cdus:
        lines += ["#     cdus:"]
        lines += [f"#       {c}: {{unit_kw: ..., unit_flow_lpm: ..., units: ...}}" for c in cdus]
    return [
        *lines,
        "#   rack_types: {gb300-nvl72: {}}",
        "#   demand: {gb300-nvl72: {}}",
        "format_version: 1",
        f"name: {_yaml_scalar(identifier(facility.site) or 'netbox')}",
        f"description: {json.dumps(f'NetBox site {facility.site}, imported', ensure_ascii=False)}",
    ]


def _slot_table(facility: ImportedFacility, hall: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SLOT_COLUMNS)
    for slot in (s for s in facility.slots if s.hall == hall):
        feeds = [facility.feed_ids[id(f)] for f in slot.feeds]
        values = {**slot.cells, "id": slot.id, "feed_a": feeds[0]}
        if len(feeds) > 1:
            values["feed_b"] = feeds[1]
        row = []
        for column in SLOT_COLUMNS:
            value = values.get(column)
            row.append(
                "" if value is None else str(value).lower() if isinstance(value, bool) else value
            )
        writer.writerow(row)
    return out.getvalue()


def netbox_map(facility: ImportedFacility) -> dict:
    """What ``rackopt export --to netbox`` needs to name each slot's NetBox objects."""
    slots = {}
    for slot in facility.slots:
        rack = slot.rack
        slots[slot.id] = {
            "rack": rack.name,
            "rack_id": rack.id,
            "location": rack.location.name if rack.location else None,
            "u_height": rack.u_height,
            "starting_unit": rack.starting_unit or 1,
            "primary_share": float(slot.cells.get("primary_share", 0.5)),
            "feeds": [
                {
                    "device": facility.feed_ids[id(f)],
                    "power_panel": f.panel.name,
                    "power_feed": f.name,
                    "cabled": f.cabled,
                }
                for f in slot.feeds
            ],
        }
    return {"format": MAP_FORMAT, "version": MAP_VERSION, "site": facility.site, "slots": slots}


def output_paths(output: Path, halls: Sequence[str]) -> tuple[dict[str, Path], Path]:
    """Slot table per hall and the NetBox map, beside the fragment and named after it."""
    tables = {hall: output.with_name(f"{output.stem}.{hall}.csv") for hall in halls}
    return tables, output.with_name(f"{output.stem}.netbox.json")


def write_fragment(facility: ImportedFacility, output: str | Path) -> list[Path]:
    """Write the fragment, its slot tables and the NetBox map, all or none."""
    output = Path(output)
    tables, map_path = output_paths(output, list(facility.halls))
    names = {hall: path.name for hall, path in tables.items()}
    text = "\n".join(
        [
            *_header_lines(facility, output.name),
            *_hall_lines(facility, names),
            *_power_lines(facility),
        ]
    )
    files = {output: text + "\n"}
    files.update({path: _slot_table(facility, hall) for hall, path in tables.items()})
    files[map_path] = json.dumps(netbox_map(facility), indent=2, ensure_ascii=False) + "\n"
    write_text_files(files)
    return list(files)


def import_netbox(
    exports: Sequence[str | Path],
    output: str | Path,
    floor_plan: str | Path | None = None,
    site: str | None = None,
) -> tuple[ImportedFacility, list[Path]]:
    """Read NetBox exports (and a floor plan), write the fragment; return what was written."""
    records = read_exports(exports)
    lines = read_floor_plan(floor_plan) if floor_plan is not None else None
    facility = build_facility(records, lines, str(floor_plan) if floor_plan else None, site)
    return facility, write_fragment(facility, output)
