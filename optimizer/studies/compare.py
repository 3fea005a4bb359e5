"""Key figures per scenario, recomputed from layout datasets (a study's, or single layouts).

Every figure comes from the dataset's variables, which the independent checker
computed from the placement; nothing is read from the solver except status and gap.
The definitions, stranded capacity in particular, are in ``docs/studies.md``:

- a resource's **headroom** is its limit minus its load. A power device's is the
  smaller of its normal headroom and its failover headroom (failover limit minus its
  worst single-failure load); only root devices (no parent) count toward the power
  total, so a kW is not counted once per level of the tree.
- the **binding** resource is the single most utilized one of the layout's resource
  table (``optimizer.verify.resources``: devices in normal operation and in their worst
  failure, CDU heat and flow, air zones, the utility, every occupied inlet, all slots
  and the liquid slots), ties going to the one listed first. In an optimal layout no
  further rack fits, so every kW of headroom is **stranded**: on the binding resource's
  family it is the remainder too small for one more rack (or SU); on every other family
  it is capacity the binding resource strands.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from optimizer.errors import InstanceError, did_you_mean
from optimizer.output import write_text
from optimizer.results.reader import open_layout
from optimizer.results.resources import layout_resources
from optimizer.results.schema import DIMENSIONS, is_fill
from optimizer.verify.resources import binding

_SCENARIO_ATTRS = (
    "status",
    "message",
    "objective",
    "best_bound",
    "gap",
    "tie_break_status",
    "phase_plan",
    "solver_options",
    "instance_sha256",
)


@dataclass
class Kpis:
    """One scenario's figures; NaN (or '') where the scenario has no layout."""

    scenario: str
    status: str
    gap: float = math.nan
    gpus: float = math.nan
    racks: dict[str, int] = field(default_factory=dict)
    it_kw: float = math.nan
    facility_kw: float = math.nan
    pue: float = math.nan
    stranded_power_kw: float = math.nan
    stranded_liquid_kw: float = math.nan
    stranded_air_kw: float = math.nan
    stranded_utility_kw: float = math.nan
    empty_slots: float = math.nan
    bound_by: str = ""
    bound_by_family: str = ""
    bound_by_utilization: float = math.nan
    worst_failover_headroom_kw: float = math.nan
    worst_failover_device: str = ""
    cable_m: float = math.nan
    message: str = ""
    phase_gpus: dict[str, int] = field(default_factory=dict)
    """GPUs per build-out phase, in phase order (empty for a layout without phases)."""
    phase_stranded_power_kw: dict[str, float] = field(default_factory=dict)
    """Stranded power (as ``stranded_power_kw``) per phase."""
    phase_utility_left_kw: dict[str, float] = field(default_factory=dict)
    """Utility limit minus facility power per phase (NaN without a limit)."""
    phase_plan: str = ""
    """``joint OBJECTIVE`` or ``myopic`` for a phased layout, '' otherwise."""
    instance_sha256: str = ""
    """The instance solved: a plan and a myopic plan of the same one are paired."""


def is_study(ds: xr.Dataset) -> bool:
    return "scenario" in ds.dims


def scenario_layout(study: xr.Dataset, name: str) -> xr.Dataset:
    """One scenario of a study dataset as a layout: entries the scenario lacks dropped,
    its status, gap and message moved back into attributes."""
    ds = study.sel(scenario=name)
    for dim in DIMENSIONS:
        if dim.name in ds.dims and dim.key in ds:
            ds = ds.isel({dim.name: np.flatnonzero(~is_fill(ds[dim.key].values))})
    attrs = {k: ds[k].item() for k in _SCENARIO_ATTRS if k in ds}
    ds = ds.drop_vars([k for k in _SCENARIO_ATTRS if k in ds])
    ds.attrs = {**study.attrs, **attrs, "scenario": name}
    return ds


def open_layouts(paths: list[str | Path]) -> list[tuple[str, xr.Dataset | None, dict[str, Any]]]:
    """(name, layout or None, attributes) for every scenario of every file: a study
    gives its scenarios (None for those without a layout), a layout file one entry
    named after the file."""
    out: list[tuple[str, xr.Dataset | None, dict[str, Any]]] = []
    for raw in paths:
        path = Path(raw)
        ds = open_layout(path)
        if not is_study(ds):
            out.append((path.stem, ds, dict(ds.attrs)))
            continue
        for name in [str(s) for s in ds["scenario"].values]:
            layout = scenario_layout(ds, name)
            if layout.sizes.get("slot", 0) == 0:
                attrs = {
                    "status": str(ds["status"].sel(scenario=name).item()),
                    "message": str(ds["message"].sel(scenario=name).item()),
                }
                out.append((name, None, attrs))
            else:
                out.append((name, layout, layout.attrs))
    return out


