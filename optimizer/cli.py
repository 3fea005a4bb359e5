"""The ``rackopt`` command line.

Errors a user can fix print one line and exit with their code: 2 bad input, 3 no
layout (followed by the shortfalls that explain it, one per line), 4 a layout that
failed the independent check; ``verify`` exits 1 when it finds violations, a bug
exits 70, and a solve stopped with Ctrl-C exits 130 after writing its best layout.
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import click

from optimizer import __version__
from optimizer.errors import NoLayoutError, RackoptError
from optimizer.highs_adapter import SolveOptions
from optimizer.progress import Progress, ProgressFn

EXIT_VIOLATIONS = 1
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70
"""A bug in rackopt (EX_SOFTWARE), kept apart from verify's violations (1)."""


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


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    """--debug for every command; errors become one line unless it is set."""

    @click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
    @wraps(command)
    def wrapper(*args: Any, debug: bool, **kwargs: Any) -> Any:
        with _reported_errors(debug):
            return command(*args, **kwargs)

    return wrapper


def _solver_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Solver settings (time limit, gap, threads, seed, second-stage budget, warm start,
    parts), gathered into ``options``."""

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
    @click.option(
        "--second-stage-nodes",
        type=click.IntRange(min=0),
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


def output_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The required -o/--output of every command that writes a file."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help=what)


def _progress_printer(quiet: bool) -> ProgressFn | None:
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


@click.group()
@click.version_option(__version__, prog_name="rackopt")
def main() -> None:
    """rackopt: provably optimal placement of AI racks in a data hall."""


@main.command()
@click.argument("instance", type=click.Path(dir_okay=False))
@output_option("Layout file to write (NetCDF).")
@_solver_options
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@_common
def solve(instance: str, output: str, options: SolveOptions, quiet: bool) -> None:
    """Place racks in INSTANCE for the most GPUs and write the checked layout."""
    from optimizer.layout import layout_dataset, write_layout
    from optimizer.loader import load_instance
    from optimizer.site import build_site
    from optimizer.solve import solve_site
    from optimizer.summary import summary_lines

    started = time.perf_counter()
    site = build_site(load_instance(instance))
    load_s = time.perf_counter() - started
    try:
        report = solve_site(site, options, _progress_printer(quiet))
    except NoLayoutError as exc:
        if sys.stderr.isatty() and not quiet:
            click.echo("", err=True)
        raise NoLayoutError(_with_explanation(site, options, str(exc))) from None
    if sys.stderr.isatty() and not quiet:
        click.echo("", err=True)
    report.timings = {"load_s": load_s, **report.timings}
    write_layout(layout_dataset(report), output)
    if not quiet:
        for line in summary_lines(report):
            click.echo(line)
        click.echo(f"layout written to {output}")
    if report.outcome.status == "interrupted":
        click.secho("interrupted: the best layout found so far was written", fg="yellow", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _with_explanation(site: Any, options: SolveOptions, message: str) -> str:
    """Append the shortfalls that explain an infeasible demand to ``message``."""
    from optimizer.explain import demand_text, explain

    if "infeasible" not in message:
        return message
    shortfalls = explain(site, options)
    lines = [message, f"  to place {demand_text(site)}:"]
    lines += [f"  {s.describe()}" for s in shortfalls]
    return "\n".join(lines)


@main.command(name="explain")
@click.argument("instance", type=click.Path(dir_okay=False))
@_solver_options
@_common
def explain_command(instance: str, options: SolveOptions) -> None:
    """Say which resources fall short of INSTANCE's demand minimums, and by how much."""
    from optimizer.explain import demand_text, explain
    from optimizer.loader import load_instance
    from optimizer.site import build_site

    site = build_site(load_instance(instance))
    shortfalls = explain(site, options)
    if not shortfalls:
        click.echo(
            f"{site.name}: the demand minimums ({demand_text(site)}) fit; nothing falls short"
        )
        return
    click.echo(f"{site.name}: to place {demand_text(site)}, these resources fall short:")
    for shortfall in shortfalls:
        click.echo(f"  {shortfall.describe()}")
    sys.exit(NoLayoutError.exit_code)


@main.command()
@click.argument("instance", type=click.Path(dir_okay=False))
@click.argument("layout", type=click.Path(dir_okay=False))
@_common
def verify(instance: str, layout: str) -> None:
    """Check LAYOUT (rackopt NetCDF, or CSV slot,rack_type) against every rule of INSTANCE."""
    from optimizer.check import check_layout
    from optimizer.layout import read_layout
    from optimizer.loader import load_instance
    from optimizer.site import build_site

    site = build_site(load_instance(instance))
    placed = read_layout(site, layout)
    report = check_layout(site, placed.placement, placed.su, placed.su_network_slot)
    racks = int((placed.placement >= 0).sum())
    if report.ok:
        click.echo(
            f"{layout}: {racks} racks pass every rule of {site.name} "
            f"(IT {report.loads.it_kw / 1000:.3f} MW, facility "
            f"{report.loads.facility_kw / 1000:.3f} MW)"
        )
        return
    click.echo(f"{layout}: {len(report.violations)} violations in {racks} racks:")
    for violation in report.violations:
        click.echo(f"  {violation.describe()}")
    sys.exit(EXIT_VIOLATIONS)


@main.command(name="next")
@click.argument("instance", type=click.Path(dir_okay=False))
@click.argument("layout", type=click.Path(dir_okay=False))
@click.option("--type", "type_name", required=True, help="Rack type of the next rack.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@_common
def next_command(instance: str, layout: str, type_name: str, top: int) -> None:
    """Rank the empty slots of LAYOUT for one more rack of --type."""
    from optimizer.errors import InstanceError, did_you_mean
    from optimizer.headroom import next_rack
    from optimizer.layout import read_layout
    from optimizer.loader import load_instance
    from optimizer.site import build_site

    site = build_site(load_instance(instance))
    names = [t.name for t in site.rack_types]
    if type_name not in names:
        raise InstanceError(
            "--type", "", f"unknown rack type {type_name!r}", did_you_mean(type_name, names)
        )
    answer = next_rack(site, read_layout(site, layout), type_name)
    if answer.ranked:
        click.echo(f"best slots for one more {type_name} (tightest resource after adding it):")
        for c in answer.ranked[:top]:
            click.echo(f"  {c.slot:<16} {c.utilization:7.1%}  {c.tightest}")
        if len(answer.ranked) > top:
            click.echo(f"  ... {len(answer.ranked) - top} more slots fit")
    else:
        click.echo(f"no empty slot takes one more {type_name}")
    for resource, slots in answer.blocked.most_common(5):
        click.echo(f"  blocked in {slots} slots by {resource}")


# The study commands (batch, compare, report) live in optimizer/study_cli.py, which uses
# this module's decorators and adds its commands to ``main``; importing it last keeps
# either import order working.
import optimizer.study_cli  # noqa: E402, F401
