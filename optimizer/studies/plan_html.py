"""The interactive floor plan: one self-contained HTML page drawn with plotly.

A page per layout: a tab per hall (halls may share coordinates, so each gets its own
plan), each a plotly figure that zooms and pans, and below them the utilization bars of
the layout's resource table, most utilized first. Every slot is a rectangle (a plotly bar
from its left edge, as wide as the slot, as thick as it is deep, so it scales with the
zoom); hovering on one shows its rack type, SU and network rack, install phase, power
path and loads (with ``--instance``), inlet temperature and margin, and its cooling. A
dropdown colours the slots by rack type, by inlet temperature, by the utilization of the
slot's power path, or by install phase, each offered only when the layout (and instance)
has what it needs. Installed racks carry a cross; each SU is outlined around each run of
its racks, with a line to its network rack.

plotly rather than bokeh: plotly.py writes one HTML file with plotly.js inlined
(``include_plotlyjs``), so the page works offline with no server and no extra files,
and hover, zoom, pan and the colour-mode dropdown (``updatemenus``) are declarative
figure attributes; bokeh would need its own JavaScript callbacks for the dropdown.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.colors import sample_colorscale
from plotly.offline import get_plotlyjs

from optimizer.studies.plan import (
    CDU_COLOUR,
    FAMILY_COLOURS,
    ZONE_COLOUR,
    SlotBoxes,
    hall_layout,
    halls,
    install_phases,
    installed,
    link,
    liquid_slots,
    network_slots,
    occupied,
    phase_colours,
    row_starts,
    slot_boxes,
    slot_edges,
    su_runs,
    type_colours,
    utilization_bars,
)
from optimizer.studies.power_paths import PowerPaths, Wiring, power_paths
from optimizer.verify.resources import Resource

MAX_BARS = 60
"""Beyond this many capacities only the most utilized are drawn."""
EMPTY_FILL = "#ffffff"
NO_VALUE_FILL = "#d9d9d9"
EMPTY_OPACITY = 0.35
INLET_SCALE = "RdYlBu_r"
POWER_SCALE = "YlOrRd"


def _e(text: object) -> str:
    """Ids from the instance, safe inside plotly's hover markup and the page."""
    return html.escape(str(text), quote=True)


def _kw(value: float) -> str:
    return f"{value:,.1f} kW"


# ---------------------------------------------------------------- hover text


