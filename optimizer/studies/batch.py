"""Run a study: solve every scenario in its own worker, save each layout as it finishes,
resume an interrupted study, and combine the layouts along a ``scenario`` dimension.

Workers are local processes (one solve per process, one solver thread by default) or
the workers of an existing ``dask.distributed`` cluster; both run
:func:`solve_scenario`, which never raises for a scenario's own failure: an infeasible
or failing scenario comes back as a result with its reason, and the rest go on.
Layouts are written by the calling process only, so workers need no shared disk.
How a dask cluster is reached, and why it must be trusted: :mod:`.cluster`.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from optimizer.errors import InfeasibleError, Interrupted, RackoptError
from optimizer.instance.loader import LoadedInstance
from optimizer.results.schema import (
    CONVENTIONS,
    DIMENSION_NAMES,
    STUDY_FORMAT_VERSION,
    fill_value,
    sweep_coordinate,
)
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import Progress, ProgressFn
from optimizer.studies.cluster import Cluster, connect
from optimizer.studies.study import Scenario, Study

INFEASIBLE = "infeasible"
FAILED = "failed"
INTERRUPTED = "interrupted"
UNFINISHED = frozenset({INTERRUPTED})
"""Statuses whose layout is not kept: a resumed study solves them again."""
_PRELOAD = (
    "optimizer.studies.batch",
    "optimizer.solve.pipeline",
    "optimizer.results.layout",
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
    """Where a study stands, for a progress display: sent when a scenario finishes and
    on a timer (:data:`TICK_S`) while scenarios run."""

    total: int
    done: int
    failed: int
    reused: int
    elapsed_s: float
    last: ScenarioResult | None
    """The scenario that just finished (None for a timer update)."""
    running: dict[str, Progress | None] = field(default_factory=dict)
    """Each scenario being solved and the last snapshot of its solve (None before its
    solver reports). Empty on a dask cluster, whose workers do not report back."""

    @property
    def eta_s(self) -> float | None:
        """Remaining time at the rate solved so far (reused scenarios cost nothing)."""
        solved = self.done - self.reused
        remaining = self.total - self.done
        if remaining == 0:
            return 0.0
        return self.elapsed_s / solved * remaining if solved else None


ProgressCallback = Callable[[BatchProgress], None]
ScenarioProgress = Callable[[str, Progress | None], None]
"""Told (scenario, snapshot) as a scenario starts (None) and while it is solved."""
TICK_S = 0.5
"""How often a running study's progress is sent, whether or not a scenario finished."""


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


def solve_scenario(
    name: str,
    loaded: LoadedInstance,
    options: SolveOptions,
    progress: ProgressFn | None = None,
) -> ScenarioResult:
    """The worker function: one scenario through the pipeline, turned into a layout;
    ``progress`` receives its solve's snapshots.

    Imports are local so that a dask worker only needs rackopt installed."""
    from optimizer.results.layout import layout_dataset
    from optimizer.solve.pipeline import solve_instance

    started = time.perf_counter()

    def without_layout(status: str, message: str) -> ScenarioResult:
        return ScenarioResult(name, status, message, None, time.perf_counter() - started)

    try:
        report = solve_instance(loaded, options, progress)
        layout = layout_dataset(report)
    except InfeasibleError as exc:
        return without_layout(INFEASIBLE, exc.one_line())
    except Interrupted as exc:
        return without_layout(INTERRUPTED, str(exc))
    except RackoptError as exc:  # no layout in time, a failed check, an input error
        return without_layout(FAILED, str(exc))
    except Exception as exc:  # a bug must not stop the other scenarios; its text is kept
        return without_layout(FAILED, f"{type(exc).__name__}: {exc}")
    status = report.outcome.status
    return ScenarioResult(name, status, _note(status), layout, time.perf_counter() - started)


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
    """Whether a saved layout is what solving ``scenario`` with ``options`` would give.

    Same instance bytes, a finished solve, and every setting that can change which
    layout comes out (:meth:`SolveOptions.recorded`, with the scenario's own ``solve:``
    settings) equal. That includes threads: they
    do not change the optimum, but they may change which of several optimal layouts is
    found, and how far a time-limited solve gets; and the study dataset records each
    scenario's options (``solver_options`` per scenario), which must be true of its layout."""
    if ds.attrs.get("instance_sha256") != scenario.sha256:
        return False
    if ds.attrs.get("status") in UNFINISHED:
        return False
    try:
        saved = json.loads(ds.attrs.get("solver_options", "{}"))
    except json.JSONDecodeError:
        return False
    return saved == scenario.options(options).recorded()


