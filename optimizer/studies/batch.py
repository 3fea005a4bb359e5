"""Run a study: solve every scenario in its own worker, save each layout as it finishes,
resume an interrupted study, and combine the layouts along a ``scenario`` dimension.

Workers are local processes (one solve per process, one solver thread by default) or
the workers of an existing ``dask.distributed`` cluster; both run
:func:`solve_scenario`, which never raises for a scenario's own failure: an infeasible
or failing scenario comes back as a result with its reason, and the rest go on.
Layouts are written by the calling process only, so workers need no shared disk.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from optimizer.errors import NoLayoutError, RackoptError
from optimizer.instance.loader import LoadedInstance
from optimizer.results.schema import DIMENSION_NAMES, STUDY_FORMAT_VERSION, fill_value
from optimizer.solve.highs import SolveOptions
from optimizer.studies.study import Scenario, Study

INFEASIBLE = "infeasible"
FAILED = "failed"
UNFINISHED = frozenset({"interrupted"})
"""Solver statuses whose layout is not kept: a resumed study solves them again."""
_COMPARED_OPTIONS = ("mip_rel_gap", "random_seed", "time_limit")
"""Solver options a saved layout must share to be reused (threads do not change the
optimum, and output only the log)."""
_INFEASIBLE = ("(the MILP is infeasible)", "the demand cannot be met")
"""How optimizer.solve.pipeline words a demand that no layout meets (then the reasons follow)."""
SCHEDULER_TIMEOUT_S = 20.0
"""How long to keep trying to reach a dask scheduler."""
_PRELOAD = (
    "optimizer.studies.batch",
    "optimizer.solve.pipeline",
    "optimizer.results.layout",
    "optimizer.solve.explain",
)


@dataclass
class ScenarioResult:
    """The outcome of one scenario: its layout, or why there is none."""

    name: str
    status: str
    """The solver's status (optimal, time_limit, ...), or infeasible / failed."""
    message: str = ""
    layout: xr.Dataset | None = None
    seconds: float = 0.0
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.layout is not None and self.status not in UNFINISHED


@dataclass
class BatchProgress:
    """Counts after each finished scenario, for a progress bar."""

    total: int
    done: int
    failed: int
    reused: int
    elapsed_s: float
    last: ScenarioResult | None

    @property
    def eta_s(self) -> float | None:
        """Remaining time at the rate solved so far (reused scenarios cost nothing)."""
        solved = self.done - self.reused
        remaining = self.total - self.done
        if remaining == 0:
            return 0.0
        return self.elapsed_s / solved * remaining if solved else None


ProgressCallback = Callable[[BatchProgress], None]


@dataclass
class BatchReport:
    study: Study
    results: dict[str, ScenarioResult]
    """Every scenario's result, in study order."""
    solved: list[str] = field(default_factory=list)
    """Scenarios solved in this run (not reused), in the order they finished."""
    reused: list[str] = field(default_factory=list)
    dataset: xr.Dataset | None = None

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if not r.ok]


def _note(status: str) -> str:
    return "" if status == "optimal" else f"stopped with status {status}"


def solve_scenario(name: str, loaded: LoadedInstance, options: SolveOptions) -> ScenarioResult:
    """The worker function: build, solve, check and turn one scenario into a layout.

    Imports are local so that a dask worker only needs rackopt installed."""
    from optimizer.results.layout import layout_dataset
    from optimizer.site.build import build_site
    from optimizer.solve.explain import explain
    from optimizer.solve.pipeline import solve_site

    started = time.perf_counter()
    site = None
    try:
        site = build_site(loaded)
        # One process per scenario already uses the cores: no parts in parallel inside.
        report = solve_site(site, dataclasses.replace(options, split_parts=False))
        layout = layout_dataset(report)
        status = report.outcome.status
        return ScenarioResult(name, status, _note(status), layout, time.perf_counter() - started)
    except NoLayoutError as exc:
        message = str(exc)
        status = INFEASIBLE if any(m in message for m in _INFEASIBLE) else FAILED
        if _INFEASIBLE[0] in message and site is not None:
            try:
                shortfalls = explain(site, options)
                message += "; short: " + "; ".join(s.describe() for s in shortfalls)
            except RackoptError as why:
                message += f"; {why}"
        return ScenarioResult(name, status, message, None, time.perf_counter() - started)
    except RackoptError as exc:
        return ScenarioResult(name, FAILED, str(exc), None, time.perf_counter() - started)
    except Exception as exc:  # a bug must not stop the other scenarios; its text is kept
        return ScenarioResult(
            name, FAILED, f"{type(exc).__name__}: {exc}", None, time.perf_counter() - started
        )


