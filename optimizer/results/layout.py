"""The layout dataset (format version 1): build it from a checked solve, write it atomically.

Every load in the dataset comes from :mod:`optimizer.verify.check`, i.e. it is recomputed
from the placement, not read from the solver. NetCDF attributes cannot hold dicts
or None, so structured attributes are stored as JSON strings. The public
description of every variable is ``docs/output-format.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import tempfile
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import xarray as xr

from optimizer.errors import InstanceError, OutputError, did_you_mean
from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.placement import Assignment
from optimizer.solve.pipeline import SolveReport
from optimizer.verify.check import EMPTY

LAYOUT_FORMAT_VERSION = 1
_PACKAGES = (
    "rackopt",
    "pyomo",
    "highspy",
    "numpy",
    "xarray",
    "h5netcdf",
    "h5py",
    "pydantic",
    "click",
)


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _finite_or_nan(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else float("nan")


def _ids_or_empty(ids: tuple[str, ...], index: np.ndarray) -> list[str]:
    """Ids by index per slot; ``''`` where the index is -1 (no CDU, no air zone)."""
    return [ids[i] if i != NO_INDEX else "" for i in index]


def _fabric_variables(report: SolveReport) -> dict[str, tuple]:
    """SU membership, network racks and cable metres (empty SU dimension without a fabric)."""
    site, layout = report.site, report.layout
    cable = report.check.loads.cable_m
    placed = layout.placement
    su_type = layout.su_types()
    by_type = np.zeros(len(site.rack_types))
    racks = np.flatnonzero(placed != EMPTY)
    np.add.at(by_type, placed[racks], cable[racks])
    by_class = site.network.metres_by_class(cable) if site.network is not None else {}
    return {
        "su": ("slot", layout.su.astype(np.int64)),
        "cable_m": ("slot", cable),
        "su_network_slot": (
            "su_id",
            np.array([site.slot_ids[s] for s in layout.su_network_slot], dtype=str),
        ),
        "su_rack_type": ("su_id", np.array([site.rack_types[t].name for t in su_type], dtype=str)),
        "cable_m_by_type": ("type", by_type),
        "reach_class": ("reach_class", np.array(list(by_class), dtype=str)),
        "cable_m_by_class": ("reach_class", np.array(list(by_class.values()), dtype=float)),
        "total_cable_m": ((), float(cable.sum())),
        "su_count": ("type", np.bincount(su_type, minlength=len(site.rack_types)).astype(np.int64)),
    }


def _thermal_variables(report: SolveReport) -> dict[str, tuple]:
    """Inlet temperatures per slot, supply temperatures and cooling power per zone and CDU
    group, and the PUE; NaN where a temperature is not given or a slot is empty."""
    site, loads, placed = report.site, report.check.loads, report.placement
    limit = np.where(placed != EMPTY, site.type_inlet_limit_c[np.maximum(placed, 0)], np.nan)
    return {
        "inlet_temp_c": ("slot", loads.inlet_temp_c),
        "inlet_limit_c": ("slot", limit),
        "type_inlet_limit_c": ("type", site.type_inlet_limit_c),
        "type_water_max_c": ("type", site.type_water_max_c),
        "cdu_supply_temp_c": ("cdu", site.cdu_supply_temp_c),
        "cdu_cooling_kw": ("cdu", loads.cdu_cooling_kw),
        "air_zone_supply_temp_c": ("air_zone", site.air_zone_supply_temp_c),
        "air_zone_cooling_kw": ("air_zone", loads.air_zone_cooling_kw),
        "pue": ((), loads.pue),
    }


def layout_dataset(report: SolveReport) -> xr.Dataset:
    """The layout of ``report`` as an xarray Dataset with named dimensions."""
    site, loads, outcome = report.site, report.check.loads, report.outcome
    names = [t.name for t in site.rack_types]
    placed = report.placement
    rack_type = np.array([names[t] if t != EMPTY else "" for t in placed], dtype=object)
    counts = np.bincount(placed[placed != EMPTY], minlength=len(names))
    gpus = counts * np.array([t.gpus for t in site.rack_types])
    parent = [site.device_ids[p] if p >= 0 else "" for p in site.device_parent]
    ds = xr.Dataset(
        data_vars={
            "rack_type": ("slot", rack_type.astype(str)),
            "installed": ("slot", np.array([s in site.installed for s in range(site.n_slots)])),
            "rack_count": ("type", counts.astype(np.int64)),
            "gpus": ("type", gpus.astype(np.int64)),
            "type_it_kw": ("type", np.array([t.it_kw for t in site.rack_types])),
            "device_kind": ("device", np.array(site.device_kind, dtype=str)),
            "device_parent": ("device", np.array(parent, dtype=str)),
            "device_rating_kw": ("device", site.device_rating_kw),
            "device_capacity_kw": ("device", site.device_limit_kw),
            "device_failover_limit_kw": ("device", site.device_failover_limit_kw),
            "device_load_kw": ("device", loads.device_normal_kw),
            "device_failover_load_kw": ("device", loads.device_failover_kw),
            "device_worst_failure": ("device", np.array(loads.device_worst_failure, dtype=str)),
            "cdu_heat_kw": ("cdu", loads.cdu_heat_kw),
            "cdu_capacity_kw": ("cdu", site.cdu_heat_capacity_kw),
            "cdu_flow_lpm": ("cdu", loads.cdu_flow_lpm),
            "cdu_flow_capacity_lpm": ("cdu", site.cdu_flow_capacity_lpm),
            "air_zone_heat_kw": ("air_zone", loads.air_zone_heat_kw),
            "air_zone_capacity_kw": ("air_zone", site.air_zone_capacity_kw),
            "it_kw": ((), loads.it_kw),
            "cooling_kw": ((), loads.cooling_kw),
            "facility_kw": ((), loads.facility_kw),
            "utility_limit_kw": ((), _finite_or_nan(site.utility_limit_kw)),
            "total_gpus": ((), int(gpus.sum())),
            **_fabric_variables(report),
            **_thermal_variables(report),
        },
        coords={
            "slot": list(site.slot_ids),
            "hall": ("slot", list(site.slot_hall)),
            "row": ("slot", list(site.slot_row)),
            "position": ("slot", site.slot_position),
            "x_m": ("slot", site.slot_x_m),
            "y_m": ("slot", site.slot_y_m),
            "slot_liquid": ("slot", np.asarray(site.slot_liquid, dtype=bool)),
            "slot_cdu": ("slot", np.array(_ids_or_empty(site.cdu_ids, site.slot_cdu), dtype=str)),
            "slot_air_zone": (
                "slot",
                np.array(_ids_or_empty(site.air_zone_ids, site.slot_air_zone), dtype=str),
            ),
            "type": names,
            "device": list(site.device_ids),
            "cdu": np.array(site.cdu_ids, dtype=str),
            "air_zone": np.array(site.air_zone_ids, dtype=str),
            "su_id": np.arange(len(report.layout.su_network_slot)),
        },
    )
    ds.attrs = {
        "title": f"rackopt layout of {site.name}",
        "layout_format_version": LAYOUT_FORMAT_VERSION,
        "instance_name": site.name,
        "instance_sha256": site.sha256,
        "objective_kind": str(site.objective),
        "status": outcome.status,
        "objective": _finite_or_nan(outcome.objective),
        "best_bound": _finite_or_nan(outcome.bound),
        "gap": _finite_or_nan(outcome.gap),
        "tie_break_status": outcome.tie_break_status,
        "timings_s": json.dumps({k: round(v, 6) for k, v in report.timings.items()}),
        "model_size": json.dumps(report.model_size),
        "solver_options": json.dumps(report.options.recorded(), sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return ds


def write_layout(ds: xr.Dataset, path: str | Path) -> None:
    """Write NetCDF atomically: a temporary file in the same folder, then a rename, so a
    reader never sees a half-written layout."""
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _type_indices(site: Site, names: list[str], file: str, lines: list[int | None]) -> np.ndarray:
    known = {t.name: i for i, t in enumerate(site.rack_types)}
    out = np.full(len(names), EMPTY, dtype=np.int64)
    for i, (name, line) in enumerate(zip(names, lines, strict=True)):
        if not name:
            continue
        if name not in known:
            raise InstanceError(
                file, "rack_type", f"unknown rack type {name!r}", did_you_mean(name, known), line
            )
        out[i] = known[name]
    return out


def _slot_indices(
    site: Site, slots: list[str], file: str, lines: list[int | None], field: str
) -> np.ndarray:
    index = {s: i for i, s in enumerate(site.slot_ids)}
    out = []
    for slot, line in zip(slots, lines, strict=True):
        if slot not in index:
            raise InstanceError(
                file, field, f"unknown slot {slot!r}", did_you_mean(slot, index), line
            )
        out.append(index[slot])
    return np.array(out, dtype=np.int64)


def _read_netcdf(site: Site, path: Path) -> Assignment:
    file = str(path)
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise InstanceError(
            file,
            "",
            f"cannot read layout: {exc}",
            "give a layout written by rackopt solve, or a CSV",
        ) from None
    version_found = ds.attrs.get("layout_format_version")
    if version_found != LAYOUT_FORMAT_VERSION or "rack_type" not in ds:
        raise InstanceError(
            file,
            "layout_format_version",
            f"not a rackopt layout of format {LAYOUT_FORMAT_VERSION} (found {version_found!r})",
            "give a layout written by rackopt solve, or a CSV",
        )
    slots = [str(s) for s in ds["slot"].values]
    none = [None] * len(slots)
    where = _slot_indices(site, slots, file, none, "slot")
    placement = np.full(site.n_slots, EMPTY, dtype=np.int64)
    placement[where] = _type_indices(site, [str(v) for v in ds["rack_type"].values], file, none)
    su = np.full(site.n_slots, NO_INDEX, dtype=np.int64)
    hubs: list[int] = []
    if "su" in ds and "su_network_slot" in ds:
        su[where] = ds["su"].values.astype(np.int64)
        names = [str(s) for s in ds["su_network_slot"].values]
        hubs = _slot_indices(site, names, file, [None] * len(names), "su_network_slot").tolist()
    return Assignment(placement, su, hubs)


def _read_csv(site: Site, path: Path) -> Assignment:
    """A layout made elsewhere: ``slot,rack_type`` lines, with optional ``su`` (an SU label)
    and ``network_slot`` (the slot of that SU's network rack) for a fabric."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstanceError(file, "", f"cannot read layout: {exc}", "check the path") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "slot" not in header or "rack_type" not in header:
        raise InstanceError(
            file,
            "header",
            "a layout CSV needs columns slot,rack_type",
            "write a header line `slot,rack_type` (optionally su,network_slot)",
            1,
        )
    rows = [(line, row) for line, row in enumerate(reader, start=2) if any(row.values())]
    lines = [line for line, _ in rows]
    slots = _slot_indices(site, [(r["slot"] or "").strip() for _, r in rows], file, lines, "slot")
    if len(set(slots.tolist())) != len(slots):
        raise InstanceError(file, "slot", "a slot is listed twice", "list each slot once")
    kinds = _type_indices(site, [(r["rack_type"] or "").strip() for _, r in rows], file, lines)
    placement = np.full(site.n_slots, EMPTY, dtype=np.int64)
    placement[slots] = kinds
    su = np.full(site.n_slots, NO_INDEX, dtype=np.int64)
    hubs: list[int] = []
    labels: dict[str, int] = {}
    if "su" in header:
        for (line, row), slot in zip(rows, slots, strict=True):
            label = (row.get("su") or "").strip()
            if not label:
                continue
            hub_name = (row.get("network_slot") or "").strip()
            hub = _slot_indices(site, [hub_name], file, [line], "network_slot")[0]
            if label not in labels:
                labels[label] = len(hubs)
                hubs.append(int(hub))
            elif hubs[labels[label]] != hub:
                raise InstanceError(
                    file,
                    "network_slot",
                    f"SU {label!r} names two network racks",
                    "give every rack of an SU the same network_slot",
                    line,
                )
            su[slot] = labels[label]
    return Assignment(placement, su, hubs)


def read_layout(site: Site, path: str | Path) -> Assignment:
    """Read a layout to check: a rackopt NetCDF layout, or a CSV made elsewhere."""
    path = Path(path)
    if not path.is_file():
        raise InstanceError(str(path), "", "layout file not found", "check the path")
    if path.suffix.lower() == ".csv":
        return _read_csv(site, path)
    return _read_netcdf(site, path)
