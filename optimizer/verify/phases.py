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