def scenario_folder(output: str | Path) -> Path:
    """Where a study's per-scenario layouts go: ``OUTPUT.d/`` next to the output."""
    output = Path(output)
    return output.with_name(output.name + ".d")


def scenario_path(output: str | Path, name: str) -> Path:
    return scenario_folder(output) / f"{name}.nc"


def _saved(path: Path) -> xr.Dataset | None:
    """The layout saved for a scenario by an earlier run, if it can be read."""
    from optimizer.results.reader import LayoutFileError, open_layout

    try:
        return open_layout(path)
    except LayoutFileError:
        return None  # missing or unreadable: solved again and overwritten


def _reusable(ds: xr.Dataset, scenario: Scenario, options: SolveOptions) -> bool:
    if ds.attrs.get("instance_sha256") != scenario.sha256:
        return False
    if ds.attrs.get("status") in UNFINISHED:
        return False
    try:
        saved = json.loads(ds.attrs.get("solver_options", "{}"))
    except json.JSONDecodeError:
        return False
    wanted = options.highs_options()
    return all(saved.get(k) == wanted.get(k) for k in _COMPARED_OPTIONS)


def _outcome(future: Future, name: str) -> ScenarioResult:
    try:
        return future.result()
    except Exception as exc:  # the worker itself died (out of memory, killed, lost)
        return ScenarioResult(name, FAILED, f"worker failed: {type(exc).__name__}: {exc}")


def _run_here(tasks: list[Scenario], options: SolveOptions) -> Iterator[ScenarioResult]:
    for scenario in tasks:
        result = solve_scenario(scenario.name, scenario.loaded, options)
        yield result
        if result.status in UNFINISHED:  # Ctrl-C stopped the solve: stop the study too
            raise KeyboardInterrupt


def _ignore_ctrl_c() -> None:
    """Pool workers ignore Ctrl-C while idle; :func:`_pool_solve` listens while busy."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_solve(name: str, loaded: LoadedInstance, options: SolveOptions) -> ScenarioResult:
    """:func:`solve_scenario` in a pool worker. A terminal's Ctrl-C reaches the workers
    too: it stops a busy one (its result is unfinished, so never saved), not an idle one."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return solve_scenario(name, loaded, options)
    except KeyboardInterrupt:
        return ScenarioResult(name, "interrupted", "interrupted by Ctrl-C")
    finally:
        signal.signal(signal.SIGINT, previous)


def _context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes, never a fork of this one (a fork inherits its threads and
    locks). On POSIX a fork server imports the solver stack once, and each worker is a
    fork of that single-threaded server: cheap to start, safe to use."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_PRELOAD))
    return context


