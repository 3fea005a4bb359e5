"""The facility commands: ``rackopt solve``, ``explain``, ``verify`` and ``next``."""

from __future__ import annotations

import sys

import click

from optimizer.cli.live import SolveStatus
from optimizer.cli.options import (
    common,
    exit_interrupted,
    output_option,
    paths_option,
    search_options,
    solver_options,
)
from optimizer.errors import EXIT_INFEASIBLE, EXIT_VIOLATIONS
from optimizer.solve.options import SolveOptions


@click.command()
@click.argument("instance", type=click.Path(dir_okay=False))
@output_option("Layout file to write (NetCDF).")
@solver_options
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@paths_option
@common
def solve(
    instance: str, output: str, options: SolveOptions, quiet: bool, allow_paths_outside: bool
) -> None:
    """Place racks in INSTANCE for the most GPUs and write the checked layout."""
    from optimizer.results.layout import layout_dataset, write_layout
    from optimizer.results.summary import summary_lines
    from optimizer.solve.pipeline import solve_instance

    status = None if quiet else SolveStatus()
    try:
        report = solve_instance(instance, options, status, allow_paths_outside)
    finally:
        if status is not None:  # end the progress line, also before an error
            status.close()
    write_layout(layout_dataset(report), output)
    if not quiet:
        for line in summary_lines(report):
            click.echo(line)
        click.echo(f"layout written to {output}")
    if report.outcome.status == "interrupted":
        click.secho("interrupted: the best layout found so far was written", fg="yellow", err=True)
        exit_interrupted()


@click.command(name="explain")
@click.argument("instance", type=click.Path(dir_okay=False))
@search_options
@paths_option
@common
def explain_command(instance: str, options: SolveOptions, allow_paths_outside: bool) -> None:
    """Say which resources fall short of INSTANCE's demand minimums, and by how much."""
    from optimizer.instance.loader import load_instance
    from optimizer.site.build import build_site
    from optimizer.solve.explain import demand_text, explain

    site = build_site(load_instance(instance, allow_paths_outside))
    shortfalls = explain(site, options)
    if not shortfalls:
        click.echo(
            f"{site.name}: the demand minimums ({demand_text(site)}) fit; nothing falls short"
        )
        return
    click.echo(f"{site.name}: to place {demand_text(site)}, these resources fall short:")
    for shortfall in shortfalls:
        click.echo(f"  {shortfall.describe()}")
    sys.exit(EXIT_INFEASIBLE)


@click.command()
@click.argument("instance", type=click.Path(dir_okay=False))
@click.argument("layout", type=click.Path(dir_okay=False))
@paths_option
@common
def verify(instance: str, layout: str, allow_paths_outside: bool) -> None:
    """Check LAYOUT (rackopt NetCDF, or CSV slot,rack_type) against every rule of INSTANCE."""
    from optimizer.instance.loader import load_instance
    from optimizer.results.reader import read_layout
    from optimizer.site.build import build_site
    from optimizer.verify.check import check_layout

    site = build_site(load_instance(instance, allow_paths_outside))
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


@click.command(name="next")
@click.argument("instance", type=click.Path(dir_okay=False))
@click.argument("layout", type=click.Path(dir_okay=False))
@click.option("--type", "type_name", required=True, help="Rack type of the next rack.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@paths_option
@common
def next_command(
    instance: str, layout: str, type_name: str, top: int, allow_paths_outside: bool
) -> None:
    """Rank the empty slots of LAYOUT for one more rack of --type."""
    from optimizer.errors import InstanceError, did_you_mean
    from optimizer.instance.loader import load_instance
    from optimizer.results.reader import read_layout
    from optimizer.site.build import build_site
    from optimizer.verify.headroom import next_rack

    site = build_site(load_instance(instance, allow_paths_outside))
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
