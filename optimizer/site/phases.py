"""The phases of a build-out as one site per phase, checked against each other.

An instance with ``phases:`` describes the finished facility; each phase says what of
it is in place by then (device ratings, CDU and CRAH units, the utility limit, the
halls and rows open) and the racks demanded by its end, cumulatively. Each phase
becomes a :class:`~optimizer.site.arrays.Site` built exactly like a one-shot instance
(the phase's figures patched into the instance, then :func:`build_site`), with the
slots of halls and rows not yet open taking no rack type. Every phase shares the slot,
device, CDU, zone and rack-type numbering of the finished facility.

Since a rack once placed stays in every later phase, a later phase may not take away
what an earlier one has: a capacity that falls from one phase to the next, or a
cumulative demand maximum that falls, is refused here with the phase, the figure and
the fix, instead of surfacing later as an infeasible MILP.

One phase (not the first) may list demand ``scenarios`` with probabilities instead of
one demand: it and every later phase then become one site per scenario (the same
capacities; that scenario's demand in the phase listing them, each later phase's own
after it), each checked against the one before as a phase is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from optimizer.errors import ErrorAt, did_you_mean
from optimizer.instance.loader import LoadedInstance
from optimizer.instance.schema import DemandEntry, Instance, Phase
from optimizer.objectives import Objective
from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.build import build_site

PROBABILITY_TOLERANCE = 1e-6
"""How far from 1 the scenarios' probabilities may sum (decimal fractions such as 0.1
are not exact in binary)."""


@dataclass(frozen=True)
class PhaseSite:
    """One phase: its name, date and duration, and the site as it stands then."""

    name: str
    date: str
    duration: float
    site: Site


@dataclass(frozen=True)
class ScenarioSite:
    """One demand scenario: the phase that lists the scenarios with that scenario's
    demand, then every later phase (with its own demand), each placed for the scenario."""

    name: str
    probability: float
    phases: tuple[PhaseSite, ...]

    @property
    def phase(self) -> PhaseSite:
        """The scenario's last phase: the finished facility."""
        return self.phases[-1]


@dataclass(frozen=True)
class PhasedSite:
    """Every phase of a build-out, in order."""

    phases: tuple[PhaseSite, ...]
    """The committed phases: every phase, or those before the one listing scenarios."""
    open_phase: np.ndarray
    """(slot,) index of the first phase in which the slot may take a rack."""
    scenarios: tuple[ScenarioSite, ...] = ()
    """The phases from the one listing demand scenarios on, once per scenario."""

    @property
    def final(self) -> Site:
        """The finished facility (with the first scenario's demand, if any)."""
        return self.scenarios[0].phase.site if self.scenarios else self.phases[-1].site

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.phases]


def phased_site(loaded: LoadedInstance) -> PhasedSite:
    """The phases of ``loaded`` (one phase, the instance itself, when it lists none)."""
    inst = loaded.instance
    error = loaded.locate_error
    if not inst.phases:
        site = build_site(loaded)
        return PhasedSite(
            (PhaseSite(inst.name, "", 1.0, site),), np.zeros(site.n_slots, dtype=np.int64)
        )
    _check_phase_names(inst, error)
    if inst.objective is Objective.MIN_FACILITY_KW:
        raise error(
            ("objective",),
            "objective min_facility_kw has no meaning over phases",
            "maximize (max_gpus, max_value or max_it_kw) for a phased build-out",
        )
    branch = next((i for i, p in enumerate(inst.phases) if p.scenarios), len(inst.phases))
    committed = inst.phases[:branch]
    sites = []
    for i in range(len(committed)):
        patched = _phase_instance(inst, inst.phases[: i + 1], error)
        sites.append(build_site(replace(loaded, instance=patched)))
    open_phase = _open_phase(inst, sites[0], error)  # slots and halls: alike in every phase
    phases = [
        _phase_site(inst, phase, site, open_phase, i, error)
        for i, (phase, site) in enumerate(zip(committed, sites, strict=True))
    ]
    for i in range(1, len(phases)):
        _check_nothing_taken_away(inst, phases[i - 1], phases[i], i, error)
    if branch == len(inst.phases):
        return PhasedSite(tuple(phases), open_phase)
    scenarios = []
    for j, scenario in enumerate(inst.phases[branch].scenarios or []):
        chain = [phases[-1]]
        for i in range(branch, len(inst.phases)):
            demand = scenario.demand if i == branch else None
            patched = _phase_instance(inst, inst.phases[: i + 1], error, demand)
            site = build_site(replace(loaded, instance=patched))
            chain.append(_phase_site(inst, inst.phases[i], site, open_phase, i, error))
            at = ("phases", str(i), "scenarios", str(j)) if i == branch else None
            _check_nothing_taken_away(inst, chain[-2], chain[-1], i, error, at)
        scenarios.append(ScenarioSite(scenario.name, scenario.probability, tuple(chain[1:])))
    return PhasedSite(tuple(phases), open_phase, tuple(scenarios))


