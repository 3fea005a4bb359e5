"""The resource table of a layout dataset: the same rows and labels as the checker's table.

``compare`` and ``report`` read layouts written earlier, without the instance; this
module fills :class:`optimizer.verify.resources.Capacities` from the dataset's variables
(docs/output-format.md), so a dataset gives exactly the table that
:func:`optimizer.verify.resources.resources` gives for the site and layout it was
written from.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import xarray as xr

from optimizer.verify.resources import Capacities, Kind, Resource, slot_counts, table


def inlet_rise(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """Per slot of a layout dataset: the inlet's rise above its supply air and the rise
    its rack's class allows (NaN for empty slots and zones without a supply temperature);
    None for layouts written before rackopt 0.2, which carry no inlet temperatures."""
    if "inlet_temp_c" not in ds:
        return None
    zone_supply = dict(
        zip(
            (str(z) for z in ds["air_zone"].values),
            ds["air_zone_supply_temp_c"].values.astype(float),
            strict=True,
        )
    )
    supply = np.array([zone_supply.get(str(z), np.nan) for z in ds["slot_air_zone"].values])
    occupied = (ds["rack_type"] != "").values
    rise = np.where(occupied, ds["inlet_temp_c"].values - supply, np.nan)
    return rise, ds["inlet_limit_c"].values - supply


_VARIABLES = {
    Kind.POWER_NORMAL: ("device", "device_load_kw", "device_capacity_kw"),
    Kind.POWER_FAILOVER: ("device", "device_failover_load_kw", "device_failover_limit_kw"),
    Kind.CDU_HEAT: ("cdu", "cdu_heat_kw", "cdu_capacity_kw"),
    Kind.CDU_FLOW: ("cdu", "cdu_flow_lpm", "cdu_flow_capacity_lpm"),
    Kind.AIR_ZONE_HEAT: ("air_zone", "air_zone_heat_kw", "air_zone_capacity_kw"),
    Kind.UTILITY: (None, "facility_kw", "utility_limit_kw"),
}
"""Dataset variables of each kind of resource: (subject coordinate, load, limit)."""


def layout_resources(ds: xr.Dataset) -> list[Resource]:
    """Every capacity of a layout dataset with its load, in table order."""
    per_kind = {
        kind: Capacities(
            [str(v) for v in ds[dim].values] if dim else [""],
            np.atleast_1d(ds[load].values),
            np.nan_to_num(np.atleast_1d(ds[limit].values), nan=np.inf),
        )
        for kind, (dim, load, limit) in _VARIABLES.items()
    }
    per_kind[Kind.POWER_FAILOVER] = replace(
        per_kind[Kind.POWER_FAILOVER],
        cases=[str(f) for f in ds["device_worst_failure"].values],
    )
    occupied = (ds["rack_type"] != "").values
    no_inlets = np.full(len(occupied), np.nan)
    rise, allowed = inlet_rise(ds) or (no_inlets, no_inlets)
    known = np.isfinite(rise)
    per_kind[Kind.INLET] = Capacities(
        [str(s) for s in ds["slot"].values[known]], rise[known], allowed[known]
    )
    liquid = (
        ds["slot_liquid"].values.astype(bool)
        if "slot_liquid" in ds.coords
        else np.zeros(len(occupied), dtype=bool)
    )
    return table({**per_kind, **slot_counts(occupied, liquid)})
