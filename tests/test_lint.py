"""The instance lint: valid input that is almost surely not what was meant is a warning,
located like an error, on every command that reads an instance; --strict makes it exit 2
before anything is solved or written. Warnings never change the optimum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from factory import EXACT, instance, rack, row, site_of
from helpers import TUTORIAL, run, write_instance, write_study

from optimizer.solve.pipeline import solve_site

ROOT = Path(__file__).resolve().parents[1]


def _two_sides(**ups: Any) -> dict[str, dict[str, Any]]:
    """A 2N tree: UPS-A and UPS-B, one PDU below each."""
    return {
        "UPS-A": {"rating_kw": 500, **ups},
        "UPS-B": {"rating_kw": 500, **ups},
        "PDU-A": {"parent": "UPS-A", "rating_kw": 400},
        "PDU-B": {"parent": "UPS-B", "rating_kw": 400},
    }


def _clean() -> dict[str, Any]:
    """Two air rows on a 2N tree, everything used: no warning."""
    return instance({"R": row(3, ["PDU-A", "PDU-B"])}, _two_sides(), {"air": rack(8, 20.0)})


def _under_one_ups() -> dict[str, Any]:
    """Both PDUs of row R hang below the one UPS: its failure darkens every rack."""
    data = _clean()
    data["power"]["devices"] = {
        "UPS": {"rating_kw": 500},
        "PDU-A": {"parent": "UPS", "rating_kw": 400},
        "PDU-B": {"parent": "UPS", "rating_kw": 400},
    }
    return data


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_clean_instance_has_no_warning(tmp_path):
    assert site_of(tmp_path, _clean()).warnings == ()


@pytest.mark.parametrize(
    "path",
    [
        *sorted((ROOT / "instances").glob("*.yaml")),
        *sorted((ROOT / "tests" / "data").glob("*.yaml")),
    ],
    ids=lambda p: p.name,
)
def test_shipped_instances_have_no_warning(path):
    result = run("explain", path, "--strict")
    assert "warning" not in result.stderr
    assert result.exit_code in (0, 3), result.output


def test_shipped_studies_have_no_warning():
    from optimizer.studies.study import load_study, scenario_warnings

    for path in sorted((ROOT / "studies").glob("*.yaml")):
        assert scenario_warnings(load_study(path)) == [], path


def test_feeds_under_one_failing_device_are_named_where_they_are_wired(tmp_path):
    path = write_instance(tmp_path, _under_one_ups())
    site = site_of(tmp_path, _under_one_ups())
    line = _line_of(path, "feeds:")
    assert site.warnings == (
        f"{path}:{line}: halls.H.rows.R.slot.feeds: 3 slots (H-R-01 ...): both feeds PDU-A "
        "and PDU-B are below UPS, whose failure darkens the rack: no redundancy against it "
        "(fix: feed the two cords from branches that share no device that can fail, or set "
        "can_fail: false on UPS if it cannot fail as a whole)",
    )


def test_an_override_that_miswires_one_slot_is_named_at_the_override(tmp_path):
    data = _clean()
    data["power"]["devices"]["PDU-A2"] = {"parent": "UPS-A", "rating_kw": 400}
    data["halls"]["H"]["rows"]["R"]["overrides"] = {2: {"feeds": ["PDU-A", "PDU-A2"]}}
    (warning,) = site_of(tmp_path, data).warnings
    assert ": halls.H.rows.R.overrides.2.feeds: slot H-R-02: both feeds PDU-A and PDU-A2 " in (
        warning
    )
    assert "below UPS-A, whose failure" in warning


def test_a_shared_device_that_cannot_fail_is_no_warning(tmp_path):
    data = _under_one_ups()
    data["power"]["devices"]["UPS"]["can_fail"] = False
    assert site_of(tmp_path, data).warnings == ()


def test_a_slot_table_names_its_file_line_and_column(tmp_path):
    data = _under_one_ups()
    data["halls"]["H"] = {"slots_csv": "h.csv"}
    (tmp_path / "h.csv").write_text(
        "id,air_zone,feed_a,feed_b\nT-1,Z,PDU-A,\nT-2,Z,PDU-A,PDU-B\nT-3,Z,PDU-A,PDU-B\n"
    )
    (warning,) = site_of(tmp_path, data).warnings
    assert warning.startswith(f"{tmp_path / 'h.csv'}:3: feed_a: 2 slots (T-2 ...): both feeds")


def test_a_device_branch_that_feeds_nothing_is_one_warning_at_its_top(tmp_path):
    data = _clean()
    data["power"]["devices"]["UPS-C"] = {"rating_kw": 500}
    data["power"]["devices"]["PDU-C"] = {"parent": "UPS-C", "rating_kw": 400}
    path = write_instance(tmp_path, data)
    assert site_of(tmp_path, data).warnings == (
        f"{path}:{_line_of(path, 'UPS-C:')}: power.devices.UPS-C: device UPS-C feeds no "
        "slot, nor do the 1 devices below it (fix: name it (or a device below it) in some "
        "slot's feeds, or remove it)",
    )


def test_a_cdu_group_and_an_air_zone_that_cool_nothing(tmp_path):
    data = _clean()
    data["cooling"]["cdus"] = {"C": {"unit_kw": 100, "unit_flow_lpm": 200, "units": 2}}
    data["cooling"]["air_zones"]["Z2"] = {"crah_kw": 100, "units": 2}
    path = write_instance(tmp_path, data)
    assert site_of(tmp_path, data).warnings == (
        f"{path}:{_line_of(path, ' C:')}: cooling.cdus.C: CDU group C cools no slot "
        "(fix: name it as some slot's cdu, or remove it)",
        f"{path}:{_line_of(path, 'Z2:')}: cooling.air_zones.Z2: air zone Z2 cools no slot "
        "(fix: name it as some slot's air_zone, or remove it)",
    )


def test_a_demanded_type_no_slot_can_power_even_alone(tmp_path):
    # 'big' passes every slot rule, but one rack (150 kW, half on each side) puts 75 kW
    # on a PDU whose normal limit is 60 x 0.8 = 48 kW.
    data = _clean()
    data["power"]["devices"]["PDU-A"]["rating_kw"] = 60
    data["power"]["devices"]["PDU-B"]["rating_kw"] = 60
    data["rack_types"]["big"] = rack(72, 150.0)
    data["demand"]["big"] = {}
    path = write_instance(tmp_path, data)
    (warning,) = site_of(tmp_path, data).warnings
    assert warning == (
        f"{path}:{_line_of(path, 'big: {}')}: demand.big: no slot can hold even one big: "
        "in each of the 3 slots its rules allow, "
        "one rack alone is over a limit (slot H-R-01: PDU-A normal limit 48 kW < 75 kW) "
        "(fix: raise that capacity, or use a rack type that fits)"
    )


def test_a_rack_over_its_failover_side_alone_is_named(tmp_path):
    # Normal: 30 kW on each PDU (limit 40); UPS-A failing moves all 60 kW onto PDU-B.
    data = _clean()
    data["power"]["devices"]["PDU-A"]["rating_kw"] = 50
    data["power"]["devices"]["PDU-B"]["rating_kw"] = 50
    data["rack_types"] = {"air": rack(8, 20.0), "mid": rack(16, 60.0)}
    data["demand"] = {"air": {}, "mid": {}}
    (warning,) = site_of(tmp_path, data).warnings
    assert "(slot H-R-01: PDU-B failover limit 40 kW < 60 kW)" in warning


def _solved_gpus(site) -> int:
    report = solve_site(site, EXACT)
    counts = np.bincount(report.placement[report.placement >= 0], minlength=len(site.rack_types))
    return int(sum(c * t.gpus for c, t in zip(counts, site.rack_types, strict=True)))


def test_warnings_do_not_change_the_optimum(tmp_path):
    clean = site_of(tmp_path, _clean())
    data = _clean()
    data["power"]["devices"]["UPS-C"] = {"rating_kw": 500}  # feeds nothing: a warning
    data["cooling"]["air_zones"]["Z2"] = {"crah_kw": 100, "units": 2}
    warned = site_of(tmp_path, data)
    assert len(warned.warnings) == 2
    # three 20 kW racks of 8 GPUs each fit every limit: 24 GPUs either way
    assert _solved_gpus(clean) == _solved_gpus(warned) == 24


@pytest.mark.parametrize("strict", [False, True])
def test_solve_prints_warnings_and_strict_stops_before_writing(tmp_path, strict):
    path = write_instance(tmp_path, _under_one_ups())
    out = tmp_path / "out.nc"
    result = run("solve", path, "-o", out, "-q", *(["--strict"] if strict else []))
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert f"warning: {path}:" in warning and "below UPS, whose failure" in warning
    if strict:
        assert result.exit_code == 2
        assert f"error: {path}: --strict: 1 lint warning above (fix: correct the instance" in (
            result.stderr
        )
        assert not out.exists()
        assert list(tmp_path.iterdir()) == [path]
    else:
        assert result.exit_code == 0, result.output
        assert out.exists()


@pytest.mark.parametrize("command", ["explain", "verify", "next"])
def test_every_instance_command_warns_and_obeys_strict(tmp_path, command):
    path = write_instance(tmp_path, _under_one_ups())
    layout = tmp_path / "layout.csv"
    layout.write_text("slot,rack_type\n")
    args = {"explain": [], "verify": [layout], "next": [layout, "--type", "air"]}[command]
    lenient = run(command, path, *args)
    assert lenient.exit_code == 0, lenient.output
    assert lenient.stderr.count("warning: ") == 1
    strict = run(command, path, *args, "--strict")
    assert strict.exit_code == 2
    assert "--strict: 1 lint warning above" in strict.stderr
    assert strict.stdout == ""


def test_clean_tutorial_prints_no_warning_with_strict(tmp_path):
    out = tmp_path / "t.nc"
    result = run("solve", TUTORIAL, "-o", out, "-q", "--strict")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_batch_names_the_scenario_and_strict_solves_nothing(tmp_path):
    base = yaml.safe_load(TUTORIAL.read_text())
    base["power"]["devices"]["UPS-C"] = {"kind": "ups", "rating_kw": 100}  # feeds nothing
    spare = tmp_path / "base"
    spare.mkdir()
    study = write_study(
        tmp_path,
        {
            "overrides": {"bigger": {"power.devices.UPS-C.rating_kw": 200}},
            "scenarios": {"plain": [], "bigger": ["bigger"]},
        },
        base=write_instance(spare, base, "spare.yaml"),
    )
    out = tmp_path / "study.nc"
    result = run("batch", study, "-o", out, "--workers", "0", "-q", "--strict")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert [line.split(": ")[1] for line in lines] == ["scenario 'plain'", "scenario 'bigger'"]
    assert all("power.devices.UPS-C: device UPS-C feeds no slot" in line for line in lines)
    assert f"error: {study}: --strict: 2 lint warnings above" in result.stderr
    assert not out.exists() and not (tmp_path / "study.nc.d").exists()


def test_report_lints_the_instance_it_draws_and_strict_draws_nothing(tmp_path):
    path = write_instance(tmp_path, _under_one_ups())
    layout = tmp_path / "layout.nc"
    assert run("solve", path, "-o", layout, "-q").exit_code == 0
    plan = tmp_path / "plan.html"
    lenient = run("report", layout, "-o", plan, "--instance", path)
    assert lenient.exit_code == 0, lenient.output
    assert lenient.stderr.count("below UPS, whose failure darkens the rack") == 1
    plan.unlink()
    strict = run("report", layout, "-o", plan, "--instance", path, "--strict")
    assert strict.exit_code == 2
    assert f"error: {path}: --strict: 1 lint warning above" in strict.stderr
    assert not plan.exists()


def test_a_network_rack_no_slot_may_take_names_the_rule(tmp_path):
    """Without a place for its network rack no SU can stand, so the optimum holds no
    GB300 at all: the network rack type is not in the demand, so this is a warning."""
    data = yaml.safe_load((ROOT / "instances" / "gb300-hall.yaml").read_text())
    data["rack_types"]["network-rack"] = {"weight_kg": 99_999}
    path = write_instance(tmp_path, data)
    (warning,) = site_of(tmp_path, data).warnings
    assert warning == (
        f"{path}:{_line_of(path, 'network-rack:')}: rack_types.network-rack: network-rack "
        "weighs 99999 kg, more than the floor rating of any slot (at most 1900 kg) (fix: "
        "raise floor_kg where the floor is reinforced, or use a lighter rack type)"
    )
