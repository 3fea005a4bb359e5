"""Time limits and Ctrl-C on a MILP that cannot be proven optimal in test time.

tests/data/hard-knapsack.yaml (see its header) has good layouts within a second but
a 2-GPU gap HiGHS does not close for minutes, so a stop always has an incumbent.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import xarray as xr
from click.testing import CliRunner

from optimizer.cli import main

HARD = Path(__file__).resolve().parent / "data" / "hard-knapsack.yaml"


def _attrs(path: Path) -> dict:
    with xr.open_dataset(path) as ds:
        return dict(ds.attrs)


def test_time_limit_returns_the_best_layout_with_its_proven_gap(tmp_path):
    out = tmp_path / "hard.nc"
    result = CliRunner().invoke(
        main, ["solve", str(HARD), "-o", str(out), "--gap", "0", "--time-limit", "2", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    attrs = _attrs(out)
    assert attrs["status"] == "time_limit"
    assert 0 < attrs["gap"] < 0.01
    assert attrs["best_bound"] > attrs["objective"]
    assert CliRunner().invoke(main, ["verify", str(HARD), str(out)]).exit_code == 0


def test_ctrl_c_writes_the_best_layout_marked_interrupted(tmp_path):
    out = tmp_path / "hard.nc"
    solver = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rackopt"),
            "solve",
            str(HARD),
            "-o",
            str(out),
            "--gap",
            "0",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)  # imports, build, and a few seconds of branch and bound
    solver.send_signal(signal.SIGINT)
    _, stderr = solver.communicate(timeout=60)
    assert solver.returncode == 130, stderr
    assert "interrupted: the best layout found so far was written" in stderr
    attrs = _attrs(out)
    assert attrs["status"] == "interrupted"
    assert attrs["gap"] > 0
    assert CliRunner().invoke(main, ["verify", str(HARD), str(out)]).exit_code == 0
