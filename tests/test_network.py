"""Scalable units, network racks, ports and cable reach: optima forced by each rule, by hand."""

from __future__ import annotations

import numpy as np
import pytest
from factory import EXACT, fabric, row, site_of

from optimizer.solve.pipeline import solve_site
from optimizer.verify.check import check_layout

NETWORK = {"network": True}


@pytest.mark.parametrize(
    ("slots", "su_size", "ports", "racks"),
    [
        (7, 2, 1, 4),  # (1 leaf + 2 racks) x 2 = 6 slots; the 7th cannot hold a whole SU
        (8, 2, 1, 4),  # 8 = 3 + 3 + 2: a third leaf would have no room for its SU
        (8, 2, 2, 6),  # 1 leaf + 2 SUs (5 slots), then 1 leaf + 1 SU (3 slots)
        (9, 3, 1, 6),  # 4 + 4 slots; the 9th stays empty
        (5, 8, 1, 0),  # an SU of 8 does not fit in 5 slots: nothing is deployed
    ],
)
def test_whole_sus_and_ports(tmp_path, slots, su_size, ports, racks):
    site = site_of(tmp_path, fabric(slots, su_size, ports))
    report = solve_site(site, EXACT)
    placed = report.placement
    assert report.outcome.objective == 8 * racks
    assert int((placed == 0).sum()) == racks
    # Network racks only where they serve an SU; each SU exactly su_size racks.
    sus = report.layout.su_network_slot
    assert int((placed == 1).sum()) == len(set(sus))
    assert all(int((report.layout.su == i).sum()) == su_size for i in range(len(sus)))
    assert report.check.ok


@pytest.mark.parametrize(("reach", "racks"), [(3.5, 2), (4.5, 4), (100.0, 6)])
def test_reach_limits_the_su_racks_around_the_only_network_slot(tmp_path, reach, racks):
    # Ten slots 1 m apart; only slot 01 may take the leaf (up to three SUs of 2). Racks within
    # `reach` metres: 3 (slots 02-04) -> one SU; 4 -> two SUs; everything -> ports bind.
    data = fabric(10, 2, 2, {"default_reach_m": reach}, {1: {"network": True}})
    data["rack_types"]["leaf"]["su_ports"] = 3
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    assert report.outcome.objective == 8 * racks
    hub = site.slot_ids.index("H-R-01")
    assert report.placement[hub] == 1
    cable = report.check.loads.cable_m
    assert cable[report.placement == 0].max() <= reach
    # Lexicographic cables: the racks take the slots nearest the leaf.
    expected = sum(range(1, racks + 1))
    assert cable.sum() == pytest.approx(expected)


def test_locality_row_keeps_an_su_in_its_network_racks_row(tmp_path):
    data = fabric(3, 2, 1, network={"su_locality": "row"})
    data["halls"]["H"]["rows"]["S"] = {**row(3, ["UPS-A", "UPS-B"]), "origin_m": [0, 2.0]}
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    # Each row of 3 holds 1 leaf + 1 SU of 2: 4 racks. Without the rule the same holds,
    # so check the rows: every SU's racks share their leaf's row.
    rows = np.array(site.slot_row)
    for i, hub in enumerate(report.layout.su_network_slot):
        assert set(rows[report.layout.su == i]) == {rows[hub]}
    assert report.outcome.objective == 32


