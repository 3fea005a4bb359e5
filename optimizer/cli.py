"""The ``rackopt`` command line.

Errors a user can fix (bad input, no feasible layout) print one line and exit
with their code: 2 bad input, 3 no layout, 4 a layout that failed the independent
check. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import click

from optimizer import __version__
from optimizer.errors import RackoptError
from optimizer.highs_adapter import SolveOptions


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
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.secho(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)", fg="red", err=True
        )
        sys.exit(1)


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    """--debug for every command; errors become one line unless it is set."""

    @click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
    @wraps(command)
    def wrapper(*args: Any, debug: bool, **kwargs: Any) -> Any:
        with _reported_errors(debug):
            return command(*args, **kwargs)

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="rackopt")
def main() -> None:
    """rackopt: provably optimal placement of AI racks in a data hall."""


@main.command()
@click.argument("instance", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    required=True,
    help="Layout file to write (NetCDF).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds; the best layout found is returned with its proven gap.",
)
@click.option(
    "--gap",
    type=click.FloatRange(min=0),
    default=1e-4,
    show_default=True,
    help="Relative optimality gap at which to stop.",
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@_common
def solve(
    instance: str,
    output: str,
    time_limit: float | None,
    gap: float,
    threads: int,
    seed: int,
    quiet: bool,
) -> None:
    """Place racks in INSTANCE for the most GPUs and write the checked layout."""
    from optimizer.layout import layout_dataset, write_layout
    from optimizer.solve import solve_instance
    from optimizer.summary import summary_lines

    options = SolveOptions(time_limit=time_limit, gap=gap, threads=threads, seed=seed)
    report = solve_instance(instance, options)
    write_layout(layout_dataset(report), output)
    if not quiet:
        for line in summary_lines(report):
            click.echo(line)
        click.echo(f"layout written to {output}")
