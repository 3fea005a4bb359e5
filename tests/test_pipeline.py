"""The one solve pipeline and its typed outcomes.

- Only the pipeline's modules build the model and call HiGHS; the CLI, batch and the
  benchmark all go through ``solve_instance`` (checked on the import statements).
- Each outcome is its own error class with its own exit code, and the exit-code table is
  printed word for word in every place that documents it.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from helpers import TUTORIAL, run

import optimizer.cli.options
import optimizer.errors as errors
from optimizer.errors import (
    EXIT_CODES,
    EXIT_INFEASIBLE,
    EXIT_INVALID_INPUT,
    EXIT_NO_LAYOUT_IN_TIME,
    InfeasibleError,
    InternalError,
    Interrupted,
    NoLayoutInTimeError,
    RackoptError,
)
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site
from optimizer.solve.highs import SolveOutcome
from optimizer.solve.options import SolveOptions
from optimizer.solve.pipeline import _no_layout, solve_instance

ROOT = Path(__file__).resolve().parents[1]
HARD = ROOT / "tests" / "data" / "hard-knapsack.yaml"
EXACT = SolveOptions(gap=0.0, threads=1, seed=0)


# ---------------------------------------------------------------- one pipeline


def _sources() -> list[Path]:
    return sorted(
        p
        for folder in ("optimizer", "models", "scripts", "tests")
        for p in (ROOT / folder).rglob("*.py")
    )


def _importers() -> dict[str, set[str]]:
    """Imported name (``module`` and ``module.name``) -> the files importing it, anywhere
    in the file (local imports too)."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in _sources():
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found[alias.name].add(where)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{where}: relative import"
                found[node.module].add(where)
                for alias in node.names:
                    found[f"{node.module}.{alias.name}"].add(where)
    return found


PIPELINE = "optimizer/solve/pipeline.py"
PARTS = "optimizer/solve/decompose.py"
EXPLAIN = "optimizer/solve/explain.py"
FRONTIER = "optimizer/solve/frontier.py"
PHASES = "optimizer/solve/phases.py"
HIGHS = "optimizer/solve/highs.py"


def test_only_the_pipeline_builds_the_model_and_calls_highs():
    importers = _importers()
    # The model builder: the pipeline, its parts solved in workers, a campus part's
    # frontier traced in a worker, explain's elastic copy of the model, and the one
    # plan over a build-out's phases.
    assert importers["models.build"] == {PIPELINE, PARTS, FRONTIER, EXPLAIN, PHASES}
    # HiGHS itself: the adapter, explain, which adds its slack columns to the compiled
    # model through HiGHS's API, and the frontier, which moves its budget row's bound.
    assert importers["highspy"] == {HIGHS, EXPLAIN, FRONTIER}
    assert importers["optimizer.solve.highs.solve"] == {PIPELINE, PARTS, PHASES}
    assert importers["optimizer.solve.highs.compile_model"] == {EXPLAIN, FRONTIER}
    assert importers["optimizer.solve.highs.new_highs"] == {EXPLAIN, FRONTIER}
    assert importers["optimizer.solve.decompose.solve_parts"] == {PIPELINE}
    assert importers["optimizer.solve.decompose.solve_part"] == {FRONTIER}
    assert importers["optimizer.solve.campus.solve_campus"] == {PIPELINE}


def test_the_cli_batch_and_benchmark_share_the_pipeline():
    assert {
        "optimizer/cli/solve_commands.py",
        "optimizer/studies/batch.py",
        "scripts/benchmark.py",
    } <= _importers()["optimizer.solve.pipeline.solve_instance"]


def test_the_pipeline_times_every_phase_from_the_file_or_a_loaded_instance():
    from_file = solve_instance(TUTORIAL, EXACT)
    loaded = solve_instance(load_instance(TUTORIAL), EXACT)
    for report in (from_file, loaded):
        # The tutorial's optimum, worked out by hand in the README: 2 GB300 + 2 B300.
        assert report.outcome.objective == 208
        assert report.check.ok
        assert set(report.timings) == {
            "load_s",
            "build_s",
            "handoff_s",
            "solve_s",
            "primary_s",
            "check_s",
        }
        assert all(seconds >= 0 for seconds in report.timings.values())


