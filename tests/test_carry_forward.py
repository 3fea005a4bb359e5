"""``solve --installed-from``: an earlier layout's racks stay, the next wave goes around them.

The hall: one row of six air slots on a 2N pair of 1,000 kW UPS (800 kW each), so six
100 kW racks fit and space is the only limit. Wave 1 stands in slots 05 and 06 (two
``a`` racks); wave 2 demands up to four ``a`` and two ``b``: the four free slots take two
of each, and the install list holds exactly those four racks.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import xarray as xr
from factory import instance, rack, row
from helpers import run, write_instance


def hall(demand: dict | None = None, **sections: object) -> dict:
    return instance(
        rows={"R": row(6, ["UPS-A", "UPS-B"])},
        devices={"UPS-A": {"rating_kw": 1000}, "UPS-B": {"rating_kw": 1000}},
        rack_types={"a": rack(8, 100), "b": rack(4, 100), "liquid": rack(8, 100, liquid=0.8)},
        demand=demand or {"a": {"max": 4}, "b": {"max": 2}},
        **sections,
    )


def earlier(folder: Path, lines: list[str]) -> Path:
    path = folder / "wave1.csv"
    path.write_text("slot,rack_type\n" + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def test_carried_racks_stay_and_the_install_list_holds_the_new_ones(tmp_path):
    path = write_instance(tmp_path, hall())
    out = tmp_path / "wave2.nc"
    wave1 = earlier(tmp_path, ["H-R-05,a", "H-R-06,a"])
    result = run("solve", path, "-o", out, "--installed-from", wave1, "--gap", 0)
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out) as ds:
        placed = dict(zip(ds["slot"].values.tolist(), ds["rack_type"].values.tolist(), strict=True))
        installed = dict(
            zip(ds["slot"].values.tolist(), ds["installed"].values.tolist(), strict=True)
        )
        assert int(ds["total_gpus"]) == 4 * 8 + 2 * 4
    assert placed["H-R-05"] == placed["H-R-06"] == "a"
    assert installed == {f"H-R-0{i}": i >= 5 for i in range(1, 7)}
    with (tmp_path / "wave2.install.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["slot"] for r in rows] == ["H-R-01", "H-R-02", "H-R-03", "H-R-04"]
    assert Counter(r["rack_type"] for r in rows) == {"a": 2, "b": 2}
    assert {(r["hall"], r["row"]) for r in rows} == {("H", "R")}
    assert all(placed[r["slot"]] == r["rack_type"] for r in rows)
    assert "install list: 4 new racks in this wave (2 kept where they stand)" in result.output
    assert "  H/R: 2 a, 2 b: H-R-01 H-R-02 H-R-03 H-R-04" in result.output


def test_a_layout_written_by_solve_carries_forward(tmp_path):
    wave1_instance = write_instance(tmp_path, hall(demand={"b": {"max": 3}}), "wave1.yaml")
    wave1 = tmp_path / "wave1.nc"
    assert run("solve", wave1_instance, "-o", wave1, "-q").exit_code == 0
    with xr.open_dataset(wave1) as ds:
        first = {s: t for s, t in zip(ds["slot"].values, ds["rack_type"].values, strict=True) if t}
    assert Counter(first.values()) == {"b": 3}
    path = write_instance(tmp_path, hall(demand={"a": {"max": 3}, "b": {"max": 3}}))
    out = tmp_path / "wave2.nc"
    result = run("solve", path, "-o", out, "--installed-from", wave1, "-q")
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out) as ds:
        second = dict(zip(ds["slot"].values, ds["rack_type"].values, strict=True))
    assert all(second[s] == t for s, t in first.items())
    assert Counter(second.values()) == {"a": 3, "b": 3}


def _refused(tmp_path: Path, data: dict, lines: list[str]) -> str:
    path = write_instance(tmp_path, data)
    out = tmp_path / "wave2.nc"
    result = run("solve", path, "-o", out, "--installed-from", earlier(tmp_path, lines))
    assert result.exit_code == 2, result.output
    assert not out.exists() and not (tmp_path / "wave2.install.csv").exists()
    return " ".join(result.output.split())


def test_an_unknown_slot_in_the_layout_is_refused(tmp_path):
    message = _refused(tmp_path, hall(), ["H-R-07,a"])
    assert "wave1.csv:2: slot: unknown slot 'H-R-07'" in message


def test_a_rack_type_the_slot_no_longer_takes_is_refused(tmp_path):
    message = _refused(tmp_path, hall(), ["H-R-01,liquid"])
    assert "wave1.csv: rack_type: the carried rack cannot stay" in message
    assert "liquid-cooled but no liquid loop reaches slot H-R-01" in message


def test_a_layout_that_contradicts_the_instance_installed_racks_is_refused(tmp_path):
    message = _refused(tmp_path, hall(installed={"H-R-05": "b"}), ["H-R-05,a"])
    assert "slot H-R-05 holds a in the layout but b under the instance's installed:" in message


def test_more_carried_racks_than_the_demand_allows_are_refused(tmp_path):
    message = _refused(tmp_path, hall(demand={"a": {"max": 1}}), ["H-R-05,a", "H-R-06,a"])
    assert "demand.a.max: 2 a racks are installed but max is 1" in message


def test_an_instance_with_phases_plans_its_own_waves(tmp_path):
    phases = [{"name": "p1", "demand": {"a": {"max": 2}}}, {"name": "p2"}]
    path = write_instance(tmp_path, hall(phases=phases))
    wave1 = earlier(tmp_path, ["H-R-05,a"])
    result = run("solve", path, "-o", tmp_path / "wave2.nc", "--installed-from", wave1)
    assert result.exit_code == 2, result.output
    assert "--installed-from: " in result.output and "plans its own phases" in result.output
