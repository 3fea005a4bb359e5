"""A layout as a picture: the floor plan of every hall and the utilization of every capacity.

Left: one panel per hall (halls may share coordinates), each slot a rectangle at
(x_m, y_m) (the slot's centre), filled with its rack type's colour, empty slots unfilled;
liquid slots have a blue outline, air slots a grey one; racks that were already installed
are hatched. Dashed boxes bound the slots of each air zone, dotted boxes those of each CDU
group; each scalable unit is outlined around each unbroken run of its racks, and a line
links every run to the SU's network rack. Right: utilization bars (load / limit), most
utilized first, one per resource of the layout's resource table
(optimizer.verify.resources: devices in normal operation and at their worst single
failure, CDU heat and flow, air zones, the utility, the tightest inlet, the slots),
labelled as everywhere else; racks whose inlet is within 0.5 K of their limit get a thick
red outline. The legend lists only what the layout has. Labels thin out as halls grow:
slot numbers only while they fit, zone names only while there are few zones.

``.html`` is the interactive plan of :mod:`optimizer.studies.plan_html`.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, work without a display

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from optimizer.errors import InstanceError
from optimizer.output import write_file, write_text
from optimizer.results.reader import open_layout
from optimizer.studies.compare import phase_figures as phase_kpis
from optimizer.studies.compare import pick_scenario
from optimizer.studies.plan import (
    AIR_EDGE,
    CDU_COLOUR,
    FAMILY_COLOURS,
    HOT_MARGIN_K,
    LIQUID_EDGE,
    ZONE_COLOUR,
    SlotBoxes,
    hall_layout,
    halls,
    hot_slots,
    install_phases,
    installed,
    link,
    liquid_slots,
    phase_colours,
    plan_extent,
    row_starts,
    slot_boxes,
    slot_edges,
    su_runs,
    type_colours,
    utilization_bars,
)
from optimizer.verify.resources import Resource

if TYPE_CHECKING:
    from optimizer.studies.power_paths import Wiring

FORMATS = (".png", ".svg", ".html")
PLAN_MAX_IN = (10.0, 11.0)
"""Largest floor-plan area (width, height) in inches, all halls together; the halls keep
their proportions."""
MAX_BARS = 40
"""Beyond this many capacities only the most utilized are drawn."""
MIN_BAR_ROWS = 14
"""Bars keep this spacing or less, so a few capacities do not make fat bars."""
MAX_ZONE_LABELS = 24
MAX_SU_LABELS = 120
HOT_EDGE = "#d62728"
SU_COLOUR = "black"
INSTALLED_HATCH = "////"


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


def _inset(boxes: SlotBoxes, mask: np.ndarray) -> list[Rectangle]:
    inset = np.minimum(boxes.width, boxes.height) * 0.06
    return [
        Rectangle((x + d, y + d), w - 2 * d, h - 2 * d)
        for x, y, w, h, d in zip(
            boxes.x0[mask],
            boxes.y0[mask],
            boxes.width[mask],
            boxes.height[mask],
            inset[mask],
            strict=True,
        )
    ]


def _frame_hall(ax: Axes, ds: xr.Dataset) -> None:
    """A hall panel's axes, before anything is drawn in it: the figure's layout is
    settled on these, so the labels drawn afterwards can be sized to the panel."""
    ax.set_aspect("equal")
    x_lo, x_hi, y_lo, y_hi = plan_extent(slot_boxes(ds))
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_hi, y_lo)  # y grows down the page, as on a drawing
    ax.set_xlabel("x (m)", fontsize=8)
    ax.set_ylabel("y (m)", fontsize=8)
    ax.tick_params(labelsize=7)


def _fills(ds: xr.Dataset, colour_by: str) -> list[str]:
    """Each slot's fill key: its rack type, or with ``colour_by`` 'phase' the build-out
    phase its rack is installed in, so a picture shows where each wave stands (issue 13);
    '' for an empty slot."""
    if colour_by == "phase":
        phases = install_phases(ds)  # None for a hall none of whose racks has a phase
        return [""] * ds.sizes["slot"] if phases is None else [str(p) for p in phases]
    return [str(t) for t in ds["rack_type"].values]


def _draw_hall(ax: Axes, ds: xr.Dataset, colours: dict[str, str], colour_by: str) -> None:
    """One hall's slots, zones, SUs and labels in its framed panel."""
    ax.apply_aspect()
    scale = _points_per_metre(ax)
    boxes = slot_boxes(ds)
    kinds = _fills(ds, colour_by)
    n = len(kinds)
    pad = 0.15 * float(np.median(np.minimum(boxes.width, boxes.height)))
    line = 0.6 if n <= 400 else 0.35
    hot = hot_slots(ds)
    edges = [HOT_EDGE if h else e for h, e in zip(hot, slot_edges(ds), strict=True)]
    ax.add_collection(
        PatchCollection(
            _inset(boxes, np.ones(n, dtype=bool)),
            facecolors=[colours.get(k, "#cccccc") if k else "none" for k in kinds],
            edgecolors=edges,
            linewidths=np.where(hot, 3 * line, line),
            zorder=2,
        )
    )
    kept = installed(ds)
    if kept.any():
        ax.add_collection(
            PatchCollection(
                _inset(boxes, kept),
                facecolors="none",
                edgecolors="#222222",
                linewidths=0,
                hatch=INSTALLED_HATCH,
                zorder=2.5,
            )
        )
    _draw_zones(ax, ds, boxes, pad, scale)
    _draw_sus(ax, ds, boxes, scale, line)
    _label_rows(ax, ds, boxes, scale)
    _label_slots(ax, ds, boxes, scale)


