"""A layout as a picture: the floor plan and the utilization of every capacity.

Left: each slot a rectangle at (x_m, y_m) (the slot's centre), filled with its rack
type's colour, empty slots unfilled; liquid slots have a blue outline, air slots a
grey one. Dashed boxes bound the slots of each air zone, dotted boxes those of each
CDU group, and solid black boxes the racks of each scalable unit, row by row. Right:
utilization bars (load / limit), one per resource of the layout's resource table
(optimizer.verify.resources: devices in normal operation and at their worst single
failure, CDU heat and flow, air zones, the utility, the tightest inlet, the slots),
labelled as everywhere else; racks whose inlet is within 0.5 K of their limit get a
thick red outline. Labels thin out as halls grow: slot numbers only
while they fit, zone names only while there are few zones.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, work without a display

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from optimizer.errors import InstanceError
from optimizer.results.output import write_file, write_text
from optimizer.results.reader import open_layout
from optimizer.results.resources import inlet_rise, layout_resources
from optimizer.studies.compare import pick_scenario
from optimizer.verify.resources import FAMILIES, Resource, condensed, ranked

FORMATS = (".png", ".svg", ".html")
RACK_DEPTH_M = 1.2
PLAN_MAX_IN = (9.0, 11.0)
"""Largest floor-plan panel (width, height) in inches; the plan keeps its proportions."""
MAX_BARS = 40
"""Beyond this many capacities only the most utilized are drawn."""
MIN_BAR_ROWS = 14
"""Bars keep this spacing or less, so a few capacities do not make fat bars."""
MAX_ZONE_LABELS = 24
MAX_SU_LABELS = 120
LIQUID_EDGE = "#1f5fbf"
AIR_EDGE = "#9a9a9a"
HOT_EDGE = "#d62728"
HOT_MARGIN_K = 0.5
"""Racks whose inlet is this close to their class limit get a red outline."""
ZONE_COLOUR = "#d9822b"
CDU_COLOUR = "#1f5fbf"
_PALETTE = [
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
]


@dataclass(frozen=True)
class SlotBoxes:
    """Every slot's rectangle: lower-left corner, width and height in metres."""

    x0: np.ndarray
    y0: np.ndarray
    width: np.ndarray
    height: np.ndarray

    def bounds(self, mask: np.ndarray, pad: float) -> tuple[float, float, float, float]:
        x0 = float(self.x0[mask].min()) - pad
        y0 = float(self.y0[mask].min()) - pad
        x1 = float((self.x0 + self.width)[mask].max()) + pad
        y1 = float((self.y0 + self.height)[mask].max()) + pad
        return x0, y0, x1 - x0, y1 - y0


def _row_keys(ds: xr.Dataset) -> np.ndarray:
    return np.array(
        [f"{h}\x00{r}" for h, r in zip(ds["hall"].values, ds["row"].values, strict=True)]
    )


def slot_boxes(ds: xr.Dataset) -> SlotBoxes:
    """Rectangles from slot centres: a row's pitch along it (the median spacing of its
    slots), the rack depth across it (less when rows stand closer than that)."""
    x = ds["x_m"].values.astype(float)
    y = ds["y_m"].values.astype(float)
    rows = _row_keys(ds)
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
    return x_lo - 2 * margin, x_hi + margin, y_lo - margin, y_hi + margin


def _colours(types: list[str]) -> dict[str, str]:
    return {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(types)}


def _points_per_metre(ax: Axes) -> float:
    fig = ax.figure
    box = ax.get_position()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    width_pt = box.width * fig.get_figwidth() * 72
    height_pt = box.height * fig.get_figheight() * 72
    return min(width_pt / max(x1 - x0, 1e-9), height_pt / max(abs(y1 - y0), 1e-9))


def _outline(ax: Axes, rect: tuple[float, float, float, float], **style) -> None:
    ax.add_patch(Rectangle(rect[:2], rect[2], rect[3], fill=False, **style))