def hover_texts(ds: xr.Dataset, paths: PowerPaths | None) -> list[str]:
    """What hovering on each slot shows, one entry per slot of ``ds``."""
    kinds = [str(t) for t in ds["rack_type"].values]
    per_rack = {
        str(t): (int(g) // int(c) if c else 0, float(kw))
        for t, g, c, kw in zip(
            ds["type"].values,
            ds["gpus"].values,
            ds["rack_count"].values,
            ds["type_it_kw"].values,
            strict=True,
        )
    }
    kept = installed(ds)
    phases = install_phases(ds)
    served = network_slots(ds)
    su = ds["su"].values if "su" in ds else np.full(len(kinds), -1)
    network = [str(s) for s in ds["su_network_slot"].values] if "su_network_slot" in ds else []
    inlet = ds["inlet_temp_c"].values if "inlet_temp_c" in ds else None
    limit = ds["inlet_limit_c"].values if "inlet_limit_c" in ds else None
    cable = ds["cable_m"].values if "cable_m" in ds else np.zeros(len(kinds))
    liquid = liquid_slots(ds)
    texts = []
    for i, slot in enumerate(ds["slot"].values):
        lines = [
            f"<b>{_e(slot)}</b>  hall {_e(ds['hall'].values[i])}, row {_e(ds['row'].values[i])}, "
            f"position {int(ds['position'].values[i])}"
        ]
        kind = kinds[i]
        if kind:
            gpus, it_kw = per_rack[kind]
            lines.append(
                f"rack type: <b>{_e(kind)}</b> ({gpus} GPUs, {_kw(it_kw)} IT)"
                + (", installed before this plan" if kept[i] else "")
            )
        else:
            lines.append("rack type: empty slot")
        if su[i] >= 0:
            lines.append(
                f"SU {int(su[i])}, network rack {_e(network[su[i]])} (cable {cable[i]:.1f} m)"
            )
        if i in served:
            lines.append("network rack of SU " + ", ".join(str(s) for s in served[i]))
        if phases is not None and kind:
            lines.append(f"install phase: {_e(phases[i]) or 'none'}")
        if inlet is not None:
            lines.append(_inlet_line(inlet[i], limit[i] if limit is not None else np.nan, kind))
        cooling = "liquid slot" if liquid[i] else "air slot"
        if "slot_cdu" in ds and ds["slot_cdu"].values[i]:
            cooling += f", CDU group {_e(ds['slot_cdu'].values[i])}"
        if "slot_air_zone" in ds:
            cooling += f", air zone {_e(ds['slot_air_zone'].values[i])}"
        lines.append(cooling)
        lines += _power_lines(paths, i, per_rack[kind][1] if kind else 0.0)
        texts.append("<br>".join(lines))
    return texts


def _inlet_line(temperature: float, limit: float, kind: str) -> str:
    if not np.isfinite(temperature):
        return "inlet: no supply air temperature given"
    if not kind:
        return f"inlet {temperature:.1f} °C (what a rack here would breathe, before its exhaust)"
    margin = round(limit - temperature, 1)  # never "over by 0.0 K"
    return f"inlet {temperature:.1f} °C, limit {limit:.1f} °C: " + (
        f"margin {abs(margin):.1f} K" if margin >= 0 else f"over by {-margin:.1f} K"
    )


def _power_lines(paths: PowerPaths | None, slot: int, it_kw: float) -> list[str]:
    if paths is None:
        return ["power path: not in the layout file (report --instance INSTANCE adds it)"]
    lines = []
    for side, (path, share) in enumerate(zip(paths.feeds[slot], paths.shares[slot], strict=False)):
        drawn = f", this rack {_kw(share * it_kw)}" if it_kw else ""
        lines.append(f"feed {'AB'[side]}: {' → '.join(_e(d) for d in path)}{drawn}")
        for device in path:
            loads = "; ".join(
                f"{'normal' if not r.case else 'if ' + _e(r.case) + ' fails'} "
                f"{r.load:,.0f} of {r.limit:,.0f} kW ({r.utilization:.1%})"
                for r in paths.devices.get(device, [])
            )
            lines.append(f"  {_e(device)}: {loads}")
    if np.isfinite(paths.utilization[slot]):
        lines.append(
            f"power path at {paths.utilization[slot]:.1%}: {_e(paths.binding[slot])} is fullest"
        )
    return lines


# ---------------------------------------------------------------- colour modes


@dataclass(frozen=True)
class ColourMode:
    """One entry of the colour dropdown: its label and how to colour each slot."""

    label: str
    categories: dict[str, str] | None = None
    """Categorical modes: label -> colour; ``category`` gives each slot's label."""
    category: np.ndarray | None = None
    value: np.ndarray | None = None
    """Continuous modes: a value per slot (NaN: no value, drawn grey)."""
    scale: str = ""
    unit: str = ""
    span: tuple[float, float] = (0.0, 1.0)


def colour_modes(ds: xr.Dataset, paths: PowerPaths | None) -> list[ColourMode]:
    """The colour modes the layout supports: rack type always; inlet temperature when
    the layout has inlet temperatures; power path utilization with the instance's
    wiring; install phase when the layout has phases. Scales span the whole layout, so
    the halls' colours compare."""
    kinds = np.array([str(t) for t in ds["rack_type"].values], dtype=object)
    counts = dict(zip((str(t) for t in ds["type"].values), ds["rack_count"].values, strict=True))
    colours = type_colours(ds)
    by_type = {f"{t} ({int(counts[t])})": colours[t] for t in colours if counts[t] > 0}
    labels = np.array([f"{k} ({int(counts[k])})" if k else "empty slot" for k in kinds])
    modes = [ColourMode("rack type", {**by_type, "empty slot": EMPTY_FILL}, labels)]
    if "inlet_temp_c" in ds and np.isfinite(ds["inlet_temp_c"].values).any():
        inlet = ds["inlet_temp_c"].values.astype(float)
        known = inlet[np.isfinite(inlet)]
        modes.append(
            ColourMode(
                "inlet temperature",
                value=inlet,
                scale=INLET_SCALE,
                unit="inlet °C",
                span=(float(known.min()), float(max(known.max(), known.min() + 0.1))),
            )
        )
    if paths is not None:
        top = float(np.nanmax(paths.utilization)) if np.isfinite(paths.utilization).any() else 1
        modes.append(
            ColourMode(
                "power path utilization",
                value=paths.utilization,
                scale=POWER_SCALE,
                unit="power path",
                span=(0.0, max(1.0, top)),
            )
        )
    phases = install_phases(ds)
    if phases is not None:
        palette = phase_colours(ds, phases)
        category = np.where(phases == "", "empty slot", phases)
        modes.append(ColourMode("install phase", {**palette, "empty slot": EMPTY_FILL}, category))
    return modes


def _rect_bar(boxes: SlotBoxes, mask: np.ndarray, **style) -> go.Bar:
    """Slots as horizontal bars: from the left edge, as long as the slot is wide, as
    thick as it is tall; they zoom with the axes like any shape."""
    return go.Bar(
        orientation="h",
        base=boxes.x0[mask],
        x=boxes.width[mask],
        y=boxes.y0[mask] + boxes.height[mask] / 2,
        width=boxes.height[mask],
        **style,
    )


def _mode_traces(
    mode: ColourMode, boxes: SlotBoxes, edges: list[str], racks: np.ndarray, present: bool
) -> list:
    """The traces of one colour mode for one hall; only the first mode starts visible.
    Continuous modes colour empty slots too (the inlet a rack there would breathe, the
    power path it would draw through), faded."""
    edge = np.array(edges)
    common = {"hoverinfo": "skip", "visible": present}
    if mode.categories is not None:
        traces = []
        for name, colour in mode.categories.items():
            mask = mode.category == name
            if mask.any():
                traces.append(
                    _rect_bar(
                        boxes,
                        mask,
                        name=name,
                        legendgroup=mode.label,
                        marker={"color": colour, "line": {"color": edge[mask], "width": 1}},
                        **common,
                    )
                )
        return traces
    known = np.isfinite(mode.value)
    low, high = mode.span
    share = np.clip((mode.value[known] - low) / (high - low), 0.0, 1.0)
    traces = [
        _rect_bar(
            boxes,
            known,
            name=mode.label,
            showlegend=False,
            marker={
                "color": sample_colorscale(mode.scale, share.tolist()),
                "opacity": np.where(racks[known], 1.0, EMPTY_OPACITY),
                "line": {"color": edge[known], "width": 1},
            },
            **common,
        ),
        # the colour bar: plotly.js draws one only for a trace with numeric colours,
        # and bars with numeric colours warn on the console, so a marker-less scatter
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            marker={
                "color": [low],
                "colorscale": mode.scale,
                "cmin": low,
                "cmax": high,
                "showscale": True,
                "colorbar": {
                    "title": {"text": f"{mode.unit}<br>(faded: empty)"},
                    "tickformat": ".0%" if mode.unit == "power path" else "",
                    "len": 0.8,
                },
            },
            **common,
        ),
    ]
    if (~known).any():
        traces.append(
            _rect_bar(
                boxes,
                ~known,
                name="no value",
                marker={"color": NO_VALUE_FILL, "line": {"color": edge[~known], "width": 1}},
                **common,
            )
        )
    return traces