def _legend(ds: xr.Dataset, colours: dict[str, str], colour_by: str) -> list:
    """Legend entries for what the layout has, and nothing else: an air-only hall lists
    no liquid slots, a hall without a fabric no scalable units."""
    if colour_by == "phase":
        fills = _fills(ds, colour_by)
        counts = {p: fills.count(p) for p in colours}
        label = "installed in {} ({} racks)"
    else:
        types = (str(t) for t in ds["type"].values)
        counts = dict(zip(types, ds["rack_count"].values, strict=True))
        label = "{} ({})"
    handles = [
        Patch(facecolor=colours[key], edgecolor="none", label=label.format(key, int(c)))
        for key, c in counts.items()
        if c > 0
    ]
    occupied = (ds["rack_type"] != "").values
    liquid = liquid_slots(ds)
    if (~occupied).any():
        handles.append(Patch(facecolor="none", edgecolor=AIR_EDGE, label="empty slot"))
    if liquid.any():
        handles.append(
            Patch(facecolor="none", edgecolor=LIQUID_EDGE, linewidth=1.5, label="liquid slot")
        )
    if installed(ds).any():
        handles.append(
            Patch(facecolor="white", edgecolor="#222222", hatch=INSTALLED_HATCH, label="installed")
        )
    if hot_slots(ds).any():
        label = f"inlet within {HOT_MARGIN_K:g} K of its limit"
        handles.append(Patch(facecolor="none", edgecolor=HOT_EDGE, linewidth=1.5, label=label))
    if "slot_air_zone" in ds and (ds["slot_air_zone"].values != "").any():
        handles.append(Line2D([], [], color=ZONE_COLOUR, linestyle="--", label="air zone"))
    if "slot_cdu" in ds and (ds["slot_cdu"].values != "").any():
        handles.append(Line2D([], [], color=CDU_COLOUR, linestyle=":", label="CDU group"))
    if su_runs(ds):
        handles.append(Patch(facecolor="none", edgecolor=SU_COLOUR, label="scalable unit"))
        handles.append(
            Line2D([], [], color=SU_COLOUR, linewidth=0.8, marker=".", label="link to network rack")
        )
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