def _draw_plan(ax: Axes, ds: xr.Dataset) -> list:
    boxes = slot_boxes(ds)
    kinds = [str(t) for t in ds["rack_type"].values]
    types = [str(t) for t in ds["type"].values]
    colours = _colours(types)
    liquid = (
        ds["slot_liquid"].values.astype(bool)
        if "slot_liquid" in ds
        else np.zeros(len(kinds), dtype=bool)
    )
    n = len(kinds)
    pad = 0.15 * float(np.median(np.minimum(boxes.width, boxes.height))) if n else 0.1
    ax.set_aspect("equal")
    x_lo, x_hi, y_lo, y_hi = plan_extent(boxes)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_hi, y_lo)  # y grows down the page, as on a drawing
    line = 0.6 if n <= 400 else 0.3
    faces = [colours.get(k, "#cccccc") if k else "none" for k in kinds]
    edges = [LIQUID_EDGE if w else AIR_EDGE for w in liquid]
    inlets = inlet_rise(ds)
    hot = np.zeros(n, dtype=bool)
    if inlets is not None:
        with np.errstate(invalid="ignore"):
            hot = inlets[1] - inlets[0] < HOT_MARGIN_K
        edges = [HOT_EDGE if h else e for h, e in zip(hot, edges, strict=True)]
    inset = np.minimum(boxes.width, boxes.height) * 0.06
    rects = [
        Rectangle((x + d, y + d), w - 2 * d, h - 2 * d)
        for x, y, w, h, d in zip(boxes.x0, boxes.y0, boxes.width, boxes.height, inset, strict=True)
    ]
    ax.add_collection(
        PatchCollection(
            rects,
            facecolors=faces,
            edgecolors=edges,
            linewidths=np.where(hot, 3 * line, line),
            zorder=2,
        )
    )
    scale = _points_per_metre(ax)
    _draw_zones(ax, ds, boxes, pad, scale)
    _draw_sus(ax, ds, boxes, scale)
    _label_rows(ax, ds, boxes, scale)
    _label_slots(ax, ds, boxes, scale)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.tick_params(labelsize=7)
    handles = [
        Patch(facecolor=colours[t], edgecolor="none", label=f"{t} ({int(c)})")
        for t, c in zip(types, ds["rack_count"].values, strict=True)
        if c > 0
    ]
    handles += [
        Patch(facecolor="none", edgecolor=AIR_EDGE, label="empty slot"),
        Patch(facecolor="none", edgecolor=LIQUID_EDGE, linewidth=1.5, label="liquid slot (blue)"),
        Line2D([], [], color=ZONE_COLOUR, linestyle="--", label="air zone"),
    ]
    if "cdu" in ds.dims and ds.sizes["cdu"]:
        handles.append(Line2D([], [], color=CDU_COLOUR, linestyle=":", label="CDU group"))
    if hot.any():
        label = f"inlet within {HOT_MARGIN_K:g} K of its limit"
        handles.append(Patch(facecolor="none", edgecolor=HOT_EDGE, linewidth=1.5, label=label))
    if "su" in ds and (ds["su"].values >= 0).any():
        handles.append(Line2D([], [], color="black", linewidth=1.0, label="scalable unit"))
    return handles


def _text_size(scale: float, metres: float, chars: int, most: float = 8.0) -> float:
    """Font size (pt) for ``chars`` characters to fit in ``metres``."""
    return min(most, scale * metres / max(chars * 0.62, 1.0))


def _draw_zones(ax: Axes, ds: xr.Dataset, boxes: SlotBoxes, pad: float, scale: float) -> None:
    groups = []
    if "slot_air_zone" in ds:
        groups.append((ds["slot_air_zone"].values, ZONE_COLOUR, "--", 2.5 * pad, "upper"))
    if "slot_cdu" in ds:
        groups.append((ds["slot_cdu"].values, CDU_COLOUR, ":", 1.5 * pad, "lower"))
    for values, colour, style, grow, corner in groups:
        names = [str(v) for v in dict.fromkeys(values.tolist()) if v]
        label = len(names) <= MAX_ZONE_LABELS
        for name in names:
            rect = boxes.bounds(values == name, grow)
            _outline(ax, rect, edgecolor=colour, linestyle=style, linewidth=1.0, zorder=3)
            size = _text_size(scale, rect[2] / 3, len(name), 7)
            if label and size >= 4:
                x = rect[0] + rect[2]
                y = rect[1] if corner == "upper" else rect[1] + rect[3]
                ax.text(
                    x,
                    y,
                    name,
                    color=colour,
                    fontsize=size,
                    ha="right",
                    va="bottom" if corner == "upper" else "top",
                    zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3, "alpha": 0.8},
                )


