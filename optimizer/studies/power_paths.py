"""Each slot's power path, from the instance a layout was solved from.

The layout dataset records every device's load but not which devices feed which slot
(docs/output-format.md section 7: the feeds are the instance's). ``rackopt report
--instance`` reads them here, so the floor plan can say per slot through which devices a
rack there draws its power and how full they are. Every load and limit still comes from
the layout; the instance gives only the wiring, and must describe the same slots and
devices as the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from optimizer.errors import InstanceError
from optimizer.instance.loader import load_instance
from optimizer.results.resources import layout_resources
from optimizer.site.arrays import Site
from optimizer.site.build import NO_INDEX, build_site
from optimizer.verify.resources import Kind, Resource, ranked


@dataclass(frozen=True)
class Wiring:
    """An instance file and the site built from it: the caller that has already loaded
    it (``rackopt report`` does, for its lint warnings) hands it over instead of having it
    read twice."""

    path: Path
    site: Site

    @classmethod
    def load(cls, path: Path) -> Wiring:
        return cls(path, build_site(load_instance(path)))


@dataclass(frozen=True)
class PowerPaths:
    """Per slot: the devices of each feed, the share of the rack's power on each, and the
    fullest of those devices."""

    feeds: list[list[list[str]]]
    """Per slot, per feed (A side first): device ids from the feed up to the root."""
    shares: np.ndarray
    """(slot, 2): share of a rack's power drawn through each feed in normal operation."""
    devices: dict[str, list[Resource]]
    """Device id -> its rows of the resource table (normal, and worst failure if any)."""
    utilization: np.ndarray
    """Per slot: the highest utilization of a device on its path."""
    binding: list[str]
    """Per slot: the label of that resource."""


def power_paths(ds: xr.Dataset, wiring: Wiring) -> tuple[PowerPaths, list[str]]:
    """The power path of every slot of ``ds``, wired as ``wiring``'s instance says, and
    warnings.

    An instance with other slots or devices than the layout is refused; one with the
    same slots and devices but another digest than the layout records is used with a
    warning (it may be the file edited since, or a study scenario's base instance)."""
    instance, site = wiring.path, wiring.site
    for name, ours, theirs in (
        ("slots", site.slot_ids, ds["slot"].values),
        ("power devices", site.device_ids, ds["device"].values),
    ):
        if list(ours) != [str(t) for t in theirs]:
            raise InstanceError(
                str(instance),
                "",
                f"its {name} differ from those of the layout",
                "give the instance the layout was solved from",
            )
    warnings = []
    if ds.attrs.get("instance_sha256") not in (None, site.sha256):
        warnings.append(
            f"{instance} is not the file the layout was solved from (its digest differs); "
            "the plan shows the power paths as this file wires them"
        )
    rows: dict[str, list[Resource]] = {}
    for row in layout_resources(ds):
        if row.kind in (Kind.POWER_NORMAL, Kind.POWER_FAILOVER):
            rows.setdefault(row.subject, []).append(row)
    feeds, fullest = [], []
    for slot in range(site.n_slots):
        paths = [
            [site.device_ids[d] for d in site.power_tree.path(int(feed))]
            for feed in site.slot_feeds[slot]
            if feed != NO_INDEX
        ]
        feeds.append(paths)
        on_path = [r for path in paths for device in path for r in rows.get(device, [])]
        fullest.append(ranked(on_path)[0] if on_path else None)
    single = site.slot_feeds[:, 1] == NO_INDEX
    primary = np.where(single, 1.0, site.slot_primary_share)
    return (
        PowerPaths(
            feeds=feeds,
            shares=np.column_stack([primary, 1.0 - primary]),
            devices=rows,
            utilization=np.array([r.utilization if r else np.nan for r in fullest]),
            binding=[r.label if r else "" for r in fullest],
        ),
        warnings,
    )
