"""Map NetBox's exports of one site to a facility: halls, slots and the power tree.

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
planner's instance file. Nothing is guessed: a contradiction between NetBox and the floor
plan is an error. :mod:`optimizer.instance.netbox_fragment` writes the result.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

from optimizer.errors import InstanceError, did_you_mean
from optimizer.instance.floor_plan import FloorPlanLine
from optimizer.instance.netbox_files import (
    NetBoxExport,
    NetBoxFeed,
    NetBoxPanel,
    NetBoxRack,
    Ref,
    Where,
)

POWERED = ("active", "planned")
"""Feed statuses that count as power: a planned feed is capacity being planned for."""
_ID = re.compile(r"[^A-Za-z0-9_.:+-]+")


def feed_rating_kw(feed: NetBoxFeed) -> float:
    """A feed's nameplate power, kW: |V| x A, times sqrt(3) for three-phase.

    NetBox's available power is this times ``max_utilization`` / 100 (PowerFeed.save in
    netbox/dcim/models/power.py: ``kva = abs(voltage) * amperage * (max_utilization /
    100)``, times 1.732 when three-phase, rounded to whole VA). rackopt keeps sqrt(3)
    unrounded (0.003% apart) and, like NetBox, takes the VA figure as watts
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
    feed_ids: dict[NetBoxFeed, str]
    """Feed -> its device id."""
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


def _check_places(export: NetBoxExport, racks: list[NetBoxRack], site: str) -> None:
    """The racks' site and locations must be among the exported ones, when those are given:
    exports taken from different NetBox instances, or at different times, disagree here."""
    if export.sites and site not in {s.name for s in export.sites}:
        raise InstanceError(
            export.files["sites"][0],
            "name",
            f"site {site!r} of the racks is not among the exported sites",
            "export sites and racks from the same NetBox at the same time",
        )
    known = {loc.name for loc in export.locations if loc.site.name == site}
    for rack in racks:
        if export.locations and rack.location and rack.location.name not in known:
            raise rack.where.error(
                "location",
                f"location {rack.location.name!r} is not among the exported locations of "
                f"site {site!r}",
                did_you_mean(rack.location.name, known, "export locations and racks together"),
            )


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

    def find(self, ref: Ref, where: Where) -> NetBoxRack:
        """The rack ``ref`` names (by id, else by name); ``where`` is the naming record."""
        if ref.id is not None and ref.id in self.by_id:
            return self.by_id[ref.id]
        found = self.by_name.get(ref.name, [])
        if len(found) == 1:
            return found[0]
        if found:
            raise where.error(
                "rack",
                f"rack {ref.name!r} is ambiguous: " + ", ".join(map(_rack_label, found)),
                "export JSON from the API, which names racks by id, or give the racks "
                "unique names or facility ids",
            )
        raise where.error(
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


def _unique_ids(named: list[tuple[str, Where]], what: str) -> None:
    """Refuse two NetBox objects that become the same rackopt id (or an empty one)."""
    seen: dict[str, Where] = {}
    for name, where in named:
        if not name:
            raise where.error("name", f"the {what} name gives an empty id", "rename it")
        if name in seen:
            raise where.error(
                "name",
                f"{what} id {name!r} is also the id of {seen[name].describe()}",
                f"rename one of the two {what}s in NetBox",
            )
        seen[name] = where


def _device_ids(panels: dict[str, list[NetBoxFeed]]) -> dict[NetBoxFeed, str]:
    """Feed device ids: the feed's name as an id, qualified with its panel's id where
    two feeds (or a feed and a panel) would share it."""
    feeds = [f for group in panels.values() for f in group]
    plain = [identifier(f.name) for f in feeds]
    ids = {}
    for feed, name in zip(feeds, plain, strict=True):
        clash = plain.count(name) > 1 or name in panels
        ids[feed] = f"{identifier(feed.panel.name)}.{name}" if clash else name
    _unique_ids([(ids[f], f.where) for f in feeds], "power feed")
    return ids


def _floor_lines(
    lines: list[FloorPlanLine], racks: list[NetBoxRack], file: str
) -> dict[NetBoxRack, FloorPlanLine]:
    """Each rack's floor-plan line; every line must name a rack."""
    by_name: dict[str, list[NetBoxRack]] = defaultdict(list)
    for rack in racks:
        by_name[rack.name].append(rack)
    found: dict[NetBoxRack, FloorPlanLine] = {}
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
        found[candidates[0]] = line
    return found


def _cooling_cells(
    rack: NetBoxRack, cells: dict, hall: str, floor: tuple[str, int] | None, notes: list[str]
) -> None:
    """Liquid loop and air limit from NetBox's cooling fields, completed by the floor plan
    (``floor`` is its file and the rack's line); a contradiction is an error there."""

    def clash(column: str, problem: str) -> InstanceError:
        file, line = floor or (rack.where.file, None)
        problem = f"rack {rack.name!r}: {problem}"
        return InstanceError(file, column, problem, "make them agree", line)

    capability = rack.cooling_capability
    if cells.get("liquid") is False and "cdu" in cells:
        raise clash("cdu", "a CDU group for a slot marked liquid false")
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
                "(rackopt has no per-slot limit of liquid or total heat)"
            )
    elif "cdu" in cells or cells.get("liquid"):
        cells["liquid"] = True
        cells.setdefault("cdu", f"{hall}-cdu")
        notes.append(f"liquid slot on CDU group {cells['cdu']} (floor plan)")
    else:
        cells["liquid"] = False
        notes.append("air slot (no cooling_capability in NetBox, no loop in the floor plan)")


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


