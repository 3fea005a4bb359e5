"""NetBox files in and out: import a facility from NetBox's exports, export a layout as
NetBox bulk-import CSV.

The fixture (tests/data/netbox/) is one NetBox site in both export formats: the REST
API's JSON (``json/``: GET /api/dcim/<objects>/ answers, shaped like NetBox's serializers)
and the web UI's "Export > All data" CSV (``csv/``: NetBox's file names, column titles
and cell text such as ``Three-phase``, ``80%``, ``R01 (FRA-0101)``). Hall 1 holds
R01 and R02 (liquid-only) on 415 V three-phase 60 A feeds from panels PP-A and PP-B,
R03 (air-only, 6 kW) on a 230 V single-phase 32 A pair, R04 (air-only) whose B feed is
offline (so single-corded), and a deprecated R99-old; PP-A also has a spare 230 V 16 A
feed at 100% on no rack. Every feed's max_utilization is 80% unless said otherwise.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

from optimizer.cli import main
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site

DATA = Path(__file__).parent / "data" / "netbox"
FLOOR = DATA / "floor-plan.csv"
SQRT3 = math.sqrt(3)

# Column lists copied from netbox/dcim/forms/bulk_import.py of netbox-community/netbox.
# v4.0.0 (commit 91f156de33c557cda3dc3969b5dbb15228a0a776), DeviceImportForm.Meta.fields:
DEVICE_FORM_V40 = [
    "name", "role", "tenant", "manufacturer", "device_type", "platform", "serial", "asset_tag",
    "status", "site", "location", "rack", "position", "face", "latitude", "longitude", "parent",
    "device_bay", "airflow", "virtual_chassis", "vc_position", "vc_priority", "cluster",
    "description", "config_template", "comments", "tags",
]  # fmt: skip
# v4.7.0, branch `feature` (commit d7f79bd50162b2b8a8d07b52348d332bd9404f3c):
DEVICE_FORM_V47 = [
    "name", "role", "tenant", "manufacturer", "device_type", "platform", "serial", "asset_tag",
    "status", "site", "location", "rack", "position", "face", "latitude", "longitude", "parent",
    "device_bay", "airflow", "cooling_method", "virtual_chassis", "vc_position", "vc_priority",
    "cluster", "description", "config_template", "owner", "comments", "tags",
]  # fmt: skip
DEVICE_REQUIRED = ["role", "manufacturer", "device_type", "status", "site"]  # no required=False
# PowerPortImportForm.Meta.fields, v4.0.0 and v4.7.0 (same commits):
POWER_PORT_FORM_V40 = [
    "device", "name", "label", "type", "mark_connected", "maximum_draw", "allocated_draw",
    "description", "tags",
]  # fmt: skip
POWER_PORT_FORM_V47 = [*POWER_PORT_FORM_V40[:-1], "owner", "tags"]
# CableImportForm.Meta.fields: v4.6.0 (commit 00791344e68213bde942218283dce03cc3941c30, the
# first release that imports cables to power feeds, netbox#21783) and v4.7.0:
CABLE_FORM_V46 = [
    "side_a_site", "side_a_device", "side_a_power_panel", "side_a_type", "side_a_name",
    "side_b_site", "side_b_device", "side_b_power_panel", "side_b_type", "side_b_name",
    "type", "status", "profile", "tenant", "bundle", "label", "color", "length", "length_unit",
    "description", "owner", "comments", "tags",
]  # fmt: skip
CABLE_FORM_V47 = CABLE_FORM_V46

PLANNER = """\
format_version: 1
name: dc1-plan
include: [netbox.yaml]
cooling:
  air_zones: {Hall-1-air: {crah_kw: 50, units: 2, redundant_units: 1}}
  cdus: {Hall-1-cdu: {unit_kw: 100, unit_flow_lpm: 200, units: 2, redundant_units: 1}}
rack_types:
  liquid: {gpus: 16, it_kw: 30, liquid_fraction: 0.8, weight_kg: 1200}
  air: {gpus: 4, it_kw: 5, liquid_fraction: 0, weight_kg: 400}