def _phase_site(
    inst: Instance, phase: Phase, site: Site, open_phase: np.ndarray, i: int, error: ErrorAt
) -> PhaseSite:
    """``site`` as it stands in ``phase`` (the i-th): slots not yet open take no rack."""
    closed = open_phase > i
    shut_in = [s for s in site.installed if closed[s]]
    if shut_in:
        raise error(
            ("installed", site.slot_ids[shut_in[0]]),
            f"an installed rack stands in {site.slot_ids[shut_in[0]]}, which opens only "
            f"in phase {inst.phases[int(open_phase[shut_in[0]])].name}",
            "open its hall or row in the first phase",
        )
    eligible = site.eligible & ~closed[:, None]
    return PhaseSite(phase.name, phase.date or "", phase.duration, replace(site, eligible=eligible))


def _check_phase_names(inst: Instance, error: ErrorAt) -> None:
    """Unique phase names; every phase but the last gives its demand (or scenarios); names
    it uses exist; one phase at most lists scenarios."""
    seen: set[str] = set()
    last = len(inst.phases) - 1
    branch = None
    for i, phase in enumerate(inst.phases):
        at = ("phases", str(i))
        if phase.name in seen:
            raise error(
                (*at, "name"),
                f"phase {phase.name!r} is listed twice",
                "give each phase its own name",
            )
        seen.add(phase.name)
        if phase.demand is None and not phase.scenarios and i != last:
            raise error(
                at,
                f"phase {phase.name} gives no demand",
                "give demand: the racks of each type on the floor by its end (cumulative); "
                "only the last phase may leave it to the instance's demand",
            )
        if phase.scenarios:
            if branch is not None:
                raise error(
                    (*at, "scenarios"),
                    f"phases {inst.phases[branch].name} and {phase.name} both list demand "
                    "scenarios",
                    "give scenarios on one phase only; the phases after it are placed once "
                    "per scenario (a tree that branches again is not supported)",
                )
            branch = i
            _check_scenarios(inst, phase, i, error)
        for field, known in (
            ("devices", inst.power.devices),
            ("cdus", inst.cooling.cdus),
            ("air_zones", inst.cooling.air_zones),
            ("demand", inst.rack_types),
        ):
            for name in getattr(phase, field) or {}:
                if name not in known:
                    raise error(
                        (*at, field, name),
                        f"unknown {field.rstrip('s').replace('_', ' ')} {name!r}",
                        did_you_mean(name, known, "phases set only what the instance defines"),
                    )


def _check_scenarios(inst: Instance, phase: Phase, i: int, error: ErrorAt) -> None:
    """Demand scenarios only after a committed phase, instead of the phase's demand;
    unique names, known rack types, probabilities summing to 1."""
    at = ("phases", str(i), "scenarios")
    if i == 0:
        raise error(
            at,
            f"phase {phase.name} lists demand scenarios but no phase comes before it",
            "add the phase built now before it: the plan commits the phases before the "
            "scenarios and places that phase and the later ones per scenario",
        )
    if phase.demand is not None:
        raise error(
            (*at[:2], "demand"),
            f"phase {phase.name} gives both demand and scenarios",
            "give the demand of each scenario under scenarios, and no demand of its own",
        )
    seen: set[str] = set()
    for j, scenario in enumerate(phase.scenarios or []):
        if scenario.name in seen:
            raise error(
                (*at, str(j), "name"),
                f"scenario {scenario.name!r} is listed twice",
                "give each scenario its own name",
            )
        seen.add(scenario.name)
        for name in scenario.demand:
            if name not in inst.rack_types:
                raise error(
                    (*at, str(j), "demand", name),
                    f"unknown rack type {name!r}",
                    did_you_mean(
                        name, inst.rack_types, "scenarios demand rack types of the instance"
                    ),
                )
    total = sum(s.probability for s in phase.scenarios or [])
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise error(
            at,
            f"the probabilities of phase {phase.name}'s scenarios sum to {total:.6g}, not 1",
            "make them sum to 1 (each scenario's share of the outcomes)",
        )


