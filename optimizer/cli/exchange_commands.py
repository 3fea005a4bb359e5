"""Commands that move data between rackopt and the planner's other tools:
``rackopt import-netbox`` (a facility from NetBox's exports) and ``rackopt export``
(a layout in another tool's format, or its tidy tables; one exporter per ``--to`` format
in ``EXPORTERS``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from optimizer.cli.options import common, output_option
from optimizer.errors import InstanceError
from optimizer.output import check_folder, check_target

Exporter = Callable[[str, str, dict[str, Any]], tuple[list[Path], list[str]]]
"""(layout path, output, command-line options) -> (files written, warnings)."""


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@click.command(name="import-netbox")
@click.argument("exports", nargs=-1, required=True, type=click.Path())
@output_option(
    "Instance fragment to write (YAML); its slot tables (FRAGMENT.HALL.csv) and NetBox map "
    "(FRAGMENT.netbox.json) are written beside it."
)
@click.option(
    "--floor-plan",
    type=click.Path(dir_okay=False),
    help="CSV of rack, location, row, position, x_m, y_m, air_zone, cdu, liquid, floor_kg, "
    "air_kw_max, primary_share, network: what NetBox does not hold.",
)
@click.option("--site", help="NetBox site to import when the exports hold several.")
@common
def import_netbox_command(
    exports: tuple[str, ...], output: str, floor_plan: str | None, site: str | None
) -> None:
    """Write an instance fragment from NetBox exports (files or folders of API JSON or UI CSV:
    sites, locations, racks, power panels, power feeds)."""
    from optimizer.instance.netbox_fragment import import_netbox

    facility, files = import_netbox(exports, output, floor_plan, site)
    _warn(facility.warnings)
    feeds = sum(len(group) for group in facility.panels.values())
    click.echo(
        f"NetBox site {facility.site}: {len(facility.slots)} racks in {len(facility.halls)} "
        f"halls, {feeds} power feeds on {len(facility.panels)} panels"
    )
    for path in files:
        click.echo(f"  wrote {path}")
    zones, cdus = facility.needed_ids()
    needed = f"air zones {', '.join(zones)}" + (f", CDU groups {', '.join(cdus)}" if cdus else "")
    click.echo(
        f"next: write an instance with `include: [{Path(output).name}]` that defines {needed}, "
        "rack_types and demand (see the comment at the top of the fragment)"
    )


def _netbox(layout: str, output: str, options: dict[str, Any]) -> tuple[list[Path], list[str]]:
    from optimizer.results.netbox import NetBoxNames, export_netbox

    if not options.get("netbox_map"):
        raise InstanceError(
            "--netbox-map",
            "",
            "--to netbox needs the NetBox map of the import",
            "give --netbox-map FRAGMENT.netbox.json, written by rackopt import-netbox",
        )
    names = NetBoxNames(options["manufacturer"], options["role"], not options["unracked"])
    return export_netbox(layout, options["netbox_map"], output, names)


def _tables(to: str) -> Exporter:
    """The tidy tables of a layout or study (docs/output-format.md section 10)."""

    def export(layout: str, output: str, _options: dict[str, Any]) -> tuple[list[Path], list[str]]:
        from optimizer.studies.tables import export_tables

        return export_tables(layout, to, output), []

    return export


EXPORTERS: dict[str, Exporter] = {
    "netbox": _netbox,
    **{to: _tables(to) for to in ("csv", "xlsx", "json")},
}
DEFAULT_OUTPUT = {"csv": "{stem}.tables", "xlsx": "{stem}.xlsx", "json": "{stem}.tables.json"}
"""Where a table export goes without -o: beside the layout."""
FOLDER_FORMATS = ("csv", "netbox")
"""The formats whose -o is a folder of files."""


@click.command(name="export")
@click.argument("layout", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=click.Choice(sorted(EXPORTERS)), required=True, help="Format.")
@click.option(
    "-o",
    "--output",
    help="csv, netbox: folder to write the files into; xlsx, json: the file. Default for "
    "csv, xlsx, json: beside LAYOUT (LAYOUT.tables/, LAYOUT.xlsx, LAYOUT.tables.json).",
)
@click.option(
    "--netbox-map",
    type=click.Path(dir_okay=False),
    help="netbox: the FRAGMENT.netbox.json rackopt import-netbox wrote.",
)
@click.option(
    "--manufacturer",
    default="Generic",
    show_default=True,
    help="netbox: manufacturer of the device types (each rack type's id is a device type).",
)
@click.option("--role", help="netbox: device role of every device (default: its rack type's id).")
@click.option(
    "--unracked", is_flag=True, help="netbox: no rack position or face (the device is in the rack)."
)
@common
def export_command(layout: str, to: str, output: str | None, **options: Any) -> None:
    """Write LAYOUT in another tool's format: its tables, one per entity (--to csv, xlsx,
    json), or NetBox bulk-import CSV (--to netbox)."""
    if output is None:
        if to not in DEFAULT_OUTPUT:
            raise InstanceError("-o", "", f"--to {to} needs -o", "give -o FOLDER")
        path = Path(layout)
        output = str(path.with_name(DEFAULT_OUTPUT[to].format(stem=path.stem)))
    # Before any work: the file, or the folder (csv, netbox), can be written.
    (check_folder if to in FOLDER_FORMATS else check_target)(output)
    files, warnings = EXPORTERS[to](layout, output, options)
    _warn(warnings)
    for path in files:
        click.echo(f"wrote {path}")