demand: {liquid: {}, air: {}}
"""


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def imported(tmp_path: Path, source: Path = DATA / "json", *extra: object) -> Path:
    """Import ``source`` with the floor plan into tmp_path/netbox.yaml; the fragment's path."""
    fragment = tmp_path / "netbox.yaml"
    result = run("import-netbox", source, "-o", fragment, "--floor-plan", FLOOR, *extra)
    assert result.exit_code == 0, result.output
    return fragment


def planned(tmp_path: Path, planner: str = PLANNER, **kwargs) -> Path:
    """The planner's instance including the imported fragment."""
    imported(tmp_path, **kwargs)
    path = tmp_path / "plan.yaml"
    path.write_text(planner, encoding="utf-8")
    return path


def site_of(tmp_path: Path, source: Path):
    return build_site(load_instance(planned(tmp_path, source=source)))


# ---------------------------------------------------------------- ratings by hand


@pytest.mark.parametrize("source", ["json", "csv"])
def test_feed_ratings_and_derating_come_from_voltage_amperage_phase_and_max_utilization(
    tmp_path, source
):
    site = site_of(tmp_path, DATA / source)
    rating = dict(zip(site.device_ids, site.device_rating_kw, strict=True))
    limit = dict(zip(site.device_ids, site.device_limit_kw, strict=True))
    failover = dict(zip(site.device_ids, site.device_failover_limit_kw, strict=True))
    # 415 V x 60 A x sqrt(3) = 43.128 kVA nameplate; x 0.8 = 34.50 kW available.
    three_phase = 415 * 60 * SQRT3 / 1000
    assert rating["A-R01"] == pytest.approx(three_phase, rel=1e-6)
    assert limit["A-R01"] == pytest.approx(34.5025, abs=1e-4)
    # 230 V x 32 A = 7.36 kVA; x 0.8 = 5.888 kW.
    assert rating["A-R03"] == pytest.approx(7.36, rel=1e-6)
    assert limit["A-R03"] == pytest.approx(5.888, rel=1e-6)
    # 230 V x 16 A at max_utilization 100%: 3.68 kW, derating 1.
    assert limit["A-SPARE"] == pytest.approx(3.68, rel=1e-6)
    # A panel's rating is the sum of its powered feeds' available power (never binding).
    assert limit["PP-A"] == pytest.approx(2 * 34.50245 + 2 * 5.888 + 3.68, abs=1e-3)
    assert limit["PP-B"] == pytest.approx(2 * 34.50245 + 5.888, abs=1e-3)
    assert failover == limit  # NetBox has no failover rating: the normal limit holds
    parent = dict(zip(site.device_ids, site.device_parent, strict=True))
    parent = {d: site.device_ids[p] for d, p in parent.items() if p >= 0}
    assert parent["A-R01"] == "PP-A" and parent["B-R03"] == "PP-B"
    assert "B-R04" not in site.device_ids  # offline in NetBox: no power


@pytest.mark.parametrize("source", ["json", "csv"])
def test_racks_become_slots_with_their_feeds_cooling_and_floor_plan(tmp_path, source):
    site = site_of(tmp_path, DATA / source)
    assert site.slot_ids == ("R01", "R02", "R03", "R04")  # R99-old is deprecated
    feeds = [[site.device_ids[d] for d in row if d >= 0] for row in site.slot_feeds]
    assert feeds == [["A-R01", "B-R01"], ["A-R02", "B-R02"], ["A-R03", "B-R03"], ["A-R04"]]
    assert site.slot_liquid.tolist() == [True, True, False, False]
    cdus = [site.cdu_ids[c] if c >= 0 else "" for c in site.slot_cdu]
    assert cdus == ["Hall-1-cdu", "Hall-1-cdu", "", ""]
    assert site.slot_air_kw_max.tolist()[2:] == [6.0, 6.0]  # NetBox cooling_capacity, air-only
    assert site.slot_row == ("A", "A", "B", "B")
    assert site.slot_x_m.tolist() == [0.0, 0.6, 0.0, 0.6]
    assert site.slot_y_m.tolist() == [0.0, 0.0, 3.0, 3.0]
    assert site.slot_floor_kg.tolist() == [1500, 1500, 1000, 1000]


