"""The demand and the racks already on the floor, checked against the slots.

Demand bounds are counts per rack type. A rack already installed must stand in a slot
its type may take, and a demanded rack type that fits no slot at all is a contradiction
in the instance, not an optimum of zero: both are errors that say which slot rule shuts
the rack type out (:func:`misfit`, in the order of :mod:`optimizer.site.eligibility`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from optimizer.errors import ErrorAt, InstanceError, choices, did_you_mean
from optimizer.instance.catalog import catalog
from optimizer.instance.schema import Instance
from optimizer.instance.yamlio import FieldPath
from optimizer.site.arrays import NO_INDEX, RackSpec, Site
from optimizer.site.eligibility import slot_rules


def unknown_rack_type(
    field: FieldPath, name: str, known: Iterable[str], error: ErrorAt
) -> InstanceError:
    """A name that is not among the instance's rack types (maybe a catalog name)."""
    if name in catalog():
        fix = f"add {name}: {{}} under rack_types to use the catalog entry"
    else:
        fix = did_you_mean(name, known, f"use one of the rack_types: {choices(known)}")
    return error(field, f"unknown rack type {name!r}", fix)


def demand_bounds(
    instance: Instance, specs: tuple[RackSpec, ...], error: ErrorAt
) -> tuple[np.ndarray, np.ndarray]:
    """(minimum, maximum) count per rack type, -1 for no maximum. Network racks not in
    the demand are as many as the SUs need; other types not in the demand get a maximum
    of 0 here, which :func:`installed_racks` raises to their installed count."""
    type_index = {t.name: i for i, t in enumerate(specs)}
    hub_names = {t.network_rack for t in specs if t.network_rack}
    minimum = np.zeros(len(specs), dtype=np.int64)
    maximum = np.zeros(len(specs), dtype=np.int64)
    for name in hub_names - set(instance.demand):
        maximum[type_index[name]] = NO_INDEX
    for name, entry in instance.demand.items():
        if name not in type_index:
            raise unknown_rack_type(("demand", name), name, type_index, error)
        minimum[type_index[name]] = entry.min
        maximum[type_index[name]] = NO_INDEX if entry.max is None else entry.max
    return minimum, maximum


def installed_racks(
    site: Site, instance: Instance, eligible: np.ndarray, error: ErrorAt
) -> tuple[dict[int, int], np.ndarray]:
    """The racks already on the floor (slot index -> rack type index) and the demand
    maximum with them counted: a type the demand does not name keeps exactly its
    installed racks, and a maximum below the installed count is an error."""
    slot_index = {s: i for i, s in enumerate(site.slot_ids)}
    type_index = {t.name: i for i, t in enumerate(site.rack_types)}
    installed: dict[int, int] = {}
    counts = np.zeros(len(site.rack_types), dtype=np.int64)
    for slot_id, type_name in instance.installed.items():
        field = ("installed", slot_id)
        if slot_id not in slot_index:
            raise error(
                field,
                f"unknown slot {slot_id!r}",
                did_you_mean(
                    slot_id,
                    slot_index,
                    "use a slot id of the form HALL-ROW-NN or one from a slots_csv",
                ),
            )
        if type_name not in type_index:
            raise unknown_rack_type(field, type_name, type_index, error)
        s, t = slot_index[slot_id], type_index[type_name]
        if not eligible[s, t]:
            only = np.arange(site.n_slots) == s
            raise error(field, *misfit(site, t, only, f"slot {slot_id}"))
        installed[s] = t
        counts[t] += 1
    return installed, _maximum_with_installed(site, instance, counts, error)


def _maximum_with_installed(
    site: Site, instance: Instance, counts: np.ndarray, error: ErrorAt
) -> np.ndarray:
    """The demand maximum with ``counts`` racks of each type installed: a type the demand
    does not name keeps exactly its installed racks; a maximum below them is an error."""
    maximum = site.demand_max.copy()
    for t, spec in enumerate(site.rack_types):
        if spec.name not in instance.demand and not site.is_network_type(t):
            maximum[t] = counts[t]  # not demanded: only the installed ones
        elif 0 <= maximum[t] < counts[t]:
            raise error(
                ("demand", spec.name, "max"),
                f"{counts[t]} {spec.name} racks are installed but max is {maximum[t]}",
                "raise max to at least the installed count",
            )
    return maximum


