"""Read NetBox's own exports of a facility: the REST API's JSON or the web UI's CSV.

NetBox (github.com/netbox-community/netbox) hands out an object list two ways. The REST
API answers ``GET /api/dcim/<objects>/`` with ``{"count", "next", "previous", "results"}``;
a related object is a nested mapping (``{"id": 3, "name": "PP-A", ...}``) and a choice a
``{"value", "label"}`` pair. The UI's *Export > All data / Current view* writes a CSV
whose header holds the table's column titles (``Power Panel``, ``Max Utilization``) and
whose cells hold what the table shows (``Three-phase``, ``80%``, ``42U``,
``R01 (FAC-7)`` for a rack with a facility id); the delimiter is the user's preference.
CSV in NetBox's bulk-import spelling (``power_panel``, ``three-phase``) reads the same.

Five object lists are read, each into plain records: sites, locations, racks, power
panels and power feeds. Which list a file holds is told by the API ``url`` of its
records, else by its name (``racks.json``, NetBox's own ``netbox_power feeds.csv``).
A field rackopt needs that is missing or wrong is an error naming the file, the record
(``results[3]`` in JSON, the line in CSV), the field and the fix; nothing is guessed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.errors import InstanceError, choices

KINDS = ("sites", "locations", "racks", "power_panels", "power_feeds")
_API_PATHS = {
    "sites": "sites",
    "locations": "locations",
    "racks": "racks",
    "power-panels": "power_panels",
    "power-feeds": "power_feeds",
}
_FILE_STEMS = {
    "site": "sites",
    "location": "locations",
    "rack": "racks",
    "powerpanel": "power_panels",
    "powerfeed": "power_feeds",
}
_CSV_ALIASES = {
    # UI column titles whose normalized form is not the field name.
    "racks": {"devices": "device_count"},
    "power_feeds": {},
    "power_panels": {"power_feeds": "powerfeed_count"},
    "sites": {},
    "locations": {},
}
_EMPTY_CELLS = {"", "\u2014", "-"}  # NetBox's tables show an em dash for "not set"

FEED_STATUSES = ("offline", "active", "planned", "failed")
FEED_TYPES = ("primary", "redundant")
SUPPLIES = ("ac", "dc")
PHASES = ("single-phase", "three-phase")
RACK_STATUSES = ("reserved", "available", "planned", "active", "deprecated")
COOLING_CAPABILITIES = ("air-only", "hybrid", "liquid-only")


@dataclass(frozen=True)
class Where:
    """Where one exported record is: a file and either its CSV line or its JSON index."""

    file: str
    line: int | None = None
    index: int | None = None

    def error(self, field_name: str, problem: str, fix: str) -> InstanceError:
        path = field_name
        if self.index is not None:
            path = f"results[{self.index}]" + (f".{field_name}" if field_name else "")
        return InstanceError(self.file, path, problem, fix, self.line)

    def describe(self) -> str:
        if self.index is not None:
            return f"{Path(self.file).name} results[{self.index}]"
        return f"{Path(self.file).name} line {self.line}"


@dataclass(frozen=True)
class Ref:
    """A related object as an export names it: its NetBox id when the export gives one,
    and its name (for a rack in a UI CSV, possibly ``name (facility id)``)."""

    id: int | None
    name: str


@dataclass(frozen=True)
class NetBoxSite:
    id: int | None
    name: str
    where: Where


@dataclass(frozen=True)
class NetBoxLocation:
    id: int | None
    name: str
    site: Ref
    where: Where


@dataclass(frozen=True)
class NetBoxRack:
    id: int | None
    name: str
    facility_id: str | None
    site: Ref
    location: Ref | None
    group: str | None
    status: str
    starting_unit: int | None
    cooling_capability: str | None
    cooling_capacity_kw: float | None
    device_count: int | None
    where: Where


@dataclass(frozen=True)
class NetBoxPanel:
    id: int | None
    name: str
    site: Ref
    location: Ref | None
    where: Where


@dataclass(frozen=True)
class NetBoxFeed:
    id: int | None
    name: str
    panel: Ref
    rack: Ref | None
    rack_site: str | None
    """The UI CSV's ``Site`` column: the site of the feed's rack (empty without a rack)."""
    status: str
    type: str
    supply: str
    phase: str
    voltage: int
    amperage: int
    max_utilization: int
    cabled: bool
    """A cable or ``mark_connected``: NetBox takes no further cable on the feed."""
    where: Where


@dataclass
class NetBoxExport:
    """Every record read, by kind, plus the files read and warnings for the user."""

    sites: list[NetBoxSite] = field(default_factory=list)
    locations: list[NetBoxLocation] = field(default_factory=list)
    racks: list[NetBoxRack] = field(default_factory=list)
    power_panels: list[NetBoxPanel] = field(default_factory=list)
    power_feeds: list[NetBoxFeed] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _canonical(text: str) -> str:
    """``Single phase``, ``single_phase`` and ``single-phase`` all read as ``single-phase``."""
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def _normalized_header(title: str) -> str:
    """``Max Utilization`` -> ``max_utilization``; ``Cooling Capacity (kW)`` ->
    ``cooling_capacity``: a UI column title as the field it shows."""
    title = re.sub(r"\(.*?\)", "", title.lstrip("\ufeff"))
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


class _Record:
    """One exported object, read field by field under NetBox's conventions for JSON and
    CSV; ``titles`` maps a CSV field back to its column title for messages."""

    def __init__(self, values: dict[str, Any], where: Where, titles: dict[str, str] | None):
        self.values = values
        self.where = where
        self.titles = titles

    def label(self, name: str) -> str:
        return self.titles.get(name, name) if self.titles is not None else name

    def error(self, name: str, problem: str, fix: str) -> InstanceError:
        return self.where.error(self.label(name), problem, fix)

    def raw(self, name: str, required: bool = False) -> Any:
        if required and name not in self.values:
            what = "column" if self.titles is not None else "field"
            raise self.error(
                name,
                f"the export has no {name!r} {what}",
                "export every column (NetBox: Export > All data; the API without ?brief or "
                "?fields=)",
            )
        value = self.values.get(name)
        if isinstance(value, str) and value.strip() in _EMPTY_CELLS:
            return None
        return value

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.raw(name, required)
        if isinstance(value, dict):
            value = value.get("value", value.get("name"))
        if value is None or str(value).strip() == "":
            if required:
                raise self.error(name, "is empty", f"give the object's {name}")
            return None
        return str(value).strip()

    def ref(self, name: str, required: bool = False) -> Ref | None:
        value = self.raw(name, required)
        if isinstance(value, dict):
            label = value.get("name") or value.get("display")
            if not label:
                raise self.error(name, "names no object", "export the full object list")
            return Ref(_whole(value.get("id")), str(label).strip())
        if value is None or str(value).strip() == "":
            if required:
                raise self.error(name, "is empty", f"give the object's {name}")
            return None
        return Ref(None, str(value).strip())

    def choice(self, name: str, allowed: Sequence[str], default: str | None = None) -> str:
        value = self.text(name, required=default is None)
        if value is None:
            assert default is not None
            return default
        found = _canonical(value)
        if found not in allowed:
            raise self.error(
                name, f"unknown value {value!r}", f"NetBox's values are {', '.join(allowed)}"
            )
        return found

    def integer(
        self, name: str, low: int, high: int, required: bool = False, unit: str = ""
    ) -> int | None:
        value = self.raw(name, required)
        if value is None:
            if required:
                raise self.error(name, "is empty", f"give a whole number from {low} to {high}")
            return None
        text = str(value).strip().removesuffix(unit).strip() if unit else str(value).strip()
        number = _whole(text)
        if number is None or not low <= number <= high:
            raise self.error(
                name, f"{value!r} is not a whole number from {low} to {high}", "correct it"
            )
        return number

    def number(self, name: str) -> float | None:
        value = self.raw(name)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise self.error(name, f"{value!r} is not a number >= 0", "correct it")
        return number


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number == int(number) else None


def _site(r: _Record) -> NetBoxSite:
    return NetBoxSite(_whole(r.raw("id")), r.text("name", True) or "", r.where)


def _location(r: _Record) -> NetBoxLocation:
    site = r.ref("site", True)
    assert site is not None
    return NetBoxLocation(_whole(r.raw("id")), r.text("name", True) or "", site, r.where)


def _rack(r: _Record) -> NetBoxRack:
    site = r.ref("site", True)
    assert site is not None
    group = r.ref("group")
    return NetBoxRack(
        id=_whole(r.raw("id")),
        name=r.text("name", True) or "",
        facility_id=r.text("facility_id"),
        site=site,
        location=r.ref("location"),
        group=group.name if group else None,
        status=r.choice("status", RACK_STATUSES, "active"),
        starting_unit=r.integer("starting_unit", 1, 1000),
        cooling_capability=(
            r.choice("cooling_capability", COOLING_CAPABILITIES)
            if r.text("cooling_capability")
            else None
        ),
        cooling_capacity_kw=r.number("cooling_capacity"),
        device_count=r.integer("device_count", 0, 10**9),
        where=r.where,
    )


def _panel(r: _Record) -> NetBoxPanel:
    site = r.ref("site", True)
    assert site is not None
    return NetBoxPanel(
        _whole(r.raw("id")), r.text("name", True) or "", site, r.ref("location"), r.where
    )


def _feed(r: _Record) -> NetBoxFeed:
    panel = r.ref("power_panel", True)
    assert panel is not None
    voltage = r.integer("voltage", -32768, 32767, required=True)
    if voltage == 0:
        raise r.error("voltage", "is 0 V", "give the feed's voltage (NetBox refuses 0 too)")
    supply = r.choice("supply", SUPPLIES, "ac")
    if supply == "ac" and voltage is not None and voltage < 0:
        raise r.error("voltage", f"{voltage} V is negative on an AC feed", "correct the sign")
    cable = r.raw("cable")
    marked = str(r.raw("mark_connected")).strip().lower() in ("true", "1", "yes")
    return NetBoxFeed(
        id=_whole(r.raw("id")),
        name=r.text("name", True) or "",
        panel=panel,
        rack=r.ref("rack"),
        rack_site=r.text("site"),
        status=r.choice("status", FEED_STATUSES),
        type=r.choice("type", FEED_TYPES),
        supply=supply,
        phase=r.choice("phase", PHASES),
        voltage=voltage or 0,
        amperage=r.integer("amperage", 1, 32767, required=True) or 0,
        max_utilization=r.integer("max_utilization", 1, 100, required=True, unit="%") or 0,
        cabled=marked or cable not in (None, "", False),
        where=r.where,
    )


_READERS: dict[str, Callable[[_Record], Any]] = {
    "sites": _site,
    "locations": _location,
    "racks": _rack,
    "power_panels": _panel,
    "power_feeds": _feed,
}


def kind_from_name(path: Path) -> str | None:
    """The object list a file holds, by its name: ``racks.json``, ``power-feeds-2.csv``,
    NetBox's ``netbox_power feeds.csv``."""
    stem = re.sub(r"[^a-z0-9]", "", path.stem.lower()).removeprefix("netbox")
    stem = re.sub(r"(page)?\d+$", "", stem)
    return _FILE_STEMS.get(stem.removesuffix("s"))