# ---------------------------------------------------------------- one hall


def _outline_xy(rects: list[tuple[float, float, float, float]]) -> tuple[list, list]:
    """Closed rectangles as one polyline, separated by gaps (None)."""
    xs: list = []
    ys: list = []
    for x, y, w, h in rects:
        xs += [x, x + w, x + w, x, x, None]
        ys += [y, y, y + h, y + h, y, None]
    return xs, ys


def _lines(xs: list, ys: list, name: str, mode: str = "lines", **style) -> go.Scatter:
    """Outlines or links as one legend entry, switched on and off together."""
    return go.Scatter(x=xs, y=ys, mode=mode, name=name, hoverinfo="skip", **style)


def _groups(ds: xr.Dataset, boxes: SlotBoxes) -> list[go.Scatter]:
    """Air zones and CDU groups as dashed and dotted outlines, when the hall has them."""
    pad = 0.15 * float(np.median(np.minimum(boxes.width, boxes.height)))
    traces = []
    for variable, name, colour, dash, grow in (
        ("slot_air_zone", "air zone", ZONE_COLOUR, "dash", 2.5 * pad),
        ("slot_cdu", "CDU group", CDU_COLOUR, "dot", 1.5 * pad),
    ):
        if variable not in ds:
            continue
        values = ds[variable].values
        rects = [boxes.bounds(values == v, grow) for v in dict.fromkeys(values.tolist()) if v]
        if rects:
            xs, ys = _outline_xy(rects)
            traces.append(_lines(xs, ys, name, line={"color": colour, "dash": dash, "width": 1.2}))
    return traces


