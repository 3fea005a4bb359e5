"""Commands that do not solve start without the solver stack: ``--help``, ``--version``,
``verify``, ``next``, ``compare`` and ``report`` never import Pyomo or HiGHS (about a
second of start-up), and ``solve`` imports them only once it solves. Each command runs in
a fresh interpreter, which reports the top-level packages it loaded. ``verify`` and
``next`` read the layout without xarray, pandas or dask, whose import was most of
verify's start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TUTORIAL, run

ROOT = Path(__file__).resolve().parents[1]
SOLVER_STACK = {"pyomo", "highspy", "models"}
PROBE = """
import json, sys
from optimizer.cli import main
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
loaded = sorted({m.split(".")[0] for m in sys.modules} | {m for m in sys.modules if "." in m})
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "loaded": loaded}, f)
"""


def _loaded(tmp_path: Path, *args: object) -> tuple[int, set[str]]:
    """Exit code and packages loaded by ``rackopt ARGS`` in a fresh interpreter."""
    report = tmp_path / "loaded.json"
    command = [sys.executable, "-c", PROBE, str(report), *map(str, args)]
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    found = json.loads(report.read_text())
    return found["code"], set(found["loaded"])


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> tuple[Path, Path]:
    """Two layouts of the tutorial (different seeds), solved once for every case."""
    folder = tmp_path_factory.mktemp("layouts")
    paths = folder / "a.nc", folder / "b.nc"
    for seed, path in enumerate(paths):
        assert run("solve", TUTORIAL, "-o", path, "-q", "--seed", seed).exit_code == 0
    return paths


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["--version"],
        ["solve", "--help"],
        ["verify", TUTORIAL, "{a}"],
        ["next", TUTORIAL, "{a}", "--type", "gb300-nvl72"],
        ["compare", "{a}", "{b}"],
        ["report", "{a}", "-o", "{out}/plan.html"],
    ],
)
def test_commands_that_do_not_solve_import_no_solver(tmp_path, layouts, command):
    a, b = layouts
    args = [str(c).format(a=a, b=b, out=tmp_path) for c in command]
    code, loaded = _loaded(tmp_path, *args)
    assert code in (0, None)
    assert not loaded & SOLVER_STACK
    assert "optimizer.solve.pipeline" not in loaded


NETCDF_DATASET_STACK = {"xarray", "pandas", "dask"}
"""What reading a layout into a Dataset imports: with dask installed, most of verify's
start-up (docs/benchmarks.md, issue 14)."""


@pytest.mark.parametrize(
    "command",
    [
        ["verify", TUTORIAL, "{a}"],
        ["verify", "--json", TUTORIAL, "{a}"],
        ["next", TUTORIAL, "{a}", "--type", "gb300-nvl72"],
    ],
)
def test_verify_reads_the_layout_without_xarray(tmp_path, layouts, command):
    # verify and next need a few arrays of the layout, read with h5netcdf alone; the
    # check itself is complete (tests/test_layout_files.py, tests/test_verify*.py).
    args = [str(c).format(a=layouts[0]) for c in command]
    code, loaded = _loaded(tmp_path, *args)
    assert code in (0, None)
    assert "h5netcdf" in loaded  # the probe sees the layout being read
    assert not loaded & NETCDF_DATASET_STACK


def test_verify_of_a_phased_plan_reads_it_without_xarray(tmp_path):
    plan = tmp_path / "plan.nc"
    phased = ROOT / "instances" / "phased-hall.yaml"
    assert run("solve", phased, "-o", plan, "-q").exit_code == 0
    code, loaded = _loaded(tmp_path, "verify", phased, plan)
    assert code in (0, None)
    assert "h5netcdf" in loaded
    assert not loaded & NETCDF_DATASET_STACK


@pytest.mark.parametrize("command", [["--help"], ["--version"], ["verify", "--help"]])
def test_help_and_version_load_not_even_numpy(tmp_path, command):
    # They print text that click knows; numpy alone is about 0.1 s of start-up.
    code, loaded = _loaded(tmp_path, *command)
    assert code in (0, None)
    assert not loaded & {"numpy", "xarray", "yaml", "pydantic"}


def test_solve_imports_the_solver_when_it_solves(tmp_path):
    # The probe itself sees a solve's imports: the assertions above are not vacuous.
    code, loaded = _loaded(tmp_path, "solve", TUTORIAL, "-o", tmp_path / "t.nc", "-q")
    assert code in (0, None)
    assert loaded >= SOLVER_STACK