def _json_records(path: Path, text: str) -> tuple[str | None, list[_Record], int | None]:
    """The records of an API answer, their kind (None when neither the records' ``url``
    nor the file's name tells it) and the answer's ``count``."""
    file = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstanceError(
            file, "", f"not valid JSON: {exc.msg}", "save the API's answer unchanged", exc.lineno
        ) from None
    count = None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        count = _whole(data.get("count"))
        items = data["results"]
    elif isinstance(data, list):
        items = data
    else:
        raise InstanceError(
            file,
            "",
            "holds neither an API answer with 'results' nor a list of objects",
            "save what GET /api/dcim/<objects>/ returns",
        )
    kind = None
    for item in items:
        url = item.get("url") if isinstance(item, dict) else None
        found = re.search(r"/api/dcim/([a-z-]+)/", str(url or ""))
        if found:
            if found.group(1) not in _API_PATHS:
                return None, [], None  # another NetBox list (devices, cables, ...)
            kind = _API_PATHS[found.group(1)]
            break
    kind = kind or kind_from_name(path)
    if kind is None:
        return None, [], None
    records = []
    for index, item in enumerate(items):
        where = Where(file, index=index)
        if not isinstance(item, dict):
            raise where.error("", "is not an object", "save the API's answer unchanged")
        records.append(_Record(item, where, None))
    return kind, records, count


