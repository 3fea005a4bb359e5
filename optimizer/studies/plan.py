"""What a floor plan shows, whatever draws it: slot rectangles, halls, SU runs, bars.

The static picture (:mod:`optimizer.studies.report`) and the interactive page
(:mod:`optimizer.studies.plan_html`) draw the same things from a layout dataset
(docs/output-format.md); this module works them out once so the two agree: where each
slot's rectangle lies, which halls there are, which racks of a scalable unit stand side by
side (an SU is drawn as runs of its racks linked to its network rack, so an outline never
encloses an empty slot or another SU's rack), the rack types' colours, and which
utilization bars to draw in which order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from optimizer.results.resources import inlet_rise, layout_resources
from optimizer.verify.resources import FAMILIES, Kind, Resource, condensed, ranked

RACK_DEPTH_M = 1.2
HOT_MARGIN_K = 0.5
"""Racks whose inlet is this close to their class limit are marked."""
PHASE_VARIABLE = "install_phase"
"""Per-slot install phase, for layouts of a phased build-out (issue 13); layouts without
it have no phases, and nothing about phases is drawn."""
LIQUID_EDGE = "#1f5fbf"
AIR_EDGE = "#9a9a9a"
ZONE_COLOUR = "#d9822b"
CDU_COLOUR = "#1f5fbf"
FAMILY_COLOURS = dict(
    zip(FAMILIES, ("#c2412d", "#1f5fbf", "#d9822b", "#444444", "#8e2f9e", "#a0a0a0"), strict=True)
)
"""Bar colour per resource family."""
PALETTE = (
    "#4c9a2a",
    "#7b4fa0",
    "#e0a526",
    "#c2412d",
    "#2a8f8f",
    "#8c564b",
    "#e377c2",
    "#5a6b7a",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class SlotBoxes:
    """Every slot's rectangle: lower-left corner, width and height in metres."""

    x0: np.ndarray
    y0: np.ndarray
    width: np.ndarray
    height: np.ndarray

    def bounds(self, mask: np.ndarray, pad: float) -> tuple[float, float, float, float]:
        """(x, y, width, height) around the slots a boolean mask or an index array picks."""
        x0 = float(self.x0[mask].min()) - pad
        y0 = float(self.y0[mask].min()) - pad
        x1 = float((self.x0 + self.width)[mask].max()) + pad
        y1 = float((self.y0 + self.height)[mask].max()) + pad
        return x0, y0, x1 - x0, y1 - y0

    @property
    def centre(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x0 + self.width / 2, self.y0 + self.height / 2


def row_keys(ds: xr.Dataset) -> np.ndarray:
    """One key per slot naming its hall and row (row ids repeat across halls)."""
    return np.array(
        [f"{h}\x00{r}" for h, r in zip(ds["hall"].values, ds["row"].values, strict=True)]
    )


def slot_boxes(ds: xr.Dataset) -> SlotBoxes:
    """Rectangles from slot centres: a row's pitch along it (the median spacing of its
    slots), the rack depth across it (less when rows stand closer than that)."""
    x = ds["x_m"].values.astype(float)
    y = ds["y_m"].values.astype(float)
    rows = row_keys(ds)
    along_x = np.ones(len(x), dtype=bool)
    pitch = np.full(len(x), 0.6)
    for key in np.unique(rows):
        members = np.flatnonzero(rows == key)
        if len(members) < 2:
            continue
        span_x = np.ptp(x[members])
        span_y = np.ptp(y[members])
        horizontal = span_x >= span_y
        along = np.sort(x[members] if horizontal else y[members])
        steps = np.diff(along)
        steps = steps[steps > 1e-9]
        pitch[members] = float(np.median(steps)) if steps.size else 0.6
        along_x[members] = horizontal
    depth = np.full(len(x), RACK_DEPTH_M)
    across = np.where(along_x, y, x)
    for key in np.unique(rows):
        members = rows == key
        others = across[~members & (along_x == along_x[members][0])]
        if others.size:
            gap = np.min(np.abs(others[:, None] - across[members][None, :]))
            if gap > 1e-9:
                depth[members] = min(RACK_DEPTH_M, 0.8 * gap)
    width = np.where(along_x, pitch, depth)
    height = np.where(along_x, depth, pitch)
    return SlotBoxes(x - width / 2, y - height / 2, width, height)


def plan_extent(boxes: SlotBoxes) -> tuple[float, float, float, float]:
    """x and y limits of the plan: the slots plus room for row labels and zone boxes."""
    x_lo, y_lo = float(boxes.x0.min()), float(boxes.y0.min())
    x_hi = float((boxes.x0 + boxes.width).max())
    y_hi = float((boxes.y0 + boxes.height).max())
    margin = max(0.8, 0.03 * max(x_hi - x_lo, y_hi - y_lo))
    return x_lo - 3 * margin, x_hi + margin, y_lo - margin, y_hi + margin


def halls(ds: xr.Dataset) -> list[str]:
    """Hall ids in instance order. Each hall is drawn on its own: halls may share
    coordinates (each measured from its own origin)."""
    return [str(h) for h in dict.fromkeys(ds["hall"].values.tolist())]


def hall_layout(ds: xr.Dataset, hall: str) -> xr.Dataset:
    """The slots of one hall, with every per-device, per-zone and per-type variable."""
    return ds.isel(slot=np.flatnonzero(ds["hall"].values == hall))


def type_colours(ds: xr.Dataset) -> dict[str, str]:
    """A colour per rack type of the instance, the same in every hall and picture."""
    return {str(t): PALETTE[i % len(PALETTE)] for i, t in enumerate(ds["type"].values)}


def occupied(ds: xr.Dataset) -> np.ndarray:
    return (ds["rack_type"] != "").values


def liquid_slots(ds: xr.Dataset) -> np.ndarray:
    if "slot_liquid" in ds:
        return ds["slot_liquid"].values.astype(bool)
    return np.zeros(ds.sizes["slot"], dtype=bool)


def slot_edges(ds: xr.Dataset) -> list[str]:
    """Outline colour per slot: blue for a liquid slot, grey for an air slot."""
    return [LIQUID_EDGE if w else AIR_EDGE for w in liquid_slots(ds)]


def row_starts(ds: xr.Dataset) -> list[tuple[str, int]]:
    """Each row's id and the index of its first slot (lowest position), where its label
    goes."""
    rows = row_keys(ds)
    starts = []
    position = ds["position"].values
    for key in dict.fromkeys(rows.tolist()):
        members = np.flatnonzero(rows == key)
        starts.append((key.split("\x00")[1], int(members[np.argmin(position[members])])))
    return starts


def installed(ds: xr.Dataset) -> np.ndarray:
    """Racks that were on the floor before the solve and were kept."""
    if "installed" not in ds:
        return np.zeros(ds.sizes["slot"], dtype=bool)
    return ds["installed"].values.astype(bool) & occupied(ds)


def install_phases(ds: xr.Dataset) -> np.ndarray | None:
    """Each occupied slot's install phase as text ('' for empty slots); None when the
    layout has no phases (no ``install_phase``, or one that is '' everywhere, as a
    one-shot solve writes it)."""
    if PHASE_VARIABLE not in ds:
        return None
    phases = np.array([str(p) for p in ds[PHASE_VARIABLE].values], dtype=object)
    if not (phases != "").any():
        return None
    return np.where(occupied(ds), phases, "")


def phase_colours(ds: xr.Dataset, phases: np.ndarray) -> dict[str, str]:
    """A colour per install phase in build order (the layout's ``phase`` labels, then any
    other name ``phases`` holds), the same in the .png and .html plans."""
    ordered = [str(p) for p in ds["phase"].values] if "phase" in ds.dims else []
    names = list(dict.fromkeys([*ordered, *(p for p in phases.tolist() if p)]))
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(names)}


