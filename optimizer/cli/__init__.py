"""The ``rackopt`` command line: the click group and the commands registered on it.

Each command module only talks to the user; the work happens in the stage packages.
Shared options, the one-line error handling and the exit codes live in
:mod:`optimizer.cli.options`.
"""

from __future__ import annotations

import click

from optimizer import __version__
from optimizer.cli.exchange_commands import export_command, import_netbox_command
from optimizer.cli.solve_commands import explain_command, next_command, solve, verify
from optimizer.cli.study_commands import batch, compare_command, report


@click.group()
@click.version_option(__version__, prog_name="rackopt")
def main() -> None:
    """rackopt: provably optimal placement of AI racks in a data hall."""


for _command in (
    solve,
    explain_command,
    verify,
    next_command,
    batch,
    compare_command,
    report,
    import_netbox_command,
    export_command,
):
    main.add_command(_command)