def _delimiter(header_line: str) -> str:
    """NetBox writes the user's preferred delimiter; the header shows which it is."""
    return max(",;\t|", key=header_line.count)


def _csv_records(path: Path, text: str) -> tuple[str | None, list[_Record], None]:
    kind = kind_from_name(path)
    if kind is None:
        return None, [], None
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text.split("\n", 1)[0]))
    header = next(reader, [])
    aliases = _CSV_ALIASES[kind]
    names = [aliases.get(n, n) for n in map(_normalized_header, header)]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        problem = f"two columns read as {repeated[0]!r}"
        raise InstanceError(str(path), "header", problem, "export each column once", 1)
    titles = {n: t.strip() for n, t in zip(names, header, strict=True)}
    records = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        where = Where(str(path), line=reader.line_num)
        if len(cells) > len(header):
            raise where.error(
                "", f"{len(cells)} cells but the header has {len(header)}", "keep the export as is"
            )
        values = {n: c.strip() for n, c in zip(names, cells, strict=False) if n}
        records.append(_Record(values, where, titles))
    return kind, records, None


def _unknown_kind(path: Path) -> InstanceError:
    return InstanceError(
        str(path),
        "",
        "cannot tell which NetBox objects the file holds",
        "name it sites, locations, racks, power-panels or power-feeds (.json or .csv), "
        "as NetBox's own export names do",
    )