def pick_scenario(path: Path, ds: xr.Dataset, name: str | None) -> xr.Dataset:
    """The layout to draw from ``ds``: itself, or one scenario of a study."""
    if not is_study(ds):
        return ds
    names = [str(s) for s in ds["scenario"].values]
    if name is None or name not in names:
        problem = (
            "a study dataset holds several layouts" if name is None else f"no scenario {name!r}"
        )
        fix = "pick one with --scenario NAME: " + (
            did_you_mean(name, names) if name else ", ".join(names[:8])
        )
        raise InstanceError(str(path), "scenario", problem, fix)
    status = str(ds["status"].sel(scenario=name).item())
    layout = scenario_layout(ds, name)
    if layout.sizes.get("slot", 0) == 0:
        raise InstanceError(
            str(path),
            "scenario",
            f"scenario {name!r} has no layout (status {status})",
            "pick a solved scenario",
        )
    return layout


def _float(ds: xr.Dataset, name: str) -> float:
    return float(ds[name].values) if name in ds else math.nan


def _binding(ds: xr.Dataset) -> tuple[str, str, float]:
    """(label, family, utilization) of the most utilized resource of the layout's table,
    ties broken by :func:`optimizer.verify.resources.ranked`."""
    bound = binding(layout_resources(ds))
    if bound is None:
        return "", "", math.nan
    return bound.label, bound.family, bound.utilization


def kpis(name: str, ds: xr.Dataset | None, attrs: dict[str, Any]) -> Kpis:
    """The figures of one layout (``ds`` None: a scenario without one)."""
    status = str(attrs.get("status", ""))
    message = str(attrs.get("message", ""))
    if ds is None:
        return Kpis(name, status, message=message)
    racks = {
        str(t): int(n) for t, n in zip(ds["type"].values, ds["rack_count"].values, strict=True)
    }
    it_kw, facility_kw = _float(ds, "it_kw"), _float(ds, "facility_kw")
    normal = ds["device_capacity_kw"] - ds["device_load_kw"]
    failover = ds["device_failover_limit_kw"] - ds["device_failover_load_kw"]
    root = ds["device_parent"].values == ""
    worst = int(np.argmin(failover.values)) if failover.size else -1
    bound, family, utilization = _binding(ds)
    return Kpis(
        scenario=name,
        status=status,
        gap=float(attrs.get("gap", math.nan)),
        gpus=float(ds["total_gpus"].values),
        racks=racks,
        it_kw=it_kw,
        facility_kw=facility_kw,
        pue=facility_kw / it_kw if it_kw > 0 else math.nan,
        stranded_power_kw=float(_stranded_power_kw(normal.values, failover.values, root)),
        stranded_liquid_kw=float((ds["cdu_capacity_kw"] - ds["cdu_heat_kw"]).sum()),
        stranded_air_kw=float((ds["air_zone_capacity_kw"] - ds["air_zone_heat_kw"]).sum()),
        stranded_utility_kw=_float(ds, "utility_limit_kw") - facility_kw,
        empty_slots=float((ds["rack_type"] == "").sum()),
        bound_by=bound,
        bound_by_family=family,
        bound_by_utilization=utilization,
        worst_failover_headroom_kw=float(failover.values[worst]) if worst >= 0 else math.nan,
        worst_failover_device=str(ds["device"].values[worst]) if worst >= 0 else "",
        cable_m=_float(ds, "total_cable_m"),
        message=message,
        phase_plan=str(attrs.get("phase_plan", "")),
        instance_sha256=str(attrs.get("instance_sha256", "")),
        **phase_figures(ds),
    )


