"""The floor plan: SU runs and links, bars, legends, hall panels, the HTML page's hover
text and colour modes, and power paths read from the instance.

The small two-hall instance below has many optimal layouts (which rack stands where is a
tie), so the tests read every expected value from the written layout dataset itself, and
assert only what any layout shares.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from factory import instance, rack, row
from helpers import write_instance

from optimizer.cli import main
from optimizer.errors import InstanceError
from optimizer.results.reader import open_layout
from optimizer.results.resources import layout_resources
from optimizer.studies.plan import (
    PHASE_VARIABLE,
    hall_layout,
    link,
    slot_boxes,
    su_runs,
    utilization_bars,
)
from optimizer.studies.plan_html import colour_modes, hover_texts, plan_page
from optimizer.studies.power_paths import Wiring, power_paths
from optimizer.studies.report import _grid, floor_plan
from optimizer.verify.resources import Kind, binding


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def plan_instance() -> dict[str, Any]:
    """Two halls of two air rows of four slots, 22 C supply air with the parametric
    recirculation model, a fabric (SUs of two 8-GPU racks on a leaf rack), busways under
    2N UPS, an air rack installed in H2-R1-01, and a CDU group that serves no slot."""
    compute = {**rack(8, 10.0), "su_size": 2, "network_rack": "leaf"}
    data = instance(
        rows={},
        devices={
            **{f"UPS-{side}": {"rating_kw": 1000} for side in "AB"},
            **{
                f"BUS-{side}{hall}": {"parent": f"UPS-{side}", "rating_kw": 500}
                for hall in "12"
                for side in "AB"
            },
        },
        rack_types={"gpu": compute, "leaf": {**rack(0, 5.0), "su_ports": 1}, "air": rack(4, 20.0)},
        demand={"gpu": {}, "air": {}},
        network={"rise_m": 0.0, "slack_m": 0.0, "end_clearance_m": 0.0, "cell_slots": 1},
        thermal={"recirculation": {"H1": {}, "H2": {}}},
        installed={"H2-R1-01": "air"},
    )
    data["halls"] = {
        hall: {
            "rows": {
                "R1": row(4, feeds, network=True),
                "R2": {**row(4, feeds, network=True), "origin_m": [0.0, 3.0]},
            }
        }
        for hall, feeds in (("H1", ["BUS-A1", "BUS-B1"]), ("H2", ["BUS-A2", "BUS-B2"]))
    }
    data["cooling"]["air_zones"]["Z"]["supply_temp_c"] = 22
    data["cooling"]["cdus"] = {"C": {"unit_kw": 10_000, "unit_flow_lpm": 100_000, "units": 2}}
    return data


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> tuple[Path, Path, xr.Dataset]:
    """(instance, layout file, layout dataset) of :func:`plan_instance`."""
    folder = tmp_path_factory.mktemp("plan")
    path = write_instance(folder, plan_instance(), "plan.yaml")
    layout = folder / "plan.nc"
    result = run("solve", path, "-o", layout, "-q")
    assert result.exit_code == 0, result.output
    return path, layout, open_layout(layout)  # as rackopt report reads it


def _row_dataset(su: list[int], network: list[str]) -> xr.Dataset:
    n = len(su)
    slots = [f"H-R-{i + 1:02d}" for i in range(n)]
    return xr.Dataset(
        {
            "su": ("slot", np.array(su)),
            "rack_type": ("slot", np.array(["x" if s >= 0 else "" for s in su])),
            "su_network_slot": ("su_id", np.array(network)),
        },
        coords={
            "slot": slots,
            "hall": ("slot", ["H"] * n),
            "row": ("slot", ["R"] * n),
            "position": ("slot", np.arange(1, n + 1)),
            "x_m": ("slot", 0.6 * np.arange(n)),
            "y_m": ("slot", np.zeros(n)),
        },
    )


# ---------------------------------------------------------------- SUs


def test_an_su_is_drawn_as_runs_of_neighbours_each_linked_to_its_network_rack():
    # slot:   01  02 03 04 05 06  07
    # SU:     net 0  0  1  0  net 1      (SU 0's network rack in 01, SU 1's in 06)
    ds = _row_dataset([-1, 0, 0, 1, 0, -1, 1], ["H-R-01", "H-R-06"])
    runs = su_runs(ds)
    assert [(r.su, r.slots.tolist(), r.network) for r in runs] == [
        (0, [1, 2], 0),
        (1, [3], 5),
        (0, [4], 0),
        (1, [6], 5),
    ]
    centre = slot_boxes(ds).centre
    # each run's link starts at its rack nearest to the network rack
    assert link(runs[0], centre) == pytest.approx((0.6, 0.0, 0.0, 0.0))
    assert link(runs[2], centre) == pytest.approx((2.4, 0.0, 0.0, 0.0))
    assert link(runs[3], centre) == pytest.approx((3.6, 0.0, 3.0, 0.0))


def test_no_su_outline_encloses_another_slot(solved):
    _, _, layout = solved
    drawn = 0
    for hall in ("H1", "H2"):  # the halls share coordinates: each is drawn on its own
        ds = hall_layout(layout, hall)
        boxes = slot_boxes(ds)
        x, y = boxes.centre
        runs = su_runs(ds)
        drawn += sum(len(r.slots) for r in runs)
        for run in runs:
            mask = np.zeros(ds.sizes["slot"], dtype=bool)
            mask[run.slots] = True
            x0, y0, w, h = boxes.bounds(mask, 0.04)
            inside = (x > x0) & (x < x0 + w) & (y > y0) & (y < y0 + h)
            assert (inside == mask).all(), run
            assert ds.slot.values[run.network] == ds.su_network_slot.values[run.su]
    assert drawn == int((layout.su >= 0).sum())


# ---------------------------------------------------------------- bars and legends


def test_bars_come_most_utilized_first_with_slots_and_the_tightest_inlet(solved):
    _, _, ds = solved
    bars = utilization_bars(ds)
    shares = [round(b.utilization, 9) for b in bars]
    assert shares == sorted(shares, reverse=True)
    table = layout_resources(ds)
    # the CDU group C serves no slot: no bar, though the table lists it
    assert any(r.kind is Kind.CDU_HEAT for r in table)
    assert not any(b.family == "liquid cooling" for b in bars)
    assert bars[0] == binding([r for r in table if r.family != "liquid cooling"])
    kinds = {b.kind for b in bars}
    assert Kind.SLOTS in kinds and Kind.INLET in kinds
    (inlet,) = [b for b in bars if b.kind is Kind.INLET]
    assert inlet == binding([r for r in table if r.kind is Kind.INLET])


def test_the_picture_has_a_panel_per_hall_and_a_legend_of_what_is_there(solved):
    _, _, ds = solved
    fig = floor_plan(ds)
    titles = [ax.get_title() for ax in fig.axes]
    racks = {h: int((ds.rack_type[ds.hall == h] != "").sum()) for h in ("H1", "H2")}
    assert titles[:2] == [f"hall {h}: {racks[h]} racks in 8 slots" for h in ("H1", "H2")]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    counts = dict(zip(ds.type.values, ds.rack_count.values, strict=True))
    expected_types = [f"{t} ({int(c)})" for t, c in counts.items() if c > 0]
    assert labels[: len(expected_types)] == expected_types
    assert "installed" in labels and "air zone" in labels and "scalable unit" in labels
    # no liquid slot and no CDU group serves a slot in this layout: neither is listed
    assert "liquid slot" not in labels and "CDU group" not in labels
    bar_families = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert "liquid cooling" not in bar_families and "slots" in bar_families


def test_hall_panels_fill_the_plan_area():
    assert _grid([(30.0, 30.0)] * 4)[:2] == (2, 2)
    assert _grid([(60.0, 8.0)] * 3)[:2] == (1, 3)  # long narrow halls stack
    assert _grid([(8.0, 60.0)] * 3)[:2] == (3, 1)


# ---------------------------------------------------------------- the HTML page


def test_hover_names_rack_su_inlet_and_margin_of_every_slot(solved):
    _, _, ds = solved
    texts = hover_texts(ds, None)
    for i, text in enumerate(texts):
        slot = ds.isel(slot=i)
        kind = str(slot.rack_type.item())
        assert text.startswith(f"<b>{slot.slot.item()}</b>")
        temperature = float(slot.inlet_temp_c)
        assert f"inlet {temperature:.1f} °C" in text
        if not kind:
            assert "rack type: empty slot" in text and "margin" not in text
            continue
        assert f"rack type: <b>{kind}</b>" in text
        assert f"margin {float(slot.inlet_limit_c) - temperature:.1f} K" in text
        if int(slot.su) >= 0:
            network = str(ds.su_network_slot.values[int(slot.su)])
            assert f"SU {int(slot.su)}, network rack {network}" in text
        assert ("installed before this plan" in text) == bool(slot.installed)
        assert "power path: not in the layout file" in text
        assert "install phase" not in text  # the layout has no phases
    assert "installed before this plan" in texts[list(ds.slot.values).index("H2-R1-01")]


def test_colour_modes_are_offered_for_what_the_layout_holds(solved):
    path, _, ds = solved
    assert [m.label for m in colour_modes(ds, None)] == ["rack type", "inlet temperature"]
    paths, _ = power_paths(ds, Wiring.load(path))
    phased = ds.assign({PHASE_VARIABLE: ("slot", np.where(np.arange(16) < 8, "P1", "P2"))})
    assert [m.label for m in colour_modes(phased, paths)] == [
        "rack type",
        "inlet temperature",
        "power path utilization",
        "install phase",
    ]
    unheated = ds.assign(inlet_temp_c=ds.inlet_temp_c * np.nan)
    assert [m.label for m in colour_modes(unheated, None)] == ["rack type"]
    (phase_mode,) = [m for m in colour_modes(phased, None) if m.label == "install phase"]
    assert list(phase_mode.categories) == ["P1", "P2", "empty slot"]
    assert "install phase: P1" in hover_texts(phased, None)[0]


def test_the_page_is_offline_with_a_tab_per_hall(solved):
    _, _, ds = solved
    page, warnings = plan_page(ds, "a <title>", None)
    assert warnings == []
    assert "<script src=" not in page and "Plotly.newPlot" in page  # plotly.js inlined
    assert re.findall(r"onclick=\"showHall\((\d)\)\"[^>]*>hall (H\d)<", page) == [
        ("0", "H1"),
        ("1", "H2"),
    ]
    assert "<title>a &lt;title&gt;</title>" in page
    assert "--instance" in page  # says how to get power paths


# ---------------------------------------------------------------- power paths


def test_power_paths_come_from_the_instance_and_loads_from_the_layout(solved):
    path, _, ds = solved
    paths, warnings = power_paths(ds, Wiring.load(path))
    assert warnings == []
    first = list(ds.slot.values).index("H2-R2-04")
    assert paths.feeds[first] == [["BUS-A2", "UPS-A"], ["BUS-B2", "UPS-B"]]
    assert paths.shares[first] == pytest.approx([0.5, 0.5])
    load = ds.device_load_kw / ds.device_capacity_kw
    worst = ds.device_failover_load_kw / ds.device_failover_limit_kw
    path_devices = ["BUS-A2", "UPS-A", "BUS-B2", "UPS-B"]
    fullest = float(np.maximum(load, worst).sel(device=path_devices).max())
    assert paths.utilization[first] == pytest.approx(fullest)
    text = hover_texts(ds, paths)[first]
    assert "feed A: BUS-A2 → UPS-A" in text and "feed B: BUS-B2 → UPS-B" in text
    assert f"power path at {fullest:.1%}" in text


def test_an_instance_of_another_site_is_refused_and_an_edited_one_warned(solved, tmp_path):
    path, layout, ds = solved
    other = plan_instance()
    other["halls"]["H2"]["rows"]["R2"]["slots"] = 3
    with pytest.raises(InstanceError, match="slots differ from those of the layout"):
        power_paths(ds, Wiring.load(write_instance(tmp_path, other, "other.yaml")))
    edited = plan_instance()
    edited["power"]["devices"]["UPS-A"]["rating_kw"] = 1100
    result = run(
        "report",
        layout,
        "-o",
        tmp_path / "plan.html",
        "--instance",
        write_instance(tmp_path, edited, "edited.yaml"),
    )
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "its digest differs" in result.output
    html = tmp_path / "plan.html"
    result = run("report", layout, "-o", html, "--instance", tmp_path / "other.yaml")
    assert result.exit_code == 2 and "slots differ" in result.output
    result = run("report", layout, "-o", tmp_path / "plan.png", "--instance", path)
    assert result.exit_code == 0 and "drawn only in an .html plan" in result.output