# ---------------------------------------------------------------- typed outcomes


def _short_demand(tmp_path: Path) -> Path:
    data = yaml.safe_load(TUTORIAL.read_text())
    data["demand"]["gb300-nvl72"] = {"min": 4}
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_an_infeasible_demand_is_an_infeasible_error_carrying_its_shortfalls(tmp_path):
    with pytest.raises(InfeasibleError) as caught:
        solve_instance(_short_demand(tmp_path), EXACT)
    # Four GB300 need 4 x 116.96 = 467.84 kW of CDU heat where 250 kW is usable.
    assert "CDU CDU1 heat short by 217.8 kW (needs 467.8, has 250.0)" in caught.value.details
    assert caught.value.exit_code == EXIT_INFEASIBLE
    assert "\n" not in caught.value.one_line()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("time_limit", NoLayoutInTimeError),
        ("interrupted", Interrupted),
        ("solve error", InternalError),
    ],
)
def test_a_solve_without_a_layout_is_typed_by_the_solver_status(status, error):
    site = build_site(load_instance(TUTORIAL))
    assert type(_no_layout(site, SolveOutcome(status, has_solution=False), EXACT)) is error


def test_no_layout_before_the_time_limit_has_its_own_exit_code(tmp_path):
    # Without the greedy start, HiGHS has no layout when a 1 ns limit stops it.
    result = run(
        "solve", HARD, "-o", tmp_path / "x.nc", "--time-limit", 1e-9, "--no-warm-start", "-q"
    )
    assert result.exit_code == EXIT_NO_LAYOUT_IN_TIME, result.output
    assert "no feasible layout found before the solve stopped" in result.output
    assert result.output.count("\n") == 1
    assert not (tmp_path / "x.nc").exists()


def test_explain_stopped_by_its_time_limit_claims_nothing_about_the_demand(tmp_path):
    result = run("explain", _short_demand(tmp_path), "--time-limit", 1e-9)
    assert result.exit_code == EXIT_NO_LAYOUT_IN_TIME, result.output
    assert "no explanation found before the solve stopped" in result.output
    assert "cannot be met" not in result.output


@pytest.mark.parametrize("option", ["--split", "--no-warm-start", "--second-stage-nodes=5"])
def test_explain_refuses_the_options_it_would_ignore(option):
    result = run("explain", TUTORIAL, option)
    assert result.exit_code == EXIT_INVALID_INPUT
    assert "No such option" in result.output


def test_every_error_class_has_a_documented_code_and_none_is_raised_bare():
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, RackoptError) and c is not RackoptError
    ]
    assert {c.exit_code for c in classes} <= set(EXIT_CODES)
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", None)
                assert name != "RackoptError", f"{path}: raise a subclass that names the outcome"


# ---------------------------------------------------------------- documented exit codes


def _exit_code_table(text: str) -> dict[int, str]:
    """The rows under the ``| code | meaning |`` header, as code -> meaning."""
    lines = text.splitlines()
    start = lines.index("| code | meaning |")
    rows = {}
    for line in lines[start + 2 :]:
        match = re.fullmatch(r"\| (\d+) \| (.*) \|", line)
        if not match:
            break
        rows[int(match[1])] = match[2]
    return rows


@pytest.mark.parametrize(
    "document",
    ["README.md", "docs/instance-format.md", "docs/verification.md", "optimizer/cli/options.py"],
)
def test_the_exit_codes_are_documented_word_for_word(document):
    if document.endswith(".py"):
        text = optimizer.cli.options.__doc__
    else:
        text = (ROOT / document).read_text(encoding="utf-8")
    assert _exit_code_table(text) == EXIT_CODES
