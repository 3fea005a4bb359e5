"""Generate the shipped example instances ``instances/gb300-hall.yaml``,
``instances/retrofit-hall.yaml`` and ``instances/air-hall.yaml``.

Why a generator and not hand-written YAML: the two halls have 160 and 96 slots, 24
and 28 power devices, and their device ratings are *derived* (a busway's kW from its
voltage and ampacity, a UPS system's kW from its units) and *sized* so that a chosen
resource binds at a chosen optimum. Writing that by hand invites copy-paste slips (a
row fed from the wrong UPS silently changes the optimum); here every figure is a named
constant with its public source, every derived figure is computed once, and the same
source comment lands next to the figure in the YAML a planner reads.

The output is deterministic: no randomness, no timestamps, dict order fixed, so a
rerun reproduces the committed files byte for byte (``--verify`` checks that).

Regenerate (from the repository root)::

    python scripts/generate_instances.py            # writes both files into instances/
    python scripts/generate_instances.py --check    # ...and validates them with rackopt
    python scripts/generate_instances.py --verify   # exit 1 if the committed files are stale

Then ``rackopt solve instances/gb300-hall.yaml -o /tmp/gb300-hall.nc`` shows the optimum.
Source grades as in ``optimizer/instance/catalog.yaml``: A vendor or standard document, B trade
press quoting a vendor, C third-party template or code constant, D arithmetic from A/B.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
INSTANCES = REPO / "instances"
CATALOG = REPO / "optimizer" / "instance" / "catalog.yaml"
SCRIPT = "scripts/generate_instances.py"

# --------------------------------------------------------------------------------------
# Shared public figures (every YAML comment below cites these; see the module docstring
# for the grades).
# --------------------------------------------------------------------------------------

DERATING = 0.8
"""Continuous load at 80% of a breaker's rating: NEC 210.20(A), 215.3 (A)."""
VOLTS_LL = 415.0
"""Line-to-line voltage of the 3-phase distribution, as in the primer's 415 V examples."""
UPS_UNIT_KW = 1000.0
"""One UPS unit; Schneider Galaxy VX units are 500-1,250 kW/kVA (installation guide
990-6264C, 10/2022, A). A UPS *system* here is several units in parallel (D)."""
CDU_UNIT_KW = 1370.0
"""Vertiv XDU1350 row CDU, ~1.37 MW (C)."""
CDU_FLOW_LPM_PER_KW = 1.35
"""Vertiv GB200 NVL72 reference design coolant flow (B)."""
CDU_UNIT_FLOW_LPM = float(round(CDU_UNIT_KW * CDU_FLOW_LPM_PER_KW / 50) * 50)
"""Flow of one CDU at its rated heat: 1,370 kW x 1.35 L/min/kW ~ 1,850 L/min (D)."""
CRAH_KW = 230.0
"""Perimeter CRAH unit, ~230 kW (B/C)."""
SLOT_PITCH_M = 0.6
"""Rack width: the NVL72's 0.6 x 1.2 m footprint (D)."""
ROW_SPACING_M = 3.0
"""1.2 m rack depth + 1.8 m aisle; layout geometry only (no constraint reads it yet)."""


def require(condition: bool, rule: str) -> None:
    """Fail generation when a sizing rule of an instance's design no longer holds (say,
    after a catalog update): better no file than a file whose comments are wrong."""
    if not condition:
        raise ValueError(f"design rule broken: {rule}; revisit the figures in {SCRIPT}")


def busway_kw(amps: float, volts: float = VOLTS_LL) -> float:
    """Rating of a 3-phase feed in kW, as NetBox computes it: sqrt(3) x V x A (C), taken
    at unity power factor (modern IT power supplies run at ~0.95-1), rounded to 0.1 kW.

    The 80% continuous derating is *not* applied here: the instance's power section
    applies it, so the YAML shows the nameplate rating a facility engineer recognizes.
    """
    return round(math.sqrt(3.0) * volts * amps / 1000.0, 1)


@dataclass(frozen=True)
class Rack:
    """The catalog figures a sizing rule needs (read from optimizer/instance/catalog.yaml)."""

    gpus: int
    it_kw: float
    liquid_fraction: float
    flow_lpm_per_kw: float
    weight_kg: float

    @property
    def liquid_kw(self) -> float:
        return self.it_kw * self.liquid_fraction

    @property
    def air_kw(self) -> float:
        return self.it_kw - self.liquid_kw

    @property
    def flow_lpm(self) -> float:
        return self.liquid_kw * self.flow_lpm_per_kw


def load_catalog(path: Path = CATALOG) -> dict[str, Rack]:
    """Rack figures from the shipped catalog, so the sizing comments match what rackopt
    will actually use (a hard-coded copy would drift when the catalog is updated)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        name: Rack(
            int(e["gpus"]),
            float(e["it_kw"]),
            float(e["liquid_fraction"]),
            float(e.get("flow_lpm_per_kw", 1.5)),
            float(e["weight_kg"]),
        )
        for name, e in entries.items()
    }


# --------------------------------------------------------------------------------------
# A tiny YAML writer that keeps comments. PyYAML drops comments, and the comments are
# the point: every physical figure carries its source on the line that sets it.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A value followed on the same line by ``# comment``."""

    value: Any
    comment: str


@dataclass(frozen=True)
class Flow:
    """A mapping written on one line, ``{a: 1, b: [x, y]}``: one line per device or slot
    keeps a 50-device power tree scannable."""

    mapping: dict[Any, Any]


@dataclass(frozen=True, eq=False)
class Remark:
    """A mapping key that is written as full-line comments before the next entry.
    ``eq=False`` makes each remark a distinct key, so a mapping may hold several."""

    text: str


_PLAIN_STRING = re.compile(r"^[A-Za-z][A-Za-z0-9_.:+/ -]*$")
COMMENT_WIDTH = 96


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        plain = _PLAIN_STRING.match(value) and yaml.safe_load(value) == value
        return value if plain and ": " not in value else json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as YAML")


