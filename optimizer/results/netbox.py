"""Write a layout as NetBox bulk-import CSV: planned devices, their power ports, and the
cables from those ports to the racks' power feeds.

The column names are those of NetBox's own import forms (``netbox/dcim/forms/
bulk_import.py`` in netbox-community/netbox: ``DeviceImportForm``, ``PowerPortImportForm``,
``CableImportForm``), and only columns every NetBox 4.x form accepts are used, except the
cable's ``side_b_power_panel``: NetBox imports cables to power feeds from CSV since 4.6.0.

Which NetBox rack and feeds each slot stands for is read from the NetBox map that
``rackopt import-netbox`` wrote beside its fragment; the layout names slots and rack
types only. Each placed rack becomes one device of status ``planned`` in its NetBox rack,
whose device type (model) is the rack type's id. Each of the slot's feeds gets a power
port on that device: ``maximum_draw`` is the rack's whole IT load (what one feed carries
when the other fails), ``allocated_draw`` its share in normal operation, both in watts.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from optimizer.errors import InstanceError
from optimizer.instance.netbox_fragment import MAP_FORMAT, MAP_VERSION
from optimizer.output import check_folder, write_files
from optimizer.results.reader import LayoutFileError, open_layout

DEVICE_COLUMNS = (
    "name",
    "role",
    "manufacturer",
    "device_type",
    "status",
    "site",
    "location",
    "rack",
    "position",
    "face",
    "description",
)
POWER_PORT_COLUMNS = ("device", "name", "maximum_draw", "allocated_draw", "description")
CABLE_COLUMNS = (
    "side_a_site",
    "side_a_device",
    "side_a_type",
    "side_a_name",
    "side_b_site",
    "side_b_power_panel",
    "side_b_type",
    "side_b_name",
    "type",
    "status",
    "description",
)
FILES = {"devices": "devices.csv", "power_ports": "power-ports.csv", "cables": "cables.csv"}
PORT_NAMES = ("PWR-A", "PWR-B")
"""Power port per feed, in the slot's feed order (A then B)."""


@dataclass(frozen=True)
class NetBoxNames:
    """How the devices are named in NetBox: one manufacturer, a role (the rack type's id
    when ``role`` is None) and whether devices get a rack position."""

    manufacturer: str = "Generic"
    role: str | None = None
    racked: bool = True


def read_layout_dataset(path: str | Path) -> xr.Dataset:
    """One layout, read and checked as every layout is (:func:`open_layout`, formats 1
    and 2); a study dataset is refused, since NetBox gets one plan."""
    ds = open_layout(path)
    if "scenario" in ds.dims:
        raise LayoutFileError(
            path, "", "a study dataset holds several layouts", "give one layout file"
        )
    return ds


def read_netbox_map(path: str | Path) -> dict[str, Any]:
    """The NetBox map written by ``rackopt import-netbox``."""
    file = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(file, "", f"cannot read: {exc}", "check the path") from None
    except json.JSONDecodeError as exc:
        raise InstanceError(
            file, "", f"not valid JSON: {exc.msg}", "use the map import-netbox wrote", exc.lineno
        ) from None
    if not isinstance(data, dict) or data.get("format") != MAP_FORMAT:
        raise InstanceError(
            file,
            "format",
            "not a NetBox map of rackopt import-netbox",
            "give the FRAGMENT.netbox.json written beside the imported fragment",
        )
    if data.get("version") != MAP_VERSION:
        raise InstanceError(
            file,
            "version",
            f"map version {data.get('version')!r}; this rackopt reads {MAP_VERSION}",
            "re-run rackopt import-netbox",
        )
    _check_map(data, file)
    return data


_SLOT_KEYS = ("rack", "location", "starting_unit", "primary_share", "feeds")
_FEED_KEYS = ("device", "power_panel", "power_feed", "cabled")


def _check_map(data: dict[str, Any], file: str) -> None:
    """Every key the export reads is there (a hand-edited map fails here, not later)."""

    def missing(field: str, key: str) -> InstanceError:
        return InstanceError(file, field, f"missing {key!r}", "re-run rackopt import-netbox")

    if not isinstance(data.get("site"), str):
        raise missing("site", "site")
    if not isinstance(data.get("slots"), dict):
        raise missing("slots", "slots")
    for slot, entry in data["slots"].items():
        for key in _SLOT_KEYS:
            if not isinstance(entry, dict) or key not in entry:
                raise missing(f"slots.{slot}", key)
        for index, feed in enumerate(entry["feeds"]):
            for key in _FEED_KEYS:
                if not isinstance(feed, dict) or key not in feed:
                    raise missing(f"slots.{slot}.feeds.{index}", key)


