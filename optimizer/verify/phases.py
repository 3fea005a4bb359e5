"""Independent check of a phased plan: every phase against its own rules, and no rack
moved, removed or changed from one phase to the next.

Like :mod:`optimizer.verify.check`, this reads only the placements (a rack type per
slot in each phase) and, with a fabric, the plan's SUs, never the MILP. A plan has one
table of SUs for the whole build-out (an SU is installed whole and stays on its network
rack), so each phase's SUs are those of its racks (:func:`phase_sus`).
"""

from __future__ import annotations

import numpy as np

from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.placement import Assignment
from optimizer.verify.check import EMPTY, CheckReport, Violation, check_layout


def phase_sus(placement: np.ndarray, su: np.ndarray, su_network_slot: list[int]) -> Assignment:
    """One phase's layout with the plan's SUs that have a rack on the floor in it,
    renumbered 0.. in plan order. An SU only part of whose racks stand in the phase
    keeps just those (the check then finds it short), and one whose network rack comes
    later names a slot that holds none (the check finds that too)."""
    standing = (placement != EMPTY) & (su != NO_INDEX)
    present = sorted({int(i) for i in su[standing]})
    renumber = np.full(len(su_network_slot) + 1, NO_INDEX, dtype=np.int64)
    renumber[present] = np.arange(len(present))
    phase_su = np.where(standing, renumber[su], NO_INDEX)
    return Assignment(placement, phase_su, [su_network_slot[i] for i in present])


def check_phases(
    sites: list[Site],
    placements: list[np.ndarray],
    su: np.ndarray | None = None,
    su_network_slot: list[int] | None = None,
) -> list[CheckReport]:
    """One report per phase: :func:`check_layout` of the phase's placement on its site
    (with a fabric, with the SUs of ``su``/``su_network_slot``, the plan's table: SU id
    per slot and network rack slot per SU), and a ``phase-monotone`` violation for each
    rack of the phase before that is not in the same slot with the same type."""
    reports = []
    su = np.full(sites[0].n_slots, NO_INDEX, dtype=np.int64) if su is None else np.asarray(su)
    for p, (site, placement) in enumerate(zip(sites, placements, strict=True)):
        layout = phase_sus(placement, su, list(su_network_slot or []))
        report = check_layout(site, placement, layout.su, layout.su_network_slot)
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
