"""Independent check of a phased plan: every phase against its own rules, and no rack
moved, removed or changed from one phase to the next.

Like :mod:`optimizer.verify.check`, this reads only the placements (a rack type per
slot in each phase), never the MILP.
"""

from __future__ import annotations

import numpy as np

from optimizer.site.arrays import Site
from optimizer.verify.check import EMPTY, CheckReport, Violation, check_layout


def check_phases(sites: list[Site], placements: list[np.ndarray]) -> list[CheckReport]:
    """One report per phase: :func:`check_layout` of the phase's placement on its site, and
    a ``phase-monotone`` violation for each rack of the phase before that is not in the
    same slot with the same type."""
    reports = []
    for p, (site, placement) in enumerate(zip(sites, placements, strict=True)):
        report = check_layout(site, placement)
        if p:
            before = placements[p - 1]
            for s in np.flatnonzero((before != EMPTY) & (placement != before)):
                kind = site.rack_types[int(before[s])].name
                now = "empty" if placement[s] == EMPTY else site.rack_types[int(placement[s])].name
                report.violations.append(
                    Violation(
                        "phase-monotone",
                        f"{kind} placed in {site.slot_ids[s]} is {now} in a later phase",
                        1,
                        0,
                        "racks",
                    )
                )
        reports.append(report)
    return reports


def phase_placements(
    slot_ids: tuple[str, ...], placement: np.ndarray, install_phase: list[str], names: list[str]
) -> list[np.ndarray] | str:
    """The placement of every phase of a plan read back from a file (``names``: the
    instance's phases, in order): a rack is on the floor from its install phase on. A
    text saying what is wrong when a placed rack has no install phase, or one the
    instance does not list."""
    index = {name: p for p, name in enumerate(names)}
    first = np.full(len(placement), len(names), dtype=np.int64)
    for s in np.flatnonzero(placement != EMPTY):
        name = install_phase[s] if install_phase else ""
        if name not in index:
            return (
                f"the rack in {slot_ids[s]} has install_phase {name!r}, which is not a phase "
                f"of the instance ({', '.join(names)})"
            )
        first[s] = index[name]
    return [np.where(first <= p, placement, EMPTY) for p in range(len(names))]