def _stranded_power_kw(normal: np.ndarray, failover: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Stranded power from the devices' headroom (last axis: device), normal and under
    their worst failure: per root of the power tree the smaller of the two, summed. One
    formula for a layout and for each of its phases, so that the two agree."""
    return np.minimum(normal, failover)[..., root].sum(axis=-1)


def phase_figures(ds: xr.Dataset) -> dict[str, Any]:
    """GPUs, stranded power and unused utility power per build-out phase, when the layout
    has phases. Stranded power is defined as for the whole layout (``stranded_power_kw``)
    on each phase's device loads and limits."""
    if "phase_gpus" not in ds or ds.sizes.get("phase", 0) == 0:
        return {}
    names = [str(p) for p in ds["phase"].values]
    left = ds["phase_utility_limit_kw"].values - ds["phase_facility_kw"].values
    normal = ds["phase_device_capacity_kw"].values - ds["phase_device_load_kw"].values
    failover = (
        ds["phase_device_failover_limit_kw"].values - ds["phase_device_failover_load_kw"].values
    )
    stranded = _stranded_power_kw(normal, failover, ds["device_parent"].values == "")
    return {
        "phase_gpus": dict(zip(names, (int(g) for g in ds["phase_gpus"].values), strict=True)),
        "phase_stranded_power_kw": dict(zip(names, (float(v) for v in stranded), strict=True)),
        "phase_utility_left_kw": dict(zip(names, (float(v) for v in left), strict=True)),
    }


def compare(paths: list[str | Path]) -> list[Kpis]:
    return [kpis(name, ds, attrs) for name, ds, attrs in open_layouts(paths)]


def _types(rows: list[Kpis]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(t for t, n in row.racks.items() if n > 0))
    return list(seen)


def _phases(rows: list[Kpis]) -> list[str]:
    """Build-out phases of any compared layout, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.phase_gpus))
    return list(seen)


def _whole(value: float) -> int | float:
    return int(value) if math.isfinite(value) else value


def records(rows: list[Kpis]) -> list[dict[str, Any]]:
    """One flat dict per scenario: the CSV's columns."""
    types = _types(rows)
    out = []
    for row in rows:
        record: dict[str, Any] = {
            "scenario": row.scenario,
            "status": row.status,
            "gap": row.gap,
            "gpus": _whole(row.gpus),
        }
        for t in types:
            record[f"racks_{t}"] = row.racks.get(t, 0) if row.racks else math.nan
        for key in (
            "it_kw",
            "facility_kw",
            "pue",
            "stranded_power_kw",
            "stranded_liquid_kw",
            "stranded_air_kw",
            "stranded_utility_kw",
            "empty_slots",
            "bound_by",
            "bound_by_family",
            "bound_by_utilization",
            "worst_failover_headroom_kw",
            "worst_failover_device",
            "cable_m",
            "message",
        ):
            record[key] = _whole(row.empty_slots) if key == "empty_slots" else getattr(row, key)
        for phase in _phases(rows):
            record[f"gpus_{phase}"] = row.phase_gpus.get(phase, math.nan)
            record[f"stranded_power_kw_{phase}"] = row.phase_stranded_power_kw.get(phase, math.nan)
            record[f"utility_left_kw_{phase}"] = row.phase_utility_left_kw.get(phase, math.nan)
        out.append({key: _rounded(key, value) for key, value in record.items()})
    return out


def _rounded(key: str, value: Any) -> Any:
    """kW to the watt, metres to the centimetre, ratios (gap, PUE, utilization) to 1e-4:
    no float noise such as 2281.6000000000004 in the table."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    if key.endswith("_kw"):
        return round(value, 3)
    if key.endswith("_m"):
        return round(value, 2)
    return round(value, 6 if key == "gap" else 4)


def write_csv(rows: list[Kpis], path: str | Path) -> None:
    table = records(rows)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(table[0]) if table else ["scenario"])
    writer.writeheader()
    for record in table:
        writer.writerow(
            {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        )
    write_text(path, text.getvalue())


def _num(value: float, digits: int = 0, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if percent:
        return f"{value:.2%}"
    return f"{value:,.{digits}f}"


TABLE_WIDTH = 79
"""Columns the text table may use: an 80-column terminal, less one so nothing wraps."""


def _blocks(columns: list[list[str]], left: set[int], width: int) -> list[str]:
    """``columns`` (header first, then one cell per scenario) as text no wider than
    ``width``: as many columns side by side as fit, then the next ones in a block below
    (after a blank line), each block led by the first column, the scenario, whose
    names are cut (marked '~') to a third of the width."""
    most = max(width // 3, 8)
    columns[0] = [c if len(c) <= most else c[: most - 1] + "~" for c in map(str, columns[0])]
    widths = [max(len(str(c)) for c in col) for col in columns]
    blocks: list[list[int]] = []
    for i in range(1, len(columns)):
        used = sum(widths[j] + 2 for j in blocks[-1]) if blocks else width + 1
        if used + widths[i] > width:
            blocks.append([0])
        blocks[-1].append(i)
    lines: list[str] = []
    for block in blocks:
        if lines:
            lines.append("")
        for row in range(len(columns[0])):
            cells = [
                str(columns[i][row]).ljust(widths[i])
                if i in left
                else str(columns[i][row]).rjust(widths[i])
                for i in block
            ]
            lines.append("  ".join(cells).rstrip())
        lines.insert(len(lines) - len(columns[0]) + 1, "  ".join("-" * widths[i] for i in block))
    return lines


def _short(message: str, most: int = 400) -> str:
    return message if len(message) <= most else message[: most - 30] + " ... (full text in --csv)"


def table_lines(rows: list[Kpis], width: int = TABLE_WIDTH) -> list[str]:
    """The comparison as aligned text no wider than ``width``: one line per scenario in
    each block of columns (see :func:`_blocks`), then the reason of each scenario
    without a layout."""
    types = _types(rows)
    header = [
        "scenario",
        "status",
        "gap",
        "GPUs",
        *types,
        "IT MW",
        "fac MW",
        "PUE",
        "strand pwr MW",
        "strand liq MW",
        "strand air MW",
        "util left MW",
        "empty",
        "bound by",
        "worst failover kW",
        "cable m",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r.scenario,
                r.status,
                _num(r.gap, percent=True),
                _num(r.gpus),
                *[_num(r.racks.get(t, 0)) if r.racks else "-" for t in types],
                _num(r.it_kw / 1000, 3),
                _num(r.facility_kw / 1000, 3),
                _num(r.pue, 3),
                _num(r.stranded_power_kw / 1000, 2),
                _num(r.stranded_liquid_kw / 1000, 2),
                _num(r.stranded_air_kw / 1000, 2),
                _num(r.stranded_utility_kw / 1000, 2),
                _num(r.empty_slots),
                f"{r.bound_by} {r.bound_by_utilization:.1%}" if r.bound_by else "-",
                f"{_num(r.worst_failover_headroom_kw, 1)} {r.worst_failover_device}".strip(),
                _num(r.cable_m),
            ]
        )
    left = {0, 1, header.index("bound by"), header.index("worst failover kW")}
    lines = _blocks([list(col) for col in zip(header, *body, strict=True)], left, width)
    lines += [f"  {r.scenario}: {_short(r.message)}" for r in rows if r.message and not r.racks]
    return lines + phase_lines(rows)


def phase_lines(rows: list[Kpis], width: int = TABLE_WIDTH) -> list[str]:
    """GPUs, stranded power and unused utility power per build-out phase, a column per
    phased layout (how it was planned on the first line), so a plan over all phases and
    a phase-by-phase (myopic) plan read side by side; then, for each plan and myopic plan
    of the same instance, what planning ahead gains."""
    phased = [r for r in rows if r.phase_gpus]
    if not phased:
        return []
    phases = _phases(phased)
    columns = [["phase", "plan", *phases]]
    for r in phased:
        cells = [
            f"{r.phase_gpus[name]:,} ({_num(r.phase_stranded_power_kw[name] / 1000, 2)} / "
            f"{_num(r.phase_utility_left_kw[name] / 1000, 2)})"
            if name in r.phase_gpus
            else "-"
            for name in phases
        ]
        columns.append([r.scenario, r.phase_plan or "-", *cells])
    lines = ["GPUs per phase (stranded power / utility power left unused, MW):"]
    lines += _blocks(columns, set(range(len(columns))), width)
    return lines + planning_gain_lines(phased)


def planning_gain_lines(rows: list[Kpis]) -> list[str]:
    """``PLAN over MYOPIC: wave1 +0, wave2 +0, wave3 +144 GPUs`` for every plan over all
    phases and every myopic plan of the same instance (same SHA-256, same phases): the
    GPUs per phase planning ahead gains."""
    pairs = [
        (plan, myopic)
        for plan in rows
        for myopic in rows
        if plan.phase_plan.startswith("joint")
        and myopic.phase_plan == "myopic"
        and plan.instance_sha256
        and plan.instance_sha256 == myopic.instance_sha256
        and list(plan.phase_gpus) == list(myopic.phase_gpus)
    ]
    if not pairs:
        return []
    lines = ["planning ahead gains (plan over the myopic plan of the same instance):"]
    for plan, myopic in pairs:
        gains = ", ".join(
            f"{name} {plan.phase_gpus[name] - myopic.phase_gpus[name]:+,}"
            for name in plan.phase_gpus
        )
        lines.append(f"  {plan.scenario} over {myopic.scenario}: {gains} GPUs")
    return lines