def _draw_sus(ax: Axes, ds: xr.Dataset, boxes: SlotBoxes, scale: float) -> None:
    if "su" not in ds:
        return
    su = ds["su"].values
    ids = [int(i) for i in np.unique(su[su >= 0])]
    rows = _row_keys(ds)
    label = len(ids) <= MAX_SU_LABELS
    placed: list[tuple[float, float, float, float]] = []
    for i in ids:
        members = su == i
        segments = [
            boxes.bounds(members & (rows == key), 0.04)
            for key in dict.fromkeys(rows[members].tolist())
        ]
        for rect in segments:
            _outline(ax, rect, edgecolor="black", linewidth=1.0, zorder=4)
        widest = max(segments, key=lambda r: max(r[2], r[3]))
        text = f"SU {i}"
        size = _text_size(scale, max(widest[2], widest[3]) * 0.9, len(text), 6.5)
        box = (widest[0], widest[1], len(text) * 0.62 * size / scale, 1.3 * size / scale)
        if label and size >= 4 and not any(_overlap(box, other) for other in placed):
            placed.append(box)  # in the SU's longest run of racks, clear of other labels
            ax.text(
                widest[0] + 0.05,
                widest[1] + 0.05,
                text,
                fontsize=size,
                ha="left",
                va="top",
                zorder=6,
                color="black",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.2, "alpha": 0.8},
            )


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether two (x, y, width, height) boxes intersect."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _label_rows(ax: Axes, ds: xr.Dataset, boxes: SlotBoxes, scale: float) -> None:
    rows = _row_keys(ds)
    keys = list(dict.fromkeys(rows.tolist()))
    halls = {k.split("\x00")[0] for k in keys}
    height = float(np.median(np.minimum(boxes.width, boxes.height) * 2))
    size = _text_size(scale, height * 1.6, 3, 8)
    if size < 3.5 or len(keys) > 400:
        return
    for key in keys:
        members = np.flatnonzero(rows == key)
        first = members[np.argmin(ds["position"].values[members])]
        hall, row = key.split("\x00")
        text = f"{hall} {row}" if len(halls) > 1 else row
        ax.text(
            boxes.x0[first] - 0.3,
            boxes.y0[first] + boxes.height[first] / 2,
            text,
            fontsize=size,
            ha="right",
            va="center",
            zorder=5,
        )


def _label_slots(ax: Axes, ds: xr.Dataset, boxes: SlotBoxes, scale: float) -> None:
    """Position numbers inside the slots, when there are few enough to read."""
    n = len(boxes.x0)
    if n > 300:
        return
    size = _text_size(scale, float(np.median(np.minimum(boxes.width, boxes.height))), 2, 6)
    if size < 3.5:
        return
    for x, y, w, h, p in zip(
        boxes.x0, boxes.y0, boxes.width, boxes.height, ds["position"].values, strict=True
    ):
        ax.text(
            x + w / 2,
            y + h / 2,
            str(int(p)),
            fontsize=size,
            ha="center",
            va="center",
            color="#222222",
            zorder=3,
        )


def utilization_bars(ds: xr.Dataset) -> list[Resource]:
    """The bars to draw: the layout's resource table in table order, of the inlets only
    the tightest."""
    return condensed(layout_resources(ds))


_FAMILY_COLOURS = dict(
    zip(FAMILIES, ("#c2412d", "#1f5fbf", "#d9822b", "#444444", "#8e2f9e", "#a0a0a0"), strict=True)
)


