"""Property tests over random small facilities (hypothesis).

For every random facility of at most 8 slots (some rack types capped after a failure):
the layout the solver returns passes the independent checker; its objective equals the
best found by brute-force enumeration; and every single mutation that breaks one
constraint is caught by the checker, naming it. For random two-phase build-outs of such
halls, the plan's GPUs per phase equal the lexicographic best over every monotone pair
of placements.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from factory import EXACT, brute_force_best, site_of
from helpers import write_instance
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from models.data import build_model_data
from models.objective import primary_weights
from optimizer.errors import InstanceError, NoLayoutError
from optimizer.solve.greedy import greedy_layout
from optimizer.solve.pipeline import solve_site
from optimizer.verify.check import EMPTY, check_layout

TOPOLOGIES = {
    "2N": [["UPS-A", "UPS-B"]],
    "4N/3": [["UPS-1", "UPS-2"], ["UPS-3", "UPS-4"], ["UPS-1", "UPS-3"], ["UPS-2", "UPS-4"]],
    "catcher": [["UPS-1", "UPS-R"], ["UPS-2", "UPS-R"]],
}


MATRIX = "_recirculation_matrix"
"""Key of a drawn recirculation matrix in a facility dict (not part of the instance)."""


@st.composite
def facilities(draw: st.DrawFn) -> dict[str, Any]:
    """A hall of 1-2 rows and 2-8 slots with random power, cooling and up to 3 rack types."""
    topology = draw(st.sampled_from(sorted(TOPOLOGIES)))
    feed_choices = TOPOLOGIES[topology]
    devices = {
        name: {"rating_kw": draw(st.integers(60, 600))} for pair in feed_choices for name in pair
    }
    n_rows = draw(st.integers(1, 2))
    rows = {}
    for r in range(n_rows):
        slot = {
            "air_zone": f"Z{draw(st.integers(1, 2))}",
            "feeds": draw(st.sampled_from(feed_choices)),
            "floor_kg": draw(st.sampled_from([800, 1200, 2000])),
        }
        if topology == "catcher":
            slot["primary_share"] = 1.0
        if draw(st.booleans()):
            slot["cdu"] = "C1"
        rows[f"R{r}"] = {
            "slots": draw(st.integers(1, 8 // n_rows)),
            "origin_m": [0, 3 * r],
            "slot": slot,
        }
    n_types = draw(st.integers(1, 3))
    rack_types = {}
    for t in range(n_types):
        liquid = draw(st.sampled_from([0.0, 0.0, 0.85]))
        rack_types[f"t{t}"] = {
            "gpus": draw(st.sampled_from([8, 16, 32, 72])),
            "it_kw": float(draw(st.integers(10, 140))),
            "liquid_fraction": liquid,
            "weight_kg": float(draw(st.sampled_from([600, 1000, 1500]))),
            "flow_lpm_per_kw": 1.5,
        }
        if draw(st.integers(0, 3)) == 0:  # capped after a failure (failover rows count it)
            rack_types[f"t{t}"]["capped_fraction"] = draw(st.sampled_from([0.5, 0.8]))
    demand = {name: {"max": draw(st.integers(1, 8))} for name in rack_types}
    zones = {z: {"crah_kw": draw(st.integers(30, 300)), "units": 2} for z in ("Z1", "Z2")}
    cdu = {
        "unit_kw": draw(st.integers(100, 600)),
        "unit_flow_lpm": draw(st.integers(150, 900)),
        "units": 2,
    }
    thermal: dict[str, Any] = {}
    kind = draw(st.sampled_from(["none", "parametric", "matrix"]))
    if kind != "none":
        # Supply air close enough to 27 C that recirculation decides which slots fit; a
        # warm-water loop that some liquid racks' class refuses; plant power by COP.
        for zone in zones.values():
            zone["supply_temp_c"] = draw(st.sampled_from([18, 21, 24, 25.5]))
        cdu["supply_temp_c"] = draw(st.sampled_from([30, 40]))
        for name in rack_types:
            if draw(st.integers(0, 3)) == 0:
                rack_types[name]["inlet_class"] = "A2"
            if rack_types[name]["liquid_fraction"] > 0 and draw(st.booleans()):
                rack_types[name]["water_class"] = draw(st.sampled_from(["W32", "W45"]))
    if kind == "parametric":
        model = {"containment": draw(st.sampled_from(["none", "hot_aisle"]))}
        thermal = {"thermal": {"recirculation": {"H": model}}}
    elif kind == "matrix":
        # Any D at all, not symmetric, as a CFD export may be (written by _site).
        ids = [f"H-{r}-{p:02d}" for r, row in rows.items() for p in range(1, row["slots"] + 1)]
        # A small diagonal, so that most racks fit some slot alone and the example is kept.
        own = st.sampled_from([0.0, 0.01, 0.02])
        other = st.sampled_from([0.0, 0.0, 0.02, 0.05, 0.1, 0.3])
        thermal = {
            "thermal": {"matrix_file": "d.csv"},
            MATRIX: {i: {j: draw(own if i == j else other) for j in ids} for i in ids},
        }
    return {
        "format_version": 1,
        "name": "random",
        "objective": draw(st.sampled_from(["max_gpus", "max_it_kw"])),
        "facility": {"utility_limit_kw": draw(st.integers(100, 2000))},
        "halls": {"H": {"rows": rows}},
        "power": {"devices": devices},
        "cooling": {
            "cdus": {"C1": cdu},
            "air_zones": zones,
        },
        "rack_types": rack_types,
        "demand": demand,
        **thermal,
    }


def _site(data: dict[str, Any]):
    """The site, or a rejected example when the random draw is a contradictory instance
    (e.g. a demanded rack heavier than every slot), which the loader refuses by design.
    A drawn recirculation matrix is written as the instance's ``d.csv``."""
    data = dict(data)
    matrix = data.pop(MATRIX, None)
    with tempfile.TemporaryDirectory() as folder:
        if matrix is not None:
            ids = list(matrix)
            lines = ["slot," + ",".join(ids)]
            lines += [f"{i}," + ",".join(str(matrix[i][j]) for j in ids) for i in ids]
            (Path(folder) / "d.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            return site_of(Path(folder), data)
        except InstanceError:
            reject()


MAX_ASSIGNMENTS = 20_000
"""Largest number of assignments (rack type or empty per slot) enumerated by brute force."""

SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(facilities())
def test_solver_optimum_passes_the_checker_and_equals_brute_force(data):
    site = _site(data)
    if np.prod(1 + site.eligible.sum(axis=1).astype(float)) > MAX_ASSIGNMENTS:
        reject()  # brute force checks every assignment: keep each example to seconds
    weights = np.array(primary_weights(build_model_data(site)))
    best, _ = brute_force_best(site, weights)
    report = solve_site(site, EXACT)
    assert report.check.ok
    assert check_layout(site, report.placement).ok
    # The planner's rule of thumb is feasible too, and never beats the optimum.
    rule = greedy_layout(site)
    assert check_layout(site, rule.placement).ok
    assert float(weights[rule.placement[rule.placement >= 0]].sum()) <= best + 1e-6
    assert abs(report.outcome.objective - best) < 1e-6


def _mutations(site, placement: np.ndarray, loads) -> list[tuple[str, Any]]:
    """(expected rule, mutated site or placement) pairs, each breaking exactly one rule."""
    out: list[tuple[str, Any]] = []
    racks = np.flatnonzero(placement != EMPTY)
    if len(racks) == 0:
        return out
    s = int(racks[0])
    spec = site.rack_types[int(placement[s])]
    floor = site.slot_floor_kg.copy()
    floor[s] = spec.weight_kg - 1
    out.append(("slot-floor", ("site", {"slot_floor_kg": floor})))
    air = site.slot_air_kw_max.copy()
    air[s] = spec.air_kw - 1
    if spec.air_kw > 1:
        out.append(("slot-air-heat", ("site", {"slot_air_kw_max": air})))
    for d in np.flatnonzero(loads.device_normal_kw > 1):
        limit = site.device_limit_kw.copy()
        limit[d] = loads.device_normal_kw[d] - 0.5
        failover = np.maximum(site.device_failover_limit_kw, loads.device_failover_kw + 1)
        out.append(
            (
                "power-normal",
                ("site", {"device_limit_kw": limit, "device_failover_limit_kw": failover}),
            )
        )
    for d in np.flatnonzero(loads.device_failover_kw > loads.device_normal_kw + 1):
        failover = np.maximum(site.device_failover_limit_kw, loads.device_failover_kw + 1)
        failover[d] = loads.device_failover_kw[d] - 0.5
        out.append(("power-failover", ("site", {"device_failover_limit_kw": failover})))
    for c in np.flatnonzero(loads.cdu_heat_kw > 1):
        heat = site.cdu_heat_capacity_kw.copy()
        heat[c] = loads.cdu_heat_kw[c] - 0.5
        out.append(("cdu-heat", ("site", {"cdu_heat_capacity_kw": heat})))
        flow = site.cdu_flow_capacity_lpm.copy()
        flow[c] = loads.cdu_flow_lpm[c] - 0.5
        out.append(("cdu-flow", ("site", {"cdu_flow_capacity_lpm": flow})))
    for z in np.flatnonzero(loads.air_zone_heat_kw > 1):
        zone = site.air_zone_capacity_kw.copy()
        zone[z] = loads.air_zone_heat_kw[z] - 0.5
        out.append(("air-zone-heat", ("site", {"air_zone_capacity_kw": zone})))
    out.append(("facility-power", ("site", {"utility_limit_kw": loads.facility_kw - 0.5})))
    counts = np.bincount(placement[racks], minlength=len(site.rack_types))
    t = int(placement[s])
    maximum = site.demand_max.copy()
    maximum[t] = counts[t] - 1
    out.append(("demand-max", ("site", {"demand_max": maximum})))
    minimum = site.demand_min.copy()
    minimum[t] = counts[t] + 1
    out.append(("demand-min", ("site", {"demand_min": minimum})))
    if spec.needs_liquid:
        liquid = site.slot_liquid.copy()
        liquid[s] = False
        out.append(("slot-cooling", ("site", {"slot_liquid": liquid})))
        water = site.cdu_supply_temp_c.copy()
        water[site.slot_cdu[s]] = 30.0
        warmest = site.type_water_max_c.copy()
        warmest[t] = 29.0
        out.append(
            ("slot-water", ("site", {"cdu_supply_temp_c": water, "type_water_max_c": warmest}))
        )
    if not np.isnan(loads.inlet_temp_c[s]):
        limit = site.type_inlet_limit_c.copy()
        limit[t] = loads.inlet_temp_c[s] - 0.5
        out.append(("inlet-temp", ("site", {"type_inlet_limit_c": limit})))
    return out


@SETTINGS
@given(facilities())
def test_checker_catches_every_single_mutation(data):
    site = _site(data)
    try:
        report = solve_site(site, EXACT)
    except NoLayoutError:
        return
    placement, loads = report.placement, report.check.loads
    for rule, (_, changes) in _mutations(site, placement, loads):
        mutated = type(site)(**{**site.__dict__, **changes})
        found = {v.rule for v in check_layout(mutated, placement).violations}
        assert found == {rule}, (rule, found)


@st.composite
def phased_facilities(draw: st.DrawFn) -> dict[str, Any]:
    """A random facility (without a recirculation matrix) built out in two phases: power
    devices at a drawn share of their rating in phase p1, a smaller demand maximum, and
    with two rows the second one opening only in p2."""
    data = draw(facilities())
    data.pop(MATRIX, None)
    data.pop("thermal", None)
    first_devices = {
        name: {
            "rating_kw": float(
                max(1, round(device["rating_kw"] * draw(st.sampled_from([0.5, 1.0]))))
            )
        }
        for name, device in data["power"]["devices"].items()
    }
    first_demand = {
        name: {"max": draw(st.integers(0, entry["max"]))} for name, entry in data["demand"].items()
    }
    rows = list(data["halls"]["H"]["rows"])
    opened = [f"H/{rows[-1]}"] if len(rows) > 1 and draw(st.booleans()) else []
    data["phases"] = [
        {"name": "p1", "devices": first_devices, "demand": first_demand},
        {
            "name": "p2",
            "devices": {
                name: {"rating_kw": float(d["rating_kw"])}
                for name, d in data["power"]["devices"].items()
            },
            "open": opened,
        },
    ]
    return data


MAX_PHASED_ASSIGNMENTS = 100
"""Largest number of assignments per phase enumerated by the phased brute force."""


@settings(
    max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(phased_facilities())
def test_a_phased_plan_equals_brute_force_over_monotone_placements(data):
    import itertools

    from optimizer.instance.loader import load_instance
    from optimizer.site.phases import phased_site
    from optimizer.solve.pipeline import solve_instance
    from optimizer.verify.phases import check_phases

    with tempfile.TemporaryDirectory() as folder:
        path = write_instance(Path(folder), data)
        try:
            phased = phased_site(load_instance(path))
        except InstanceError:
            reject()
        sites = [p.site for p in phased.phases]
        n = sites[0].n_slots
        if (
            max(np.prod(1 + s.eligible.sum(axis=1).astype(float)) for s in sites)
            > MAX_PHASED_ASSIGNMENTS
        ):
            reject()
        weights = np.array(primary_weights(build_model_data(sites[-1])))

        def choices(site, fixed):
            return [
                [int(fixed[s])]
                if fixed[s] != EMPTY
                else [EMPTY, *np.flatnonzero(site.eligible[s]).tolist()]
                for s in range(n)
            ]

        def value(placement):
            return float(weights[placement[placement != EMPTY]].sum())

        best = None
        for first in itertools.product(*choices(sites[0], np.full(n, EMPTY))):
            first = np.array(first)
            if not check_phases(sites[:1], [first])[0].ok:
                continue
            for second in itertools.product(*choices(sites[1], first)):
                second = np.array(second)
                if all(r.ok for r in check_phases(sites, [first, second])):
                    found = (value(first), value(second))
                    best = found if best is None or found > best else best
        try:
            report = solve_instance(path, EXACT)
        except NoLayoutError:
            assert best is None
            return
    assert best is not None
    planned = tuple(value(p.placement) for p in report.plan.phases)
    assert abs(planned[0] - best[0]) < 1e-6 and abs(planned[1] - best[1]) < 1e-6