@pytest.mark.parametrize(
    ("locality", "allowed"),
    [
        ("any", lambda rack_row, hub_row: True),
        ("row", lambda rack_row, hub_row: rack_row == hub_row),
        ("adjacent_rows", lambda rack_row, hub_row: abs(rack_row - hub_row) <= 1),
    ],
)
def test_cable_pairs_are_every_class_pair_the_locality_rule_allows(tmp_path, locality, allowed):
    # Four rows of three slots, 2 m apart, each with a network slot at its start; reach
    # covers the hall, so the locality rule alone decides which cells may cable to which
    # network slot: the model's pairs must be exactly those, counted here row by row.
    from models.data import allowed_types, build_model_data

    data = fabric(3, 1, 1, {"su_locality": locality, "default_reach_m": 100.0}, {1: NETWORK})
    for i, name in enumerate("STU", start=1):
        data["halls"]["H"]["rows"][name] = {
            **row(3, ["UPS-A", "UPS-B"]),
            "pitch_m": 1.0,
            "origin_m": [0, 2.0 * i],
            "overrides": {1: NETWORK},
        }
    model = build_model_data(site_of(tmp_path, data))
    order = {name: i for i, name in enumerate("RSTU")}
    row_of = [order[model.site.slot_ids[c.slots[0]].split("-")[1]] for c in model.classes]
    gpu, leaf = 0, 1
    cells = [k for k, c in enumerate(model.classes) if gpu in allowed_types(c)]
    hubs = [k for k, c in enumerate(model.classes) if leaf in allowed_types(c)]
    expected = {(k, h, gpu) for k in cells for h in hubs if allowed(row_of[k], row_of[h])}
    assert {(p.cell, p.hub, p.rack_type) for p in model.cable_pairs} == expected
    # Twelve cells (a network slot may hold a compute rack too) and four hubs: any row
    # 12 x 4; its own row 4 x 3; adjacent rows 3 cells x (2 + 3 + 3 + 2) hubs.
    assert len(expected) == {"any": 48, "row": 12, "adjacent_rows": 30}[locality]


def test_checker_catches_reach_size_ports_and_missing_su(tmp_path):
    data = fabric(10, 2, 1, network={"default_reach_m": 2.5})
    site = site_of(tmp_path, data)
    # leaf in slot 0 serving SU 0 = slots 1, 2 (1 m, 2 m): fine.
    placement = np.array([1, 0, 0] + [-1] * 7)
    su = np.array([-1, 0, 0] + [-1] * 7)
    assert check_layout(site, placement, su, [0]).ok
    # Slot 3 is 3 m away: beyond 2.5 m reach.
    placement_far = np.array([1, 0, -1, 0] + [-1] * 6)
    report = check_layout(site, placement_far, np.array([-1, 0, -1, 0] + [-1] * 6), [0])
    assert [(v.rule, v.load, v.limit) for v in report.violations] == [("network-reach", 3.0, 2.5)]
    # An SU of 1 rack: size broken.
    report = check_layout(site, np.array([1, 0] + [-1] * 8), np.array([-1, 0] + [-1] * 8), [0])
    assert [v.rule for v in report.violations] == ["network-su-size"]
    # Below the size: said as a shortfall, never as a negative excess over a limit.
    assert (
        report.violations[0].describe().endswith("1.0 racks < minimum 2.0 racks (short 1.0 racks)")
    )
    # Two SUs on a one-port leaf.
    placement = np.array([1, 0, 0, 0, 0] + [-1] * 5)
    report = check_layout(site, placement, np.array([-1, 0, 0, 1, 1] + [-1] * 5), [0, 0])
    rules = sorted(v.rule for v in report.violations)
    assert "network-ports" in rules
    # A compute rack in no SU.
    report = check_layout(site, np.array([0] + [-1] * 9), np.full(10, -1), [])
    assert [v.rule for v in report.violations] == ["network-su"]


def test_one_leaf_serves_both_sus_and_racks_sit_next_to_it(tmp_path):
    # Two SUs of one rack, a leaf with three ports, cells of four slots: the second
    # stage must not keep a spare leaf (it would serve nothing) and must cable the racks
    # 1 m and 2 m from the leaf, not 2 m and 3 m.
    data = fabric(10, 1, 3, {"cell_slots": 4})
    data["demand"]["gpu"]["max"] = 2
    site = site_of(tmp_path, data)
    report = solve_site(site, EXACT)
    assert int((report.placement == 1).sum()) == 1
    assert sorted(report.check.loads.cable_m[report.placement == 0]) == [1.0, 2.0]


