"""The layout dataset (format version 1): build it from a checked solve, write it atomically.

Every load in the dataset comes from :mod:`optimizer.check`, i.e. it is recomputed
from the placement, not read from the solver. NetCDF attributes cannot hold dicts
or None, so structured attributes are stored as JSON strings. The public
description of every variable is ``docs/output-format.md``.
"""

from __future__ import annotations

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

from optimizer.check import EMPTY
from optimizer.solve import SolveReport

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
        },
        coords={
            "slot": list(site.slot_ids),
            "hall": ("slot", list(site.slot_hall)),
            "row": ("slot", list(site.slot_row)),
            "position": ("slot", site.slot_position),
            "x_m": ("slot", site.slot_x_m),
            "y_m": ("slot", site.slot_y_m),
            "type": names,
            "device": list(site.device_ids),
            "cdu": list(site.cdu_ids),
            "air_zone": list(site.air_zone_ids),
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
        "solver_options": json.dumps(report.options.highs_options(), sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return ds


def write_layout(ds: xr.Dataset, path: str | Path) -> None:
    """Write NetCDF atomically: a temporary file in the same folder, then a rename, so a
    reader never sees a half-written layout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
