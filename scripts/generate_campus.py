"""Parametric halls and campuses for benchmarks and scale tests.

A campus is ``halls`` identical halls side by side. Each hall has ``rows`` rows of
``slots`` slots; the first ``liquid_share`` of the rows are on liquid loops (row CDU
groups, N+1), the rest are air-only rows with rear-door heat exchangers. Power is
2N (A/B UPS systems, each feeding the busways of ``rows_per_ups`` rows) or
distributed 4N/3 (four UPS systems per hall, rows fed from the six pairs in turn).
Capacities are sized from the rack mix so that power, not space, binds: ``fill``
is the share of a fully loaded hall's IT load that the failover capacity admits.
The fabric (whole SUs, leaf racks at marked row-end slots, cable reach) is on by
default. ``--utility-kw`` adds one utility limit over all halls, the usual case
where the grid connection binds. ``--phases P`` builds the campus out in P waves
(docs/instance-format.md section 15): hall h opens in wave ceil(h P / halls), the
utility limit (if any) steps up to p / P of its value in wave p, and each wave takes as
many racks as fit. Phased instances have no fabric (rackopt refuses SUs across phases).

``--mixed`` makes rack types compete for the same power: GB200 NVL72 joins GB300 in
the liquid rows, DGX B200 joins DGX H100, and air racks may stand in liquid rows too (as
they may in every case). With a binding utility limit this is the hard campus of
docs/benchmarks.md: first-fit no longer reaches the optimum, and the single model
closes its gap slowly (optimizer/solve/campus.py solves it through per-hall frontiers).

Usage: python scripts/generate_campus.py --halls 4 --rows 10 --slots 50 -o campus.yaml
Everything is deterministic: the same arguments give the same file.
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from equipment import (
    CDU_UNIT_FLOW_LPM,
    CDU_UNIT_KW,
    CRAH_KW,
    ROW_BUSWAY_AMPS,
    ROW_SPACING_M,
    SLOT_PITCH_M,
    busway_kw,
    rack_catalog,
)

from optimizer.instance.schema import Power
from optimizer.site.arrays import RackSpec

HALL_GAP_M = 12.0
"""Corridor between neighbouring halls."""
BUSWAY_KW = busway_kw(ROW_BUSWAY_AMPS)
"""A 415 V, 5,000 A row busway (as in gb300-hall)."""
DERATING = Power.model_fields["derating"].default
"""The continuous-load factor rackopt applies, since the campus sets none."""
LIQUID = "gb300-nvl72"
AIR = "dgx-h100-rack"
MIXED = ("gb200-nvl72", "dgx-b200-rack")
"""The rack types ``--mixed`` adds: a second liquid and a second air rack."""
RACKS = rack_catalog()
PAIRS_4N3 = list(itertools.combinations((1, 2, 3, 4), 2))


@dataclass(frozen=True)
class CampusSpec:
    halls: int = 1
    rows: int = 10
    slots: int = 30
    liquid_share: float = 0.5
    topology: str = "2n"
    rows_per_ups: int = 2
    fill: float = 0.8
    fabric: bool = True
    reach_m: float = 50.0
    cell_slots: int = 5
    utility_kw: float | None = None
    """One utility limit (IT plus cooling) shared by all halls; none by default."""
    mixed: bool = False
    """Four rack types compete for the power (module docstring)."""
    supply_temp_c: float | None = None
    """Supply air of every zone; when given, every hall gets rackopt's parametric
    recirculation model (docs/thermal.md), so inlet temperatures bind too."""
    phases: int = 1
    """Waves of the build-out; more than one needs ``fabric=False``."""

    @property
    def name(self) -> str:
        mixed = "-mixed" if self.mixed else ""
        return f"campus-{self.halls}x{self.rows}x{self.slots}-{self.topology}{mixed}"


def _rack(liquid: bool) -> RackSpec:
    """The rack type a liquid row or an air row is sized for."""
    return RACKS[LIQUID if liquid else AIR]


def _row_kw(spec: CampusSpec, liquid: bool) -> float:
    """IT load of a full row."""
    return spec.slots * _rack(liquid).it_kw


def _hall(spec: CampusSpec, h: int) -> tuple[dict[str, Any], dict[str, Any], dict, dict]:
    """Rows, devices, CDUs and air zones of hall ``h``."""
    hall = f"H{h}"
    width = spec.slots * SLOT_PITCH_M
    x0 = (h - 1) * (width + HALL_GAP_M)
    n_liquid = round(spec.liquid_share * spec.rows)
    rows: dict[str, Any] = {}
    devices: dict[str, Any] = {}
    cdus: dict[str, Any] = {}
    zones: dict[str, Any] = {}
    for r in range(1, spec.rows + 1):
        liquid = r <= n_liquid
        group = (r - 1) // 2 + 1
        zone = f"Z-{hall}-{group}"
        slot: dict[str, Any] = {"air_zone": zone}
        if liquid:
            slot.update(cdu=f"CDU-{hall}-{group}", floor_kg=2000)
        else:
            slot.update(floor_kg=1400, air_kw_max=60)
        if spec.topology == "2n":
            slot["feeds"] = [f"BUS-{hall}-A{r:02d}", f"BUS-{hall}-B{r:02d}"]
            ups = (r - 1) // spec.rows_per_ups + 1
            for side in "AB":
                devices[f"BUS-{hall}-{side}{r:02d}"] = {
                    "kind": "busway",
                    "parent": f"UPS-{hall}-{side}{ups}",
                    "rating_kw": BUSWAY_KW,
                }
        else:
            a, b = PAIRS_4N3[(r - 1) % len(PAIRS_4N3)]
            slot["feeds"] = [f"BUS-{hall}-{a}-{r:02d}", f"BUS-{hall}-{b}-{r:02d}"]
            for u in (a, b):
                devices[f"BUS-{hall}-{u}-{r:02d}"] = {
                    "kind": "busway",
                    "parent": f"UPS-{hall}-{u}",
                    "rating_kw": BUSWAY_KW,
                }
        overrides = {1: {"network": True}, spec.slots: {"network": True}} if spec.fabric else {}
        rows[f"R{r:02d}"] = {
            "slots": spec.slots,
            "origin_m": [x0, (r - 1) * ROW_SPACING_M],
            "pitch_m": SLOT_PITCH_M,
            "slot": slot,
            "overrides": overrides,
        }
        rows_in_group = [g for g in range(1, spec.rows + 1) if (g - 1) // 2 + 1 == group]
        heat_air = sum(spec.slots * _rack(g <= n_liquid).air_kw for g in rows_in_group)
        zones[zone] = {"crah_kw": CRAH_KW, "units": math.ceil(heat_air / CRAH_KW) + 1}
        if spec.supply_temp_c is not None:
            zones[zone]["supply_temp_c"] = spec.supply_temp_c
        if liquid:
            heat = sum(spec.slots * _rack(True).liquid_kw for g in rows_in_group if g <= n_liquid)
            units = math.ceil(heat / CDU_UNIT_KW) + 1
            cdus[f"CDU-{hall}-{group}"] = {
                "unit_kw": CDU_UNIT_KW,
                "unit_flow_lpm": CDU_UNIT_FLOW_LPM,
                "units": units,
            }
    full_kw = sum(_row_kw(spec, r <= n_liquid) for r in range(1, spec.rows + 1))
    if spec.topology == "2n":
        for ups in range(1, math.ceil(spec.rows / spec.rows_per_ups) + 1):
            served = [r for r in range(1, spec.rows + 1) if (r - 1) // spec.rows_per_ups + 1 == ups]
            rating = spec.fill * sum(_row_kw(spec, r <= n_liquid) for r in served) / DERATING
            for side in "AB":
                devices[f"UPS-{hall}-{side}{ups}"] = {"kind": "ups", "rating_kw": round(rating)}
    else:
        rating = spec.fill * full_kw / 3 / DERATING  # any three systems carry the hall
        for u in range(1, 5):
            devices[f"UPS-{hall}-{u}"] = {"kind": "ups", "rating_kw": round(rating)}
    return rows, devices, cdus, zones


def campus(spec: CampusSpec) -> dict[str, Any]:
    """The instance dict of a campus."""
    halls: dict[str, Any] = {}
    devices: dict[str, Any] = {}
    cdus: dict[str, Any] = {}
    zones: dict[str, Any] = {}
    for h in range(1, spec.halls + 1):
        rows, hall_devices, hall_cdus, hall_zones = _hall(spec, h)
        halls[f"H{h}"] = {"rows": rows}
        devices.update(hall_devices)
        cdus.update(hall_cdus)
        zones.update(hall_zones)
    data: dict[str, Any] = {
        "format_version": 1,
        "name": spec.name,
        "description": f"generated by scripts/generate_campus.py: {spec}",
        "halls": halls,
        "power": {"devices": devices},
        "cooling": {"cdus": cdus, "air_zones": zones},
        "rack_types": {LIQUID: {}, AIR: {}, "network-rack": {}},
        "demand": {LIQUID: {}, AIR: {}},
    }
    if spec.mixed:
        for name in MIXED:
            data["rack_types"][name] = {}
            data["demand"][name] = {}
    if spec.fabric:
        data["network"] = {"default_reach_m": spec.reach_m, "cell_slots": spec.cell_slots}
    if spec.utility_kw is not None:
        data["facility"] = {"utility_limit_kw": spec.utility_kw}
    if spec.supply_temp_c is not None:
        data["thermal"] = {"recirculation": {hall: {} for hall in halls}}
    if spec.phases > 1:
        data["phases"] = _waves(spec, data["demand"])
    return data


def _waves(spec: CampusSpec, demand: dict[str, Any]) -> list[dict[str, Any]]:
    """The campus's build-out: halls opened in turn, the utility stepped up with them,
    as many racks of every ``demand`` type as fit in each wave."""
    waves = []
    for p in range(1, spec.phases + 1):
        wave: dict[str, Any] = {
            "name": f"wave{p}",
            "open": [
                f"H{h}"
                for h in range(2, spec.halls + 1)
                if math.ceil(h * spec.phases / spec.halls) == p
            ],
            "demand": {name: {} for name in demand},
        }
        if spec.utility_kw is not None:
            wave["utility_limit_kw"] = round(spec.utility_kw * p / spec.phases)
        waves.append(wave)
    return waves


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--halls", type=int, default=1)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--slots", type=int, default=30, help="slots per row")
    parser.add_argument("--liquid-share", type=float, default=0.5)
    parser.add_argument("--topology", choices=("2n", "4n3"), default="2n")
    parser.add_argument("--fill", type=float, default=0.8)
    parser.add_argument("--no-fabric", action="store_true")
    parser.add_argument("--reach-m", type=float, default=50.0)
    parser.add_argument("--cell-slots", type=int, default=5)
    parser.add_argument(
        "--utility-kw",
        type=float,
        default=None,
        help="one utility limit (IT + cooling, kW) shared by all halls",
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="GB200 and DGX B200 racks compete with GB300 and DGX H100 for the power",
    )
    parser.add_argument(
        "--supply-temp-c",
        type=float,
        default=None,
        help="supply air of every zone; adds the parametric recirculation model",
    )
    parser.add_argument(
        "--phases",
        type=int,
        default=1,
        help="build the campus out in this many waves",
    )
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    spec = CampusSpec(
        args.halls,
        args.rows,
        args.slots,
        args.liquid_share,
        args.topology,
        fill=args.fill,
        fabric=not args.no_fabric,
        reach_m=args.reach_m,
        cell_slots=args.cell_slots,
        utility_kw=args.utility_kw,
        supply_temp_c=args.supply_temp_c,
        mixed=args.mixed,
        phases=args.phases,
    )
    args.output.write_text(yaml.safe_dump(campus(spec), sort_keys=False))
    print(f"wrote {args.output}: {spec.halls * spec.rows * spec.slots} slots")


if __name__ == "__main__":
    main()