def _draw_sus(ax: Axes, ds: xr.Dataset, boxes: SlotBoxes, scale: float, line: float) -> None:
    """Each SU as outlines around its runs of neighbouring racks, each run linked to the
    SU's network rack; the SU's name in its longest run, where it fits."""
    runs = su_runs(ds)
    centre = boxes.centre
    links = [link(run, centre) for run in runs if run.network >= 0]
    ax.add_collection(
        LineCollection(
            [((x0, y0), (x1, y1)) for x0, y0, x1, y1 in links],
            colors=SU_COLOUR,
            linewidths=0.8 * line / 0.6,
            alpha=0.7,
            zorder=2.8,  # under the slot numbers, over the racks
        )
    )
    if links:
        ends = np.array([(x1, y1) for _, _, x1, y1 in links])
        ax.scatter(ends[:, 0], ends[:, 1], s=4 * line, color=SU_COLOUR, zorder=2.8)
    longest: dict[int, tuple[float, float, float, float]] = {}
    for run in runs:
        rect = boxes.bounds(run.slots, 0.04)
        _outline(ax, rect, edgecolor=SU_COLOUR, linewidth=line * 1.6, zorder=4)
        if run.su not in longest or max(rect[2:]) > max(longest[run.su][2:]):
            longest[run.su] = rect
    if len(longest) > MAX_SU_LABELS:
        return
    placed: list[tuple[float, float, float, float]] = []
    for su, rect in longest.items():
        text = f"SU {su}"
        size = _text_size(scale, max(rect[2], rect[3]) * 0.9, len(text), 6.5)
        box = (rect[0], rect[1], len(text) * 0.62 * size / scale, 1.3 * size / scale)
        if size >= 4 and not any(_overlap(box, other) for other in placed):
            placed.append(box)  # clear of other labels
            ax.text(
                rect[0] + 0.05,
                rect[1] + 0.05,
                text,
                fontsize=size,
                ha="left",
                va="top",
                zorder=6,
                color=SU_COLOUR,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.2, "alpha": 0.8},
            )


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether two (x, y, width, height) boxes intersect."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _label_rows(ax: Axes, ds: xr.Dataset, boxes: SlotBoxes, scale: float) -> None:
    starts = row_starts(ds)
    height = float(np.median(np.minimum(boxes.width, boxes.height) * 2))
    size = _text_size(scale, height * 1.6, 3, 8)
    if size < 3.5 or len(starts) > 400:
        return
    left = min(ax.get_xlim())
    for text, first in starts:
        room = boxes.x0[first] - 0.3 - left  # between the row's first slot and the axis
        ax.text(
            boxes.x0[first] - 0.3,
            boxes.y0[first] + boxes.height[first] / 2,
            text,
            fontsize=min(size, _text_size(scale, room, len(text) + 1)),
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


def _draw_bars(ax: Axes, bars: list[Resource]) -> None:
    """The most utilized capacities, binding first, capped at :data:`MAX_BARS`."""
    shown = bars[:MAX_BARS]
    for i, bar in enumerate(shown):
        ax.barh(i, min(bar.utilization, 1.2), color=FAMILY_COLOURS[bar.family], height=0.6)
        ax.text(1.22, i, f"{bar.utilization:.1%}", va="center", ha="right", fontsize=6.5)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(
        range(len(shown)), [b.label for b in shown], fontsize=6.5 if len(shown) > 24 else 7.5
    )
    ax.set_ylim(max(len(shown), MIN_BAR_ROWS) - 0.5, -0.5)
    ax.set_xlim(0, 1.23)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.tick_params(axis="x", labelsize=7)
    title = "utilization (load / limit), most loaded first"
    if len(shown) < len(bars):
        title += f"\nthe {len(shown)} highest of {len(bars)}"
    ax.set_title(title, fontsize=9)
    ax.legend(
        handles=[
            Patch(color=c, label=f)
            for f, c in FAMILY_COLOURS.items()
            if any(b.family == f for b in shown)
        ],
        fontsize=6.5,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.04),
        ncol=3,
        frameon=False,
    )


