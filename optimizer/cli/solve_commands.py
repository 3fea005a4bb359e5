"""The facility commands: ``rackopt solve``, ``explain``, ``verify`` and ``next``."""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING

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
from optimizer.errors import (
    EXIT_INFEASIBLE,
    EXIT_VIOLATIONS,
    InstanceError,
    choices,
    did_you_mean,
)
from optimizer.solve.options import SolveOptions

if TYPE_CHECKING:
    from optimizer.instance.loader import LoadedInstance


@click.command()
@click.argument("instance", type=click.Path(dir_okay=False), required=False)
@output_option("Layout file to write (NetCDF).")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one value of INSTANCE by its dotted key, as a study does "
    "(power.devices.UPS-A.rating_kw=600); VALUE is read as YAML. Repeatable. The "
    "resolved instance is written beside the layout as NAME.instance.yaml.",
)
@click.option(
    "--study",
    type=click.Path(dir_okay=False),
    default=None,
    help="Solve one scenario of this study file (with --scenario) instead of INSTANCE.",
)
@click.option(
    "--scenario",
    default=None,
    metavar="NAME",
    help="The study scenario to solve, exactly as batch would (parts never split); its "
    "resolved instance is written beside the layout as NAME.instance.yaml.",
)
@solver_options
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@paths_option
@common
def solve(
    instance: str | None,
    output: str,
    settings: tuple[str, ...],
    study: str | None,
    scenario: str | None,
    options: SolveOptions,
    quiet: bool,
    allow_paths_outside: bool,
) -> None:
    """Place racks in INSTANCE for the most GPUs and write the checked layout.

    What-if without editing a file: --set KEY=VALUE changes values of INSTANCE, and
    --study FILE --scenario NAME solves one scenario of a study."""
    from optimizer.results.layout import layout_dataset, write_layout, write_layout_and_instance
    from optimizer.results.summary import summary_lines
    from optimizer.solve.pipeline import solve_instance

    loaded, options = _what_to_solve(
        instance, settings, study, scenario, options, allow_paths_outside
    )
    status = None if quiet else SolveStatus()
    try:
        report = solve_instance(loaded or str(instance), options, status, allow_paths_outside)
    finally:
        if status is not None:  # end the progress line, also before an error
            status.close()
    if loaded is None:
        write_layout(layout_dataset(report), output)
    else:
        resolved = write_layout_and_instance(layout_dataset(report), output, loaded)
    if not quiet:
        for line in summary_lines(report):
            click.echo(line)
        click.echo(f"layout written to {output}")
        if loaded is not None:
            click.echo(f"resolved instance written to {resolved} (verify the layout with it)")
    if report.outcome.status == "interrupted":
        click.secho("interrupted: the best layout found so far was written", fg="yellow", err=True)
        exit_interrupted()


def _what_to_solve(
    instance: str | None,
    settings: tuple[str, ...],
    study: str | None,
    scenario: str | None,
    options: SolveOptions,
    allow_paths_outside: bool,
) -> tuple[LoadedInstance | None, SolveOptions]:
    """The instance ``solve`` was asked for, loaded when --set or --scenario changes it
    (None: INSTANCE as it is), and the options to solve it with."""
    from optimizer.instance.overrides import load_with_settings
    from optimizer.studies.study import load_study

    if study is None:
        if scenario is not None:
            raise InstanceError("--scenario", "", "needs --study", "add --study STUDY.yaml")
        if instance is None:
            raise InstanceError(
                "solve", "", "no instance given", "give INSTANCE, or --study and --scenario"
            )
        if not settings:
            return None, options
        return load_with_settings(instance, settings, allow_paths_outside), options
    if instance is not None or settings:
        raise InstanceError(
            "--study",
            "",
            "solves a study scenario as the study defines it, so it takes no INSTANCE or --set",
            "add the change to the study as an override, or solve the base with --set",
        )
    loaded_study = load_study(study, allow_paths_outside)
    names = [sc.name for sc in loaded_study.scenarios]
    if scenario not in names:
        problem = "needs --scenario" if scenario is None else f"unknown scenario {scenario!r}"
        fix = f"use one of: {choices(names)}" if scenario is None else did_you_mean(scenario, names)
        raise InstanceError(study, "--scenario", problem, fix)
    chosen = loaded_study.scenarios[names.index(scenario)]
    # As batch solves it (optimizer.studies.batch.run_batch): parts are never split.
    return chosen.loaded, dataclasses.replace(options, split_parts=False)


@click.command(name="explain")
@click.argument("instance", type=click.Path(dir_okay=False))
@search_options
@paths_option
@common
def explain_command(instance: str, options: SolveOptions, allow_paths_outside: bool) -> None:
    """Say which resources fall short of INSTANCE's demand minimums, and by how much.

    While it works, a progress line on stderr shows the elastic solve (its objective is
    the sum of relative overflows)."""
    from optimizer.instance.loader import load_instance
    from optimizer.site.build import build_site
    from optimizer.solve.explain import demand_text, explain

    site = build_site(load_instance(instance, allow_paths_outside))
    status = SolveStatus()
    try:
        shortfalls = explain(site, options, status)
    finally:
        status.close()
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
