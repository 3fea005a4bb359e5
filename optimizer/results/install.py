"""The install list of a wave: the racks a layout places that were not on the floor before.

A layout solved with ``--installed-from`` keeps every rack of the earlier layout (and of
the instance's ``installed:``) where it stands; what the crew installs in this wave is
everything else. The list is grouped by row, as racks are delivered and cabled row by
row, and written beside the layout as CSV (``hall,row,slot,rack_type``) through the one
write path with it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np

from optimizer.site.arrays import Site
from optimizer.verify.check import EMPTY

INSTALL_SUFFIX = ".install.csv"


@dataclass(frozen=True)
class NewRack:
    """One rack to install in this wave."""

    hall: str
    row: str
    slot: str
    rack_type: str


def install_path(layout: str | Path) -> Path:
    """Where the install list of the layout ``layout`` goes: ``L.nc`` -> ``L.install.csv``."""
    return Path(layout).with_suffix(INSTALL_SUFFIX)


def install_list(site: Site, placement: np.ndarray) -> list[NewRack]:
    """Racks of ``placement`` in slots ``site`` does not list as installed, in slot order."""
    return [
        NewRack(site.slot_hall[s], site.slot_row[s], site.slot_ids[s], site.rack_types[t].name)
        for s, t in enumerate(placement.tolist())
        if t != EMPTY and s not in site.installed
    ]


def install_lines(racks: list[NewRack], kept: int) -> list[str]:
    """The list as a planner reads it: per row, how many racks of each type and where."""
    lines = [f"install list: {len(racks)} new racks in this wave ({kept} kept where they stand)"]
    for (hall, row), in_row in groupby(racks, key=lambda r: (r.hall, r.row)):
        in_row = list(in_row)
        by_type = ", ".join(
            f"{len(list(group))} {name}"
            for name, group in groupby(
                sorted(in_row, key=lambda r: r.rack_type), lambda r: r.rack_type
            )
        )
        slots = " ".join(r.slot for r in in_row)
        lines.append(f"  {hall}/{row or '-'}: {by_type}: {slots}")
    return lines


def install_csv(racks: list[NewRack]) -> bytes:
    """The list as CSV with a header line, one rack per line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["hall", "row", "slot", "rack_type"])
    writer.writerows([r.hall, r.row, r.slot, r.rack_type] for r in racks)
    return buffer.getvalue().encode("utf-8")
