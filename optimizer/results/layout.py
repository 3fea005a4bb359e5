"""The layout dataset (format version 2): build it from a checked solve, write it atomically.

Every load in the dataset comes from :mod:`optimizer.verify.check`, i.e. it is recomputed
from the placement, not read from the solver. Names, dimensions, dtypes and units come
from :mod:`optimizer.results.schema`; the public description of every variable is
``docs/output-format.md``. NetCDF attributes cannot hold dicts or None, so structured
attributes are stored as JSON strings. The file is CF-1.13: the in-memory dataset keeps
booleans and -1 for "none", and :func:`cf_encoded` stores them as CF says (int8 flags,
``_FillValue``) on the way to disk. Reading layouts back is
:mod:`optimizer.results.reader`'s job.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from optimizer import __version__
from optimizer.instance.loader import LoadedInstance
from optimizer.instance.overrides import resolved_instance
from optimizer.output import output_error, write_file, write_files
from optimizer.results.schema import (
    CONVENTIONS,
    FIELDS,
    FLAG,
    INTEGER,
    LAYOUT_FORMAT_VERSION,
    REAL,
    TEXT,
    Field,
)
from optimizer.site.arrays import NO_INDEX
from optimizer.solve.phases import PhaseLayout, phase_gpus
from optimizer.solve.pipeline import SolveReport
from optimizer.verify.check import EMPTY

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


def _fabric_variables(report: SolveReport) -> dict[str, Any]:
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
        "su_id": np.arange(len(layout.su_network_slot)),
        "reach_class": list(by_class),
        "su": layout.su,
        "cable_m": cable,
        "su_network_slot": [site.slot_ids[s] for s in layout.su_network_slot],
        "su_rack_type": [site.rack_types[t].name for t in su_type],
        "cable_m_by_type": by_type,
        "cable_m_by_class": list(by_class.values()),
        "total_cable_m": float(cable.sum()),
        "su_count": np.bincount(su_type, minlength=len(site.rack_types)),
    }


def _thermal_variables(report: SolveReport) -> dict[str, Any]:
    """Inlet temperatures per slot, supply temperatures and cooling power per zone and CDU
    group, and the PUE; NaN where a temperature is not given or a slot is empty."""
    site, loads, placed = report.site, report.check.loads, report.placement
    limit = np.where(placed != EMPTY, site.type_inlet_limit_c[np.maximum(placed, 0)], np.nan)
    return {
        "inlet_temp_c": loads.inlet_temp_c,
        "inlet_limit_c": limit,
        "type_inlet_limit_c": site.type_inlet_limit_c,
        "type_water_max_c": site.type_water_max_c,
        "cdu_supply_temp_c": site.cdu_supply_temp_c,
        "cdu_cooling_kw": loads.cdu_cooling_kw,
        "air_zone_supply_temp_c": site.air_zone_supply_temp_c,
        "air_zone_cooling_kw": loads.air_zone_cooling_kw,
        "pue": loads.pue,
    }


def _capping_variables(report: SolveReport) -> dict[str, Any]:
    """Capped draws, failover loads without capping, what each failure relies on capping
    for, and the GPUs of the solve without capping (-1 when not made or infeasible)."""
    site, capping = report.site, report.check.loads.capping
    baseline = report.capping_baseline
    return {
        "capped_if_failed": [" ".join(cases) for cases in capping.slot_cases],
        "type_capped_kw": [t.failover_kw for t in site.rack_types],
        "device_failover_uncapped_kw": capping.uncapped_failover_kw,
        "failure_capped_racks": capping.racks,
        "failure_shed_kw": capping.shed_kw,
        "gpus_without_capping": -1 if baseline is None or baseline.gpus is None else baseline.gpus,
    }


def _installed_in(phases: list[PhaseLayout], n_slots: int) -> list[str]:
    """The first of ``phases`` (in order, each holding the racks of the one before) in
    which each slot holds a rack; '' where none does."""
    installed_in = [""] * n_slots
    for phase in reversed(phases):
        for s in np.flatnonzero(phase.placement != EMPTY):
            installed_in[s] = phase.name
    return installed_in


def _phase_variables(report: SolveReport) -> dict[str, Any]:
    """Every phase's GPUs, capacities and loads, each recomputed by the checker from that
    phase's placement, and the phase each rack is installed in ('' where empty). Without
    phases the ``phase`` dimension is empty."""
    site = report.site
    phases = report.plan.phases if report.plan is not None else ()
    n_types, n_devices = len(site.rack_types), len(site.device_ids)
    n_cdus, n_zones = len(site.cdu_ids), len(site.air_zone_ids)
    installed_in = _installed_in(list(phases), site.n_slots)
    counts = [np.bincount(p.placement[p.placement != EMPTY], minlength=n_types) for p in phases]
    gpus = np.array([t.gpus for t in site.rack_types])

    def table(values: list[np.ndarray], width: int, dtype: type = float) -> np.ndarray:
        return np.array(values, dtype=dtype).reshape(len(phases), width)

    return {
        "phase": [p.name for p in phases],
        "install_phase": installed_in,
        "phase_date": [p.date for p in phases],
        "phase_duration": np.array([p.duration for p in phases], dtype=float),
        "phase_gpus": np.array([int(c @ gpus) for c in counts], dtype=np.int64),
        "phase_rack_count": table(counts, n_types, np.int64),
        "phase_it_kw": np.array([p.check.loads.it_kw for p in phases], dtype=float),
        "phase_facility_kw": np.array([p.check.loads.facility_kw for p in phases], dtype=float),
        "phase_utility_limit_kw": np.array(
            [_finite_or_nan(p.site.utility_limit_kw) for p in phases], dtype=float
        ),
        "phase_device_load_kw": table([p.check.loads.device_normal_kw for p in phases], n_devices),
        "phase_device_capacity_kw": table([p.site.device_limit_kw for p in phases], n_devices),
        "phase_device_failover_load_kw": table(
            [p.check.loads.device_failover_kw for p in phases], n_devices
        ),
        "phase_device_failover_limit_kw": table(
            [p.site.device_failover_limit_kw for p in phases], n_devices
        ),
        "phase_cdu_heat_kw": table([p.check.loads.cdu_heat_kw for p in phases], n_cdus),
        "phase_cdu_capacity_kw": table([p.site.cdu_heat_capacity_kw for p in phases], n_cdus),
        "phase_air_zone_heat_kw": table([p.check.loads.air_zone_heat_kw for p in phases], n_zones),
        "phase_air_zone_capacity_kw": table([p.site.air_zone_capacity_kw for p in phases], n_zones),
    }


def _scenario_variables(report: SolveReport) -> dict[str, Any]:
    """Each demand scenario's probability, GPUs and placement of the last phase (the
    recourse around the committed racks) with the phase each rack is installed in; the
    dimension is empty without scenarios."""
    scenarios = report.plan.scenarios if report.plan is not None else ()
    names = [t.name for t in report.site.rack_types]
    return {
        "demand_scenario": [s.name for s in scenarios],
        "demand_scenario_probability": np.array([s.probability for s in scenarios], dtype=float),
        "demand_scenario_gpus": np.array([phase_gpus(s.layout) for s in scenarios], dtype=np.int64),
        "demand_scenario_rack_type": np.array(
            [[names[t] if t != EMPTY else "" for t in s.layout.placement] for s in scenarios],
            dtype=str,
        ).reshape(len(scenarios), report.site.n_slots),
        "demand_scenario_install_phase": np.array(
            [
                _installed_in([*report.plan.phases, *s.layouts], report.site.n_slots)
                for s in scenarios
            ],
            dtype=str,
        ).reshape(len(scenarios), report.site.n_slots),
    }


def _scenario_objective(report: SolveReport) -> str:
    """``expected`` or ``worst_case`` for a plan over demand scenarios; '' otherwise."""
    plan = report.plan
    if plan is None or not plan.scenarios:
        return ""
    return "worst_case" if plan.worst_case else "expected"


def _typed(field: Field, value: Any) -> np.ndarray:
    """``value`` as the field's declared dtype; a value of another kind is a bug here,
    not something to convert quietly (a float where an int belongs, say)."""
    array = np.asarray(value)
    allowed = {TEXT: "U", INTEGER: "iu", REAL: "iuf", FLAG: "b"}[field.dtype]
    if array.size and array.dtype.kind not in allowed:
        raise TypeError(f"layout variable {field.name!r} is {array.dtype}, declared {field.dtype}")
    return array.astype(field.dtype)


def build_dataset(values: dict[str, Any], attrs: dict[str, Any]) -> xr.Dataset:
    """The dataset of ``values`` (name -> data), every one shaped, typed and described
    as :mod:`optimizer.results.schema` declares it; an undeclared or missing name is
    refused, so the file never holds what the schema and its docs do not."""
    undeclared = sorted(set(values) - set(FIELDS))
    missing = sorted(set(FIELDS) - set(values))
    if undeclared or missing:
        raise ValueError(
            f"layout variables not as declared in optimizer/results/schema.py: "
            f"undeclared {undeclared}, missing {missing}"
        )
    variables = {
        name: xr.Variable(FIELDS[name].dims, _typed(FIELDS[name], value), FIELDS[name].attrs())
        for name, value in values.items()
    }
    return xr.Dataset(
        {name: var for name, var in variables.items() if not FIELDS[name].coordinate},
        coords={name: var for name, var in variables.items() if FIELDS[name].coordinate},
        attrs=attrs,
    )


def _phase_plan(report: SolveReport) -> str:
    """How a phased layout was planned: ``joint OBJECTIVE`` or ``myopic``; '' without phases."""
    plan = report.plan
    if plan is None:
        return ""
    return "myopic" if plan.myopic else f"joint {plan.objective}"


def layout_dataset(report: SolveReport) -> xr.Dataset:
    """The layout of ``report`` as an xarray Dataset with named dimensions."""
    site, loads, outcome = report.site, report.check.loads, report.outcome
    names = [t.name for t in site.rack_types]
    placed = report.placement
    counts = np.bincount(placed[placed != EMPTY], minlength=len(names))
    gpus = counts * np.array([t.gpus for t in site.rack_types])
    values = {
        "slot": list(site.slot_ids),
        "hall": list(site.slot_hall),
        "row": list(site.slot_row),
        "position": site.slot_position,
        "x_m": site.slot_x_m,
        "y_m": site.slot_y_m,
        "slot_liquid": np.asarray(site.slot_liquid, dtype=bool),
        "slot_cdu": _ids_or_empty(site.cdu_ids, site.slot_cdu),
        "slot_air_zone": _ids_or_empty(site.air_zone_ids, site.slot_air_zone),
        "type": names,
        "device": list(site.device_ids),
        "cdu": list(site.cdu_ids),
        "air_zone": list(site.air_zone_ids),
        "rack_type": [names[t] if t != EMPTY else "" for t in placed],
        "installed": np.array([s in site.installed for s in range(site.n_slots)], dtype=bool),
        "rack_count": counts,
        "gpus": gpus,
        "type_it_kw": [t.it_kw for t in site.rack_types],
        "device_kind": list(site.device_kind),
        "device_parent": [site.device_ids[p] if p >= 0 else "" for p in site.device_parent],
        "device_rating_kw": site.device_rating_kw,
        "device_capacity_kw": site.device_limit_kw,
        "device_failover_limit_kw": site.device_failover_limit_kw,
        "device_load_kw": loads.device_normal_kw,
        "device_failover_load_kw": loads.device_failover_kw,
        "device_worst_failure": list(loads.device_worst_failure),
        "cdu_heat_kw": loads.cdu_heat_kw,
        "cdu_capacity_kw": site.cdu_heat_capacity_kw,
        "cdu_flow_lpm": loads.cdu_flow_lpm,
        "cdu_flow_capacity_lpm": site.cdu_flow_capacity_lpm,
        "air_zone_heat_kw": loads.air_zone_heat_kw,
        "air_zone_capacity_kw": site.air_zone_capacity_kw,
        "it_kw": loads.it_kw,
        "cooling_kw": loads.cooling_kw,
        "facility_kw": loads.facility_kw,
        "utility_limit_kw": _finite_or_nan(site.utility_limit_kw),
        "total_gpus": int(gpus.sum()),
        **_fabric_variables(report),
        **_thermal_variables(report),
        **_capping_variables(report),
        **_phase_variables(report),
        **_scenario_variables(report),
    }
    created = datetime.now(UTC).isoformat(timespec="seconds")
    attrs = {
        "title": f"rackopt layout of {site.name}",
        "Conventions": CONVENTIONS,
        "history": history(created, f"solve {site.name}"),
        "layout_format_version": LAYOUT_FORMAT_VERSION,
        "instance_name": site.name,
        "instance_sha256": site.sha256,
        "objective_kind": str(site.objective),
        "status": outcome.status,
        "objective": _finite_or_nan(outcome.objective),
        "best_bound": _finite_or_nan(outcome.bound),
        "gap": _finite_or_nan(outcome.gap),
        "tie_break_status": outcome.tie_break_status,
        "second_stage_objective": _finite_or_nan(outcome.second_stage_objective),
        "second_stage_bound": _finite_or_nan(outcome.second_stage_bound),
        "second_stage_gap": _finite_or_nan(outcome.second_stage_gap),
        "phase_plan": _phase_plan(report),
        "scenario_objective": _scenario_objective(report),
        "timings_s": json.dumps({k: round(v, 6) for k, v in report.timings.items()}),
        "model_size": json.dumps(report.model_size),
        "solved_as": report.solved_as,
        "solver_options": json.dumps(report.options.recorded(), sort_keys=True),
        "overrides": report.overrides or "[]",
        "versions": json.dumps(package_versions(), sort_keys=True),
        "created_utc": created,
    }
    return build_dataset(values, attrs)


def history(created_utc: str, action: str) -> str:
    """The CF ``history`` line: when, which rackopt, what it did."""
    return f"{created_utc} rackopt {__version__} {action}"


def cf_encoded(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` as stored (CF-1.13): booleans as int8 0/1 (their ``flag_values`` come with
    the schema's attributes), and the integers :meth:`Field.fill` names with
    ``_FillValue = -1``, no fill value on a dimension's labels (CF 2.5.1); the reader
    turns both back."""
    study = "scenario" in ds.dims
    flags = {
        name: var.astype(np.int8) for name, var in ds.variables.items() if var.dtype.kind == "b"
    }
    out = ds.assign_coords({n: v for n, v in flags.items() if n in ds.coords})
    out = out.assign({n: v for n, v in flags.items() if n not in ds.coords})
    for name in out.variables:
        fill = FIELDS[name].fill(study) if name in FIELDS else None
        if fill is not None:
            out[name].encoding["_FillValue"] = np.int64(fill)
        elif name in out.dims:  # labels are never missing (an empty one may be float)
            out[name].encoding["_FillValue"] = None
    return out