def _files(paths: Iterable[Path]) -> list[tuple[Path, bool]]:
    """The export files, each with whether it was found in a named folder: every named
    file, and the .json and .csv files of each named folder."""
    found: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            found += [
                (child, True)
                for child in sorted(path.iterdir())
                if child.suffix.lower() in (".json", ".csv")
            ]
        elif path.is_file():
            found.append((path, False))
        else:
            raise InstanceError(str(path), "", "file or folder not found", "check the path")
    return found


def read_exports(paths: Sequence[str | Path]) -> NetBoxExport:
    """Read NetBox export files and folders into records, by kind."""
    export = NetBoxExport()
    counts: dict[str, int] = {}
    for path, in_folder in _files([Path(p) for p in paths]):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InstanceError(str(path), "", f"cannot read: {exc}", "save it as UTF-8") from None
        suffix = path.suffix.lower()
        kind, records, count = (_json_records if suffix == ".json" else _csv_records)(path, text)
        if kind is None:
            if not in_folder:
                raise _unknown_kind(path)
            export.warnings.append(
                f"{path}: not one of the lists rackopt reads (sites, locations, racks, power "
                "panels, power feeds); ignored"
            )
            continue
        export.files.setdefault(kind, []).append(str(path))
        if count is not None:
            counts[kind] = max(counts.get(kind, 0), count)
        getattr(export, kind).extend(_READERS[kind](r) for r in records)
    for kind, count in counts.items():
        held = len(getattr(export, kind))
        if held < count:
            raise InstanceError(
                export.files[kind][0],
                "count",
                f"NetBox counted {count} {kind.replace('_', ' ')} but the files hold {held}",
                "give every page of the answer (follow 'next', or ask with ?limit=0)",
            )
    for kind in ("racks", "power_feeds"):
        if kind not in export.files:
            given = choices(sorted(export.files)) if export.files else "nothing"
            raise InstanceError(
                ", ".join(str(p) for p in paths),
                "",
                f"no {kind.replace('_', ' ')} among the exports (found {given})",
                f"export NetBox's {kind.replace('_', ' ')} too (/api/dcim/"
                f"{kind.replace('_', '-')}/ or the list's Export button)",
            )
    _refuse_repeats(export)
    return export


def _refuse_repeats(export: NetBoxExport) -> None:
    """The same NetBox object twice (two overlapping pages, a file given twice)."""
    for kind in KINDS:
        seen: dict[int, Where] = {}
        for record in getattr(export, kind):
            if record.id is None:
                continue
            if record.id in seen:
                raise record.where.error(
                    "id",
                    f"NetBox object {record.id} appears twice (first in "
                    f"{seen[record.id].describe()})",
                    "give each export once",
                )
            seen[record.id] = record.where
