"""The facility commands: ``rackopt solve``, ``explain``, ``verify`` and ``next``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from optimizer.cli.options import (
    common,
    output_option,
    paths_option,
    progress_printer,
    search_options,
    solver_options,
)
from optimizer.errors import EXIT_INFEASIBLE, EXIT_INTERRUPTED, EXIT_VIOLATIONS
from optimizer.solve.options import SolveOptions

if TYPE_CHECKING:
    from optimizer.instance.loader import LoadedInstance


@click.command()
@click.argument("instance", type=click.Path(dir_okay=False))
@output_option("Layout file to write (NetCDF).")
@solver_options
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--installed-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="An earlier layout (NetCDF or CSV) whose racks stay where they are; the next "
    "wave is placed around them and its install list written beside the layout.",
)
@paths_option
@common
def solve(
    instance: str,
    output: str,
    options: SolveOptions,
    quiet: bool,
    installed_from: str | None,
    allow_paths_outside: bool,
) -> None:
    """Place racks in INSTANCE for the most GPUs and write the checked layout."""
    from optimizer.output import check_target, write_files
    from optimizer.results.install import install_csv, install_lines, install_list, install_path
    from optimizer.results.layout import layout_dataset, netcdf_bytes
    from optimizer.results.reader import read_layout
    from optimizer.results.summary import summary_lines
    from optimizer.site.arrays import Site
    from optimizer.site.demand import carry_forward
    from optimizer.solve.pipeline import solve_instance

    def carry(loaded: LoadedInstance, site: Site) -> Site:
        placement = read_layout(site, installed_from).placement
        return carry_forward(site, loaded.instance, placement, installed_from, loaded.locate_error)

    if installed_from is not None:
        check_target(install_path(output))
    live = sys.stderr.isatty() and not quiet
    try:
        report = solve_instance(
            instance,
            options,
            progress_printer(quiet),
            allow_paths_outside,
            carry if installed_from is not None else None,
        )
    finally:
        if live:  # end the progress line, also before an error
            click.echo("", err=True)
    files = {output: netcdf_bytes(layout_dataset(report), output)}
    new_racks = install_list(report.site, report.placement)
    if installed_from is not None:
        files[install_path(output)] = install_csv(new_racks)
    write_files(files)
    if not quiet:
        for line in summary_lines(report):
            click.echo(line)
        if installed_from is not None:
            for line in install_lines(new_racks, len(report.site.installed)):
                click.echo(line)
            click.echo(f"install list written to {install_path(output)}")
        click.echo(f"layout written to {output}")
    if report.outcome.status == "interrupted":
        click.secho("interrupted: the best layout found so far was written", fg="yellow", err=True)
        sys.exit(EXIT_INTERRUPTED)


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

    loaded = load_instance(instance, allow_paths_outside)
    if loaded.instance.phases:
        _verify_phases(loaded, layout)
        return
    site = build_site(loaded)
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


def _verify_phases(loaded: LoadedInstance, layout: str) -> None:
    """``verify`` of a plan of a phased build-out: every phase's placement (each rack from
    its ``install_phase`` on) against that phase's rules, and no rack moved."""
    from optimizer.errors import InstanceError
    from optimizer.results.reader import read_layout
    from optimizer.site.phases import phased_site
    from optimizer.verify.phases import check_phases, phase_placements

    phased = phased_site(loaded)
    placed = read_layout(phased.final, layout)
    placements = phase_placements(
        phased.final.slot_ids, placed.placement, placed.install_phase, phased.names
    )
    if isinstance(placements, str):
        raise InstanceError(
            layout,
            "install_phase",
            placements,
            "give the plan rackopt solve wrote for this instance, or a CSV column "
            "install_phase naming each rack's phase",
        )
    reports = check_phases([p.site for p in phased.phases], placements)
    broken = 0
    for phase, placement, report in zip(phased.phases, placements, reports, strict=True):
        racks = int((placement >= 0).sum())
        if report.ok:
            click.echo(
                f"{layout}: phase {phase.name}: {racks} racks pass every rule "
                f"(IT {report.loads.it_kw / 1000:.3f} MW, facility "
                f"{report.loads.facility_kw / 1000:.3f} MW)"
            )
            continue
        broken += len(report.violations)
        click.echo(f"{layout}: phase {phase.name}: {len(report.violations)} violations:")
        for violation in report.violations:
            click.echo(f"  {violation.describe()}")
    if broken:
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