def test_the_json_and_the_csv_export_give_the_same_instance(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, source in ((a, "json"), (b, "csv")):
        imported(folder, DATA / source)

    def data(folder: Path) -> list[str]:
        text = (folder / "netbox.yaml").read_text(encoding="utf-8")
        return [line for line in text.splitlines() if not line.lstrip().startswith("#")]

    assert data(a) == data(b)
    assert (a / "netbox.Hall-1.csv").read_text() == (b / "netbox.Hall-1.csv").read_text()


def test_the_fragment_says_where_each_figure_came_from(tmp_path):
    text = imported(tmp_path).read_text(encoding="utf-8")
    assert (
        "# NetBox power feed 'A-R01' (power-feeds.json results[0], id 301; primary, active): "
        "415 V x 60 A x sqrt(3) = 43.128 kW, max_utilization 80% -> 34.502 kW available"
    ) in text
    assert "R04: NetBox rack racks.json results[3] (id 104); floor plan line 5" in text
    assert "Hall-1-air: {crah_kw: ..., units: ...}" in text  # what the planner must add


def test_warnings_name_what_was_left_out(tmp_path):
    result = run("import-netbox", DATA / "json", "-o", tmp_path / "n.yaml")
    assert result.exit_code == 0
    assert "warning: rack 'R99-old' (Hall 1) is deprecated in NetBox: not a slot" in result.output
    assert "warning: power feed PP-B/B-R04 is offline in NetBox" in result.output
    assert "warning: no floor plan: every slot stands at (0, 0)" in result.output


# ---------------------------------------------------------------- the imported instance solves


def test_the_completed_instance_solves_to_the_hand_optimum(tmp_path):
    """Liquid racks (16 GPUs, 30 kW) fit only R01/R02, air racks (4 GPUs, 5 kW) R03/R04:
    every slot filled is 2 x 16 + 2 x 4 = 40 GPUs, the most the four slots hold."""
    plan = planned(tmp_path)
    layout = tmp_path / "layout.nc"
    assert run("solve", plan, "-o", layout, "-q").exit_code == 0
    ds = xr.open_dataset(layout, engine="h5netcdf")
    assert int(ds.total_gpus) == 40
    assert ds.rack_type.values.tolist() == ["liquid", "liquid", "air", "air"]
    # Failover: R01's whole 30 kW on B-R01 when A-R01 fails.
    assert float(ds.device_failover_load_kw.sel(device="B-R01")) == pytest.approx(30.0)
    assert run("verify", plan, layout).exit_code == 0


@pytest.mark.parametrize(
    ("it_kw", "liquid", "fits"),
    [
        (34.4, 0.8, 2),  # below 415 V x 60 A x sqrt(3) x 0.8 = 34.50 kW
        (34.6, 0.8, 0),  # above it: one feed must carry the rack when the other fails
        # An air rack fits the liquid slots too; below 230 V x 32 A x 0.8 = 5.888 kW it also
        # fits R03 and (single-corded) R04, above it only R01 and R02.
        (5.85, 0.0, 4),
        (5.95, 0.0, 2),
    ],
)
def test_the_derated_feed_decides_what_fits(tmp_path, it_kw, liquid, fits):
    planner = PLANNER.replace(
        "  liquid: {gpus: 16, it_kw: 30, liquid_fraction: 0.8, weight_kg: 1200}\n"
        "  air: {gpus: 4, it_kw: 5, liquid_fraction: 0, weight_kg: 400}\n",
        f"  probe: {{gpus: 1, it_kw: {it_kw}, liquid_fraction: {liquid}, weight_kg: 100}}\n",
    ).replace("demand: {liquid: {}, air: {}}", "demand: {probe: {}}")
    planner = planner.replace("crah_kw: 50", "crah_kw: 500").replace("unit_kw: 100", "unit_kw: 500")
    plan = planned(tmp_path, planner)
    layout = tmp_path / "layout.nc"
    assert run("solve", plan, "-o", layout, "-q").exit_code == 0
    assert int(xr.open_dataset(layout, engine="h5netcdf").total_gpus) == fits


# ---------------------------------------------------------------- export


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The hand-optimum layout exported with --to netbox."""
    tmp_path = tmp_path_factory.mktemp("export")
    plan = planned(tmp_path)
    layout = tmp_path / "layout.nc"
    assert run("solve", plan, "-o", layout, "-q").exit_code == 0
    out = tmp_path / "netbox-import"
    result = run(
        "export", layout, "--to", "netbox", "-o", out, "--netbox-map",
        tmp_path / "netbox.netbox.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp_path, layout, out


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_the_csv_columns_are_those_of_netbox_import_forms(exported):
    _, _, out = exported
    devices, rows = read_csv(out / "devices.csv")
    assert set(devices) <= set(DEVICE_FORM_V40) & set(DEVICE_FORM_V47)
    assert set(DEVICE_REQUIRED) <= set(devices)
    assert {r["status"] for r in rows} == {"planned"}
    ports, _ = read_csv(out / "power-ports.csv")
    assert set(ports) <= set(POWER_PORT_FORM_V40) & set(POWER_PORT_FORM_V47)
    assert {"device", "name"} <= set(ports)
    cables, cable_rows = read_csv(out / "cables.csv")
    assert set(cables) <= set(CABLE_FORM_V46) & set(CABLE_FORM_V47)
    assert {r["side_a_type"] for r in cable_rows} == {"dcim.powerport"}
    assert {r["side_b_type"] for r in cable_rows} == {"dcim.powerfeed"}


def test_devices_stand_in_the_racks_of_the_layout(exported):
    """Round trip: the devices' (location, rack, position) pairs are the layout's racks."""
    _, layout, out = exported
    ds = xr.open_dataset(layout, engine="h5netcdf")
    placed = {
        (str(s), str(t)) for s, t in zip(ds.slot.values, ds.rack_type.values, strict=True) if t
    }
    _, rows = read_csv(out / "devices.csv")
    assert {(r["rack"], r["device_type"]) for r in rows} == placed
    assert {(r["site"], r["location"], r["position"], r["face"]) for r in rows} == {
        ("DC1 Frankfurt", "Hall 1", "1", "front")
    }
    assert len({r["name"] for r in rows}) == len(rows)
    # Read back as a layout (rack names are the slot ids here), the devices pass every rule.
    back = out.parent / "from-netbox.csv"
    back.write_text("slot,rack_type\n" + "".join(f"{r['rack']},{r['device_type']}\n" for r in rows))
    root, _, _ = exported
    assert run("verify", root / "plan.yaml", back).exit_code == 0


def test_power_ports_carry_the_rack_load_and_cables_reach_its_feeds(exported):
    _, _, out = exported
    _, ports = read_csv(out / "power-ports.csv")
    draw = {(p["device"], p["name"]): (p["maximum_draw"], p["allocated_draw"]) for p in ports}
    assert draw == {
        ("R01-liquid", "PWR-A"): ("30000", "15000"),  # dual-corded, half each normally
        ("R01-liquid", "PWR-B"): ("30000", "15000"),
        ("R02-liquid", "PWR-A"): ("30000", "15000"),
        ("R02-liquid", "PWR-B"): ("30000", "15000"),
        ("R03-air", "PWR-A"): ("5000", "2500"),
        ("R03-air", "PWR-B"): ("5000", "2500"),
        ("R04-air", "PWR-A"): ("5000", "5000"),  # single-corded: all of it
    }
    _, cables = read_csv(out / "cables.csv")
    links = {
        (c["side_a_device"], c["side_a_name"], c["side_b_power_panel"], c["side_b_name"])
        for c in cables
    }
    assert links == {
        ("R01-liquid", "PWR-A", "PP-A", "A-R01"),
        ("R01-liquid", "PWR-B", "PP-B", "B-R01"),
        ("R02-liquid", "PWR-A", "PP-A", "A-R02"),
        ("R02-liquid", "PWR-B", "PP-B", "B-R02"),
        ("R03-air", "PWR-A", "PP-A", "A-R03"),
        ("R03-air", "PWR-B", "PP-B", "B-R03"),
        ("R04-air", "PWR-A", "PP-A", "A-R04"),
    }
    assert {(c["type"], c["status"]) for c in cables} == {("power", "planned")}


def test_unracked_export_and_own_role_and_manufacturer(exported):
    tmp_path, layout, _ = exported
    out = tmp_path / "unracked"
    result = run(
        "export", layout, "--to", "netbox", "-o", out, "--netbox-map",
        tmp_path / "netbox.netbox.json", "--unracked", "--role", "AI rack",
        "--manufacturer", "NVIDIA",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    _, rows = read_csv(out / "devices.csv")
    assert {(r["position"], r["face"], r["role"], r["manufacturer"]) for r in rows} == {
        ("", "", "AI rack", "NVIDIA")
    }


@pytest.mark.parametrize("field", ["cable", "mark_connected"])
def test_a_feed_already_cabled_in_netbox_gets_no_second_cable(exported, field):
    """NetBox refuses a cable on a feed that has one or is marked connected."""
    tmp_path, layout, _ = exported
    folder = copy_json(tmp_path / field)
    value = {"id": 5, "display": "#5"} if field == "cable" else True
    edit(folder, "power-feeds.json", feed("A-R01", **{field: value}))
    fragment = tmp_path / field / "netbox.yaml"
    assert run("import-netbox", folder, "-o", fragment, "--floor-plan", FLOOR).exit_code == 0
    changed = tmp_path / field / "netbox.netbox.json"
    out = tmp_path / field / "out"
    result = run("export", layout, "--to", "netbox", "-o", out, "--netbox-map", changed)
    assert result.exit_code == 0
    assert "warning: power feed PP-A/A-R01 is cabled or marked connected in NetBox" in result.output
    _, cables = read_csv(out / "cables.csv")
    assert len(cables) == 6 and "A-R01" not in {c["side_b_name"] for c in cables}


# ---------------------------------------------------------------- variants NetBox allows


def copy_json(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    shutil.copytree(DATA / "json", folder)
    return folder


def edit(folder: Path, name: str, change) -> None:
    path = folder / name
    data = json.loads(path.read_text())
    change(data["results"])
    path.write_text(json.dumps(data))


def test_other_files_in_an_export_folder_are_skipped_with_a_warning(tmp_path):
    folder = copy_json(tmp_path)
    devices = {"count": 1, "results": [{"id": 1, "url": "https://nb/api/dcim/devices/1/"}]}
    (folder / "devices.json").write_text(json.dumps(devices))
    shutil.copy(FLOOR, folder / "floor-plan.csv")
    result = run("import-netbox", folder, "-o", tmp_path / "n.yaml", "--floor-plan", FLOOR)
    assert result.exit_code == 0, result.output
    for name in ("devices.json", "floor-plan.csv"):
        assert f"{name}: not one of the lists rackopt reads" in result.output


def test_ids_yaml_would_misread_are_quoted(tmp_path):
    """A panel named ``No`` (YAML 1.1 false) and a feed named ``0800`` (a number) stay strings."""
    folder = copy_json(tmp_path)

    def rename(results, old: str, new: str, key: str) -> None:
        for item in results:
            ref = item if key == "name" else item[key]
            if ref and ref["name"] == old:
                ref["name"] = new

    edit(folder, "power-panels.json", lambda r: rename(r, "PP-B", "No", "name"))
    edit(folder, "power-feeds.json", lambda r: rename(r, "PP-B", "No", "power_panel"))
    edit(folder, "power-feeds.json", lambda r: rename(r, "A-R02", "0800", "name"))
    site = build_site(load_instance(planned(tmp_path, source=folder)))
    assert {"No", "0800"} <= set(site.device_ids)


def test_racks_of_one_name_in_two_locations_get_hall_qualified_slot_ids(tmp_path):
    folder = copy_json(tmp_path)

    def second_hall(results):
        hall2 = json.loads(json.dumps(results[1]))
        hall2.update(id=12, name="Hall 2", slug="hall-2")
        results.append(hall2)

    def second_r01(results):
        rack = json.loads(json.dumps(results[0]))
        rack.update(id=106, facility_id=None)
        rack["location"] = {"id": 12, "name": "Hall 2", "slug": "hall-2"}
        results.append(rack)

    def its_feed(results):
        spare = json.loads(json.dumps(results[-1]))
        spare.update(id=310, name="A-R01-H2", rack={"id": 106, "name": "R01"})
        results.append(spare)

    edit(folder, "locations.json", second_hall)
    edit(folder, "racks.json", second_r01)
    edit(folder, "power-feeds.json", its_feed)
    fragment = tmp_path / "n.yaml"
    result = run("import-netbox", folder, "-o", fragment)
    assert result.exit_code == 0, result.output
    ids = [row["id"] for row in csv.DictReader((tmp_path / "n.Hall-1.csv").open())]
    assert ids == ["Hall-1.R01", "R02", "R03", "R04"]
    hall2 = list(csv.DictReader((tmp_path / "n.Hall-2.csv").open()))
    assert [(r["id"], r["feed_a"], r["feed_b"]) for r in hall2] == [("Hall-2.R01", "A-R01-H2", "")]
    mapping = json.loads((tmp_path / "n.netbox.json").read_text())
    assert mapping["slots"]["Hall-2.R01"]["rack"] == "R01"
    assert mapping["slots"]["Hall-2.R01"]["location"] == "Hall 2"
    # A floor plan line must then say which R01 it means.
    floor = tmp_path / "floor.csv"
    floor.write_text("rack,x_m\nR01,0\n")
    result = run("import-netbox", folder, "-o", fragment, "--floor-plan", floor)
    assert_refused(result, "floor.csv:2: location: rack 'R01' is in several locations")


def test_csv_with_a_semicolon_delimiter_and_a_byte_order_mark_reads_alike(tmp_path):
    folder = tmp_path / "exports"
    shutil.copytree(DATA / "csv", folder)
    for path in folder.iterdir():
        rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle, delimiter=";").writerows(rows)
    site = build_site(load_instance(planned(tmp_path, source=folder)))
    assert site.slot_ids == ("R01", "R02", "R03", "R04")
    assert dict(zip(site.device_ids, site.device_limit_kw, strict=True))["A-R01"] == (
        pytest.approx(34.5025, abs=1e-4)
    )


def test_a_second_site_is_chosen_with_site(tmp_path):
    folder = copy_json(tmp_path)

    def add_site(results):
        other = json.loads(json.dumps(results[-1]))
        other.update(id=999, name="Z9", facility_id=None, device_count=0)
        other["site"] = {"id": 2, "name": "DC2 Paris", "slug": "dc2"}
        other["location"] = None
        results.append(other)

    edit(folder, "racks.json", add_site)
    (folder / "sites.json").unlink()
    (folder / "locations.json").unlink()
    fragment = tmp_path / "n.yaml"
    result = run("import-netbox", folder, "-o", fragment)
    assert result.exit_code == 2
    assert "the racks are in 2 sites (DC1 Frankfurt, DC2 Paris)" in result.output
    assert "pass --site NAME" in result.output
    assert not fragment.exists()
    result = run("import-netbox", folder, "-o", fragment, "--site", "DC1 Frankfurt")
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- every bad input: exit 2


def feed(name: str, **values):
    def change(results):
        for item in results:
            if item["name"] == name:
                item.update(values)

    return change


JSON_ERRORS = [
    (
        "power-feeds.json",
        feed("A-R01", voltage=0),
        "power-feeds.json: results[0].voltage: is 0 V (fix: give the feed's voltage",
    ),
    (
        "power-feeds.json",
        feed("A-R01", phase={"value": "two-phase", "label": "Two-phase"}),
        "power-feeds.json: results[0].phase: unknown value 'two-phase' "
        "(fix: NetBox's values are single-phase, three-phase)",
    ),
    (
        "power-feeds.json",
        feed("A-R03", max_utilization=120),
        "power-feeds.json: results[4].max_utilization: 120 is not a whole number from 1 to 100",
    ),
    (
        "power-feeds.json",
        feed("A-R03", amperage=None),
        "power-feeds.json: results[4].amperage: is empty",
    ),
    (
        "power-feeds.json",
        feed("A-R01", voltage=-48),
        "power-feeds.json: results[0].voltage: -48 V is negative on an AC feed",
    ),
    (
        "power-feeds.json",
        lambda r: [item.pop("max_utilization") for item in r],
        "power-feeds.json: results[0].max_utilization: the export has no 'max_utilization' field",
    ),
    (
        "power-feeds.json",
        feed("A-SPARE", rack={"id": 777, "name": "R77"}),
        "power-feeds.json: results[8].rack: rack 'R77' is not among the exported racks of the site",
    ),
    (
        "power-feeds.json",
        feed("A-SPARE", rack={"id": 101, "name": "R01"}),
        "racks.json: results[0].name: rack 'R01' has 3 power feeds (PP-A/A-R01, PP-B/B-R01, "
        "PP-A/A-SPARE); a rackopt slot takes one feed or an A/B pair",
    ),
    (
        "power-feeds.json",
        feed("A-R04", status={"value": "failed", "label": "Failed"}),
        "racks.json: results[3].name: rack 'R04' has no active or planned power feed",
    ),
    (
        "power-feeds.json",
        feed("A-R01", power_panel={"id": 299, "name": "PP-Z"}),
        "power-feeds.json: results[0].power_panel: power panel 'PP-Z' is not among the exported "
        "panels of site 'DC1 Frankfurt'",
    ),
    (
        "racks.json",
        lambda r: r[2].update(cooling_capability={"value": "water", "label": "Water"}),
        "racks.json: results[2].cooling_capability: unknown value 'water' (fix: NetBox's values "
        "are air-only, hybrid, liquid-only)",
    ),
    (
        "racks.json",
        lambda r: r[2].update(cooling_capacity="0.00"),
        "racks.json: results[2].cooling_capacity: rack 'R03' has cooling_capacity 0.0 kW",
    ),
    (
        "racks.json",
        lambda r: r[1].update(id=101),
        "racks.json: results[1].id: NetBox object 101 appears twice (first in racks.json "
        "results[0])",
    ),
    (
        "racks.json",
        lambda r: r[0]["location"].update(name="Hall 9"),
        "racks.json: results[0].location: location 'Hall 9' is not among the exported locations "
        "of site 'DC1 Frankfurt' (fix: did you mean 'Hall 1'?)",
    ),
]


def assert_refused(result, expected: str, *unwritten: Path) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0], lines[0]
    assert "(fix: " in lines[0]
    for path in unwritten:
        assert not path.exists()


@pytest.mark.parametrize(("name", "change", "expected"), JSON_ERRORS)
def test_bad_json_exports_are_refused_naming_file_record_field_and_fix(
    tmp_path, name, change, expected
):
    folder = copy_json(tmp_path)
    edit(folder, name, change)
    fragment = tmp_path / "n.yaml"
    result = run("import-netbox", folder, "-o", fragment, "--floor-plan", FLOOR)
    assert_refused(result, expected, fragment, tmp_path / "n.netbox.json")


CSV_ERRORS = [
    (
        "netbox_power feeds.csv",
        lambda rows: [r.pop(11) for r in rows],  # drop the Max Utilization column
        "netbox_power feeds.csv:2: max_utilization: the export has no 'max_utilization' column "
        "(fix: export every column",
    ),
    (
        "netbox_power feeds.csv",
        lambda rows: rows[3].__setitem__(10, "Two phase"),
        "netbox_power feeds.csv:4: Phase: unknown value 'Two phase'",
    ),
    (
        "netbox_power feeds.csv",
        lambda rows: rows[2].__setitem__(11, "eighty"),
        "netbox_power feeds.csv:3: Max Utilization: 'eighty' is not a whole number from 1 to 100",
    ),
    (
        "netbox_racks.csv",
        lambda rows: rows.append(list(rows[1])),
        "netbox_racks.csv:7: id: NetBox object 101 appears twice (first in netbox_racks.csv "
        "line 2)",
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), CSV_ERRORS)
def test_bad_csv_exports_are_refused_naming_file_line_column_and_fix(
    tmp_path, name, change, expected
):
    folder = tmp_path / "exports"
    shutil.copytree(DATA / "csv", folder)
    path = folder / name
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    change(rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    fragment = tmp_path / "n.yaml"
    result = run("import-netbox", folder, "-o", fragment, "--floor-plan", FLOOR)
    assert_refused(result, expected, fragment)


FLOOR_ERRORS = [
    ("rack,x_m\nR01,0\nR05,1\n", "floor.csv:3: rack: no NetBox rack 'R05' (fix: did you mean"),
    ("rack,x_m\nR01,left\n", "floor.csv:2: x_m: 'left' is not a finite number"),
    ("rack,xm\nR01,0\n", "floor.csv:1: header: unknown column 'xm' (fix: did you mean 'x_m'?)"),
    ("rack,floor_kg\nR01,-5\n", "floor.csv:2: floor_kg: '-5' is not a number > 0"),
    ("rack,x_m\nR01,0\nR01,1\n", "floor.csv:3: rack: rack 'R01' appears twice (first at line 2)"),
    (
        "rack,air_kw_max\nR01,9\nR02,9\nR03,9\nR04,6\n",
        "floor.csv:4: air_kw_max: rack 'R03': NetBox cooling_capacity 6.0 kW, floor plan 9.0 kW",
    ),
    (
        "rack,cdu\nR01,C1\nR02,C1\nR03,C1\nR04,\n",
        "floor.csv:4: cdu: rack 'R03': NetBox says cooling_capability air-only, the floor plan "
        "a loop",
    ),
    ("rack\nR01\nR02\nR03\n", "floor.csv: rack: rack 'R04' (Hall 1) has no line in the floor"),
    ("rack,location\nR01,Hall 2\n", "floor.csv:2: rack: no NetBox rack 'R01' in location"),
]


@pytest.mark.parametrize(("text", "expected"), FLOOR_ERRORS)
def test_bad_floor_plans_are_refused_at_their_line(tmp_path, text, expected):
    floor = tmp_path / "floor.csv"
    floor.write_text(text, encoding="utf-8")
    fragment = tmp_path / "n.yaml"
    result = run("import-netbox", DATA / "json", "-o", fragment, "--floor-plan", floor)
    assert_refused(result, expected, fragment)


def test_unreadable_or_incomplete_exports_are_refused(tmp_path):
    folder = copy_json(tmp_path)
    fragment = tmp_path / "n.yaml"
    (folder / "power-feeds.json").unlink()
    result = run("import-netbox", folder, "-o", fragment)
    assert_refused(result, "no power feeds among the exports", fragment)

    folder = copy_json(tmp_path / "b")
    text = (folder / "racks.json").read_text()
    (folder / "racks.json").write_text(text.replace('"count": 5', '"count": 9'))
    result = run("import-netbox", folder, "-o", fragment)
    assert_refused(result, "racks.json: count: NetBox counted 9 racks but the files hold 5")

    (folder / "racks.json").write_text(text[:300])
    result = run("import-netbox", folder, "-o", fragment)
    assert_refused(result, "racks.json:12: not valid JSON")

    other = tmp_path / "inventory.json"
    other.write_text("[]")
    result = run("import-netbox", other, "-o", fragment)
    assert_refused(result, "inventory.json: cannot tell which NetBox objects the file holds")


def test_export_refuses_a_layout_that_is_not_of_the_import(exported, tmp_path):
    root, layout, _ = exported
    out = tmp_path / "out"
    result = run("export", layout, "--to", "netbox", "-o", out)
    assert_refused(result, "--netbox-map: --to netbox needs the NetBox map of the import", out)

    mapping = json.loads((root / "netbox.netbox.json").read_text())
    del mapping["slots"]["R03"]
    changed = tmp_path / "map.json"
    changed.write_text(json.dumps(mapping))
    result = run("export", layout, "--to", "netbox", "-o", out, "--netbox-map", changed)
    expected = "layout.nc: slot: slot 'R03' holds a rack (air) but is not a NetBox rack"
    assert_refused(result, expected, out)

    del mapping["slots"]["R02"]["feeds"][1]["power_feed"]
    changed.write_text(json.dumps(mapping))
    result = run("export", layout, "--to", "netbox", "-o", out, "--netbox-map", changed)
    assert_refused(result, "map.json: slots.R02.feeds.1: missing 'power_feed'", out)

    result = run("export", layout, "--to", "netbox", "-o", out, "--netbox-map", layout)
    assert_refused(result, "layout.nc: cannot read", out)

    changed.write_text(json.dumps({"format": "something else"}))
    result = run("export", layout, "--to", "netbox", "-o", out, "--netbox-map", changed)
    assert_refused(result, "format: not a NetBox map of rackopt import-netbox", out)


def test_an_unwritable_output_writes_nothing(tmp_path, exported):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    fragment = blocker / "netbox.yaml"
    result = run("import-netbox", DATA / "json", "-o", fragment, "--floor-plan", FLOOR)
    assert result.exit_code == 74 and "error: cannot write" in result.output
    assert list(tmp_path.iterdir()) == [blocker]

    root, layout, _ = exported
    result = run(
        "export", layout, "--to", "netbox", "-o", blocker, "--netbox-map",
        root / "netbox.netbox.json",
    )  # fmt: skip
    assert_refused(result, "blocker: is a file (fix: give a folder for the CSV files)")