def _inline(value: Any) -> str:
    if isinstance(value, Note):
        raise ValueError("a comment cannot sit inside a one-line mapping or list")
    if isinstance(value, Flow):
        value = value.mapping
    if isinstance(value, dict):
        items = ", ".join(f"{_scalar(k)}: {_inline(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return _scalar(value)


def _with_comment(line: str, comment: str) -> str:
    return f"{line}  # {comment}" if comment else line


def _block(mapping: dict[Any, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in mapping.items():
        if isinstance(key, Remark):
            width = max(COMMENT_WIDTH - indent - 2, 40)
            for paragraph in key.text.split("\n"):
                wrapped = textwrap.wrap(paragraph, width) or [""]
                lines.extend(f"{pad}# {line}".rstrip() for line in wrapped)
            continue
        comment = ""
        if isinstance(value, Note):
            value, comment = value.value, value.comment
        head = f"{pad}{_scalar(key)}:"
        if isinstance(value, dict) and value:
            lines.append(_with_comment(head, comment))
            lines.extend(_block(value, indent + 2))
        else:
            lines.append(_with_comment(f"{head} {_inline(value)}", comment))
    return lines


def plain(value: Any) -> Any:
    """The data without comments and layout hints: what a YAML loader should read back."""
    if isinstance(value, Note):
        return plain(value.value)
    if isinstance(value, Flow):
        return plain(value.mapping)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not isinstance(k, Remark)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def render(document: dict[Any, Any], header: str) -> str:
    """YAML text of ``document`` under a header comment.

    The text is read back with PyYAML's safe loader and compared with the data, so a
    writer bug (a string that needed quoting, say) fails here, not in a planner's solve.
    """
    head = [f"# {line}".rstrip() for line in header.strip("\n").split("\n")]
    text = "\n".join([*head, *_block(document, 0)]) + "\n"
    if yaml.safe_load(text) != plain(document):
        raise AssertionError("the YAML writer did not round-trip; fix _scalar/_inline")
    return text


def generated_header(name: str, summary: str) -> str:
    """The banner every generated file starts with: who made it and how to remake it."""
    return (
        f"GENERATED by {SCRIPT} -- do not edit by hand; edit the script and rerun:\n"
        f"    python {SCRIPT} {name}    # rewrites this file\n"
        f"    rackopt solve instances/{name}.yaml -o /tmp/{name}.nc\n"
        "Sources: each figure's comment names its public source and grade (A vendor or\n"
        "standard document, B trade press quoting a vendor, C third-party template or code\n"
        "constant, D arithmetic from A/B); rack figures come from "
        "optimizer/instance/catalog.yaml.\n"
        "\n" + "\n".join(textwrap.wrap(summary, COMMENT_WIDTH - 2))
    )


# --------------------------------------------------------------------------------------
# Instance 1: gb300-hall, a ~10,000-GPU GB300 NVL72 hall with 2N power.
# --------------------------------------------------------------------------------------

SU_RACKS = 8
"""NVL72 racks per scalable unit: NVIDIA DGX SuperPOD GB200/GB300 RA (A)."""
GB300 = "gb300-nvl72"
B300 = "dgx-b300-rack"
H100 = "dgx-h100-rack"
NETWORK = "network-rack"

HALL_ROWS = 8
HALL_SLOTS_PER_ROW = 20
HALL_ROWS_PER_UPS = 2
"""Each UPS pair (A and B side) and each CDU group and air zone serves two rows."""
HALL_UPS_UNITS = 6
HALL_BUSWAY_AMPS = 5000.0
HALL_FLOOR_KG = 1900.0
HALL_CDU_UNITS = 5
HALL_CRAH_UNITS = 5
HALL_UTILITY_KW = 21_000.0


def _facility_kw(rack: Rack, liquid_factor: float = 0.05, air_factor: float = 0.25) -> float:
    """Facility power of one rack: IT plus cooling plant, with rackopt's default plant
    factors (0.05 kW per kW of liquid heat, 0.25 per kW of air heat;
    optimizer/instance/schema.py)."""
    return rack.it_kw + liquid_factor * rack.liquid_kw + air_factor * rack.air_kw


def _row(slots: int, r: int, slot: dict[str, Any], notes: tuple[str, str, str]) -> dict[str, Any]:
    """Row ``r`` (1-based) of ``slots`` slots, rows ROW_SPACING_M apart along y; ``notes``
    are the comments of its origin, pitch and slot defaults."""
    origin, pitch, defaults = notes
    return {
        "slots": slots,
        "origin_m": Note([0.0, (r - 1) * ROW_SPACING_M], origin),
        "pitch_m": Note(SLOT_PITCH_M, pitch),
        "slot": Note(Flow(slot), defaults),
    }


def gb300_hall(catalog: dict[str, Rack]) -> tuple[dict[Any, Any], str]:
    """One hall of 8 rows x 20 NVL72 slots, liquid everywhere, 2N power.

    Why this shape: 160 slots leave space slack (the brief: something other than space
    must bind), and two rows per UPS, CDU group and air zone keep every group alike, so
    the 2N failover cap is the same for each group and easy to check by hand. Four UPS
    systems per side of 6 x 1,000 kW units give 4,800 kW continuous each; when the B-side
    UPS of a row pair fails its A-side twin carries the pair's racks in full, so a pair
    takes floor(4,800 / 136) = 35 racks and the hall 4 x 35 = 140 racks = 10,080 GPUs,
    Foxconn's Taiwan build. With the fabric, racks come in SUs of 8 with a 20 kW leaf
    rack each: an SU plus its leaf loads 8 x 136 + 20 = 1,108 kW, so the four UPS pairs
    (4 x 4,800 kW) take floor(19,200 / 1,108) = 17 SUs = 136 racks = 9,792 GPUs.
    Busways, CDUs, CRAHs, floor and utility are sized from real equipment to stay below
    that cap (the utility next, at ~97%).
    """
    rack = catalog[GB300]
    ups_kw = HALL_UPS_UNITS * UPS_UNIT_KW
    per_ups = math.floor(DERATING * ups_kw / rack.it_kw)
    groups = HALL_ROWS // HALL_ROWS_PER_UPS
    leaf = catalog[NETWORK]
    su_kw = SU_RACKS * rack.it_kw + leaf.it_kw
    sus = math.floor(groups * DERATING * ups_kw / su_kw)
    racks = SU_RACKS * sus
    require(
        all(
            math.ceil(racks / groups) * rack.it_kw + math.ceil(sus / groups) * leaf.it_kw
            <= DERATING * ups_kw
            for _ in range(groups)
        ),
        "the SUs must pack into the row pairs",
    )
    bus_kw = busway_kw(HALL_BUSWAY_AMPS)
    row_full_kw = HALL_SLOTS_PER_ROW * rack.it_kw
    pair_slots = HALL_ROWS_PER_UPS * HALL_SLOTS_PER_ROW
    cdu_kw = CDU_UNIT_KW * (HALL_CDU_UNITS - 1)
    cdu_lpm = CDU_UNIT_FLOW_LPM * (HALL_CDU_UNITS - 1)
    crah_kw = CRAH_KW * (HALL_CRAH_UNITS - 1)
    facility_kw = racks * _facility_kw(rack) + sus * _facility_kw(leaf)
    require(row_full_kw <= DERATING * bus_kw, "a full row must fit its busway in failover")
    require(
        pair_slots * rack.liquid_kw <= cdu_kw and pair_slots * rack.flow_lpm <= cdu_lpm,
        "a full row pair must fit its CDU group",
    )
    require(pair_slots * rack.air_kw <= crah_kw, "a full row pair must fit its air zone")
    require(rack.weight_kg <= HALL_FLOOR_KG, "the floor must carry a GB300 NVL72")
    require(facility_kw <= HALL_UTILITY_KW, "the utility must not bind below the failover cap")

    def group(row: int) -> int:
        return (row - 1) // HALL_ROWS_PER_UPS + 1

    def pair_name(row: int) -> str:
        first = (group(row) - 1) * HALL_ROWS_PER_UPS + 1
        return f"R{first:02d}{first + HALL_ROWS_PER_UPS - 1:02d}"

    rows: dict[Any, Any] = {
        Remark(
            f"{HALL_ROWS} rows x {HALL_SLOTS_PER_ROW} slots, all on liquid loops. Every slot "
            "is dual-corded: half its load on the A-side busway of its row, half on the "
            f"B-side one. Floor: slab-on-grade, {HALL_FLOOR_KG:,.0f} kg per slot (design "
            f"figure): a {rack.weight_kg:,.0f} kg "
            "GB300 NVL72 (catalog) presses ~2,100 kg/m2 on its 0.6 x 1.2 m footprint (D), "
            "more than a TIA-942 Rated-3 raised floor's 12 kPa ~ 1,224 kg/m2 (B)."
        ): None,
    }
    for r in range(1, HALL_ROWS + 1):
        name = f"R{r:02d}"
        slot = {
            "liquid": True,
            "cdu": f"CDU-{pair_name(r)}",
            "air_zone": f"Z-{pair_name(r)}",
            "floor_kg": HALL_FLOOR_KG,
            "feeds": [f"BUS-A-{name}", f"BUS-B-{name}"],
        }
        rows[name] = _row(
            HALL_SLOTS_PER_ROW,
            r,
            slot,
            (
                f"rows {ROW_SPACING_M:g} m apart: 1.2 m rack depth + aisle (layout only)",
                "0.6 m wide NVL72 rack (0.6 x 1.2 m footprint)",
                "floor_kg: slab rating per slot (see above)",
            ),
        )

    devices: dict[Any, Any] = {
        Remark(
            "2N (Schneider WP 75, A): side A and side B each carry every rack alone if the "
            f"other side fails. UPS system = {HALL_UPS_UNITS} x {UPS_UNIT_KW:,.0f} kW units in "
            f"parallel = {ups_kw:,.0f} kW (Galaxy VX units are 500-1,250 kW: Schneider guide "
            f"990-6264C, A), {DERATING * ups_kw:,.0f} kW "
            f"continuous at 80%. Each UPS feeds the busways of two rows: failover caps a row "
            f"pair at floor({DERATING * ups_kw:,.0f} / {rack.it_kw:g} kW) = {per_ups} GB300 "
            "racks."
        ): None,
    }
    for side in "AB":
        for g in range(1, groups + 1):
            devices[f"UPS-{side}{g}"] = Note(
                Flow({"kind": "ups", "rating_kw": ups_kw}),
                f"{HALL_UPS_UNITS} x {UPS_UNIT_KW:,.0f} kW Galaxy VX units (A); "
                f"{DERATING * ups_kw:,.0f} kW continuous",
            )
    devices[
        Remark(
            f"Row busways, 415 V 3-phase, {HALL_BUSWAY_AMPS:,.0f} A: sqrt(3) x 415 V x "
            f"{HALL_BUSWAY_AMPS:,.0f} A = {bus_kw:,.0f} kVA, taken as kW at unity power "
            f"factor (NetBox's formula, C), {DERATING * bus_kw:,.0f} kW continuous: a full "
            f"row of {HALL_SLOTS_PER_ROW} racks ({row_full_kw:,.0f} kW) fits in failover."
        )
    ] = None
    for r in range(1, HALL_ROWS + 1):
        for side in "AB":
            devices[f"BUS-{side}-R{r:02d}"] = Note(
                Flow({"kind": "busway", "parent": f"UPS-{side}{group(r)}", "rating_kw": bus_kw}),
                f"415 V, {HALL_BUSWAY_AMPS:,.0f} A (D); {DERATING * bus_kw:,.0f} kW continuous",
            )

    cdus: dict[Any, Any] = {
        Remark(
            f"One CDU group per row pair, N+1: {HALL_CDU_UNITS} x Vertiv XDU1350 "
            f"(~{CDU_UNIT_KW:,.0f} kW each, C), {HALL_CDU_UNITS - 1} active = "
            f"{cdu_kw:,.0f} kW and {cdu_lpm:,.0f} L/min; flow per unit {CDU_UNIT_KW:,.0f} kW "
            f"x 1.35 L/min/kW (Vertiv GB200 reference design, B) ~ {CDU_UNIT_FLOW_LPM:,.0f} "
            f"L/min (D). A full pair of {pair_slots} GB300 needs "
            f"{pair_slots * rack.liquid_kw:,.0f} kW and {pair_slots * rack.flow_lpm:,.0f} L/min."
        ): None,
    }
    air_zones: dict[Any, Any] = {
        Remark(
            f"One air zone per row pair for the NVL72's leftover air heat "
            f"({rack.air_kw:.2f} kW per rack, catalog): {HALL_CRAH_UNITS} perimeter CRAHs "
            f"of ~{CRAH_KW:,.0f} kW (B/C), N+1 = {crah_kw:,.0f} kW usable."
        ): None,
    }
    for g in range(1, groups + 1):
        pair = pair_name(g * HALL_ROWS_PER_UPS)
        cdus[f"CDU-{pair}"] = Note(
            Flow(
                {
                    "unit_kw": CDU_UNIT_KW,
                    "unit_flow_lpm": CDU_UNIT_FLOW_LPM,
                    "units": HALL_CDU_UNITS,
                    "redundant_units": 1,
                }
            ),
            f"XDU1350 ~{CDU_UNIT_KW:,.0f} kW (C), {CDU_UNIT_FLOW_LPM:,.0f} L/min (D), N+1",
        )
        air_zones[f"Z-{pair}"] = Note(
            Flow({"crah_kw": CRAH_KW, "units": HALL_CRAH_UNITS, "redundant_units": 1}),
            f"perimeter CRAHs ~{CRAH_KW:,.0f} kW (B/C), N+1: {crah_kw:,.0f} kW usable",
        )

    document: dict[Any, Any] = {
        "format_version": 1,
        "name": "gb300-hall",
        "description": (
            f"~10,000-GPU GB300 NVL72 hall (Foxconn Taiwan scale): {HALL_ROWS} rows x "
            f"{HALL_SLOTS_PER_ROW} liquid slots, 2N UPS power, N+1 CDUs and CRAHs; "
            f"2N failover caps it at {sus} SUs = {racks} racks = {racks * rack.gpus:,} GPUs."
        ),
        "facility": {
            "utility_limit_kw": Note(
                HALL_UTILITY_KW,
                f"hall's grid allocation (design figure; the Foxconn site phases 20 -> 100 "
                f"MW, B); {racks} racks draw {facility_kw:,.0f} kW with cooling",
            ),
        },
        "halls": {"H1": {"rows": rows}},
        "power": {
            "derating": Note(DERATING, "continuous load at 80%: NEC 210.20(A), 215.3 (A)"),
            "devices": devices,
        },
        "cooling": {"cdus": cdus, "air_zones": air_zones},
        "rack_types": {
            GB300: Note(
                {},
                f"catalog: {rack.gpus} GPUs, {rack.it_kw:g} kW, {rack.liquid_fraction:.0%} "
                f"to liquid, {rack.weight_kg:,.0f} kg, SUs of 8 racks served by one "
                "network-rack (sources in optimizer/instance/catalog.yaml)",
            ),
            NETWORK: Note(
                {},
                "catalog: leaf switch rack, 20 kW air-cooled, one SU per rack "
                "(planning templates, C)",
            ),
        },
        "network": Note(
            {"default_reach_m": 50.0},
            "compute fabric: whole SUs of 8 NVL72 racks, each within 50 m of its leaf rack "
            "(400G multimode over OM4, NVIDIA LinkX, A); cable paths along rows and across "
            "at row ends",
        ),
        "demand": {
            GB300: Note(
                Flow({"max": HALL_ROWS * HALL_SLOTS_PER_ROW}),
                "one per slot: the facility, not the order, is the limit",
            ),
        },
    }
    summary = (
        f"gb300-hall: one {HALL_ROWS * HALL_SLOTS_PER_ROW}-slot GB300 NVL72 hall with 2N "
        f"power and its fabric. Optimum by hand: {sus} SUs = {racks} racks = "
        f"{racks * rack.gpus:,} GPUs,\nset by the 2N failover of the UPS systems (an SU "
        f"with its leaf rack loads {su_kw:,.0f} kW;\n{groups} x {DERATING * ups_kw:,.0f} kW "
        f"take {sus} SUs). Without the fabric: {groups * per_ups} racks."
    )
    return document, summary


# --------------------------------------------------------------------------------------
# Instance 2: retrofit-hall, liquid and air rows under distributed redundant 4N/3 power.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowKind:
    """What a retrofit row offers: cooling, floor and the feed size its racks need."""

    label: str
    liquid: bool
    air_kw_max: float
    floor_kg: float
    busway_amps: float
    zone: str
    densest: str
    """The rack type that loads this row's power and air the most (sizes busway and CRAHs)."""


RETRO_SLOTS_PER_ROW = 8
RETRO_LIQUID = RowKind("liquid", True, 35.0, 2000.0, 2500.0, "Z-LIQ", GB300)
"""Retrofitted to liquid; containment only on the air side: 35 kW (25-41 kW practical with
containment, B/C) takes an NVL72's ~19 kW air heat but no air-cooled DGX rack. Floor
reinforced to 2,000 kg per slot (design figure) for the 1,500 kg GB300 NVL72."""
RETRO_RDHX = RowKind("rear doors", False, 60.0, 1200.0, 1000.0, "Z-RDHX", B300)
"""Air only with rear-door heat exchangers: 60 kW (rear doors reach 35-75 kW, B/C)."""
RETRO_CONTAINED = RowKind("containment", False, 41.0, 1200.0, 1000.0, "Z-CONT", H100)
"""Air only with containment: 41 kW, the top of the 25-41 kW range (B/C)."""
RETRO_ROWS = (RETRO_LIQUID,) * 6 + (RETRO_RDHX,) * 3 + (RETRO_CONTAINED,) * 3
"""Twelve rows: half liquid, half air. Twelve, not eight, so that each half holds each of
the six UPS pairs of 4N/3 exactly once (see retrofit_pair)."""
RETRO_UPS = 4
RETRO_UPS_UNIT_KW = 1250.0
"""Largest Galaxy VX unit, 1,250 kW (Schneider guide 990-6264C, A)."""
RETRO_UPS_UNITS = 2
RETRO_PAIRS = ((1, 2), (3, 4), (1, 3), (2, 4), (1, 4), (2, 3))
"""The six UPS pairs of distributed redundant 4N/3."""
RETRO_CDU_UNITS = 3
RETRO_UTILITY_KW = 8000.0
RETRO_INSTALLED = {"H1-R12-01": H100, "H1-R12-02": H100}
RETRO_DEMAND_MAX = {GB300: 48, B300: 24, H100: 24}


def retrofit_pair(row: int) -> tuple[int, int]:
    """The UPS pair feeding row ``row`` (1-based): rows 1-6 take the six pairs in turn and
    rows 7-12 repeat them, so the liquid half and the air half each spread their load over
    all six pairs, and a failed system's racks move in equal parts to the other three."""
    return RETRO_PAIRS[(row - 1) % len(RETRO_PAIRS)]


def retrofit_hall(catalog: dict[str, Rack]) -> tuple[dict[Any, Any], str]:
    """A 12 x 8 retrofit hall: rows 1-6 converted to liquid, rows 7-12 left on air.

    Why: planners ask "retrofit half the rows to liquid: how many GPUs, and what binds?".
    Four UPS systems in distributed redundant 4N/3 (Schneider WP 75, A) dual-feed every
    row from two different systems. With the six pairs spread evenly, a failed system's
    racks move one third to each survivor, so each system must hold 1/3 of the IT load
    after a failure (its normal load is 3/4 of that). The systems are two 1,250 kW units
    each, small enough that this failover limit binds well before space, cooling or the
    utility: the DGX air racks (more GPUs per kW) compete with the GB300 NVL72s for it.

    Each row is one slot class of the model (same feeds, CDU, zone, limits). Splitting
    rows into four-slot groups on different pairs (24 classes) made the same hall take
    10-120 s to prove optimal with HiGHS instead of well under a second.
    """
    gb300 = catalog[GB300]
    ups_kw = RETRO_UPS_UNITS * RETRO_UPS_UNIT_KW
    n_rows = len(RETRO_ROWS)
    kinds = list(dict.fromkeys(RETRO_ROWS))
    rows_of = {k: [r for r in range(1, n_rows + 1) if RETRO_ROWS[r - 1] is k] for k in kinds}
    liquid_rows = rows_of[RETRO_LIQUID]
    for kind in kinds:
        densest = catalog[kind.densest]
        row_kw = RETRO_SLOTS_PER_ROW * densest.it_kw
        require(row_kw <= DERATING * busway_kw(kind.busway_amps), "busway must carry its row")
        require(
            densest.air_kw <= kind.air_kw_max and densest.weight_kg <= kind.floor_kg,
            f"a {kind.densest} must fit a {kind.label} row",
        )
    require(
        catalog[H100].air_kw <= RETRO_CONTAINED.air_kw_max < catalog[B300].air_kw,
        "containment rows take H100 racks but not B300 racks",
    )
    require(
        gb300.air_kw <= RETRO_LIQUID.air_kw_max < catalog[H100].air_kw,
        "liquid rows are kept for liquid racks",
    )
    require(RETRO_RDHX.floor_kg < gb300.weight_kg, "the legacy floor cannot take a GB300")
    cdu_kw = CDU_UNIT_KW * (RETRO_CDU_UNITS - 1)
    cdu_lpm = CDU_UNIT_FLOW_LPM * (RETRO_CDU_UNITS - 1)
    pair_slots = 2 * RETRO_SLOTS_PER_ROW
    require(
        pair_slots * gb300.liquid_kw <= cdu_kw and pair_slots * gb300.flow_lpm <= cdu_lpm,
        "two full liquid rows must fit their CDU group",
    )

    def crah_units(kind: RowKind) -> int:
        """N+1 CRAHs sized for the zone full of its densest rack: cooling never binds
        here, so the instance isolates the power question it is about."""
        full_kw = len(rows_of[kind]) * RETRO_SLOTS_PER_ROW * catalog[kind.densest].air_kw
        return math.ceil(full_kw / CRAH_KW) + 1

    def cdu_of(row: int) -> str:
        first = row - (row - 1) % 2
        return f"CDU-R{first:02d}{first + 1:02d}"

    def span(kind: RowKind) -> str:
        return f"R{rows_of[kind][0]:02d}-R{rows_of[kind][-1]:02d}"

    def busway(ups: int, row: int) -> str:
        return f"BUS-{ups}-R{row:02d}"

    rows: dict[Any, Any] = {
        Remark(
            f"{n_rows} rows x {RETRO_SLOTS_PER_ROW} slots. {span(RETRO_LIQUID)}: retrofitted to "
            f"liquid (row CDUs), floor reinforced to {RETRO_LIQUID.floor_kg:,.0f} kg per slot "
            f"(design figure) for the {gb300.weight_kg:,.0f} kg GB300 NVL72; air side plain "
            f"containment at {RETRO_LIQUID.air_kw_max:g} kW per slot (25-41 kW practical with "
            f"containment, B/C): an NVL72's {gb300.air_kw:.0f} kW fits, an air-cooled DGX rack "
            "does not.\n"
            f"{span(RETRO_RDHX)}: air only, rear-door heat exchangers, "
            f"{RETRO_RDHX.air_kw_max:g} kW per slot (rear doors reach 35-75 kW, B/C): DGX B300 "
            f"({catalog[B300].it_kw:g} kW) or H100 ({catalog[H100].it_kw:g} kW) racks.\n"
            f"{span(RETRO_CONTAINED)}: air only, containment, {RETRO_CONTAINED.air_kw_max:g} kW "
            "per slot (top of 25-41 kW, B/C): DGX H100 racks only.\n"
            f"Air rows keep the legacy raised floor, {RETRO_RDHX.floor_kg:,.0f} kg per slot "
            "(site figure; legacy floors are rated below TIA-942 Rated-3's 12 kPa ~ 1,224 "
            "kg/m2, B): no GB300.\n"
            "Every row is dual-fed from busways under two different UPS systems; row r and "
            "row r+6 use the same pair, so each half spreads over all six pairs."
        ): None,
    }
    for r in range(1, n_rows + 1):
        kind = RETRO_ROWS[r - 1]
        a, b = retrofit_pair(r)
        slot: dict[str, Any] = {"liquid": True, "cdu": cdu_of(r)} if kind.liquid else {}
        slot |= {
            "air_zone": kind.zone,
            "floor_kg": kind.floor_kg,
            "air_kw_max": kind.air_kw_max,
            "feeds": [busway(a, r), busway(b, r)],
        }
        rows[f"R{r:02d}"] = {
            "slots": RETRO_SLOTS_PER_ROW,
            "origin_m": Note(
                [0.0, (r - 1) * ROW_SPACING_M], f"rows {ROW_SPACING_M:g} m apart (layout only)"
            ),
            "pitch_m": Note(SLOT_PITCH_M, "0.6 m wide racks"),
            "slot": Note(
                Flow(slot),
                f"{kind.label}: {kind.air_kw_max:g} kW air heat, {kind.floor_kg:,.0f} kg floor "
                f"(sources above); fed by UPS-{a} + UPS-{b}",
            ),
        }

    devices: dict[Any, Any] = {
        Remark(
            "Distributed redundant 4N/3 (Schneider WP 75, A): four UPS systems of "
            f"{RETRO_UPS_UNITS} x {RETRO_UPS_UNIT_KW:,.0f} kW units = {ups_kw:,.0f} kW "
            f"(Galaxy VX units are 500-1,250 kW: Schneider guide 990-6264C, A), "
            f"{DERATING * ups_kw:,.0f} kW continuous at 80%. When one system fails its rows "
            "draw wholly from their other feed; with the load spread evenly each survivor "
            f"then carries 1/3 of the IT load, so the hall takes at most about 3 x "
            f"{DERATING * ups_kw:,.0f} = {3 * DERATING * ups_kw:,.0f} kW of IT load."
        ): None,
    }
    for u in range(1, RETRO_UPS + 1):
        devices[f"UPS-{u}"] = Note(
            Flow({"kind": "ups", "rating_kw": ups_kw}),
            f"{RETRO_UPS_UNITS} x {RETRO_UPS_UNIT_KW:,.0f} kW Galaxy VX units (A); "
            f"{DERATING * ups_kw:,.0f} kW continuous",
        )
    devices[
        Remark(
            "Row busways, 415 V 3-phase, rated sqrt(3) x V x A at unity power factor "
            "(NetBox's formula, C), 80% continuous; BUS-u-Rrr hangs under UPS-u and feeds "
            "row r. Each carries its full row when the row's other UPS fails."
        )
    ] = None
    for r in range(1, n_rows + 1):
        kind = RETRO_ROWS[r - 1]
        rating = busway_kw(kind.busway_amps)
        densest = catalog[kind.densest]
        for u in retrofit_pair(r):
            devices[busway(u, r)] = Note(
                Flow({"kind": "busway", "parent": f"UPS-{u}", "rating_kw": rating}),
                f"{kind.busway_amps:,.0f} A (D): {DERATING * rating:,.0f} kW continuous >= "
                f"{RETRO_SLOTS_PER_ROW} x {densest.it_kw:g} kW",
            )

    cdus: dict[Any, Any] = {
        Remark(
            f"One CDU group per pair of liquid rows, N+1: {RETRO_CDU_UNITS} x Vertiv XDU1350 "
            f"(~{CDU_UNIT_KW:,.0f} kW, C), {RETRO_CDU_UNITS - 1} active = {cdu_kw:,.0f} kW and "
            f"{cdu_lpm:,.0f} L/min; per unit {CDU_UNIT_KW:,.0f} kW x 1.35 L/min/kW (Vertiv "
            f"GB200 reference design, B) ~ {CDU_UNIT_FLOW_LPM:,.0f} L/min (D). Two full rows "
            f"of GB300 need {pair_slots * gb300.liquid_kw:,.0f} kW and "
            f"{pair_slots * gb300.flow_lpm:,.0f} L/min."
        ): None,
    }
    for first in liquid_rows[::2]:
        cdus[cdu_of(first)] = Note(
            Flow(
                {
                    "unit_kw": CDU_UNIT_KW,
                    "unit_flow_lpm": CDU_UNIT_FLOW_LPM,
                    "units": RETRO_CDU_UNITS,
                    "redundant_units": 1,
                }
            ),
            f"XDU1350 ~{CDU_UNIT_KW:,.0f} kW (C), {CDU_UNIT_FLOW_LPM:,.0f} L/min (D), N+1",
        )
    air_zones: dict[Any, Any] = {
        Remark(
            f"Perimeter CRAHs of ~{CRAH_KW:,.0f} kW (B/C), N+1, each zone sized for a full "
            f"zone of its densest rack. In {span(RETRO_RDHX)} the rear doors move the heat into "
            "the chilled-water loop; the zone's units stand for that loop's share of the plant."
        ): None,
    }
    for kind in kinds:
        units = crah_units(kind)
        first, last = rows_of[kind][0], rows_of[kind][-1]
        air_zones[kind.zone] = Note(
            Flow({"crah_kw": CRAH_KW, "units": units, "redundant_units": 1}),
            f"R{first:02d}-R{last:02d}: {units - 1} x {CRAH_KW:,.0f} kW = "
            f"{CRAH_KW * (units - 1):,.0f} "
            "kW usable (B/C)",
        )

    rack_types: dict[Any, Any] = {}
    for name in (GB300, B300, H100):
        spec = catalog[name]
        cooling = f"{spec.liquid_fraction:.0%} to liquid" if spec.liquid_fraction else "air"
        rack_types[name] = Note(
            {},
            f"catalog: {spec.gpus} GPUs, {spec.it_kw:g} kW, {cooling}, "
            f"{spec.weight_kg:,.0f} kg (sources in optimizer/instance/catalog.yaml)",
        )
    slots_of = {kind: len(rows_of[kind]) * RETRO_SLOTS_PER_ROW for kind in kinds}
    require(
        {GB300: slots_of[RETRO_LIQUID], B300: slots_of[RETRO_RDHX], H100: slots_of[RETRO_CONTAINED]}
        == RETRO_DEMAND_MAX,
        "the order book is one rack per slot that fits it",
    )
    document: dict[Any, Any] = {
        "format_version": 1,
        "name": "retrofit-hall",
        "description": (
            f"Retrofit hall, {n_rows} rows x {RETRO_SLOTS_PER_ROW}: {span(RETRO_LIQUID)} "
            f"liquid, {span(RETRO_RDHX)[:3]}-{span(RETRO_CONTAINED)[-3:]} air-only (rear doors, "
            f"containment) on a legacy {RETRO_RDHX.floor_kg:,.0f} kg floor; distributed "
            "redundant 4N/3 UPS power binds."
        ),
        "facility": {
            "utility_limit_kw": Note(
                RETRO_UTILITY_KW, "the building's existing service (design figure)"
            ),
        },
        "halls": {"H1": {"rows": rows}},
        "power": {
            "derating": Note(DERATING, "continuous load at 80%: NEC 210.20(A), 215.3 (A)"),
            "devices": devices,
        },
        "cooling": {"cdus": cdus, "air_zones": air_zones},
        "rack_types": rack_types,
        "demand": {
            Remark(
                "Order book: up to one GB300 per liquid slot, one B300 per rear-door slot, "
                "one H100 per containment slot."
            ): None,
            **{name: Flow({"max": count}) for name, count in RETRO_DEMAND_MAX.items()},
        },
        "installed": {
            Remark("Two DGX H100 racks already stand in row R12; they stay."): None,
            **RETRO_INSTALLED,
        },
    }
    summary = (
        f"retrofit-hall: {n_rows * RETRO_SLOTS_PER_ROW} slots, half liquid, half air, "
        "distributed redundant 4N/3 UPS power, which binds: after any UPS failure the IT "
        f"load must fit about 3 x {DERATING * ups_kw:,.0f} kW. The optimum (from rackopt, "
        "not by hand) is in instances/README.md."
    )
    return document, summary


# --------------------------------------------------------------------------------------
# Instance 3: air-hall, dense air-cooled DGX B200 racks in an uncontained room, where
# recirculation (inlet temperature), not power or CRAH capacity, decides the layout.
# --------------------------------------------------------------------------------------

B200 = "dgx-b200-rack"
AIR_ROWS = 4
AIR_SLOTS_PER_ROW = 12
AIR_ROWS_PER_ZONE = 2
AIR_UPS_UNITS = 4
AIR_BUSWAY_AMPS = 1600.0
AIR_CRAH_UNITS = 8
AIR_SUPPLY_C = 18.0
"""Supply air at the cold end of ASHRAE TC 9.9's recommended 18-27 C envelope (A)."""
AIR_INLET_LIMIT_C = 27.0
"""ASHRAE TC 9.9 recommended inlet limit (A); rackopt's default inlet class."""
AIR_FLOOR_KG = 881.0
"""TIA-942 Rated-3 12 kPa ~ 1,224 kg/m2 (B) over a 0.6 x 1.2 m slot (D)."""
RECIRCULATION = {"self": 0.10, "row": 0.10, "aisle": 0.05, "decay_m": 1.2, "aisle_m": 4.0}
"""rackopt's parametric defaults for an uncontained room (docs/thermal.md; planning values)."""
INLET_AIRFLOW_M3_S = 2.5
AIR_RHO_CP = 1.2


def _full_hall_inlet_c(rack: Rack) -> float:
    """Inlet of the middle slot of an inner row with every slot full, by the parametric
    model: the design claim is that a full hall overheats, so the layout must thin out."""
    k = rack.air_kw / (AIR_RHO_CP * INLET_AIRFLOW_M3_S)
    along = [abs(i - AIR_SLOTS_PER_ROW // 2) * SLOT_PITCH_M for i in range(AIR_SLOTS_PER_ROW)]
    decay = [math.exp(-a / RECIRCULATION["decay_m"]) for a in along]
    own_row = RECIRCULATION["self"] + RECIRCULATION["row"] * (sum(decay) - 1.0)
    facing = 2 * RECIRCULATION["aisle"] * sum(decay)  # the rows on both sides, 3 m away
    return AIR_SUPPLY_C + k * (own_row + facing)


def air_hall(catalog: dict[str, Rack]) -> tuple[dict[Any, Any], str]:
    """4 rows x 12 air slots of DGX B200 racks (57.2 kW of air heat each), no containment.

    Why this shape: power (2N) and CRAH capacity are sized for a full hall, so only the
    recirculation of hot exhaust into neighbouring inlets can stop a rack. A full inner
    row would breathe ~33 C against the 27 C limit; the optimum thins the inner rows and
    keeps the outer ones full, while first-fit stacks the front of the hall and strands
    more slots.
    """
    rack = catalog[B200]
    ups_kw = AIR_UPS_UNITS * UPS_UNIT_KW
    bus_kw = busway_kw(AIR_BUSWAY_AMPS)
    slots = AIR_ROWS * AIR_SLOTS_PER_ROW
    zone_kw = CRAH_KW * (AIR_CRAH_UNITS - 1)
    full_inlet = _full_hall_inlet_c(rack)
    require(slots * rack.it_kw <= DERATING * ups_kw, "a full hall must fit one UPS (2N)")
    require(AIR_SLOTS_PER_ROW * rack.it_kw <= DERATING * bus_kw, "a full row must fit its busway")
    require(
        AIR_ROWS_PER_ZONE * AIR_SLOTS_PER_ROW * rack.air_kw <= zone_kw,
        "a full row pair must fit its air zone",
    )
    require(rack.weight_kg <= AIR_FLOOR_KG, "the floor must carry a DGX B200 rack")
    require(full_inlet > AIR_INLET_LIMIT_C, "a full hall must overheat its inner rows")

    rows: dict[Any, Any] = {
        Remark(
            f"{AIR_ROWS} rows x {AIR_SLOTS_PER_ROW} air-cooled slots, {ROW_SPACING_M:g} m "
            "apart, no aisle containment. Dual-corded from the row's A and B busways."
        ): None,
    }
    for r in range(1, AIR_ROWS + 1):
        name = f"R{r:02d}"
        zone = (r - 1) // AIR_ROWS_PER_ZONE + 1
        slot = {
            "air_zone": f"Z{zone}",
            "floor_kg": AIR_FLOOR_KG,
            "feeds": [f"BUS-A-{name}", f"BUS-B-{name}"],
        }
        rows[name] = _row(
            AIR_SLOTS_PER_ROW,
            r,
            slot,
            (
                f"rows {ROW_SPACING_M:g} m apart: rack depth + aisle; facing rows recirculate",
                "0.6 m wide rack",
                "floor_kg: TIA-942 Rated-3 12 kPa over 0.72 m2 (B, D)",
            ),
        )
    devices: dict[Any, Any] = {
        Remark(
            f"2N (Schneider WP 75, A): each UPS system is {AIR_UPS_UNITS} x "
            f"{UPS_UNIT_KW:,.0f} kW units (Galaxy VX, A), {DERATING * ups_kw:,.0f} kW "
            f"continuous, more than a full hall's {slots * rack.it_kw:,.1f} kW: power does "
            "not bind here."
        ): None,
        "UPS-A": Note(Flow({"kind": "ups", "rating_kw": ups_kw}), "Galaxy VX units (A)"),
        "UPS-B": Note(Flow({"kind": "ups", "rating_kw": ups_kw}), "Galaxy VX units (A)"),
    }
    for r in range(1, AIR_ROWS + 1):
        for side in "AB":
            devices[f"BUS-{side}-R{r:02d}"] = Note(
                Flow({"kind": "busway", "parent": f"UPS-{side}", "rating_kw": bus_kw}),
                f"415 V, {AIR_BUSWAY_AMPS:,.0f} A (D); {DERATING * bus_kw:,.0f} kW continuous",
            )
    zones: dict[Any, Any] = {
        Remark(
            f"One air zone per row pair: {AIR_CRAH_UNITS} perimeter CRAHs of "
            f"~{CRAH_KW:,.0f} kW (B/C), N+1 = {zone_kw:,.0f} kW, enough for a full pair "
            f"({AIR_ROWS_PER_ZONE * AIR_SLOTS_PER_ROW * rack.air_kw:,.1f} kW). Supply air "
            f"{AIR_SUPPLY_C:g} C, the cold end of ASHRAE's recommended envelope (A); the "
            "plant's power follows the COP curve at that temperature "
            "(optimizer/instance/schema.py)."
        ): None,
    }
    for zone in range(1, AIR_ROWS // AIR_ROWS_PER_ZONE + 1):
        zones[f"Z{zone}"] = Flow(
            {"crah_kw": CRAH_KW, "units": AIR_CRAH_UNITS, "supply_temp_c": AIR_SUPPLY_C}
        )
    document: dict[Any, Any] = {
        "format_version": 1,
        "name": "air-hall",
        "description": "Dense air-cooled DGX B200 racks in an uncontained hall: recirculation "
        "decides how many fit",
        "halls": {"H1": {"rows": rows}},
        "power": {"devices": devices},
        "cooling": {"air_zones": zones},
        "rack_types": {B200: Note({}, "catalog: 57.2 kW, all of it to air")},
        "demand": {B200: {}},
        "thermal": {
            Remark(
                f"Inlet limit {AIR_INLET_LIMIT_C:g} C (ASHRAE recommended, A). Recirculation "
                "by rackopt's parametric model with its defaults for an uncontained room "
                f"(docs/thermal.md): a full inner row would breathe {full_inlet:.1f} C. "
                "Set containment: hot_aisle to see the hall fill."
            ): None,
            "inlet_class": "recommended",
            "recirculation": {"H1": Flow({"containment": "none"})},
        },
    }
    summary = (
        f"air-hall: {slots} air slots for {rack.it_kw:g} kW DGX B200 racks in an uncontained "
        "room. Power and CRAHs fit a full hall; hot exhaust recirculating into neighbouring "
        "inlets (parametric model, 18 C supply, 27 C limit) decides how many racks fit and "
        "where."
    )
    return document, summary


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[dict[str, Rack]], tuple[dict[Any, Any], str]]] = {
    "gb300-hall": gb300_hall,
    "retrofit-hall": retrofit_hall,
    "air-hall": air_hall,
}


def generate(name: str, catalog: dict[str, Rack]) -> str:
    """The full text of instance ``name``."""
    document, summary = GENERATORS[name](catalog)
    return render(document, generated_header(name, summary))


def check_with_rackopt(path: Path) -> str:
    """Load and expand ``path`` with rackopt itself (schema and cross-references), so a
    generated file that rackopt would refuse never gets committed. Imported lazily: the
    generator itself needs only PyYAML."""
    if str(REPO) not in sys.path:  # run from a checkout without `pip install -e .`
        sys.path.append(str(REPO))
    from optimizer.instance.loader import load_instance
    from optimizer.site.build import build_site

    site = build_site(load_instance(path))
    return (
        f"{path.name}: valid ({site.n_slots} slots, {len(site.device_ids)} power devices, "
        f"{len(site.cdu_ids)} CDU groups, {len(site.air_zone_ids)} air zones)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the example instances (deterministic): " + ", ".join(GENERATORS),
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"instances to write: {', '.join(GENERATORS)}"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=INSTANCES, help="folder to write to (default: instances/)"
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the written files with rackopt's loader"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="write nothing; exit 1 if a file in --out-dir differs from what would be written",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in GENERATORS]
    if unknown:
        parser.error(f"unknown instance {unknown[0]!r}; choose from {', '.join(GENERATORS)}")
    names = args.names or list(GENERATORS)
    catalog = load_catalog()
    stale = []
    for name in names:
        text = generate(name, catalog)
        path = args.out_dir / f"{name}.yaml"
        if args.verify:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != text:
                stale.append(path)
            continue
        args.out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
        if args.check:
            print(check_with_rackopt(path))
    for path in stale:
        print(f"stale: {path} (rerun python {SCRIPT})", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