def _outcome(future: Future, name: str) -> ScenarioResult:
    try:
        return future.result()
    except Exception as exc:  # the worker itself died (out of memory, killed, lost)
        return ScenarioResult(name, FAILED, f"worker failed: {type(exc).__name__}: {exc}")


def _run_here(
    tasks: list[Scenario], options: SolveOptions, told: ScenarioProgress
) -> Iterator[ScenarioResult | None]:
    for scenario in tasks:
        told(scenario.name, None)
        result = solve_scenario(
            scenario.name,
            scenario.loaded,
            scenario.options(options),
            lambda p, n=scenario.name: told(n, p),
        )
        yield result
        if result.status in UNFINISHED:  # Ctrl-C stopped the solve: stop the study too
            raise KeyboardInterrupt


_stop: Any = None
"""In a pool worker: the shared flag that says Ctrl-C was pressed (set by any process)."""
_reports: Any = None
"""In a pool worker: the queue its solves' progress goes back on, as (scenario, snapshot)."""


def _worker_start(stop: Any, reports: Any) -> None:
    """Pool worker set-up: Ctrl-C while idle only raises the shared stop flag, so that
    the worker starts no further scenario; :func:`_pool_solve` listens while busy."""
    global _stop, _reports
    _stop, _reports = stop, reports

    def raise_flag(_signum: int, _frame: Any) -> None:
        stop.value = 1

    signal.signal(signal.SIGINT, raise_flag)


def _pool_solve(name: str, loaded: LoadedInstance, options: SolveOptions) -> ScenarioResult:
    """:func:`solve_scenario` in a pool worker. A terminal's Ctrl-C reaches the workers
    too: it stops a busy one (its result is unfinished, so never saved), and once any
    process saw it, a queued scenario is dropped instead of started."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if _stop.value:
            return ScenarioResult(name, INTERRUPTED, "not started: interrupted by Ctrl-C")
        _reports.put((name, None))
        result = solve_scenario(name, loaded, options, lambda p: _reports.put((name, p)))
    except KeyboardInterrupt:
        result = ScenarioResult(name, INTERRUPTED, "interrupted by Ctrl-C")
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.status in UNFINISHED:
        _stop.value = 1
    return result


def _context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes, never a fork of this one (a fork inherits its threads and
    locks). On POSIX a fork server imports the solver stack once, and each worker is a
    fork of that single-threaded server: cheap to start, safe to use."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_PRELOAD))
    return context


def _start_fork_server(context: multiprocessing.context.BaseContext) -> None:
    """Start the fork server with Ctrl-C ignored. It keeps ignoring it (the setting
    survives its exec) while it imports the solver stack, so a Ctrl-C then leaves no
    traceback; the workers it forks set their own handler (:func:`_worker_start`)."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    if context.get_start_method() != "forkserver" or not in_main_thread:
        return
    from multiprocessing import forkserver

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _drain(reports: Any, told: ScenarioProgress) -> None:
    """Hand on every progress report the workers queued since the last look."""
    while True:
        try:
            told(*reports.get_nowait())
        except queue.Empty:
            return