def netcdf_bytes(ds: xr.Dataset, path: str | Path) -> bytes:
    """``ds`` as the bytes of a NetCDF-4 file, made in memory: an HDF5 error then
    surfaces here as an exception, never in the middle of a file on disk (where a full
    disk once crashed the process)."""
    buffer = io.BytesIO()
    try:
        with _local_lock():
            cf_encoded(ds).to_netcdf(buffer, engine="h5netcdf")
    except OSError as exc:
        raise output_error(Path(path), exc) from None
    return buffer.getvalue()


def _local_lock() -> contextlib.AbstractContextManager:
    """With a dask.distributed client as the default (``batch --scheduler``), xarray
    guards each write with a cluster-wide lock named after the target, which a buffer
    cannot name; a write to memory needs only this process's lock."""
    try:
        import dask
    except ImportError:
        return contextlib.nullcontext()
    return dask.config.set(scheduler="synchronous")


def write_layout(ds: xr.Dataset, path: str | Path) -> None:
    """Write a layout or study dataset as NetCDF through the one safe write path
    (:func:`optimizer.output.write_file`)."""
    write_file(path, netcdf_bytes(ds, path))


def resolved_instance_path(layout: str | Path) -> Path:
    """Where the resolved instance of a layout goes: ``NAME.instance.yaml`` beside
    ``NAME.nc``."""
    layout = Path(layout)
    return layout.with_name(f"{layout.stem}.instance.yaml")


def layout_files(
    ds: xr.Dataset, path: str | Path, loaded: LoadedInstance | None = None
) -> dict[str | Path, bytes]:
    """The files of one layout, to be written as a set (:func:`optimizer.output.write_files`):
    the NetCDF and, when the instance was changed on the way (a study scenario, ``solve
    --set``), the resolved instance it was solved from beside it
    (:func:`optimizer.instance.overrides.resolved_instance`)."""
    files: dict[str | Path, bytes] = {path: netcdf_bytes(ds, path)}
    if loaded is not None:
        instance_path = resolved_instance_path(path)
        files[instance_path] = resolved_instance(loaded, instance_path).encode("utf-8")
    return files


def write_layout_and_instance(ds: xr.Dataset, path: str | Path, loaded: LoadedInstance) -> Path:
    """Write a layout and the resolved instance beside it (:func:`layout_files`): both or
    neither. Returns the resolved instance's path."""
    write_files(layout_files(ds, path, loaded))
    return resolved_instance_path(path)