def _phase_instance(
    inst: Instance,
    upto: list[Phase],
    error: ErrorAt,
    demand: dict[str, DemandEntry] | None = None,
) -> Instance:
    """The instance as it stands in the last phase of ``upto``: the settings of every
    phase up to it applied in order over the instance's own figures, and its demand (or
    ``demand``, a scenario's)."""
    devices = dict(inst.power.devices)
    cdus = dict(inst.cooling.cdus)
    zones = dict(inst.cooling.air_zones)
    utility = inst.facility.utility_limit_kw
    for j, phase in enumerate(upto):
        at = ("phases", str(j))
        for name, change in phase.devices.items():
            devices[name] = devices[name].model_copy(update=change.model_dump(exclude_none=True))
            device = devices[name]
            derating = device.derating if device.derating is not None else inst.power.derating
            limit = device.rating_kw * derating
            if device.failover_limit_kw is not None and device.failover_limit_kw < limit - 1e-9:
                raise error(
                    (*at, "devices", name),
                    f"in phase {phase.name}, {name}'s failover limit "
                    f"{device.failover_limit_kw:g} kW is below its normal limit {limit:g} kW",
                    "give the phase a failover_limit_kw at least rating_kw x derating",
                )
        for table, field in ((cdus, "cdus"), (zones, "air_zones")):
            for name, change in getattr(phase, field).items():
                if change.units <= table[name].redundant_units:
                    raise error(
                        (*at, field, name, "units"),
                        f"{change.units} units with {table[name].redundant_units} redundant "
                        "leave none to carry load",
                        "install more units in this phase, or leave the group out of it",
                    )
                table[name] = table[name].model_copy(update={"units": change.units})
        if phase.utility_limit_kw is not None:
            utility = phase.utility_limit_kw
    phase = upto[-1]
    return inst.model_copy(
        update={
            "power": inst.power.model_copy(update={"devices": devices}),
            "cooling": inst.cooling.model_copy(update={"cdus": cdus, "air_zones": zones}),
            "facility": inst.facility.model_copy(update={"utility_limit_kw": utility}),
            "demand": demand or (phase.demand if phase.demand is not None else inst.demand),
            "phases": [],
        }
    )


def _open_phase(inst: Instance, site: Site, error: ErrorAt) -> np.ndarray:
    """First phase of every slot: that of the phase opening its row, else its hall, else 0."""
    opened: dict[tuple[str, str | None], int] = {}
    rows = set(zip(site.slot_hall, site.slot_row, strict=True))
    for i, phase in enumerate(inst.phases):
        for k, entry in enumerate(phase.open):
            hall, _, row = entry.partition("/")
            key = (hall, row or None)
            field = ("phases", str(i), "open", str(k))
            if hall not in inst.halls or (row and (hall, row) not in rows):
                known = [h for h in inst.halls] + [f"{h}/{r}" for h, r in sorted(rows)]
                raise error(field, f"unknown hall or row {entry!r}", did_you_mean(entry, known))
            if key in opened:
                raise error(
                    field,
                    f"{entry} is opened in phase {inst.phases[opened[key]].name} already",
                    "open each hall or row once",
                )
            opened[key] = i
    return np.array(
        [
            opened.get((h, r), opened.get((h, None), 0))
            for h, r in zip(site.slot_hall, site.slot_row, strict=True)
        ],
        dtype=np.int64,
    )


def _check_nothing_taken_away(
    inst: Instance,
    before: PhaseSite,
    after: PhaseSite,
    i: int,
    error: ErrorAt,
    at: tuple[str, ...] | None = None,
) -> None:
    """Racks placed in ``before`` stay in ``after``: no capacity and no cumulative demand
    maximum may fall between them. ``at`` is where ``after``'s demand is given (a
    scenario's, when not the phase's own)."""
    at = at or ("phases", str(i))
    a, b = before.site, after.site
    fix = (
        f"keep it at least as high in phase {after.name} (racks placed in {before.name} "
        "stay), or lower it in the earlier phases too"
    )
    capacities = (
        ("device", "normal limit", a.device_ids, a.device_limit_kw, b.device_limit_kw, "kW"),
        (
            "device",
            "failover limit",
            a.device_ids,
            a.device_failover_limit_kw,
            b.device_failover_limit_kw,
            "kW",
        ),
        (
            "CDU group",
            "heat capacity",
            a.cdu_ids,
            a.cdu_heat_capacity_kw,
            b.cdu_heat_capacity_kw,
            "kW",
        ),
        (
            "CDU group",
            "flow capacity",
            a.cdu_ids,
            a.cdu_flow_capacity_lpm,
            b.cdu_flow_capacity_lpm,
            "L/min",
        ),
        (
            "air zone",
            "capacity",
            a.air_zone_ids,
            a.air_zone_capacity_kw,
            b.air_zone_capacity_kw,
            "kW",
        ),
        (
            "the",
            "utility limit",
            ("site",),
            np.array([a.utility_limit_kw or np.inf]),
            np.array([b.utility_limit_kw or np.inf]),
            "kW",
        ),
    )
    for kind, what, ids, old, new, unit in capacities:
        for j in np.flatnonzero(new < old - 1e-9):
            subject = f"{kind} {ids[j]}'s {what}" if kind != "the" else "the utility limit"
            raise error(
                ("phases", str(i)),
                f"phase {after.name} lowers {subject} from {old[j]:,.6g} to {new[j]:,.6g} {unit}, "
                f"which racks of phase {before.name} may need",
                fix,
            )
    for t, spec in enumerate(a.rack_types):
        old, new = int(a.demand_max[t]), int(b.demand_max[t])
        if new != NO_INDEX and (old == NO_INDEX or new < old):
            was = "no maximum" if old == NO_INDEX else f"max {old}"
            raise error(
                (*at, "demand", spec.name),
                f"phase {after.name} allows at most {new} {spec.name} racks but phase "
                f"{before.name} allows {was}: the demand is cumulative and placed racks stay",
                f"give phase {after.name} a max of at least {'that' if old == NO_INDEX else old}, "
                f"or lower phase {before.name}'s",
            )