def _run_processes(
    tasks: list[Scenario], options: SolveOptions, workers: int, told: ScenarioProgress
) -> Iterator[ScenarioResult | None]:
    """Results as the workers finish them, and None every :data:`TICK_S` in between
    (after the workers' progress reports were handed to ``told``)."""
    context = _context()
    _start_fork_server(context)
    # A plain shared byte, not an Event: a signal handler may set it at any moment
    # without taking a lock.
    stop = context.RawValue("b", 0)
    reports = context.Queue()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=context,
        initializer=_worker_start,
        initargs=(stop, reports),
    )
    futures: dict[Future, str] = {}
    given: set[Future] = set()
    submitted: queue.SimpleQueue[tuple[Future, str]] = queue.SimpleQueue()

    def take_submitted() -> None:
        while not submitted.empty():
            future, name = submitted.get_nowait()
            futures[future] = name
            pending.add(future)

    def submit_all() -> None:
        # In a thread: the first worker only starts once the fork server has imported
        # the solver stack (seconds), and the display must not freeze meanwhile.
        try:
            for sc in tasks:
                future = pool.submit(_pool_solve, sc.name, sc.loaded, sc.options(options))
                submitted.put((future, sc.name))
        except RuntimeError:  # the pool was shut down (Ctrl-C) before all went in
            return

    submitter = threading.Thread(target=submit_all, name="submit scenarios", daemon=True)
    pending: set[Future] = set()
    try:
        submitter.start()
        while submitter.is_alive() or pending or not submitted.empty():
            take_submitted()
            finished: set[Future] = set()
            if pending:
                finished, pending = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
            else:
                submitter.join(TICK_S)
            _drain(reports, told)
            for future in finished:
                given.add(future)
                yield _outcome(future, futures[future])
            if not finished:
                yield None
    except KeyboardInterrupt:
        # Ctrl-C: scenarios not started are dropped (those already handed to a worker
        # see the flag), running solves end (a terminal's Ctrl-C reaches them too and
        # stops them early), and what finished is handed over so it is saved.
        stop.value = 1
        pool.shutdown(wait=True, cancel_futures=True)
        submitter.join()
        take_submitted()
        for future in futures:
            if future.done() and not future.cancelled() and future not in given:
                yield _outcome(future, futures[future])
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        reports.close()


def _run_dask(
    tasks: list[Scenario], options: SolveOptions, client: Any
) -> Iterator[ScenarioResult]:
    from distributed import as_completed as dask_completed

    futures: dict[Any, str] = {}
    try:
        futures = {
            client.submit(
                solve_scenario, sc.name, sc.loaded, sc.options(options), pure=False
            ): sc.name
            for sc in tasks
        }
        for future in dask_completed(list(futures)):
            yield _outcome(future, futures[future])
    finally:
        # On Ctrl-C too: the scheduler drops every scenario not yet finished.
        if futures:
            client.cancel(list(futures))
        client.close()


