"""What every ``rackopt`` command shares: options, one-line errors and exit codes.

Errors a user can fix print one line and exit with their code: 2 bad input, 3 no
layout (followed by the shortfalls that explain it, one per line), 4 a layout that
failed the independent check; ``verify`` exits 1 when it finds violations, a bug
exits 70, and a solve stopped with Ctrl-C exits 130 after writing its best layout.
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import click

from optimizer.errors import RackoptError
from optimizer.solve.highs import SolveOptions
from optimizer.solve.progress import Progress, ProgressFn

EXIT_VIOLATIONS = 1
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70
"""A bug in rackopt (EX_SOFTWARE), kept apart from verify's violations (1)."""
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
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.secho("interrupted", fg="red", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if debug:
            raise
        click.secho(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


def common(command: Callable[..., Any]) -> Callable[..., Any]:
    """--debug for every command; errors become one line unless it is set."""

    @click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
    @wraps(command)
    def wrapper(*args: Any, debug: bool, **kwargs: Any) -> Any:
        with _reported_errors(debug):
            return command(*args, **kwargs)

    return wrapper


def solver_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Solver settings (time limit, gap, threads, seed, second-stage budget, warm start,
    parts), gathered into ``options``."""

    @click.option(
        "--time-limit",
        type=FiniteFloat(min=0, min_open=True),
        default=None,
        help="Seconds; the best layout found is returned with its proven gap.",
    )
    @click.option(
        "--gap",
        type=FiniteFloat(min=0),
        default=1e-4,
        show_default=True,
        help="Relative optimality gap at which to stop.",
    )
    @click.option(
        "--threads",
        type=click.IntRange(min=1, max=MAX_THREADS),
        default=1,
        show_default=True,
        help=f"Solver threads, at most the CPUs of this machine ({MAX_THREADS}).",
    )
    @click.option(
        "--seed", type=click.IntRange(min=0, max=MAX_SOLVER_INT), default=0, show_default=True
    )
    @click.option(
        "--second-stage-nodes",
        type=click.IntRange(min=0, max=MAX_SOLVER_INT),
        default=50,
        show_default=True,
        help="Branch-and-bound nodes for the cable and tie-break stage, after the GPU count "
        "is proven; more nodes, shorter cables.",
    )
    @click.option(
        "--warm-start/--no-warm-start",
        default=True,
        show_default=True,
        help="Start the solver from the greedy layout.",
    )
    @click.option(
        "--split/--no-split",
        default=True,
        show_default=True,
        help="Solve parts of the facility that share no constraint in parallel.",
    )
    @wraps(command)
    def wrapper(
        *args: Any,
        time_limit: float | None,
        gap: float,
        threads: int,
        seed: int,
        second_stage_nodes: int,
        warm_start: bool,
        split: bool,
        **kwargs: Any,
    ) -> Any:
        options = SolveOptions(
            time_limit=time_limit,
            gap=gap,
            threads=threads,
            seed=seed,
            second_stage_nodes=second_stage_nodes,
            warm_start=warm_start,
            split_parts=split,
        )
        return command(*args, options=options, **kwargs)

    return wrapper


def paths_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--allow-paths-outside for every command that reads an instance or a study."""
    return click.option(
        "--allow-paths-outside",
        is_flag=True,
        help="Let the instance (or study) read files outside its own folder tree: "
        "includes, tables and matrices named with '..', absolute paths or symlinks. "
        "Only for files you trust.",
    )(command)


def output_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The required -o/--output of every command that writes a file."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help=what)


def progress_printer(quiet: bool) -> ProgressFn | None:
    """One line updated in place on a terminal; a plain log line every 5 s otherwise."""
    if quiet:
        return None
    terminal = sys.stderr.isatty()
    last = [-5.0]

    def show(p: Progress) -> None:
        best = "-" if p.incumbent is None else f"{p.incumbent:,.0f}"
        bound = "-" if p.bound is None else f"{p.bound:,.0f}"
        gap = "-" if p.gap is None else f"{p.gap:.2%}"
        line = f"{p.stage}: {p.elapsed_s:7.1f}s  best {best}  bound {bound}  gap {gap}"
        if terminal:
            click.echo(f"\r{line}\033[K", nl=False, err=True)
        elif p.elapsed_s - last[0] >= 5.0:
            last[0] = p.elapsed_s
            click.echo(line, err=True)

    return show
