"""``--json`` on solve, verify, explain, next and compare: one document on stdout, with the
documented keys and the layout's (or the checker's) own numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import write_instance

from optimizer.cli import main
from optimizer.instance.loader import load_instance
from optimizer.results.reader import open_layout, read_layout
from optimizer.site.build import build_site
from optimizer.verify.headroom import next_rack

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "instances" / "tutorial.yaml"


def document(*args: object, code: int = 0) -> dict:
    """Run ``rackopt ARGS --json``; stdout must be exactly one JSON document."""
    result = CliRunner().invoke(main, [*map(str, args), "--json"])
    assert result.exit_code == code, result.output + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("json") / "tutorial.nc"
    return out, document("solve", TUTORIAL, "-o", out, "--gap", 0)


def test_solve_prints_the_written_layouts_figures(solved):
    out, doc = solved
    ds = open_layout(out)
    assert (doc["document"], doc["version"], doc["layout"]) == ("solve", 1, str(out))
    facility = doc["facility"]
    assert facility["status"] == ds.attrs["status"] == "optimal"
    assert facility["total_gpus"] == int(ds.total_gpus) == 208
    assert facility["it_kw"] == float(ds.it_kw) == 388.0
    assert facility["facility_kw"] == pytest.approx(float(ds.facility_kw), abs=5e-4)
    counts = {t["type"]: t["rack_count"] for t in doc["rack_types"]}
    assert counts == dict(zip(ds.type.values.tolist(), ds.rack_count.values.tolist(), strict=True))
    assert set(doc["timings_s"]) >= {"load_s", "solve_s", "check_s"}


def test_verify_lists_each_violation_with_its_numbers(tmp_path, solved):
    out, _ = solved
    ok = document("verify", TUTORIAL, out)
    assert ok["ok"] is True and ok["racks"] == 4 and ok["violations"] == []
    assert ok["it_kw"] == 388.0  # 2 x 136 + 2 x 58
    bad = tmp_path / "bad.csv"
    bad.write_text("slot,rack_type\nH1-A-01,gb300-nvl72\n", encoding="utf-8")
    doc = document("verify", TUTORIAL, bad, code=1)
    assert doc["ok"] is False and doc["it_kw"] == 136.0
    rules = {v["rule"]: v for v in doc["violations"]}
    # a GB300 (1,500 kg, 86 % liquid) in an air slot rated 1,200 kg
    assert rules["slot-floor"]["load"] == 1500.0 and rules["slot-floor"]["limit"] == 1200.0
    assert rules["slot-floor"]["excess"] == 300.0 and rules["slot-floor"]["unit"] == "kg"
    assert rules["slot-cooling"]["load"] == 116.96  # 136 kW x 0.86 to liquid


def test_explain_names_the_short_resource(tmp_path):
    data = yaml.safe_load(TUTORIAL.read_text(encoding="utf-8"))
    data["demand"]["dgx-b300-rack"] = {"min": 4, "max": 8}
    doc = document("explain", write_instance(tmp_path, data), code=3)
    # four air-cooled 58 kW racks: 232 kW of air heat on Z1's 2 x 100 kW usable CRAHs
    assert doc["fits"] is False and doc["demand"] == "4 dgx-b300-rack"
    assert doc["shortfalls"] == [
        {"resource": "air zone Z1", "short_by": 32.0, "capacity": 200.0, "unit": "kW"}
    ]
    assert document("explain", TUTORIAL)["fits"] is True


def test_next_ranks_the_same_places_as_the_headroom_search(tmp_path, solved):
    layout = tmp_path / "two.csv"
    layout.write_text("slot,rack_type\nH1-A-01,dgx-b300-rack\n", encoding="utf-8")
    doc = document("next", TUTORIAL, layout, "--type", "dgx-b300-rack", "--top", 2)
    site = build_site(load_instance(TUTORIAL))
    answer = next_rack(site, read_layout(site, layout), "dgx-b300-rack")
    assert doc["racks"] == 1 and doc["places"] == answer.places
    assert [c["slots"] for c in doc["ranked"]] == [list(c.place.slots) for c in answer.ranked[:2]]
    assert doc["more"] == len(answer.ranked) - 2
    first = doc["ranked"][0]
    assert first["utilization"] == round(answer.ranked[0].utilization, 4)
    assert first["tightest"] == answer.ranked[0].tightest
    # the solved tutorial: one more GB300 (116.96 kW to liquid) finds CDU1 with 16.08 kW left
    out, _ = solved
    full = document("next", TUTORIAL, out, "--type", "gb300-nvl72")
    assert full["ranked"] == []
    (blocked,) = [b for b in full["blocked"] if b["binding"] == "CDU CDU1 heat"]
    assert blocked["places"] == 2  # the two free liquid slots
    assert blocked["closest"]["excess"] == pytest.approx(116.96 - 16.08, abs=1e-3)
    assert blocked["closest"]["unit"] == "kW"


def test_compare_prints_the_csv_columns_in_kw(solved, tmp_path):
    out, _ = solved
    table = tmp_path / "c.csv"
    doc = document("compare", out, "--csv", table)
    (row,) = doc["scenarios"]
    assert row["scenario"] == "tutorial" and row["gpus"] == 208
    assert row["it_kw"] == 388.0 and row["stranded_utility_kw"] == 161.784  # 600 - 438.216
    assert table.read_text(encoding="utf-8").splitlines()[1].startswith("tutorial,optimal")
