"""The resource table of a layout dataset: the same rows and labels as the checker's table.

``compare`` and ``report`` read layouts written earlier, without the instance; this
module fills :class:`optimizer.verify.resources.Figures` from the dataset's variables
(docs/output-format.md), so a dataset gives exactly the table that
:func:`optimizer.verify.resources.resources` gives for the site and layout it was
written from.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from optimizer.verify.resources import Figures, Resource


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


def layout_resources(ds: xr.Dataset) -> list[Resource]:
    """Every capacity of a layout dataset with its load, in table order."""
    occupied = (ds["rack_type"] != "").values
    liquid = (
        ds["slot_liquid"].values.astype(bool)
        if "slot_liquid" in ds.coords
        else np.zeros(len(occupied), dtype=bool)
    )
    no_inlets = np.full(len(occupied), np.nan)
    rise, allowed = inlet_rise(ds) or (no_inlets, no_inlets)
    known = np.isfinite(rise)
    utility = float(ds["utility_limit_kw"].values)
    return Figures(
        device_ids=[str(d) for d in ds["device"].values],
        device_load_kw=ds["device_load_kw"].values,
        device_limit_kw=ds["device_capacity_kw"].values,
        device_failover_load_kw=ds["device_failover_load_kw"].values,
        device_failover_limit_kw=ds["device_failover_limit_kw"].values,
        device_worst_failure=[str(f) for f in ds["device_worst_failure"].values],
        cdu_ids=[str(c) for c in ds["cdu"].values],
        cdu_heat_kw=ds["cdu_heat_kw"].values,
        cdu_heat_capacity_kw=ds["cdu_capacity_kw"].values,
        cdu_flow_lpm=ds["cdu_flow_lpm"].values,
        cdu_flow_capacity_lpm=ds["cdu_flow_capacity_lpm"].values,
        air_zone_ids=[str(z) for z in ds["air_zone"].values],
        air_zone_heat_kw=ds["air_zone_heat_kw"].values,
        air_zone_capacity_kw=ds["air_zone_capacity_kw"].values,
        facility_kw=float(ds["facility_kw"].values),
        utility_limit_kw=utility if np.isfinite(utility) else np.inf,
        inlet_slots=[str(s) for s in ds["slot"].values[known]],
        inlet_rise_k=rise[known],
        inlet_allowed_rise_k=allowed[known],
        occupied_slots=int(occupied.sum()),
        slots=len(occupied),
        occupied_liquid_slots=int((occupied & liquid).sum()),
        liquid_slots=int(liquid.sum()),
    ).table()