def _run_processes(
    tasks: list[Scenario], options: SolveOptions, workers: int
) -> Iterator[ScenarioResult]:
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=_context(), initializer=_ignore_ctrl_c
    )
    futures: dict[Future, str] = {}
    given: set[Future] = set()
    try:
        for sc in tasks:
            futures[pool.submit(_pool_solve, sc.name, sc.loaded, options)] = sc.name
        for future in as_completed(futures):
            given.add(future)
            yield _outcome(future, futures[future])
    except KeyboardInterrupt:
        # Ctrl-C: drop the queue, let running solves end (a terminal's Ctrl-C reaches them
        # too and stops them early), and hand over what finished so it is saved.
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future.done() and not future.cancelled() and future not in given:
                yield _outcome(future, futures[future])
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(
    tasks: list[Scenario], options: SolveOptions, scheduler: str
) -> Iterator[ScenarioResult]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise RackoptError(
            "--scheduler needs dask.distributed; install it with pip install 'rackopt[study]'"
        ) from None
    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RackoptError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    futures: dict[Any, str] = {}
    try:
        futures = {
            client.submit(solve_scenario, sc.name, sc.loaded, options, pure=False): sc.name
            for sc in tasks
        }
        for future in dask_completed(list(futures)):
            yield _outcome(future, futures[future])
    finally:
        if futures:
            client.cancel(list(futures))
        client.close()


def run_batch(
    study: Study,
    output: str | Path,
    options: SolveOptions,
    workers: int = 1,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Solve every scenario of ``study`` not already saved, then write the combined dataset.

    ``workers`` local processes (0: in this process, one after another), or the workers
    of the dask cluster at ``scheduler``. Each layout is written to
    ``OUTPUT.d/<scenario>.nc`` as it arrives; a saved layout whose instance SHA-256 and
    solver options match is reused instead of solved again."""
    from optimizer.results.layout import write_layout

    started = time.perf_counter()
    report = BatchReport(study, {})
    results: dict[str, ScenarioResult] = {}
    tasks: list[Scenario] = []
    for scenario in study.scenarios:
        path = scenario_path(output, scenario.name)
        saved = _saved(path)
        if saved is not None and _reusable(saved, scenario, options):
            status = str(saved.attrs.get("status"))
            results[scenario.name] = ScenarioResult(
                scenario.name, status, _note(status), saved, reused=True
            )
            report.reused.append(scenario.name)
        else:
            tasks.append(scenario)
    failed = 0

    def tell(last: ScenarioResult | None) -> None:
        if progress is not None:
            progress(
                BatchProgress(
                    len(study.scenarios),
                    len(results),
                    failed,
                    len(report.reused),
                    time.perf_counter() - started,
                    last,
                )
            )

    tell(None)
    if scheduler is not None:
        running = _run_dask(tasks, options, scheduler) if tasks else iter(())
    elif workers == 0 or not tasks:
        running = _run_here(tasks, options)
    else:
        running = _run_processes(tasks, options, workers)
    for result in running:
        if result.ok:
            write_layout(result.layout, scenario_path(output, result.name))
        else:
            failed += 1
        results[result.name] = result
        report.solved.append(result.name)
        tell(result)
    report.results = {sc.name: results[sc.name] for sc in study.scenarios}
    report.dataset = combine(study, report.results, options)
    write_layout(report.dataset, output)
    return report


def _union(datasets: list[xr.Dataset], dim: str) -> list[Any]:
    """Every label of ``dim`` across the layouts, in order of first appearance."""
    seen: dict[Any, None] = {}
    for ds in datasets:
        for label in ds[dim].values.tolist():
            seen.setdefault(label, None)
    return list(seen)


def _conform(ds: xr.Dataset, template: xr.Dataset) -> xr.Dataset:
    """``ds`` on the template's labels and variables, gaps filled per dtype."""
    out = ds.reindex(
        {d: template[d].values for d in DIMENSION_NAMES if d in ds.dims},
        fill_value={name: fill_value(var.dtype) for name, var in ds.data_vars.items()},
    )
    for name, var in template.data_vars.items():
        if name not in out:
            out[name] = xr.full_like(var, fill_value(var.dtype))
    return out[list(template.data_vars)]


def _coordinate(values: list[Any]) -> np.ndarray:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.float64)
    return np.array([str(v).lower() if isinstance(v, bool) else str(v) for v in values], dtype=str)