def test_cross_aisles_belong_to_their_hall_whatever_the_slot_order(tmp_path):
    # Hall A has only a CSV slot table, so its slots come after hall B's row slots.
    (tmp_path / "a.csv").write_text(
        "id,row,position,x_m,y_m,air_zone,feed_a,feed_b\nA-1,R,1,100,0,Z,UPS-A,UPS-B\n"
    )
    data = fabric(3, 1, 1, {"cross_aisles_m": {"A": [100.5]}})
    data["halls"] = {"A": {"slots_csv": "a.csv"}, "H": data["halls"]["H"]}
    site = site_of(tmp_path, data)
    geometry = site.network.geometry
    hall_a = int(site.row_hall[site.slot_row_code[site.slot_ids.index("A-1")]])
    assert 100.5 in geometry.crossings[hall_a].tolist()
    hall_h = int(site.row_hall[site.slot_row_code[site.slot_ids.index("H-R-01")]])
    assert 100.5 not in geometry.crossings[hall_h].tolist()


def test_explain_on_a_fabric_instance_names_the_air_zone(tmp_path):
    from optimizer.solve.explain import explain

    data = fabric(10, 2, 1)
    data["demand"]["gpu"] = {"min": 4}
    data["cooling"]["air_zones"]["Z"] = {"crah_kw": 20, "units": 2}
    # Two SUs of two 10 kW racks plus two 5 kW leaves put 50 kW of air heat on a 20 kW zone.
    shortfalls = explain(site_of(tmp_path, data), EXACT)
    assert [(s.resource, round(s.short_by, 6)) for s in shortfalls] == [("air zone Z", 30.0)]


def _fails(tmp_path, data, *fragments):
    """The solve is refused with exit 2, on one line naming the instance and each fragment."""
    from click.testing import CliRunner
    from helpers import write_instance

    from optimizer.cli import main

    path = write_instance(tmp_path, data)
    result = CliRunner().invoke(main, ["solve", str(path), "-o", str(tmp_path / "x.nc")])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert str(path) in result.output
    for fragment in fragments:
        assert fragment in result.output


def test_su_type_without_network_rack_is_refused(tmp_path):
    data = fabric(4, 2, 1)
    del data["rack_types"]["gpu"]["network_rack"]
    _fails(tmp_path, data, "rack_types.gpu.network_rack", "has su_size 2 but no network_rack")


def test_network_rack_type_must_exist(tmp_path):
    data = fabric(4, 2, 1)
    data["rack_types"]["gpu"]["network_rack"] = "spine"
    _fails(
        tmp_path,
        data,
        "rack_types.gpu.network_rack",
        "network rack type 'spine' is not in rack_types",
    )


def test_network_rack_type_needs_ports(tmp_path):
    data = fabric(4, 2, 1)
    del data["rack_types"]["leaf"]["su_ports"]
    _fails(tmp_path, data, "rack_types.leaf.su_ports", "so it needs su_ports")


def test_cross_aisles_of_an_unknown_hall_are_refused(tmp_path):
    data = fabric(4, 2, 1, {"cross_aisles_m": {"Hx": [1.0]}})
    _fails(tmp_path, data, "network.cross_aisles_m.Hx", "unknown hall 'Hx'")


def test_distance_table_must_cover_every_slot(tmp_path):
    (tmp_path / "d.csv").write_text("slot,H-R-01,H-R-02\nH-R-01,0,1\nH-R-02,1,0\n")
    data = fabric(3, 1, 1, {"distance_csv": "d.csv"})
    _fails(tmp_path, data, "network.distance_csv", "no column for slot 'H-R-03'")


def test_distance_table_must_exist(tmp_path):
    data = fabric(3, 1, 1, {"distance_csv": "missing.csv"})
    _fails(tmp_path, data, "network.distance_csv", "not found")
