"""What every ``rackopt`` command shares: options, one-line errors and exit codes.

An error a user can act on prints one line (``error: ...``; an infeasible demand adds
the shortfalls, one per line) and exits with the code of its class in
:mod:`optimizer.errors`; anything else is a bug and exits 70 with its type and text.
``--debug`` shows the traceback instead. The exit codes:

| code | meaning |
|---|---|
| 0 | success |
| 1 | `verify` found violations (each printed with its load, limit and excess) |
| 2 | invalid input: instance, study, layout or option (one line: file, field, fix) |
| 3 | infeasible demand (the shortfalls are listed); `batch`: a scenario has no layout |
| 4 | a layout failed the independent check; nothing written (a bug: please report it) |
| 5 | no layout in time: the time limit came before any layout was found |
| 69 | environment: dask scheduler unreachable, TLS files unusable, extra not installed |
| 70 | internal error: a bug in rackopt (rerun with `--debug` and report it) |
| 74 | an output could not be written (disk full, no permission); nothing half-written |
| 130 | interrupted by Ctrl-C: `solve` writes its best layout if any, `batch` finished ones |

Command-line usage errors (a missing ``-o``, an unknown option) exit 2 from click, with a
usage message instead of the ``error:`` line.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from optimizer.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, InstanceError, RackoptError
from optimizer.output import check_target
from optimizer.solve.options import SolveOptions
from optimizer.solve.progress import ctrl_c_restored, solver_still_running

if TYPE_CHECKING:  # the site's modules load numpy and scipy: only when a command runs
    from optimizer.instance.loader import LoadedInstance
    from optimizer.site.arrays import Site

MAX_SOLVER_INT = 2**31 - 1
"""HiGHS keeps integer options (random_seed, node limits) in a C int."""
MAX_THREADS = os.cpu_count() or 1
"""More solver threads than the machine has CPUs only slows the solve, and a huge count
makes HiGHS fail to allocate its thread pool."""


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf, which compare false with any bound
    and would reach the solver and the layout's JSON attributes."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


@contextmanager
def _reported_errors(debug: bool) -> Iterator[None]:
    try:
        yield
    except RackoptError as exc:
        if debug:
            raise
        click.secho(f"error: {exc}", fg="red", err=True)
        if exc.exit_code == EXIT_INTERRUPTED:
            exit_interrupted()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.secho("interrupted", fg="red", err=True)
        exit_interrupted()
    except Exception as exc:
        if debug:
            raise
        click.secho(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


def exit_interrupted() -> None:
    """Exit with the Ctrl-C code. A solver thread left inside HiGHS after Ctrl-C
    (optimizer.solve.progress) would only stop at HiGHS's next poll, seconds away, and
    interpreter shutdown around it can crash: then the process ends at once, its
    output (already written and synced) flushed first."""
    if solver_still_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)


def common(command: Callable[..., Any]) -> Callable[..., Any]:
    """--debug for every command; errors become one line unless it is set."""

    @click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
    @wraps(command)
    def wrapper(*args: Any, debug: bool, **kwargs: Any) -> Any:
        with ctrl_c_restored(), _reported_errors(debug):
            return command(*args, **kwargs)

    return wrapper


_TIME_LIMIT = click.option(
    "--time-limit",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Seconds; the best layout found is returned with its proven gap.",
)
_GAP = click.option(
    "--gap",
    type=FiniteFloat(min=0),
    default=1e-4,
    show_default=True,
    help="Relative optimality gap at which to stop.",
)
_THREADS = click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=1,
    show_default=True,
    help=f"Solver threads, at most the CPUs of this machine ({MAX_THREADS}).",
)
_SEED = click.option(
    "--seed", type=click.IntRange(min=0, max=MAX_SOLVER_INT), default=0, show_default=True
)
_SECOND_STAGE_NODES = click.option(
    "--second-stage-nodes",
    type=click.IntRange(min=0, max=MAX_SOLVER_INT),
    default=50,
    show_default=True,
    help="Branch-and-bound nodes for the cable and tie-break stage, after the GPU count "
    "is proven; more nodes, shorter cables.",
)
_SECOND_STAGE_GAP = click.option(
    "--second-stage-gap",
    type=FiniteFloat(min=0),
    default=0.01,
    show_default=True,
    help="Relative gap at which the cable and tie-break stage stops.",
)
_SECOND_STAGE_SHARE = click.option(
    "--second-stage-share",
    type=FiniteFloat(min=0),
    default=0.4,
    show_default=True,
    help="Time the cable and tie-break stage may take, as a share of the time taken to "
    "prove the GPU count (at least 0.25 s); 0 for no such limit, which makes the layout "
    "the same on every run.",
)
_WARM_START = click.option(
    "--warm-start/--no-warm-start",
    default=True,
    show_default=True,
    help="Start the solver from the greedy layout.",
)
_SPLIT = click.option(
    "--split/--no-split",
    "split_parts",
    default=True,
    show_default=True,
    help="Solve parts of the facility that share no constraint in parallel.",
)
_CAMPUS = click.option(
    "--campus-frontiers/--no-campus-frontiers",
    default=False,
    show_default=True,
    help="Solve halls that share only the utility limit through each hall's frontier of "
    "GPUs per facility-power budget and an exact choice of one point per hall.",
)
_WORKERS = click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=None,
    help="Processes tracing a campus's per-hall frontiers at once (default: one per CPU).",
    callback=lambda _ctx, _param, value: 0 if value is None else value,
)
_CAPPING_BASELINE = click.option(
    "--capping-baseline",
    is_flag=True,
    help="Where rack types declare a capped draw, also solve with no rack capped and "
    "report the GPUs capped failover gains (a second solve).",
)
_PHASE_OBJECTIVE = click.option(
    "--phase-objective",
    type=click.Choice(["lexicographic", "gpu_time", "final_first"]),
    default="lexicographic",
    show_default=True,
    help="For an instance with phases: most GPUs phase by phase in order, GPUs weighted "
    "by phase duration, or the final phase first.",
)
_MYOPIC = click.option(
    "--myopic",
    is_flag=True,
    help="For an instance with phases: solve each phase at its own optimum with the "
    "earlier racks fixed (what planning without this model gives), not one plan.",
)
_SCENARIO_OBJECTIVE = click.option(
    "--scenario-objective",
    type=click.Choice(["expected", "worst_case"]),
    default="expected",
    show_default=True,
    help="For a phase with demand scenarios: commit the earlier phases for the most "
    "expected GPUs over the scenarios, or for the best worst case.",
)
_MYOPIC_BASELINE = click.option(
    "--myopic-baseline",
    is_flag=True,
    help="For an instance with phases: also solve phase by phase and report the GPUs per "
    "phase of both plans, the value of planning ahead (a second solve).",
)
_OPTION_FIELDS = frozenset(f.name for f in fields(SolveOptions))


def _with_options(command: Callable[..., Any], declared: Sequence[Callable]) -> Callable[..., Any]:
    """``command`` with the click options ``declared`` added, shown by --help in the order
    given (a decorator applied last is listed first)."""
    for option in reversed(declared):
        command = option(command)
    return command


def _gathered(*declared: Callable) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding the ``declared`` options to a command and handing it their values
    as one :class:`SolveOptions` named ``options`` (settings not declared keep their
    defaults). Each option's parameter name is a field of SolveOptions."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in _OPTION_FIELDS & kwargs.keys()}
            return command(*args, options=SolveOptions(**given), **kwargs)

        return _with_options(wrapper, declared)

    return decorate


search_options = _gathered(_TIME_LIMIT, _GAP, _THREADS, _SEED)
"""What steers HiGHS itself (time limit, gap, threads, seed): all that ``explain`` uses."""
_SECOND_STAGE = (_SECOND_STAGE_NODES, _SECOND_STAGE_GAP, _SECOND_STAGE_SHARE)
study_options = _gathered(_TIME_LIMIT, _GAP, _THREADS, _SEED, *_SECOND_STAGE, _WARM_START)
"""The search settings plus the second-stage budget and warm start, for ``batch``: each
scenario already has a process of its own, so parts are never split inside one."""
solver_options = _gathered(
    _TIME_LIMIT,
    _GAP,
    _THREADS,
    _SEED,
    *_SECOND_STAGE,
    _WARM_START,
    _SPLIT,
    _CAMPUS,
    _WORKERS,
    _CAPPING_BASELINE,
    _PHASE_OBJECTIVE,
    _MYOPIC,
    _SCENARIO_OBJECTIVE,
    _MYOPIC_BASELINE,
)
"""Every solve setting, for ``solve``."""


strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Treat the instance's lint warnings (wiring that defeats redundancy, equipment "
    "that feeds nothing, rack types that fit nowhere) as input errors: exit 2 before "
    "anything is solved, checked or written.",
)
"""--strict, for every command that reads an instance: whether the lint's warnings stop it."""


