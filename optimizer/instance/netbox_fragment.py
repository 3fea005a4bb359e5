"""Write an imported NetBox facility as an include-able instance fragment.

Three kinds of file are written together (all or none, beside the fragment): the YAML
fragment (halls and the power tree, with a comment naming where each figure came from
and what the planner must add), one slot table per hall (``FRAGMENT.HALL.csv``, the
instance format's ``slots_csv``), and the NetBox map (``FRAGMENT.netbox.json``) that
``rackopt export --to netbox`` reads to name each slot's NetBox rack and feeds.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from optimizer.instance.floor_plan import COLUMNS, read_floor_plan
from optimizer.instance.netbox import (
    ImportedFacility,
    build_facility,
    feed_available_kw,
    feed_rating_kw,
    identifier,
)
from optimizer.instance.netbox_files import NetBoxFeed, read_exports
from optimizer.output import write_files

MAP_FORMAT = "rackopt-netbox-map"
MAP_VERSION = 1
SLOT_COLUMNS = ("id", *(c for c in COLUMNS if c not in ("rack", "location")), "feed_a", "feed_b")
"""The slot table: every floor-plan column but the rack's NetBox name, then its feeds."""


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
            device = _yaml_scalar(facility.feed_ids[feed])
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
            feeds = ", ".join(f"{facility.feed_ids[f]} ({f.type})" for f in slot.feeds)
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
        feeds = [facility.feed_ids[f] for f in slot.feeds]
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
            "starting_unit": rack.starting_unit or 1,
            "primary_share": float(slot.cells.get("primary_share", 0.5)),
            "feeds": [
                {
                    "device": facility.feed_ids[f],
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
    write_files({path: text.encode("utf-8") for path, text in files.items()})
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
