"""The study commands: ``rackopt batch``, ``rackopt compare`` and ``rackopt report``.

They share the ``--debug`` handling and solver options of :mod:`optimizer.cli.options`
and are registered on the ``rackopt`` group in :mod:`optimizer.cli`. Work is done in
:mod:`optimizer.studies.batch`, :mod:`optimizer.studies.compare` and
:mod:`optimizer.studies.report`; this module only talks to the user.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from optimizer.cli.documents import json_option
from optimizer.cli.live import BatchStatus
from optimizer.cli.options import (
    common,
    exit_interrupted,
    instance_options,
    linted_site,
    output_option,
    scheduler_options,
    show_warnings,
    strict_option,
    study_options,
    writable_target,
)
from optimizer.errors import NoLayoutError
from optimizer.solve.options import SolveOptions

if TYPE_CHECKING:
    from optimizer.studies.cluster import Cluster

DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


@click.command()
@click.argument("study", type=click.Path(dir_okay=False))
@output_option("Combined study dataset to write (NetCDF); layouts go to OUTPUT.d/.")
@click.option(
    "--workers",
    "scenario_workers",
    type=click.IntRange(min=0),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Local worker processes, one solve each (0: solve in this process).",
)
@scheduler_options("the solves")
@study_options
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors and lint warnings.")
@instance_options
@common
def batch(
    study: str,
    output: str,
    scenario_workers: int,
    cluster: Cluster | None,
    options: SolveOptions,
    quiet: bool,
    allow_paths_outside: bool,
    strict: bool,
) -> None:
    """Solve every scenario of STUDY and combine the layouts along a scenario dimension.

    Each layout is saved as it finishes; rerunning resumes, reusing every saved layout
    whose instance and solver options are unchanged. A failing or infeasible scenario is
    recorded with its reason and the others go on; the exit code is then 3."""
    from optimizer.studies.batch import run_batch, scenario_folder
    from optimizer.studies.compare import compare, table_lines
    from optimizer.studies.study import load_study, scenario_warnings

    loaded = load_study(study, allow_paths_outside)
    show_warnings(scenario_warnings(loaded), strict, study)
    status = None if quiet else BatchStatus()
    try:
        try:
            report = run_batch(loaded, output, options, scenario_workers, cluster, status)
        finally:
            if status is not None:  # end the display, also before an error
                status.close()
    except KeyboardInterrupt:
        click.secho(
            f"interrupted: finished layouts are in {scenario_folder(output)}; "
            "run the same command again to resume",
            fg="yellow",
            err=True,
        )
        exit_interrupted()
    if not quiet:
        for line in table_lines(compare([output])):
            click.echo(line)
        click.echo(
            f"{len(report.solved)} solved, {len(report.reused)} reused, "
            f"{len(report.failed)} without a layout; study written to {output}"
        )
    if report.failed:
        raise NoLayoutError(
            f"{len(report.failed)} of {len(report.results)} scenarios have no layout: "
            + ", ".join(f"{n} ({report.results[n].status})" for n in report.failed[:5])
        )


@click.command(name="compare")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False),
    callback=writable_target,
    help="Also write the table.",
)
@json_option
@common
def compare_command(files: tuple[str, ...], csv_path: str | None, as_json: bool) -> None:
    """Key figures per scenario of a study dataset, or per layout file, side by side.

    Stranded capacity is headroom (limit minus load) per resource family; the binding
    resource is the most utilized one (see docs/studies.md)."""
    from optimizer.studies.compare import compare, table_lines, write_csv

    rows = compare(list(files))
    if csv_path:
        write_csv(rows, csv_path)
    if as_json:
        from optimizer.cli.documents import compare_document, emit

        emit("compare", compare_document(rows))
        return
    for line in table_lines(rows):
        click.echo(line)
    if csv_path:
        click.echo(f"table written to {csv_path}")


@click.command()
@click.argument("layout", type=click.Path(dir_okay=False))
@output_option("Picture to write: .png, .svg, or .html for the interactive plan.")
@click.option("--scenario", default=None, help="The scenario to draw, for a study dataset.")
@click.option(
    "--instance",
    type=click.Path(dir_okay=False),
    default=None,
    help="The instance LAYOUT was solved from: adds each slot's power path to the .html plan.",
)
@click.option(
    "--colour-by",
    type=click.Choice(["type", "phase"]),
    default="type",
    show_default=True,
    help="Fill a .png or .svg plan's slots by rack type, or by the build-out phase each "
    "rack is installed in (a phased plan); the .html plan offers both in its menu.",
)
@strict_option
@common
def report(
    layout: str,
    output: str,
    scenario: str | None,
    instance: str | None,
    colour_by: str,
    strict: bool,
) -> None:
    """Draw the floor plan of LAYOUT with the utilization of every device, CDU and zone.

    .html writes an interactive plan (zoom, hover on a slot, colour modes; see
    docs/studies.md); .png and .svg a picture."""
    from optimizer.studies.power_paths import Wiring
    from optimizer.studies.report import write_report

    wiring = None
    if instance is not None:  # its lint warnings first, and under --strict before drawing
        wiring = Wiring(Path(instance), linted_site(instance, False, strict))

    warnings = write_report(Path(layout), Path(output), scenario, wiring, colour_by)
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"report written to {output}")
