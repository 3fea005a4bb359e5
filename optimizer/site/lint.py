"""Instance lint: wiring and demand that is valid but almost surely not what was meant.

An instance can pass every rule and still describe a facility the planner did not
intend, and the optimum then quietly differs from the one expected: two cords of a rack
wired under one UPS (the rack goes dark when it fails, which the failover rule accepts),
a CDU no slot names, a demanded rack type that no slot can hold even alone. These are
warnings, not errors, because each can be deliberate; ``--strict`` makes them input
errors. Each warning is located and worded like an error (``file:line: field: problem
(fix: ...)``), since it is produced by the same locating code, and is computed once,
when the site is built (:func:`optimizer.site.build.build_site`), so every command that
reads an instance sees the same warnings.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from optimizer.instance.loader import LoadedInstance
from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.demand import misfit
from optimizer.site.power_tree import NO_PARENT
from optimizer.site.slots import SlotRecord

_MARGIN = 1e-6
"""Relative margin before a single rack counts as over a limit (as the checker's)."""


def lint(loaded: LoadedInstance, records: list[SlotRecord], site: Site) -> tuple[str, ...]:
    """Every warning for the instance ``site`` was built from, in a fixed order: wiring
    that defeats redundancy, then what feeds or cools nothing, then demand that fits
    nowhere."""
    return (
        *_shared_failures(loaded, records, site),
        *_idle_devices(loaded, site),
        *_idle_cooling(loaded, site),
        *_unplaceable_types(loaded, site),
    )


def _shared_failure(site: Site, a: int, b: int) -> int:
    """The lowest device that can fail and lies on the paths of both feeds ``a`` and
    ``b``: its failure takes down both cords. NO_INDEX when there is none."""
    above_b = set(site.power_tree.path(b))
    return next(
        (d for d in site.power_tree.path(a) if d in above_b and site.device_can_fail[d]),
        NO_INDEX,
    )


def _shared_failures(
    loaded: LoadedInstance, records: list[SlotRecord], site: Site
) -> Iterator[str]:
    """Dual-corded slots whose two feeds hang below one device that can fail, one warning
    per place the feeds were written (a row's defaults, an override, a slot table)."""
    found: dict[tuple, tuple[SlotRecord, int, list[str]]] = {}
    shared: dict[tuple[int, int], int] = {}  # a facility has few distinct feed pairs
    for s in np.flatnonzero(site.slot_feeds[:, 1] != NO_INDEX):
        a, b = (int(f) for f in site.slot_feeds[s])
        if (a, b) not in shared:
            shared[a, b] = _shared_failure(site, a, b)
        common = shared[a, b]
        if common == NO_INDEX:
            continue
        source = records[s].source
        if source.table is not None:
            key: tuple = (source.table[0], a, b)
        elif "feeds" in source.override_fields:
            key = source.override or ()
        else:
            key = source.path
        found.setdefault(key, (records[s], common, []))[2].append(site.slot_ids[s])
    for first, common, slots in found.values():
        a_id, b_id = first.props.feeds or ("", "")
        device = site.device_ids[common]
        where = f"slot {slots[0]}" if len(slots) == 1 else f"{len(slots)} slots ({slots[0]} ...)"
        yield str(
            first.source.error(
                "feeds",
                f"{where}: both feeds {a_id} and {b_id} are below {device}, whose failure "
                "darkens the rack: no redundancy against it",
                f"feed the two cords from branches that share no device that can fail, "
                f"or set can_fail: false on {device} if it cannot fail as a whole",
                loaded.locate_error,
            )
        )


def _idle_devices(loaded: LoadedInstance, site: Site) -> Iterator[str]:
    """Devices with no slot fed at or below them; a whole idle branch is one warning, at
    its top device."""
    tree = site.power_tree
    feeds = site.slot_feeds[site.slot_feeds != NO_INDEX]
    reached = np.sort(tree.first[np.unique(feeds)])
    below = np.searchsorted(reached, tree.last, "right") - np.searchsorted(reached, tree.first)
    idle = below == 0
    for d in np.flatnonzero(idle):
        parent = int(tree.parent[d])
        if parent != NO_PARENT and idle[parent]:
            continue  # part of a branch reported at its top
        under = int(tree.last[d] - tree.first[d])
        device = site.device_ids[d]
        yield str(
            loaded.locate_error(
                ("power", "devices", device),
                f"device {device} feeds no slot"
                + (f", nor do the {under} devices below it" if under else ""),
                "name it (or a device below it) in some slot's feeds, or remove it",
            )
        )


def _idle_cooling(loaded: LoadedInstance, site: Site) -> Iterator[str]:
    """CDU groups and air zones that no slot names."""
    for section, what, ids, used in (
        ("cdus", "CDU group", site.cdu_ids, site.slot_cdu),
        ("air_zones", "air zone", site.air_zone_ids, site.slot_air_zone),
    ):
        field = "cdu" if section == "cdus" else "air_zone"
        for i in np.setdiff1d(np.arange(len(ids)), used):
            yield str(
                loaded.locate_error(
                    ("cooling", section, ids[i]),
                    f"{what} {ids[i]} cools no slot",
                    f"name it as some slot's {field}, or remove it",
                )
            )


def _unplaceable_types(loaded: LoadedInstance, site: Site) -> Iterator[str]:
    """Rack types the solve may place (a demand maximum above 0, or network racks) that
    no slot can take: none passes the slot rules, or in every slot that does, one rack
    alone is over a device, CDU or air-zone limit. The optimum then holds none of them."""
    demand = loaded.instance.demand
    for t, spec in enumerate(site.rack_types):
        if site.demand_max[t] == 0 or not (spec.name in demand or site.is_network_type(t)):
            continue
        field = ("demand", spec.name) if spec.name in demand else ("rack_types", spec.name)
        slots = site.eligible[:, t]
        if not slots.any():
            every = np.ones(site.n_slots, dtype=bool)
            yield str(loaded.locate_error(field, *misfit(site, t, every, "any slot")))
            continue
        candidates = np.flatnonzero(slots)
        if any(not _alone_over(site, t, int(s)) for s in candidates):
            continue
        yield str(
            loaded.locate_error(
                field,
                f"no slot can hold even one {spec.name}: in each of the {len(candidates)} "
                f"slots its rules allow, one rack alone is over a limit "
                f"({_alone_over(site, t, int(candidates[0]))})",
                "raise that capacity, or use a rack type that fits",
            )
        )


def _alone_over(site: Site, t: int, s: int) -> str:
    """The first limit one rack of type ``t`` alone in slot ``s`` would exceed (a device
    in normal operation or when one feed's device fails, its CDU group's heat or flow,
    its air zone), as text; empty when it is within all of them."""
    spec = site.rack_types[t]
    checks: list[tuple[str, float, float]] = []
    a, b = (int(f) for f in site.slot_feeds[s])
    share = site.slot_primary_share[s]
    load: dict[int, float] = {}
    for feed, part in ((a, share), (b, 1.0 - share)):
        if feed != NO_INDEX:
            for d in site.power_tree.path(feed):
                load[d] = load.get(d, 0.0) + part * spec.it_kw
    for d, kw in load.items():
        checks.append((f"{site.device_ids[d]} normal limit", kw, site.device_limit_kw[d]))
    if b != NO_INDEX:
        path_a, path_b = site.power_tree.path(a), site.power_tree.path(b)
        for lost, kept in ((path_a, path_b), (path_b, path_a)):
            if any(site.device_can_fail[d] and d not in kept for d in lost):
                checks.extend(
                    (
                        f"{site.device_ids[d]} failover limit",
                        spec.it_kw,
                        site.device_failover_limit_kw[d],
                    )
                    for d in kept
                )
    cdu = site.slot_cdu[s]
    if spec.needs_liquid and cdu != NO_INDEX:
        name = site.cdu_ids[cdu]
        checks.append((f"{name} heat", spec.liquid_kw, site.cdu_heat_capacity_kw[cdu]))
        checks.append((f"{name} flow", spec.flow_lpm, site.cdu_flow_capacity_lpm[cdu]))
    zone = site.slot_air_zone[s]
    checks.append((f"{site.air_zone_ids[zone]} air", spec.air_kw, site.air_zone_capacity_kw[zone]))
    for what, need, limit in checks:
        if need > limit * (1 + _MARGIN) + _MARGIN:
            unit = "L/min" if what.endswith("flow") else "kW"
            return f"slot {site.slot_ids[s]}: {what} {limit:g} {unit} < {need:g} {unit}"
    return ""