def _table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _placed(ds: xr.Dataset, slots: dict[str, Any], layout: str, map_file: str):
    """(slot id, rack type) of every placed rack; each must be a slot of the map, and the
    map's feeds devices of the layout."""
    devices = {str(d) for d in ds["device"].values}
    placed = []
    for slot, rack_type in zip(ds["slot"].values, ds["rack_type"].values, strict=True):
        slot, rack_type = str(slot), str(rack_type)
        if not rack_type:
            continue
        if slot not in slots:
            raise InstanceError(
                layout,
                "slot",
                f"slot {slot!r} holds a rack ({rack_type}) but is not a NetBox rack of {map_file}",
                "export a layout solved from the instance that includes this import",
            )
        unknown = [f["device"] for f in slots[slot]["feeds"] if f["device"] not in devices]
        if unknown:
            raise InstanceError(
                map_file,
                f"slots.{slot}.feeds",
                f"feed {unknown[0]!r} is not a power device of the layout",
                "export a layout solved from the instance that includes this import",
            )
        placed.append((slot, rack_type))
    return placed


def netbox_tables(
    ds: xr.Dataset, mapping: dict[str, Any], names: NetBoxNames, layout: str, map_file: str
) -> tuple[dict[str, str], list[str]]:
    """The three CSV tables (by ``FILES`` key) and warnings for the user."""
    site = mapping["site"]
    it_kw = dict(zip(map(str, ds["type"].values), map(float, ds["type_it_kw"].values), strict=True))
    instance = ds.attrs.get("instance_name", "")
    devices, ports, cables, warnings = [], [], [], []
    for slot, rack_type in _placed(ds, mapping["slots"], layout, map_file):
        entry = mapping["slots"][slot]
        device = f"{slot}-{rack_type}"  # slot ids are unique where rack names repeat
        load_w = it_kw[rack_type] * 1000.0
        devices.append(
            {
                "name": device,
                "role": names.role or rack_type,
                "manufacturer": names.manufacturer,
                "device_type": rack_type,
                "status": "planned",
                "site": site,
                "location": entry["location"] or "",
                "rack": entry["rack"],
                "position": entry["starting_unit"] if names.racked else "",
                "face": "front" if names.racked else "",
                "description": f"rackopt {instance}: slot {slot}, {it_kw[rack_type]:g} kW IT",
            }
        )
        feeds = entry["feeds"]
        share = entry["primary_share"] if len(feeds) == 2 else 1.0
        for port, feed, part in zip(PORT_NAMES, feeds, (share, 1.0 - share), strict=False):
            allocated = round(load_w * part)
            ports.append(
                {
                    "device": device,
                    "name": port,
                    "maximum_draw": max(1, round(load_w)),
                    "allocated_draw": allocated if allocated >= 1 else "",
                    "description": f"feed {feed['power_panel']}/{feed['power_feed']}",
                }
            )
            if feed["cabled"]:
                warnings.append(
                    f"power feed {feed['power_panel']}/{feed['power_feed']} is cabled or marked "
                    f"connected in NetBox: no cable written for {device} {port}"
                )
                continue
            cables.append(
                {
                    "side_a_site": site,
                    "side_a_device": device,
                    "side_a_type": "dcim.powerport",
                    "side_a_name": port,
                    "side_b_site": site,
                    "side_b_power_panel": feed["power_panel"],
                    "side_b_type": "dcim.powerfeed",
                    "side_b_name": feed["power_feed"],
                    "type": "power",
                    "status": "planned",
                    "description": f"rackopt {instance}",
                }
            )
    tables = {
        "devices": _table(DEVICE_COLUMNS, devices),
        "power_ports": _table(POWER_PORT_COLUMNS, ports),
        "cables": _table(CABLE_COLUMNS, cables),
    }
    return tables, warnings


def export_netbox(
    layout: str | Path, map_path: str | Path, output: str | Path, names: NetBoxNames
) -> tuple[list[Path], list[str]]:
    """Write devices.csv, power-ports.csv and cables.csv into the folder ``output``."""
    ds = read_layout_dataset(layout)
    mapping = read_netbox_map(map_path)
    tables, warnings = netbox_tables(ds, mapping, names, str(layout), str(map_path))
    folder = Path(output)
    check_folder(folder)
    files = {folder / FILES[key]: text for key, text in tables.items()}
    write_files({path: text.encode("utf-8") for path, text in files.items()})
    return list(files), warnings