@dataclass
class _PowerTree:
    panels: dict[str, list[NetBoxFeed]]
    feed_ids: dict[NetBoxFeed, str]
    feeds_of_rack: dict[NetBoxRack, list[NetBoxFeed]]
    panel_records: dict[str, NetBoxPanel | None]


def _power_tree(
    export: NetBoxExport, site: str, index: _RackIndex, warnings: list[str]
) -> _PowerTree:
    """The site's powered feeds grouped by panel, their device ids and each rack's feeds."""
    records = {p.name: p for p in export.power_panels if p.site.name == site}
    feeds_of_rack: dict[NetBoxRack, list[NetBoxFeed]] = defaultdict(list)
    by_panel: dict[str, list[NetBoxFeed]] = {}
    for feed in export.power_feeds:
        if _panel_site(feed, records, index) not in (site, None):
            continue
        if export.power_panels and feed.panel.name not in records:
            raise feed.where.error(
                "power_panel",
                f"power panel {feed.panel.name!r} is not among the exported panels of "
                f"site {site!r}",
                did_you_mean(feed.panel.name, records, "export that panel too"),
            )
        if feed.status not in POWERED:
            warnings.append(
                f"power feed {feed.panel.name}/{feed.name} is {feed.status} in NetBox: "
                "not a power device"
            )
            continue
        by_panel.setdefault(feed.panel.name, []).append(feed)
        if feed.rack is not None:
            feeds_of_rack[index.find(feed.rack, feed.where)].append(feed)
    _unique_ids(
        [(identifier(n), (records.get(n) or g[0]).where) for n, g in by_panel.items()],
        "power panel",
    )
    panels = {identifier(name): group for name, group in by_panel.items()}
    return _PowerTree(
        panels,
        _device_ids(panels),
        feeds_of_rack,
        {identifier(name): records.get(name) for name in by_panel},
    )


def _halls(racks: list[NetBoxRack], site: str) -> dict[str, str]:
    """Hall id -> NetBox location name (the site's name for racks without a location)."""
    halls: dict[str, str] = {}
    for rack in racks:
        source = rack.location.name if rack.location else site
        hall = identifier(source)
        if halls.setdefault(hall, source) != source:
            raise rack.where.error(
                "location",
                f"locations {halls[hall]!r} and {source!r} both give hall id {hall!r}",
                "rename one of them in NetBox",
            )
    return halls


def _floor_plan_lines(
    lines: list[FloorPlanLine] | None,
    file: str | None,
    all_racks: list[NetBoxRack],
    racks: list[NetBoxRack],
    warnings: list[str],
) -> dict[NetBoxRack, FloorPlanLine]:
    """Each rack's floor-plan line; with a floor plan, every rack needs one."""
    if lines is None:
        warnings.append(
            "no floor plan: every slot stands at (0, 0) and its air zone is its hall's; "
            "cable lengths and recirculation need --floor-plan"
        )
        return {}
    floor = _floor_lines(lines, all_racks, file or "")
    missing = [r for r in racks if r not in floor]
    if missing:
        raise InstanceError(
            file or "",
            "rack",
            f"rack {_rack_label(missing[0])} has no line in the floor plan"
            + (f" ({len(missing)} racks lack one)" if len(missing) > 1 else ""),
            "add a line for every rack of the export (or filter the export in NetBox)",
        )
    return floor


def _slot(
    rack: NetBoxRack,
    hall: str,
    slot_id: str,
    feeds: list[NetBoxFeed],
    line: FloorPlanLine | None,
    floor_plan_file: str | None,
) -> _Slot:
    """One rack's slot: the floor plan's cells completed from NetBox, with their sources."""
    cells = dict(line.cells) if line else {}
    notes = [f"NetBox rack {rack.where.describe()}" + (f" (id {rack.id})" if rack.id else "")]
    if line:
        notes.append(f"floor plan line {line.line}")
    cells.setdefault("air_zone", f"{hall}-air")
    if "row" not in cells and rack.group:
        cells["row"] = rack.group
        notes.append(f"row {rack.group!r} (NetBox rack group)")
    floor_at = (floor_plan_file or "", line.line) if line else None
    _cooling_cells(rack, cells, hall, floor_at, notes)
    return _Slot(slot_id, hall, rack, _rack_feeds(rack, feeds), cells, notes)


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
    _check_places(export, racks, site_name)
    for rack in all_racks:
        if rack.status == "deprecated":
            warnings.append(f"rack {_rack_label(rack)} is deprecated in NetBox: not a slot")
    tree = _power_tree(export, site_name, _RackIndex(all_racks), warnings)
    halls = _halls(racks, site_name)
    floor = _floor_plan_lines(floor_plan, floor_plan_file, all_racks, racks, warnings)
    names = [r.name for r in racks]
    slots = []
    for rack in racks:
        hall = identifier(rack.location.name if rack.location else site_name)
        slot_id = rack.name if names.count(rack.name) == 1 else f"{hall}.{rack.name}"
        feeds = tree.feeds_of_rack[rack]
        slots.append(_slot(rack, hall, slot_id, feeds, floor.get(rack), floor_plan_file))
        if rack.device_count:
            warnings.append(
                f"rack {_rack_label(rack)} holds {rack.device_count} devices in NetBox; rackopt "
                "sees an empty slot unless the instance lists it under installed:"
            )
    _unique_ids([(s.id, s.rack.where) for s in slots], "rack")
    return ImportedFacility(
        site=site_name,
        halls=halls,
        slots=slots,
        panels=tree.panels,
        panel_records=tree.panel_records,
        feed_ids=tree.feed_ids,
        sources=dict(export.files),
        floor_plan=floor_plan_file,
        warnings=warnings,
    )