def run_batch(
    study: Study,
    output: str | Path,
    options: SolveOptions,
    workers: int = 1,
    cluster: Cluster | None = None,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Solve every scenario of ``study`` not already saved, then write the combined dataset.

    ``workers`` local processes (0: in this process, one after another), or the workers
    of the dask ``cluster``. Each layout is written to ``OUTPUT.d/<scenario>.nc`` as it
    arrives; a saved layout whose instance SHA-256 and solver options match is reused
    instead of solved again (:func:`_reusable`). Beside each layout goes the scenario's
    resolved instance, ``OUTPUT.d/<scenario>.instance.yaml``, which ``rackopt verify``
    checks the layout against. Each scenario has a process of its own
    already, so parts are never solved in parallel inside one (``split_parts`` off)."""
    options = dataclasses.replace(options, split_parts=False)
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
    solving: dict[str, Progress | None] = {}
    last_told = -float("inf")

    def tell(last: ScenarioResult | None) -> None:
        nonlocal last_told
        if progress is not None:
            last_told = time.perf_counter()
            progress(
                BatchProgress(
                    len(study.scenarios),
                    len(results),
                    failed,
                    len(report.reused),
                    last_told - started,
                    last,
                    dict(solving),
                )
            )

    def told(name: str, snapshot: Progress | None) -> None:
        if name not in results:  # a late report of a finished scenario is not news
            solving[name] = snapshot
        if workers == 0 and time.perf_counter() - last_told >= TICK_S:
            tell(None)  # solving here: its snapshots are the timer

    if cluster is not None and tasks:
        # Before the solver stack is imported: an unreachable scheduler is told at once.
        running = _run_dask(tasks, options, connect(cluster))
    elif workers == 0 or not tasks:
        running = _run_here(tasks, options, told)
    else:
        running = _run_processes(tasks, options, workers, told)
    from optimizer.results.layout import (
        resolved_instance_path,
        write_layout,
        write_layout_and_instance,
    )

    loaded = {scenario.name: scenario.loaded for scenario in study.scenarios}
    for name in report.reused:  # saved by an earlier rackopt, perhaps without it
        path = scenario_path(output, name)
        if not resolved_instance_path(path).exists():
            write_layout_and_instance(results[name].layout, path, loaded[name])
    tell(None)
    for result in running:
        if result is None:
            tell(None)
            continue
        solving.pop(result.name, None)
        if result.ok:
            write_layout_and_instance(
                result.layout, scenario_path(output, result.name), loaded[result.name]
            )
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


def _scenario_variables(
    study: Study, results: dict[str, ScenarioResult], options: SolveOptions
) -> xr.Dataset:
    """Per-scenario status, message and the layout attributes that differ by scenario."""

    def attr(name: str, key: str, default: Any) -> Any:
        layout = results[name].layout
        return layout.attrs.get(key, default) if results[name].ok else default

    names = [sc.name for sc in study.scenarios]

    def text(values: list[Any], long_name: str) -> tuple[str, np.ndarray, dict[str, str]]:
        return ("scenario", np.array(values, dtype=str), {"long_name": long_name})

    def real(key: str, long_name: str, units: str | None = None) -> tuple[Any, ...]:
        """A per-scenario number; ``units`` only where one unit holds for every scenario
        (a gap is a ratio; an objective is in the scenario's own objective's unit)."""
        values = np.array([attr(n, key, np.nan) for n in names], float)
        attrs = {"long_name": long_name} | ({"units": units} if units else {})
        return ("scenario", values, attrs)

    data = {
        "status": text([results[n].status for n in names], "solver status"),
        "message": text([results[n].message for n in names], "why there is no layout, or a note"),
        "instance_sha256": text([sc.sha256 for sc in study.scenarios], "SHA-256 of the instance"),
        "objective": real("objective", "primary objective value"),
        "best_bound": real("best_bound", "proven bound on the primary objective"),
        "gap": real("gap", "proven relative gap", "1"),
        "tie_break_status": text(
            [attr(n, "tie_break_status", "") for n in names], "outcome of the second stage"
        ),
        "second_stage_objective": real(
            "second_stage_objective", "cable metres plus tie-break cost of the layout"
        ),
        "second_stage_bound": real("second_stage_bound", "proven bound on the second stage"),
        "second_stage_gap": real(
            "second_stage_gap", "proven relative gap of the second stage", "1"
        ),
        "timings_s": text([attr(n, "timings_s", "{}") for n in names], "seconds per phase (JSON)"),
        "phase_plan": text(
            [attr(n, "phase_plan", "") for n in names], "how the build-out phases were planned"
        ),
        "solver_options": text(
            [json.dumps(sc.options(options).recorded(), sort_keys=True) for sc in study.scenarios],
            "the scenario's solver options (JSON): the batch's, with its own solve: settings",
        ),
    }
    coords: dict[str, Any] = {
        "scenario": ("scenario", np.array(names, dtype=str), {"long_name": "scenario name"}),
        "named_scenario": text([sc.named for sc in study.scenarios], "named scenario"),
    }
    for key in study.sweep_keys:
        coords[sweep_coordinate(key, set(coords))] = (
            "scenario",
            _coordinate([sc.sweep[key] for sc in study.scenarios]),
            {"long_name": f"swept value of {key}", "sweep_key": key},
        )
    return xr.Dataset(data, coords=coords)


def combine(study: Study, results: dict[str, ScenarioResult], options: SolveOptions) -> xr.Dataset:
    """The layouts of every scenario along a new ``scenario`` dimension.

    Scenarios may differ in slots, devices, CDUs, air zones and rack types: each
    dimension holds the union of labels (in order of first appearance) and a scenario
    without an entry holds '' (text), False, -1 (integers) or NaN there. Per-slot
    geometry (hall, row, x_m, ...) therefore varies by scenario too. A scenario without
    a layout (failed, infeasible) holds fill values everywhere and says why in
    ``status`` and ``message``."""
    from optimizer.results.layout import history, package_versions

    layouts = [r.layout.reset_coords() for r in results.values() if r.ok]
    coordinates: dict[str, None] = {}
    for r in results.values():
        if r.ok:
            coordinates.update(
                dict.fromkeys(c for c in r.layout.coords if c not in DIMENSION_NAMES)
            )
    per_scenario = _scenario_variables(study, results, options)
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
    created = datetime.now(UTC).isoformat(timespec="seconds")
    combined.attrs = {
        "title": f"rackopt study {study.name}",
        "Conventions": CONVENTIONS,
        "history": history(created, f"batch {study.path.name}"),
        "study_format_version": STUDY_FORMAT_VERSION,
        "study_name": study.name,
        "study_file": str(study.path),
        "base_instance": str(study.base),
        "description": study.description,
        "sweep_keys": json.dumps(list(study.sweep_keys)),
        "solver_options": json.dumps(options.recorded(), sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "created_utc": created,
    }
    return combined