def _scenario_variables(study: Study, results: dict[str, ScenarioResult]) -> xr.Dataset:
    """Per-scenario status, message and the layout attributes that differ by scenario."""

    def attr(name: str, key: str, default: Any) -> Any:
        layout = results[name].layout
        return layout.attrs.get(key, default) if results[name].ok else default

    names = [sc.name for sc in study.scenarios]
    data = {
        "status": ("scenario", np.array([results[n].status for n in names], dtype=str)),
        "message": ("scenario", np.array([results[n].message for n in names], dtype=str)),
        "instance_sha256": ("scenario", np.array([sc.sha256 for sc in study.scenarios], dtype=str)),
        "objective": ("scenario", np.array([attr(n, "objective", np.nan) for n in names], float)),
        "best_bound": ("scenario", np.array([attr(n, "best_bound", np.nan) for n in names], float)),
        "gap": ("scenario", np.array([attr(n, "gap", np.nan) for n in names], float)),
        "tie_break_status": (
            "scenario",
            np.array([attr(n, "tie_break_status", "") for n in names], dtype=str),
        ),
        "timings_s": ("scenario", np.array([attr(n, "timings_s", "{}") for n in names], str)),
    }
    coords: dict[str, Any] = {
        "scenario": np.array(names, dtype=str),
        "named_scenario": ("scenario", np.array([sc.named for sc in study.scenarios], str)),
    }
    for key in study.sweep_keys:
        coords[key] = ("scenario", _coordinate([sc.sweep[key] for sc in study.scenarios]))
    return xr.Dataset(data, coords=coords)


def combine(study: Study, results: dict[str, ScenarioResult], options: SolveOptions) -> xr.Dataset:
    """The layouts of every scenario along a new ``scenario`` dimension.

    Scenarios may differ in slots, devices, CDUs, air zones and rack types: each
    dimension holds the union of labels (in order of first appearance) and a scenario
    without an entry holds '' (text), False, -1 (integers) or NaN there. Per-slot
    geometry (hall, row, x_m, ...) therefore varies by scenario too. A scenario without
    a layout (failed, infeasible) holds fill values everywhere and says why in
    ``status`` and ``message``."""
    from optimizer.results.layout import package_versions

    layouts = [r.layout.reset_coords() for r in results.values() if r.ok]
    coordinates: dict[str, None] = {}
    for r in results.values():
        if r.ok:
            coordinates.update(
                dict.fromkeys(c for c in r.layout.coords if c not in DIMENSION_NAMES)
            )
    per_scenario = _scenario_variables(study, results)
    if layouts:
        variables: dict[str, xr.Variable] = {}
        for ds in layouts:
            for name, var in ds.data_vars.items():
                variables.setdefault(name, var)
        template = xr.Dataset(
            coords={
                d: _union(layouts, d)
                for d in DIMENSION_NAMES
                if any(d in ds.dims for ds in layouts)
            }
        )
        for name, var in variables.items():
            sizes = {d: template.sizes[d] for d in var.dims}
            template[name] = xr.Variable(
                var.dims,
                np.full(tuple(sizes.values()), fill_value(var.dtype), var.dtype),
                var.attrs,
            )
        parts = []
        by_name = {name: r for name, r in results.items() if r.ok}
        for name in results:
            ds = by_name[name].layout.reset_coords() if name in by_name else template
            parts.append(_conform(ds, template).expand_dims(scenario=[name]))
        combined = xr.concat(
            parts,
            dim="scenario",
            data_vars="all",
            coords="minimal",
            join="exact",
            compat="equals",
        )
        combined = combined.set_coords([c for c in coordinates if c in combined.data_vars])
        combined = xr.merge([combined, per_scenario], compat="override", join="exact")
    else:
        combined = per_scenario
    combined.attrs = {
        "title": f"rackopt study {study.name}",
        "study_format_version": STUDY_FORMAT_VERSION,
        "study_name": study.name,
        "study_file": str(study.path),
        "base_instance": str(study.base),
        "description": study.description,
        "sweep_keys": json.dumps(list(study.sweep_keys)),
        "solver_options": json.dumps(options.highs_options(), sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return combined