def instance_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--allow-paths-outside and --strict for every command that reads an instance or a
    study: how far its files may reach, and whether the lint's warnings stop the command."""
    return click.option(
        "--allow-paths-outside",
        is_flag=True,
        help="Let the instance (or study) read files outside its own folder tree: "
        "includes, tables and matrices named with '..', absolute paths or symlinks. "
        "Only for files you trust.",
    )(strict_option(command))


def show_warnings(found: Sequence[tuple[str, Sequence[str]]], strict: bool, file: str) -> None:
    """Print the lint's warnings on stderr, each ``(prefix, warnings)`` group's lines
    under its prefix (a study's scenario name); with ``strict``, stop with an input error
    naming ``file`` (the instance or study) once they are all shown, so nothing is
    solved or written."""
    count = 0
    for prefix, warnings in found:
        for warning in warnings:
            click.secho(f"warning: {prefix}{warning}", fg="yellow", err=True)
            count += 1
    if strict and count:
        raise InstanceError(
            file,
            "",
            f"--strict: {count} lint warning{'s' if count > 1 else ''} above",
            "correct the instance as each warning says, or run without --strict",
        )


def linted_site(instance: str, allow_paths_outside: bool, strict: bool) -> Site:
    """The site of ``instance``, its lint warnings shown (and fatal under ``strict``)."""
    from optimizer.instance.loader import load_instance

    return linted_site_of(load_instance(instance, allow_paths_outside), instance, strict)