def _draw_bars(ax: Axes, bars: list[Resource]) -> None:
    shown = bars
    if len(bars) > MAX_BARS:
        order = {id(b): i for i, b in enumerate(bars)}
        shown = sorted(ranked(bars)[:MAX_BARS], key=lambda b: order[id(b)])
    y = np.arange(len(shown))
    for i, bar in enumerate(shown):
        ax.barh(i, min(bar.utilization, 1.2), color=_FAMILY_COLOURS[bar.family], height=0.6)
        ax.text(1.22, i, f"{bar.utilization:.1%}", va="center", ha="right", fontsize=6.5)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(y, [b.label for b in shown], fontsize=6.5 if len(shown) > 24 else 7.5)
    ax.set_ylim(max(len(shown), MIN_BAR_ROWS) - 0.5, -0.5)
    ax.set_xlim(0, 1.23)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.tick_params(axis="x", labelsize=7)
    title = "utilization (load / limit)"
    if len(shown) < len(bars):
        title += f": the {len(shown)} highest of {len(bars)}"
    ax.set_title(title, fontsize=9)
    ax.legend(
        handles=[
            Patch(color=c, label=f)
            for f, c in _FAMILY_COLOURS.items()
            if any(b.family == f for b in shown)
        ],
        fontsize=6.5,
        loc="upper left",
        bbox_to_anchor=(0.0, -0.04),
        ncol=2,
        frameon=False,
    )


def floor_plan(ds: xr.Dataset) -> plt.Figure:
    """The report figure of one layout."""
    bars = utilization_bars(ds)
    x_lo, x_hi, y_lo, y_hi = plan_extent(slot_boxes(ds))
    inches = min(PLAN_MAX_IN[0] / (x_hi - x_lo), PLAN_MAX_IN[1] / (y_hi - y_lo), 1.0)
    plan_w = max((x_hi - x_lo) * inches, 5.0)
    plan_h = max((y_hi - y_lo) * inches, 3.0)
    bars_h = 0.2 * max(min(len(bars), MAX_BARS), MIN_BAR_ROWS) + 1.5
    fig, (plan, util) = plt.subplots(
        1,
        2,
        figsize=(plan_w + 5.0, max(plan_h + 1.8, bars_h)),
        gridspec_kw={"width_ratios": [plan_w, 3.2]},
    )
    handles = _draw_plan(plan, ds)
    plan.legend(
        handles=handles,
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(0.0, -0.06),
        ncol=4,
        frameon=False,
    )
    _draw_bars(util, bars)
    attrs = ds.attrs
    name = attrs.get("scenario") or attrs.get("instance_name", "layout")
    gap = attrs.get("gap", math.nan)
    gap_text = "" if not isinstance(gap, float) or math.isnan(gap) else f", gap {gap:.2%}"
    fig.suptitle(
        f"{name}: {int(ds['total_gpus'].values):,} GPUs in "
        f"{int((ds['rack_type'] != '').sum())} of {ds.sizes['slot']} slots, "
        f"IT {float(ds['it_kw'].values) / 1000:.2f} MW, facility "
        f"{float(ds['facility_kw'].values) / 1000:.2f} MW "
        f"({attrs.get('status', '?')}{gap_text})",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def write_report(layout: Path, output: Path, scenario: str | None = None) -> None:
    """Draw ``layout`` (a layout file, or one scenario of a study) to PNG, SVG or HTML."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise InstanceError(
            str(output),
            "",
            f"cannot write {suffix or 'a file without suffix'}",
            f"name the output with one of {', '.join(FORMATS)}",
        )
    ds = pick_scenario(layout, open_layout(layout), scenario)
    fig = floor_plan(ds)
    try:
        picture = io.BytesIO()
        if suffix == ".html":
            fig.savefig(picture, format="svg")
            svg = base64.b64encode(picture.getvalue()).decode()
            title = fig.texts[0].get_text() if fig.texts else "rackopt layout"
            write_text(
                output,
                "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
                f"<title>{_escape(title)}</title></head>\n<body>\n"
                f"<img alt='{_escape(title)}' style='max-width:100%' "
                f"src='data:image/svg+xml;base64,{svg}'>\n</body></html>\n",
            )
        else:
            fig.savefig(picture, format=suffix[1:], dpi=130 if suffix == ".png" else None)
            write_file(output, picture.getvalue())
    finally:
        plt.close(fig)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
    )