def _sus(ds: xr.Dataset, boxes: SlotBoxes) -> list[go.Scatter]:
    runs = su_runs(ds)
    if not runs:
        return []
    xs, ys = _outline_xy([boxes.bounds(run.slots, 0.04) for run in runs])
    traces = [_lines(xs, ys, "scalable unit", line={"color": "black", "width": 1.5})]
    centre = boxes.centre
    lx: list = []
    ly: list = []
    for run in runs:
        if run.network >= 0:
            x0, y0, x1, y1 = link(run, centre)
            lx += [x0, x1, None]
            ly += [y0, y1, None]
    if lx:
        traces.append(
            _lines(
                lx,
                ly,
                "link to network rack",
                mode="lines+markers",
                line={"color": "black", "width": 1},
                marker={"size": 4, "color": "black"},
                opacity=0.7,
            )
        )
    return traces


def hall_figure(ds: xr.Dataset, modes: list[ColourMode], texts: list[str], name: str) -> go.Figure:
    """One hall's plan: the colour-mode traces, outlines, installed marks and a
    transparent hover layer on top. ``modes`` and ``texts`` are per slot of ``ds``."""
    boxes = slot_boxes(ds)
    edges = slot_edges(ds)
    fig = go.Figure()
    owner: list[int] = []
    for number, mode in enumerate(modes):
        for trace in _mode_traces(mode, boxes, edges, occupied(ds), number == 0):
            fig.add_trace(trace)
            owner.append(number)
    fixed = _groups(ds, boxes) + _sus(ds, boxes)
    kept = installed(ds)
    if kept.any():
        x, y = boxes.centre
        fixed.append(
            go.Scatter(
                x=x[kept],
                y=y[kept],
                mode="markers",
                name="installed before this plan",
                marker={"symbol": "x-thin", "size": 8, "line": {"width": 2, "color": "black"}},
                hoverinfo="skip",
            )
        )
    fixed.append(
        _rect_bar(
            boxes,
            np.ones(len(texts), dtype=bool),
            name="slots",
            hovertext=texts,
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"color": "rgba(0,0,0,0)", "line": {"width": 0}},
            showlegend=False,
        )
    )
    for trace in fixed:
        fig.add_trace(trace)
        owner.append(-1)
    buttons = [
        {
            "label": mode.label,
            "method": "restyle",
            "args": [{"visible": [o in (number, -1) for o in owner]}],
        }
        for number, mode in enumerate(modes)
    ]
    x_lo = float(boxes.x0.min())
    x_hi = float((boxes.x0 + boxes.width).max())
    y_lo = float(boxes.y0.min())
    y_hi = float((boxes.y0 + boxes.height).max())
    pad = max(1.0, 0.03 * max(x_hi - x_lo, y_hi - y_lo))
    aspect = (y_hi - y_lo + 2 * pad) / (x_hi - x_lo + 4 * pad)
    fig.update_layout(
        barmode="overlay",
        bargap=0,
        hovermode="closest",
        hoverlabel={"bgcolor": "white", "font": {"size": 12}, "align": "left"},
        height=int(min(max(1000 * aspect, 360), 900)) + 140,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.08, "yanchor": "top"},
        updatemenus=[
            {
                "buttons": buttons,
                "direction": "down",
                "x": 0.0,
                "xanchor": "left",
                "y": 1.12,
                "yanchor": "top",
                "showactive": True,
            }
        ],
        annotations=[
            {
                "text": "colour by",
                "x": 0.0,
                "xref": "paper",
                "xanchor": "right",
                "y": 1.1,
                "yref": "paper",
                "showarrow": False,
            },
            *_row_labels(ds, boxes),
        ],
        title={"text": f"hall {_e(name)}", "x": 0.5},
        dragmode="pan",
    )
    fig.update_xaxes(
        title="x (m)", range=[x_lo - 3 * pad, x_hi + pad], showgrid=False, zeroline=False
    )
    fig.update_yaxes(
        title="y (m)",
        range=[y_hi + pad, y_lo - pad],  # y grows down the page, as on a drawing
        scaleanchor="x",
        scaleratio=1,
        showgrid=False,
        zeroline=False,
    )
    return fig


def _row_labels(ds: xr.Dataset, boxes: SlotBoxes) -> list[dict]:
    return [
        {
            "text": _e(text),
            "x": float(boxes.x0[first]) - 0.2,
            "y": float(boxes.y0[first] + boxes.height[first] / 2),
            "xanchor": "right",
            "showarrow": False,
            "font": {"size": 10},
        }
        for text, first in row_starts(ds)
    ]


# ---------------------------------------------------------------- bars and page