def linted_site_of(loaded: LoadedInstance, instance: str, strict: bool) -> Site:
    """:func:`linted_site` of an instance already loaded from the file ``instance``, for a
    command that reads the instance itself first."""
    from optimizer.site.build import build_site

    site = build_site(loaded)
    show_warnings([("", site.warnings)], strict, instance)
    return site


def scheduler_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--scheduler and its TLS files, for the commands that can run solves on a dask
    cluster (``batch``: the scenarios; ``solve``: a campus's frontiers); ``what`` is what
    runs there. The command gets them as ``cluster``
    (optimizer.studies.cluster.Cluster.of: None to solve on local processes)."""
    declared = (
        click.option(
            "--scheduler",
            default=None,
            metavar="ADDRESS",
            help=f"Run {what} on this dask.distributed scheduler (tcp://host:8786 or "
            "tls://host:8786) instead.",
        ),
        click.option(
            "--tls-ca-file",
            type=click.Path(dir_okay=False),
            default=None,
            help="For a tls:// scheduler: the CA certificate that signed the "
            "cluster's certificates.",
        ),
        click.option(
            "--tls-cert",
            type=click.Path(dir_okay=False),
            default=None,
            help="For a tls:// scheduler: this client's certificate (PEM; may hold the key too).",
        ),
        click.option(
            "--tls-key",
            type=click.Path(dir_okay=False),
            default=None,
            help="For a tls:// scheduler: this client's private key, if not in --tls-cert.",
        ),
    )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(command)
        def wrapper(
            *args: Any,
            scheduler: str | None,
            tls_ca_file: str | None,
            tls_cert: str | None,
            tls_key: str | None,
            **kwargs: Any,
        ) -> Any:
            from optimizer.studies.cluster import Cluster

            # This runs outside the command's own error report (@common is the innermost
            # decorator, its --debug still among the arguments): report the same way here.
            with _reported_errors(kwargs["debug"]):
                cluster = Cluster.of(scheduler, tls_ca_file, tls_cert, tls_key)
            return command(*args, cluster=cluster, **kwargs)

        return _with_options(wrapper, declared)

    return decorate


def output_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The required -o/--output of every command that writes a file."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False),
        required=True,
        callback=writable_target,
        help=what,
    )


def writable_target(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Check an output path as the command line is read, before any work is done (the
    error is reported like any other, since this runs before the command's handler)."""
    if value is not None:
        with _reported_errors(debug=False):
            check_target(value)
    return value
