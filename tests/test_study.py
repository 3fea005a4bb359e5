"""Studies: expansion of overrides and sweeps, batches (resume, failures, workers, dask),
compare's figures recomputed from the layouts, and reports.

Every study here patches the 8-slot tutorial hall, whose optimum the README works out by
hand (2 GB300 + 2 B300 = 208 GPUs, 388 kW IT), so each solve takes a fraction of a second.
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from helpers import local_cluster, run, write_study

from optimizer.errors import InstanceError
from optimizer.instance.loader import load_instance
from optimizer.results.reader import read_layout
from optimizer.site.build import build_site
from optimizer.solve.options import SolveOptions
from optimizer.studies.batch import run_batch, scenario_folder, scenario_path
from optimizer.studies.cluster import Cluster
from optimizer.studies.compare import compare, kpis, scenario_layout, write_csv
from optimizer.studies.study import load_study
from optimizer.verify.check import check_layout

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "instances" / "tutorial.yaml"
EXACT = SolveOptions(gap=0.0, threads=1, seed=0)


# ---------------------------------------------------------------- expansion


def test_scenarios_times_sweeps_expand_in_order_with_derived_names(tmp_path):
    study = load_study(
        write_study(
            tmp_path,
            {
                "overrides": {
                    "big-ups": {
                        "power.devices.UPS-A.rating_kw": 1000,
                        "power.devices.UPS-B.rating_kw": 1000,
                    },
                    "no-limit": {"facility.utility_limit_kw": 5000},
                },
                "scenarios": {"ref": [], "big": ["big-ups", "no-limit"]},
                "sweeps": {
                    "cooling.air_zones.Z1.crah_kw": [100, 150],
                    "demand.gb300-nvl72.max": [1, 8],
                },
            },
        )
    )
    names = [s.name for s in study.scenarios]
    assert names == [
        "ref,crah_kw=100,max=1",
        "ref,crah_kw=100,max=8",
        "ref,crah_kw=150,max=1",
        "ref,crah_kw=150,max=8",
        "big,crah_kw=100,max=1",
        "big,crah_kw=100,max=8",
        "big,crah_kw=150,max=1",
        "big,crah_kw=150,max=8",
    ]
    last = study.scenarios[-1].loaded.instance
    assert last.power.devices["UPS-A"].rating_kw == 1000
    assert last.facility.utility_limit_kw == 5000
    assert last.cooling.air_zones["Z1"].crah_kw == 150
    assert last.demand["gb300-nvl72"].max == 8
    first = study.scenarios[0]
    assert first.named == "ref"
    assert first.sweep == {"cooling.air_zones.Z1.crah_kw": 100, "demand.gb300-nvl72.max": 1}
    assert first.loaded.instance.power.devices["UPS-A"].rating_kw == 500
    assert len({s.sha256 for s in study.scenarios}) == len(names)


def test_a_study_without_scenarios_is_the_base_and_its_hash_is_the_instances(tmp_path):
    study = load_study(write_study(tmp_path, {}))
    assert [s.name for s in study.scenarios] == ["base"]
    assert study.scenarios[0].sha256 == load_instance(TUTORIAL).sha256


def test_sweeps_alone_name_scenarios_by_value_and_disambiguate_labels(tmp_path):
    study = load_study(
        write_study(
            tmp_path,
            {
                "sweeps": {
                    "power.devices.UPS-A.rating_kw": [500, 600],
                    "power.devices.UPS-B.rating_kw": [500],
                }
            },
        )
    )
    assert [s.name for s in study.scenarios] == [
        "power.devices.UPS-A.rating_kw=500,power.devices.UPS-B.rating_kw=500",
        "power.devices.UPS-A.rating_kw=600,power.devices.UPS-B.rating_kw=500",
    ]


def test_an_override_replaces_a_whole_mapping_then_a_later_key_patches_inside_it(tmp_path):
    devices = {
        "UPS-A": {"kind": "ups", "rating_kw": 700},
        "UPS-B": {"kind": "ups", "rating_kw": 700},
    }
    study = load_study(
        write_study(
            tmp_path,
            {
                "overrides": {
                    "new-tree": {"power.devices": devices},
                    "tweak": {"power.devices.UPS-B.rating_kw": 900},
                },
                "scenarios": {"s": ["new-tree", "tweak"]},
            },
        )
    )
    got = study.scenarios[0].loaded.instance.power.devices
    assert (got["UPS-A"].rating_kw, got["UPS-B"].rating_kw) == (700, 900)


def test_an_override_of_a_missing_key_names_it_its_line_and_the_close_key(tmp_path):
    path = write_study(
        tmp_path,
        {
            "overrides": {"typo": {"power.devices.UPS-AA.rating_kw": 900}},
            "scenarios": {"s": ["typo"]},
        },
    )
    with pytest.raises(InstanceError) as err:
        load_study(path)
    message = str(err.value)
    assert err.value.file == str(path)
    assert err.value.line == 5
    assert "'power.devices.UPS-AA.rating_kw'" in message
    assert "did you mean 'power.devices.UPS-A.rating_kw'?" in message


def test_a_bad_override_value_is_reported_at_the_study_file(tmp_path):
    path = write_study(
        tmp_path,
        {
            "overrides": {"neg": {"power.devices.UPS-A.rating_kw": -5}},
            "scenarios": {"s": ["neg"]},
        },
    )
    with pytest.raises(InstanceError) as err:
        load_study(path)
    assert (err.value.file, err.value.line) == (str(path), 5)
    assert err.value.field == "power.devices.UPS-A.rating_kw"
    assert "scenario 's'" in str(err.value)


@pytest.mark.parametrize(
    ("study", "fragment"),
    [
        ({"overrides": {"a": {"name": "x"}}, "scenarios": {"s": ["b"]}}, "unknown override 'b'"),
        (
            {"overrides": {"a": {"name": "x"}}, "scenarios": {"s": []}},
            "override 'a' is used by no scenario",
        ),
        ({"sweeps": {"name": []}}, "a sweep needs at least one value"),
        ({"sweeps": {"power.devices": [{"a": 1}]}}, "sweep values must be single"),
        ({"scenario": {}}, "unknown key 'scenario' (fix: did you mean 'scenarios'?)"),
        ({"sweeps": {"halls.H1.rows.L.slot.feeds.5": ["UPS-A"]}}, "is not an index"),
    ],
)
def test_study_file_mistakes_are_one_line_errors(tmp_path, study, fragment):
    with pytest.raises(InstanceError, match=r"study\.yaml") as err:
        load_study(write_study(tmp_path, study))
    assert fragment in str(err.value)


def test_the_shipped_study_expands_and_every_scenario_builds():
    study = load_study(ROOT / "studies" / "gb300-hall-study.yaml")
    assert [s.name for s in study.scenarios] == [
        "2n-8-liquid-rows",
        "2n-6-liquid-rows",
        "4n3-8-liquid-rows",
        "4n3-6-liquid-rows",
    ]
    for scenario in study.scenarios:
        site = build_site(scenario.loaded)
        ups = [d for d, k in zip(site.device_ids, site.device_kind, strict=True) if k == "ups"]
        nameplate = sum(site.device_rating_kw[site.device_ids.index(d)] for d in ups)
        assert nameplate == 48_000  # the same UPS MW in 2N and in 4N/3
        assert int(site.slot_liquid.sum()) == (160 if "8-liquid" in scenario.name else 120)


def test_the_air_hall_study_sets_supply_air_and_containment():
    study = load_study(ROOT / "studies" / "air-hall-study.yaml")
    by_name = {s.name: build_site(s.loaded) for s in study.scenarios}
    assert list(by_name) == [f"{kind}-{t}" for kind in ("open", "contained") for t in (18, 21, 24)]
    for name, site in by_name.items():
        assert site.air_zone_supply_temp_c.tolist() == [float(name[-2:])] * 2
    # Containment leaves 0.2 of the uncontained recirculation (docs/thermal.md).
    open_d = by_name["open-18"].recirculation.toarray()
    assert by_name["contained-18"].recirculation.toarray() == pytest.approx(0.2 * open_d)


# ---------------------------------------------------------------- batches


def _rich_study(folder: Path) -> Path:
    """Three scenarios: the tutorial, bigger UPS systems, and one more liquid slot."""
    return write_study(
        folder,
        {
            "overrides": {
                "big-ups": {
                    "power.devices.UPS-A.rating_kw": 700,
                    "power.devices.UPS-B.rating_kw": 700,
                },
                "longer-row": {"halls.H1.rows.L.slots": 5},
            },
            "scenarios": {"ref": [], "big": ["big-ups"], "longer": ["longer-row", "big-ups"]},
        },
    )


@pytest.fixture(scope="module")
def solved_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    study = load_study(_rich_study(folder))
    output = folder / "study.nc"
    report = run_batch(study, output, EXACT, workers=0)
    return study, output, report


def test_a_batch_saves_every_layout_and_combines_them(solved_study):
    _, output, report = solved_study
    assert report.solved == ["ref", "big", "longer"] and not report.failed
    for name in report.solved:
        assert scenario_path(output, name).is_file()
    with xr.open_dataset(output) as ds:
        assert list(ds.scenario.values) == ["ref", "big", "longer"]
        assert list(ds.status.values) == ["optimal"] * 3
        assert ds.total_gpus.sel(scenario="ref").item() == 208
        # the union of slots: H1-L-05 exists only in "longer"
        assert ds.sizes["slot"] == 9
        assert ds.hall.sel(scenario="ref", slot="H1-L-05").item() == ""
        assert ds.rack_type.sel(scenario="ref", slot="H1-L-05").item() == ""
        assert list(ds.named_scenario.values) == ["ref", "big", "longer"]
        # each scenario's cable plan figures are its own layout's
        for name in report.solved:
            with xr.open_dataset(scenario_path(output, name)) as own:
                for key in ("second_stage_objective", "second_stage_bound", "second_stage_gap"):
                    figure = ds[key].sel(scenario=name).item()
                    assert figure == pytest.approx(own.attrs[key], nan_ok=True)
        assert ds.second_stage_gap.max().item() <= EXACT.second_stage_gap + 1e-12
        layout = scenario_layout(ds.load(), "ref")
    assert layout.sizes["slot"] == 8 and "H1-L-05" not in layout.slot.values


def test_an_interrupted_batch_resumes_with_the_missing_scenario_only(solved_study, tmp_path):
    study, output, _ = solved_study
    scenario_path(output, "big").unlink()
    again = run_batch(study, output, EXACT, workers=0)
    assert again.solved == ["big"]
    assert again.reused == ["ref", "longer"]
    assert scenario_path(output, "big").is_file()
    # a saved layout solved with other solver options is solved again
    copy = tmp_path / "copy.nc"
    shutil.copytree(scenario_folder(output), scenario_folder(copy))
    loose = run_batch(study, copy, SolveOptions(gap=0.5, threads=1, seed=0), workers=0)
    assert sorted(loose.solved) == ["big", "longer", "ref"] and not loose.reused


def test_a_failing_scenario_is_recorded_and_the_others_solve_in_worker_processes(tmp_path):
    path = write_study(
        tmp_path,
        {
            "overrides": {"too-many": {"demand.dgx-b300-rack": {"min": 4, "max": 8}}},
            "scenarios": {"ref": [], "bad": ["too-many"]},
            "sweeps": {"cooling.air_zones.Z1.crah_kw": [100, 110]},
        },
    )
    output = tmp_path / "out.nc"
    result = run("batch", path, "-o", output, "--workers", 2, "--gap", 0)
    assert result.exit_code == 3, result.output
    assert "2 of 4 scenarios have no layout" in result.output
    with xr.open_dataset(output) as ds:
        status = dict(zip(ds.scenario.values, ds.status.values, strict=True))
        message = dict(zip(ds.scenario.values, ds.message.values, strict=True))
        assert status == {
            "ref,crah_kw=100": "optimal",
            "ref,crah_kw=110": "optimal",
            "bad,crah_kw=100": "infeasible",
            "bad,crah_kw=110": "infeasible",
        }
        assert "air zone Z1 short by" in message["bad,crah_kw=100"]
        assert list(ds["sweep_cooling_air_zones_Z1_crah_kw"].values) == [100, 110, 100, 110]
        assert ds.total_gpus.sel(scenario="ref,crah_kw=110").item() == 208
        assert math.isnan(ds.total_gpus.sel(scenario="bad,crah_kw=100").item())  # _FillValue
    assert sorted(p.name for p in scenario_folder(output).iterdir()) == [
        "ref,crah_kw=100.instance.yaml",  # the resolved instance beside each layout
        "ref,crah_kw=100.nc",
        "ref,crah_kw=110.instance.yaml",
        "ref,crah_kw=110.nc",
    ]


def test_the_dask_path_runs_the_same_worker_on_a_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    study = load_study(_rich_study(tmp_path))
    with local_cluster() as cluster:
        report = run_batch(
            study, tmp_path / "dask.nc", EXACT, cluster=Cluster(cluster.scheduler_address)
        )
    assert sorted(report.solved) == ["big", "longer", "ref"] and not report.failed
    with xr.open_dataset(tmp_path / "dask.nc") as ds:
        assert list(ds.total_gpus.values) == [
            report.results[n].layout.total_gpus.item() for n in ["ref", "big", "longer"]
        ]


# ---------------------------------------------------------------- compare


def test_compare_figures_match_an_independent_recomputation(solved_study, tmp_path):
    study, output, _ = solved_study
    rows = {r.scenario: r for r in compare([output])}
    for scenario in study.scenarios:
        site = build_site(scenario.loaded)
        placed = read_layout(site, scenario_path(output, scenario.name)).placement
        loads = check_layout(site, placed).loads
        row = rows[scenario.name]
        gpus = sum(site.rack_types[t].gpus for t in placed if t >= 0)
        assert row.gpus == gpus
        assert row.pue == pytest.approx(loads.facility_kw / loads.it_kw)
        liquid_left = sum(
            site.cdu_heat_capacity_kw[c] - loads.cdu_heat_kw[c] for c in range(len(site.cdu_ids))
        )
        assert row.stranded_liquid_kw == pytest.approx(liquid_left)
        worst = min(
            site.device_failover_limit_kw[d] - loads.device_failover_kw[d]
            for d in range(len(site.device_ids))
        )
        assert row.worst_failover_headroom_kw == pytest.approx(worst)
        assert row.empty_slots == int((placed < 0).sum())
    # the tutorial by hand (README): 2 x 136 + 2 x 58 = 388 kW on each UPS when the other
    # fails, limit 400 kW; CDU 250 - 2 x 116.96; air zone 200 - 154.08
    ref = rows["ref"]
    assert (ref.gpus, ref.racks) == (208, {"gb300-nvl72": 2, "dgx-b300-rack": 2})
    assert ref.it_kw == pytest.approx(388.0)
    assert ref.worst_failover_headroom_kw == pytest.approx(12.0)
    assert ref.stranded_power_kw == pytest.approx(2 * 12.0)
    assert ref.stranded_liquid_kw == pytest.approx(250 - 2 * 116.96)
    assert ref.stranded_air_kw == pytest.approx(200 - 154.08)
    # Both UPS carry 388 kW when the other fails; the tie goes to the first in the table.
    assert ref.bound_by == "UPS-A (if UPS-B fails)"
    assert ref.bound_by_family == "power"
    assert ref.bound_by_utilization == pytest.approx(388 / 400)
    assert ref.status == "optimal" and ref.gap == 0.0


def test_compare_reads_layout_files_and_writes_a_csv(solved_study, tmp_path):
    _, output, _ = solved_study
    files = [scenario_path(output, "ref"), scenario_path(output, "big")]
    table = tmp_path / "kpis.csv"
    result = run("compare", *files, "--csv", table)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split()[:4] == ["scenario", "status", "gap", "GPUs"]
    with open(table, newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [r["scenario"] for r in records] == ["ref", "big"]
    assert records[0]["gpus"] == "208"
    assert float(records[0]["stranded_liquid_kw"]) == pytest.approx(16.08)
    assert records[0]["bound_by_family"] == "power"


def test_compare_table_fits_80_columns_in_blocks_led_by_the_scenario(solved_study):
    _, output, _ = solved_study
    result = run("compare", output)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) < 80 for line in lines), [line for line in lines if len(line) >= 80]
    blocks = result.output.strip().split("\n\n")
    assert len(blocks) > 1
    names = [r.scenario for r in compare([output])]
    headers = []
    for block in blocks:
        rows = block.splitlines()
        assert rows[0].startswith("scenario") and set(rows[1]) <= {"-", " "}
        assert [row.split()[0] for row in rows[2:]] == names
        headers.append(rows[0])
    shown = " ".join(headers)
    for column in ("GPUs", "IT MW", "PUE", "strand pwr MW", "bound by", "cable m"):
        assert column in shown


def test_compare_lists_a_scenario_without_layout_with_its_reason(tmp_path):
    row = kpis("bad", None, {"status": "infeasible", "message": "demand too high"})
    assert row.status == "infeasible" and math.isnan(row.gpus)
    write_csv([row], tmp_path / "one.csv")
    text = (tmp_path / "one.csv").read_text()
    assert "bad,infeasible" in text and "demand too high" in text


# ---------------------------------------------------------------- report


@pytest.mark.parametrize("suffix", [".png", ".svg", ".html"])
def test_report_draws_a_layout(solved_study, tmp_path, suffix):
    _, output, _ = solved_study
    picture = tmp_path / f"plan{suffix}"
    result = run("report", scenario_path(output, "longer"), "-o", picture)
    assert result.exit_code == 0, result.output
    data = picture.read_bytes()
    assert len(data) > 5_000
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    if suffix == ".html":
        assert b"Plotly.newPlot" in data and b"<script src=" not in data  # plotly.js inlined


def test_report_draws_one_scenario_of_a_study_and_names_the_choices(solved_study, tmp_path):
    _, output, _ = solved_study
    assert run("report", output, "-o", tmp_path / "a.png", "--scenario", "big").exit_code == 0
    result = run("report", output, "-o", tmp_path / "b.png", "--scenario", "bigg")
    assert result.exit_code == 2 and "did you mean 'big'?" in result.output
    result = run("report", output, "-o", tmp_path / "c.pdf", "--scenario", "big")
    assert result.exit_code == 2 and ".png, .svg, .html" in result.output


def test_the_layout_records_each_slots_cooling(solved_study):
    _, output, _ = solved_study
    with xr.open_dataset(scenario_path(output, "ref")) as ds:
        assert list(ds.slot_liquid.values) == [True] * 4 + [False] * 4
        assert list(ds.slot_cdu.values) == ["CDU1"] * 4 + [""] * 4
        assert list(np.unique(ds.slot_air_zone.values)) == ["Z1"]


def test_in_memory_validation_reads_side_tables_like_load_instance(tmp_path):
    """The study path validates through the same function as load_instance, which also
    reads network.distance_csv and hashes it after the instance's files."""
    data = yaml.safe_load(TUTORIAL.read_text())
    data["network"] = {"distance_csv": "d.csv"}
    ids = [f"H1-{r}-{p:02d}" for r in "LA" for p in range(1, 5)]
    (tmp_path / "d.csv").write_text(
        "slot," + ",".join(ids) + "\n" + "".join(f"{s}," + ",".join(["1"] * 8) + "\n" for s in ids)
    )
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    loaded = load_instance(path)
    assert loaded.distance_table is not None and loaded.distance_table[0].endswith("d.csv")
    before = loaded.sha256
    (tmp_path / "d.csv").write_text(loaded.distance_table[1].replace(",1", ",2"))
    assert load_instance(path).sha256 != before