def bars_figure(bars: list[Resource]) -> go.Figure:
    """Utilization of the most loaded capacities, binding on top, coloured by family."""
    shown = bars[:MAX_BARS]
    fig = go.Figure()
    for family, colour in FAMILY_COLOURS.items():
        rows = [b for b in shown if b.family == family]
        if rows:
            fig.add_trace(
                go.Bar(
                    orientation="h",
                    y=[b.label for b in rows],
                    x=[b.utilization for b in rows],
                    name=family,
                    marker={"color": colour},
                    text=[f"{b.utilization:.1%}" for b in rows],
                    textposition="outside",
                    customdata=[[f"{b.load:,.1f}", f"{b.limit:,.1f}", b.unit] for b in rows],
                    hovertemplate="%{y}: %{customdata[0]} of %{customdata[1]} "
                    "%{customdata[2]} (%{x:.1%})<extra></extra>",
                )
            )
    title = "utilization (load / limit), most loaded first"
    if len(shown) < len(bars):
        title += f": the {len(shown)} highest of {len(bars)}"
    fig.update_layout(
        title={"text": title},
        barmode="overlay",
        height=22 * len(shown) + 160,
        margin={"l": 260, "r": 40, "t": 60, "b": 40},
        plot_bgcolor="white",
        shapes=[
            {
                "type": "line",
                "x0": 1,
                "x1": 1,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": "black", "width": 1},
            }
        ],
    )
    top = max([1.0] + [b.utilization for b in shown])
    fig.update_xaxes(tickformat=".0%", range=[0, top * 1.12], showgrid=True)
    fig.update_yaxes(
        categoryorder="array", categoryarray=[b.label for b in shown], autorange="reversed"
    )
    return fig


_STYLE = """
body { font-family: sans-serif; margin: 1em 2em; }
h1 { font-size: 1.2em; font-weight: normal; }
.tabs button { font-size: 1em; padding: 0.3em 1em; margin-right: 0.3em; cursor: pointer;
  border: 1px solid #888; background: #f2f2f2; }
.tabs button.active { background: #333; color: white; }
.note { color: #555; font-size: 0.9em; }
"""

_TABS = """
function showHall(index) {
  document.querySelectorAll('.hall').forEach(function (div, k) {
    div.style.display = k === index ? 'block' : 'none';
  });
  document.querySelectorAll('.tabs button').forEach(function (button, k) {
    button.classList.toggle('active', k === index);
  });
  var plot = document.querySelector('#hall-' + index + ' .js-plotly-plot');
  if (plot) { Plotly.Plots.resize(plot); }
}
"""


def plan_page(ds: xr.Dataset, title: str, wiring: Wiring | None) -> tuple[str, list[str]]:
    """The whole page, and warnings about the instance, if one is given."""
    paths, warnings = power_paths(ds, wiring) if wiring is not None else (None, [])
    modes = colour_modes(ds, paths)
    texts = np.array(hover_texts(ds, paths), dtype=object)
    names = halls(ds)
    config = {"responsive": True, "scrollZoom": True, "displaylogo": False}
    parts = []
    for number, name in enumerate(names):
        mask = ds["hall"].values == name
        hall_modes = [_select(mode, mask) for mode in modes]
        fig = hall_figure(hall_layout(ds, name), hall_modes, list(texts[mask]), name)
        # every hall is drawn visible, at the page's width, and the tabs hide all but
        # the first afterwards: a plot drawn hidden would keep ranges fitted to no width
        parts.append(
            f'<div class="hall" id="hall-{number}">'
            + fig.to_html(full_html=False, include_plotlyjs=False, config=config)
            + "</div>"
        )
    tabs = ""
    if len(names) > 1:
        tabs = (
            '<div class="tabs">'
            + "".join(
                f'<button type="button" onclick="showHall({k})"'
                f"{' class=active' if k == 0 else ''}>hall {_e(n)}</button>"
                for k, n in enumerate(names)
            )
            + "</div>"
        )
    notes = []
    if paths is None:
        notes.append(
            "Power paths are not in the layout file: <code>rackopt report LAYOUT --instance "
            "INSTANCE -o plan.html</code> adds each slot's feeds and their loads."
        )
    bars = bars_figure(utilization_bars(ds)).to_html(
        full_html=False, include_plotlyjs=False, config={"displaylogo": False}
    )
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script><script>{_TABS}</script></head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n{tabs}\n"
        + "\n".join(parts)
        + "<script>showHall(0);</script>"
        + "".join(f"<p class='note'>{n}</p>" for n in notes)
        + f"\n{bars}\n</body></html>\n"
    )
    return page, warnings


def _select(mode: ColourMode, mask: np.ndarray) -> ColourMode:
    """A colour mode restricted to some slots (one hall), keeping the layout-wide scale."""
    return replace(
        mode,
        category=None if mode.category is None else mode.category[mask],
        value=None if mode.value is None else mode.value[mask],
    )