def hot_slots(ds: xr.Dataset) -> np.ndarray:
    """Racks whose inlet is within :data:`HOT_MARGIN_K` of the limit of their class."""
    inlets = inlet_rise(ds)
    if inlets is None:
        return np.zeros(ds.sizes["slot"], dtype=bool)
    with np.errstate(invalid="ignore"):
        return inlets[1] - inlets[0] < HOT_MARGIN_K


@dataclass(frozen=True)
class SuRun:
    """Racks of one SU standing side by side in one row, and the SU's network rack."""

    su: int
    slots: np.ndarray
    """Slot indices, in position order."""
    network: int
    """Slot index of the SU's network rack; -1 when it is not among the drawn slots."""


def su_runs(ds: xr.Dataset) -> list[SuRun]:
    """Each SU's racks split into runs of neighbours: an SU whose racks are interleaved
    with empty slots or another SU's racks gets one run per unbroken stretch."""
    if "su" not in ds or not (ds["su"].values >= 0).any():
        return []
    su = ds["su"].values
    position = ds["position"].values
    index = {str(s): i for i, s in enumerate(ds["slot"].values)}
    network = [index.get(str(s), -1) for s in ds["su_network_slot"].values]
    rows = row_keys(ds)
    runs = []
    for key in dict.fromkeys(rows.tolist()):
        members = np.flatnonzero(rows == key)
        order = members[np.argsort(position[members], kind="stable")]
        labels = su[order]
        breaks = np.flatnonzero(np.diff(labels)) + 1
        for run in np.split(order, breaks):
            if su[run[0]] >= 0:
                runs.append(SuRun(int(su[run[0]]), run, network[su[run[0]]]))
    return runs


def link(run: SuRun, centre: tuple[np.ndarray, np.ndarray]) -> tuple[float, float, float, float]:
    """The line from a run's rack nearest to its network rack to the network rack:
    (x0, y0, x1, y1)."""
    x, y = centre
    distance = np.hypot(x[run.slots] - x[run.network], y[run.slots] - y[run.network])
    near = run.slots[int(np.argmin(distance))]
    return float(x[near]), float(y[near]), float(x[run.network]), float(y[run.network])


def network_slots(ds: xr.Dataset) -> dict[int, list[int]]:
    """Slot index of each network rack -> the SUs it serves."""
    if "su_network_slot" not in ds:
        return {}
    index = {str(s): i for i, s in enumerate(ds["slot"].values)}
    served: dict[int, list[int]] = {}
    for su, slot in enumerate(ds["su_network_slot"].values):
        if str(slot) in index:
            served.setdefault(index[str(slot)], []).append(su)
    return served


def utilization_bars(ds: xr.Dataset) -> list[Resource]:
    """The bars to draw, most utilized first (the binding resource on top, ties in table
    order): every row of the layout's resource table, of the inlets only the tightest,
    leaving out CDU groups and air zones that serve no slot (an air-only hall's plan has
    no CDU bars even when the instance declares a CDU group)."""
    serving = {
        Kind.CDU_HEAT: set(ds["slot_cdu"].values.tolist()),
        Kind.CDU_FLOW: set(ds["slot_cdu"].values.tolist()),
        Kind.AIR_ZONE_HEAT: set(ds["slot_air_zone"].values.tolist()),
    }
    rows = condensed(layout_resources(ds))
    return ranked([r for r in rows if r.kind not in serving or r.subject in serving[r.kind]])