def carry_forward(
    site: Site, instance: Instance, placement: np.ndarray, layout: str, error: ErrorAt
) -> Site:
    """``site`` with the racks of an earlier layout (``placement``: rack type per slot,
    read from the file ``layout``) installed too, so the next wave is placed around them.

    The layout is checked slot by slot against this instance: each carried rack's type
    must be one the slot may take now, and a slot the instance lists under
    ``installed:`` must hold the same type in the layout (or none). The layout's own
    file reader has already refused unknown slots and rack types."""
    installed = dict(site.installed)
    for s in np.flatnonzero(placement != NO_INDEX):
        s, t = int(s), int(placement[s])
        slot, name = site.slot_ids[s], site.rack_types[t].name
        if s in site.installed and site.installed[s] != t:
            raise InstanceError(
                layout,
                "rack_type",
                f"slot {slot} holds {name} in the layout but "
                f"{site.rack_types[site.installed[s]].name} under the instance's installed:",
                "carry the layout the instance's installed racks come from, or correct "
                f"installed.{slot}",
            )
        if not site.eligible[s, t]:
            only = np.arange(site.n_slots) == s
            problem, fix = misfit(site, t, only, f"slot {slot}")
            raise InstanceError(
                layout,
                "rack_type",
                f"the carried rack cannot stay: {problem}",
                f"{fix}; or carry a layout of this facility",
            )
        installed[s] = t
    counts = np.bincount(
        np.array(list(installed.values()), dtype=np.int64), minlength=len(site.rack_types)
    )
    return replace(
        site,
        installed=installed,
        demand_max=_maximum_with_installed(site, instance, counts, error),
    )


def check_demand_placeable(
    site: Site, instance: Instance, eligible: np.ndarray, error: ErrorAt
) -> None:
    """A demanded rack type that fits no slot at all is a contradiction, not an optimum of 0."""
    every = np.ones(site.n_slots, dtype=bool)
    for t, spec in enumerate(site.rack_types):
        demanded = site.demand_max[t] != 0 and spec.name in instance.demand
        if demanded and not eligible[:, t].any():
            raise error(("demand", spec.name), *misfit(site, t, every, "any slot"))


def misfit(site: Site, t: int, slots: np.ndarray, scope: str) -> tuple[str, str]:
    """Problem and fix saying why rack type ``t`` fits none of ``slots`` (a mask): the first
    limit that rules them all out, in the order of :func:`slot_rules`. ``scope`` names
    the slots ("slot H1-A-01", "any slot")."""
    spec = site.rack_types[t]
    rules = slot_rules(site, t)
    cooled = slots & rules["cooling"]
    if not cooled.any():
        return (
            f"{spec.name} is liquid-cooled but no liquid loop reaches {scope}",
            "give slots liquid: true and a cdu, or use an air-cooled rack type",
        )
    watered = cooled & rules["water"]
    if not watered.any():
        water = site.cdu_supply_temp_c[site.slot_cdu[cooled]]
        return (
            f"{spec.name} accepts facility water up to {site.type_water_max_c[t]:g} C "
            f"({spec.water_class}), but the loops reaching {scope} supply "
            f"{np.nanmin(water):g} C or warmer",
            "lower the CDU's supply_temp_c, or give the rack type a warmer water_class",
        )
    carried = watered & rules["floor"]
    if not carried.any():
        which = " that can cool it" if watered.sum() < slots.sum() else ""
        return (
            f"{spec.name} weighs {spec.weight_kg:g} kg, more than the floor rating of "
            f"{scope}{which} (at most {site.slot_floor_kg[watered].max():g} kg)",
            "raise floor_kg where the floor is reinforced, or use a lighter rack type",
        )
    aired = carried & rules["air"]
    if not aired.any():
        which = " that can cool and carry it" if carried.sum() < slots.sum() else ""
        return (
            f"{spec.name} rejects {spec.air_kw:g} kW to air, more than the air_kw_max of "
            f"{scope}{which} (at most {site.slot_air_kw_max[carried].max():g} kW)",
            "raise air_kw_max where the airflow allows, or use a rack type with less air heat",
        )
    if not (aired & rules["inlet"]).any():
        alone = site.slot_supply_temp_c + site.self_recirculation() * spec.air_kw
        return (
            f"{spec.name} would breathe {np.nanmin(alone[aired]):.1f} C or warmer in {scope} "
            f"even with no neighbours, above its inlet limit {site.type_inlet_limit_c[t]:g} C",
            "lower the zone's supply_temp_c, add containment, or rate the rack type for a "
            "warmer inlet_class",
        )
    return (
        f"{spec.name} is a network rack but {scope} may not take one "
        "(network: true, within reach of the spine)",
        "mark suitable slots network: true, or move the spine",
    )