def phase_figures(ds: xr.Dataset) -> list[tuple[str, int, float, float]]:
    """(phase, GPUs, stranded power MW, utility MW left unused) per build-out phase, as
    ``rackopt compare`` defines them, so the chart and the table agree; [] without
    phases. The unused utility power is NaN where a phase sets no utility limit."""
    figures = phase_kpis(ds)
    if not figures:
        return []
    stranded, left = figures["phase_stranded_power_kw"], figures["phase_utility_left_kw"]
    return [
        (name, gpus, stranded[name] / 1000, left[name] / 1000)
        for name, gpus in figures["phase_gpus"].items()
    ]


def _draw_phases(ax: Axes, figures: list[tuple[str, int, float, float]]) -> None:
    """GPUs per phase as bars; on a second axis the power each phase strands (headroom of
    the power tree's roots, normal or under failure, that no further rack uses) and the
    utility power it leaves unused: what a phase's layout leaves idle for the next."""
    names = [name for name, *_ in figures]
    x = np.arange(len(figures))
    ax.bar(x, [gpus for _, gpus, *_ in figures], color="#4c72b0", width=0.5)
    for i, (_, gpus, *_) in enumerate(figures):
        ax.text(i, gpus, f"{gpus:,}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("GPUs", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    right = ax.twinx()
    right.plot(x, [mw for *_, mw, _ in figures], color=HOT_EDGE, marker="o", linewidth=1.2)
    unused = [mw for *_, mw in figures]
    lines = ["stranded power"]
    if not all(math.isnan(mw) for mw in unused):
        right.plot(x, unused, color="#7f7f7f", marker="s", linewidth=1.0, linestyle="--")
        lines.append("utility left unused")
    right.legend(lines, fontsize=7, loc="upper left", frameon=False)
    right.set_ylabel("MW", fontsize=8)
    right.tick_params(axis="y", labelsize=7)
    right.set_ylim(bottom=0)
    ax.set_title("GPUs and stranded power by phase", fontsize=9)


def _grid(sizes: list[tuple[float, float]]) -> tuple[int, int, float]:
    """Columns and rows of hall panels, and inches per metre, so that the halls (width,
    height in metres) fit :data:`PLAN_MAX_IN` as large as they can."""
    best = (1, len(sizes), 0.0)
    widest = max(w for w, _ in sizes)
    tallest = max(h for _, h in sizes)
    for cols in range(1, len(sizes) + 1):
        rows = math.ceil(len(sizes) / cols)
        inches = min(PLAN_MAX_IN[0] / (cols * widest), PLAN_MAX_IN[1] / (rows * tallest), 1.0)
        if inches > best[2] * 1.001:
            best = (cols, rows, inches)
    return best


def floor_plan(ds: xr.Dataset, colour_by: str = "type") -> plt.Figure:
    """The report figure of one layout: a panel per hall, its slots filled by rack type or
    install phase (``colour_by``: 'type' or 'phase'), and the utilization bars,
    and for a phased build-out a chart of GPUs, stranded power and unused utility power
    by phase."""
    bars = utilization_bars(ds)
    phases = install_phases(ds) if colour_by == "phase" else None
    colours = type_colours(ds) if phases is None else phase_colours(ds, phases)
    names = halls(ds)
    layouts = [hall_layout(ds, h) for h in names]
    extents = [plan_extent(slot_boxes(h)) for h in layouts]
    sizes = [(x1 - x0, y1 - y0) for x0, x1, y0, y1 in extents]
    cols, rows, inches = _grid(sizes)
    panel_w = max(max(w for w, _ in sizes) * inches, 4.0 if len(names) > 1 else 5.0)
    panel_h = max(max(h for _, h in sizes) * inches, 2.5)
    title_in = 0.35 if len(names) > 1 else 0.0
    shown = min(len(bars), MAX_BARS)
    bars_h = 0.2 * max(shown, MIN_BAR_ROWS) + 1.8
    plan_h = rows * (panel_h + 0.6 + title_in) + 1.2
    figures = phase_figures(ds)
    chart_h = 2.4 if figures else 0.0
    fig = plt.figure(
        figsize=(cols * (panel_w + 0.7) + 5.2, max(plan_h, bars_h) + chart_h),
        layout="constrained",
    )
    grid = fig.add_gridspec(
        rows + bool(figures),
        cols + 1,
        width_ratios=[panel_w + 0.7] * cols + [4.6],
        height_ratios=[max(plan_h, bars_h) / rows] * rows + ([chart_h] if figures else []),
    )
    if figures:
        _draw_phases(fig.add_subplot(grid[rows, :]), figures)
    panels = []
    for i, (name, hall) in enumerate(zip(names, layouts, strict=True)):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        _frame_hall(ax, hall)
        panels.append(ax)
        if len(names) > 1:
            racks = int((hall["rack_type"] != "").sum())
            ax.set_title(f"hall {name}: {racks} racks in {hall.sizes['slot']} slots", fontsize=9)
    _draw_bars(fig.add_subplot(grid[:rows, cols]), bars)
    fig.legend(
        handles=_legend(ds, colours, colour_by),
        fontsize=7,
        loc="outside lower left",
        ncol=min(5, 1 + len(names) * 2),
        frameon=False,
    )
    fig.suptitle(title(ds), fontsize=11)
    fig.get_layout_engine().execute(fig)
    for ax, hall in zip(panels, layouts, strict=True):
        _draw_hall(ax, hall, colours, colour_by)
    return fig


def title(ds: xr.Dataset) -> str:
    """One line: the layout's name, GPUs, racks of slots, IT and facility MW, status."""
    attrs = ds.attrs
    name = attrs.get("scenario") or attrs.get("instance_name", "layout")
    gap = attrs.get("gap", math.nan)
    gap_text = "" if not isinstance(gap, float) or math.isnan(gap) else f", gap {gap:.2%}"
    return (
        f"{name}: {int(ds['total_gpus'].values):,} GPUs in "
        f"{int((ds['rack_type'] != '').sum())} of {ds.sizes['slot']} slots, "
        f"IT {float(ds['it_kw'].values) / 1000:.2f} MW, facility "
        f"{float(ds['facility_kw'].values) / 1000:.2f} MW "
        f"({attrs.get('status', '?')}{gap_text})"
    )


def write_report(
    layout: Path,
    output: Path,
    scenario: str | None = None,
    wiring: Wiring | None = None,
    colour_by: str = "type",
) -> list[str]:
    """Draw ``layout`` (a layout file, or one scenario of a study) to PNG, SVG or an
    interactive HTML page; ``wiring``, the instance it was solved from, adds each slot's
    power path to the HTML page; ``colour_by`` fills a picture's slots by rack type or
    install phase (the HTML page offers both in its menu). Returns warnings for the user."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise InstanceError(
            str(output),
            "",
            f"cannot write {suffix or 'a file without suffix'}",
            f"name the output with one of {', '.join(FORMATS)}",
        )
    ds = pick_scenario(layout, open_layout(layout), scenario)
    if colour_by == "phase" and install_phases(ds) is None:
        raise InstanceError(
            str(layout),
            "--colour-by",
            "the layout has no install phases: it is not a plan of a phased build-out",
            "colour by type, or draw a layout solved from an instance with phases",
        )
    if suffix == ".html":
        from optimizer.studies.plan_html import plan_page

        page, warnings = plan_page(ds, title(ds), wiring)
        write_text(output, page)
        return warnings
    warnings = []
    if wiring is not None:
        warnings.append(f"{wiring.path}: power paths are drawn only in an .html plan")
    fig = floor_plan(ds, colour_by)
    try:
        picture = io.BytesIO()
        fig.savefig(picture, format=suffix[1:], dpi=130 if suffix == ".png" else None)
        write_file(output, picture.getvalue())
    finally:
        plt.close(fig)
    return warnings
