"""The facility commands: ``rackopt solve``, ``explain``, ``verify`` and ``next``."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from typing import TYPE_CHECKING

import click

from optimizer.cli.documents import json_option
from optimizer.cli.live import SolveStatus
from optimizer.cli.options import (
    common,
    exit_interrupted,
    instance_options,
    linted_site,
    linted_site_of,
    output_option,
    scheduler_options,
    search_options,
    show_warnings,
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
    from optimizer.site.arrays import Site
    from optimizer.solve.explain import DemandAsk
    from optimizer.studies.cluster import Cluster
    from optimizer.verify.headroom import NextRack


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
@scheduler_options("a campus's frontier solves (--campus-frontiers)")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors and lint warnings.")
@click.option(
    "--installed-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="An earlier layout (NetCDF or CSV) whose racks stay where they are; the next "
    "wave is placed around them and its install list written beside the layout.",
)
@json_option
@instance_options
@common
def solve(
    instance: str | None,
    output: str,
    settings: tuple[str, ...],
    study: str | None,
    scenario: str | None,
    options: SolveOptions,
    cluster: Cluster | None,
    quiet: bool,
    installed_from: str | None,
    as_json: bool,
    allow_paths_outside: bool,
    strict: bool,
) -> None:
    """Place racks in INSTANCE for the most GPUs and write the checked layout.

    What-if without editing a file: --set KEY=VALUE changes values of INSTANCE, and
    --study FILE --scenario NAME solves one scenario of a study."""
    from optimizer.output import check_target, write_files
    from optimizer.results.install import install_csv, install_lines, install_list, install_path
    from optimizer.results.layout import layout_dataset, layout_files, resolved_instance_path
    from optimizer.results.reader import read_layout
    from optimizer.results.summary import summary_lines
    from optimizer.site.demand import carry_forward
    from optimizer.solve.pipeline import solve_instance
    from optimizer.solve.progress import ctrl_c_stopped_a_solve
    from optimizer.studies.cluster import connect

    def carry(loaded: LoadedInstance, site: Site) -> Site:
        placement = read_layout(site, installed_from).placement
        return carry_forward(site, loaded.instance, placement, installed_from, loaded.locate_error)

    if installed_from is not None:
        check_target(install_path(output))
    if cluster is not None and not options.campus_frontiers:
        raise InstanceError(
            "--scheduler",
            "",
            "solve runs only a campus's frontier solves on a dask cluster",
            "add --campus-frontiers, or drop --scheduler",
        )
    loaded, options = _what_to_solve(
        instance, settings, study, scenario, options, allow_paths_outside
    )
    client = None if cluster is None else connect(cluster)
    status = None if quiet else SolveStatus()
    try:
        report = solve_instance(
            loaded or str(instance),
            options,
            status,
            allow_paths_outside,
            lambda site: show_warnings([("", site.warnings)], strict, str(instance or study)),
            carry if installed_from is not None else None,
            client,
        )
    finally:
        if status is not None:  # end the progress line, also before an error
            status.close()
        if client is not None:
            client.close()
    ds = layout_dataset(report)
    files = layout_files(ds, output, loaded)
    new_racks = install_list(report.site, report.placement)
    if installed_from is not None:
        files[install_path(output)] = install_csv(new_racks)
    write_files(files)
    if as_json:
        from optimizer.cli.documents import emit, solve_document

        emit("solve", solve_document(ds, output))
    elif not quiet:
        for line in summary_lines(report):
            click.echo(line)
        if installed_from is not None:
            for line in install_lines(new_racks, len(report.site.installed)):
                click.echo(line)
            click.echo(f"install list written to {install_path(output)}")
        click.echo(f"layout written to {output}")
        if loaded is not None:
            click.echo(
                f"resolved instance written to {resolved_instance_path(output)} "
                "(verify the layout with it)"
            )
    if report.outcome.status == "interrupted" or ctrl_c_stopped_a_solve():
        # (Ctrl-C in the second stage leaves the primary's status, and the layout.)
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
    # As batch solves it (optimizer.studies.batch.run_batch): parts are never split, and
    # the scenario's own solve: settings replace the command line's.
    return chosen.loaded, chosen.options(dataclasses.replace(options, split_parts=False))


def _demand_asks(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[DemandAsk]:
    """``TYPE=N`` (a minimum of N) or ``TYPE=+N`` (N more than asked now) per --demand."""
    from optimizer.solve.explain import DemandAsk

    asks = []
    for value in values:
        name, sep, count = value.partition("=")
        digits = count.removeprefix("+")
        if not sep or not name.strip() or not digits.isdigit():
            raise click.BadParameter(
                f"{value!r} is not TYPE=N or TYPE=+N (for example gb300-nvl72=+8)"
            )
        asks.append(DemandAsk(name.strip(), int(digits), count.startswith("+")))
    return asks


@click.command(name="explain")
@click.argument("instance", type=click.Path(dir_okay=False))
@click.option(
    "--demand",
    "asks",
    multiple=True,
    callback=_demand_asks,
    metavar="TYPE=N",
    help="Ask about another demand without editing INSTANCE: TYPE=N sets the minimum of "
    "TYPE to N, TYPE=+N asks for N more than now (its minimum, or its installed racks "
    "if more). Repeatable.",
)
@search_options
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@json_option
@instance_options
@common
def explain_command(
    instance: str,
    asks: list[DemandAsk],
    options: SolveOptions,
    quiet: bool,
    as_json: bool,
    allow_paths_outside: bool,
    strict: bool,
) -> None:
    """Say which resources fall short of INSTANCE's demand minimums (or of --demand), and
    by how much."""
    from optimizer.results.summary import fitted
    from optimizer.solve.explain import asked_site, demand_text, explain

    site = asked_site(linted_site(instance, allow_paths_outside, strict), asks)
    if not quiet and sys.stderr.isatty():  # a log gets the periodic lines alone
        click.echo(f"explain: looking for what {demand_text(site)} would lack ...", err=True)
    status = None if quiet else SolveStatus()
    try:
        shortfalls = explain(site, options, status)
    finally:
        if status is not None:
            status.close()
    if as_json:
        from optimizer.cli.documents import emit, explain_document

        emit("explain", explain_document(site, demand_text(site), shortfalls))
        if shortfalls:
            sys.exit(EXIT_INFEASIBLE)
        return
    if not shortfalls:
        click.echo(
            f"{site.name}: the demand minimums ({demand_text(site)}) fit; nothing falls short"
        )
        return
    click.echo(f"{site.name}: to place {demand_text(site)}, these resources fall short:")
    for shortfall in shortfalls:
        for line in fitted(f"  {shortfall.describe()}"):
            click.echo(line)
    sys.exit(EXIT_INFEASIBLE)


@click.command()
@click.argument("instance", type=click.Path(dir_okay=False))
@click.argument("layout", type=click.Path(dir_okay=False))
@json_option
@instance_options
@common
def verify(
    instance: str, layout: str, as_json: bool, allow_paths_outside: bool, strict: bool
) -> None:
    """Check LAYOUT (rackopt NetCDF, or CSV slot,rack_type) against every rule of INSTANCE."""
    from optimizer import api
    from optimizer.instance.loader import load_instance

    loaded = load_instance(instance, allow_paths_outside)  # read once: phases or not
    if loaded.instance.phases:
        if as_json:
            raise InstanceError(
                "--json", "", "a plan of a phased build-out is verified as text only", "drop --json"
            )
        _verify_phases(loaded, layout, strict)
        return
    site = linted_site_of(loaded, instance, strict)
    checked = api.verify_site(site, layout)
    report, racks = checked.report, checked.racks
    if as_json:
        from optimizer.cli.documents import emit, verify_document

        emit("verify", verify_document(site, layout, racks, report))
        if not report.ok:
            sys.exit(EXIT_VIOLATIONS)
        return
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


def _verify_phases(loaded: LoadedInstance, layout: str, strict: bool) -> None:
    """``verify`` of a plan of a phased build-out: every phase's placement (each rack from
    its ``install_phase`` on, with a fabric the SUs of its racks) against that phase's
    rules, and no rack moved. The lint
    reads the finished facility, as ``solve`` does."""
    from optimizer.results.reader import read_layout
    from optimizer.site.phases import phased_site
    from optimizer.verify.phases import check_phases, phase_placements

    phased = phased_site(loaded)
    show_warnings([("", phased.final.warnings)], strict, str(loaded.path))
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
    reports = check_phases(
        [p.site for p in phased.phases], placements, placed.su, placed.su_network_slot
    )
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
@json_option
@instance_options
@common
def next_command(
    instance: str,
    layout: str,
    type_name: str,
    top: int,
    as_json: bool,
    allow_paths_outside: bool,
    strict: bool,
) -> None:
    """Rank the places in LAYOUT for one more rack of --type (one more whole SU with its
    network rack, for a type that grows by SUs), naming what blocks the others and by how
    much."""
    from optimizer.results.reader import read_layout
    from optimizer.verify.headroom import next_rack

    site = linted_site(instance, allow_paths_outside, strict)
    names = [t.name for t in site.rack_types]
    if type_name not in names:
        raise InstanceError(
            "--type", "", f"unknown rack type {type_name!r}", did_you_mean(type_name, names)
        )
    answer = next_rack(site, read_layout(site, layout), type_name)
    if as_json:
        from optimizer.cli.documents import emit, next_document

        emit("next", next_document(site, layout, answer, top))
        return
    for line in next_lines(answer, top):
        click.echo(line)


def next_lines(answer: NextRack, top: int) -> list[str]:
    """``next``'s answer as text: the best places, or the closest blocked ones with their
    binding limit and margin; then what blocks how many places, at least by how much."""
    from optimizer.verify.resources import amount

    name = answer.rack_type
    unit = f"SU of {answer.racks} {name}" if answer.racks > 1 else name
    where = "places" if answer.racks > 1 else "slots"
    width = max((len(c.place.describe()) for c in answer.ranked[:top]), default=0)
    lines = []
    if answer.ranked:
        lines.append(f"best {where} for one more {unit} (tightest resource after adding it):")
        for c in answer.ranked[:top]:
            lines.append(f"  {c.place.describe():<{width}} {c.utilization:7.1%}  {c.tightest}")
        if len(answer.ranked) > top:
            lines.append(f"  ... {len(answer.ranked) - top} more {where} fit")
    elif answer.no_room:
        lines.append(f"no place for one more {unit}: {answer.no_room}")
    else:
        nowhere = "no place" if answer.racks > 1 else "no empty slot"
        lines.append(f"{nowhere} takes one more {unit}; the closest, over by:")
        for b in answer.closest()[:top]:
            lines.extend(
                textwrap.wrap(
                    f"{b.place.describe()}: {b.binding} by {amount(b.excess, b.unit)}",
                    80,
                    initial_indent="  ",
                    subsequent_indent="      ",
                )
            )
    for binding, count, closest in answer.blocked_by()[:5]:
        lines.extend(
            textwrap.wrap(
                f"blocked in {count} {where} by {binding}: over by "
                f"{amount(closest.excess, closest.unit)} or more",
                80,
                initial_indent="  ",
                subsequent_indent="      ",
            )
        )
    if answer.tried < answer.places:
        lines.append(f"  ({answer.tried} of {answer.places} {where} tried, spread over the floor)")
    return lines
