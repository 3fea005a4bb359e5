"""The site: the facility and its demand as flat arrays, every object by index.

This is the contract between the stages. :func:`optimizer.site.build.build_site` makes
a :class:`Site` from a validated instance; ``models/``, the solver and the independent
checker read it, and ``models/`` imports nothing of rackopt but this module. So every
type a site carries is defined here (or in the leaf modules it names: the power tree,
the cable geometry), and this module imports neither the instance format nor a solver.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from optimizer.objectives import Objective
from optimizer.site.cabling import CableGeometry
from optimizer.site.power_tree import PowerTree

NO_INDEX = -1
"""Index meaning "none": a single-corded slot's second feed, a slot without CDU, an
empty slot, a root device's parent."""

BEYOND_CLASSES = "beyond_classes"


@dataclass(frozen=True)
class RackSpec:
    """A fully resolved rack type: every figure the model and the checker need."""

    name: str
    gpus: int
    it_kw: float
    liquid_fraction: float
    flow_lpm_per_kw: float
    weight_kg: float
    value: float
    su_size: int = 0
    """Racks per scalable unit; 0 when the type is not deployed in SUs."""
    network_rack: str | None = None
    su_ports: int = 0
    """For a network rack type: SUs one rack serves."""
    reach_m: float | None = None
    inlet_class: str | None = None
    """ASHRAE air inlet class; None: the instance's ``thermal.inlet_class``."""
    water_class: str | None = None
    """ASHRAE liquid class (warmest facility water accepted); None: no limit."""
    capped_kw: float | None = None
    """Draw once capped after a feed failure; None: the rack is never capped."""

    @property
    def failover_kw(self) -> float:
        """What the rack draws in a failover row: its capped draw, or its full IT load."""
        return self.it_kw if self.capped_kw is None else self.capped_kw

    @property
    def shed_kw(self) -> float:
        """Power capping takes off one rack after a failure (0 for a rack never capped)."""
        return self.it_kw - self.failover_kw

    @property
    def liquid_kw(self) -> float:
        """Heat the rack rejects to the liquid loop."""
        return self.it_kw * self.liquid_fraction

    @property
    def air_kw(self) -> float:
        """Heat the rack rejects to room air (all of it for air-cooled racks)."""
        return self.it_kw * (1.0 - self.liquid_fraction)

    @property
    def flow_lpm(self) -> float:
        """Coolant flow the rack needs from its CDU."""
        return self.liquid_kw * self.flow_lpm_per_kw

    @property
    def needs_liquid(self) -> bool:
        return self.liquid_fraction > 0


@dataclass(frozen=True)
class NetworkSettings:
    """The fabric rules of an instance with a ``network`` section."""

    geometry: CableGeometry
    cell_slots: int
    su_locality: str
    default_reach_m: float
    reach_classes: tuple[tuple[str, float], ...]
    """(name, longest metres), shortest class first."""
    spine: tuple[float, float, float] | None
    """(x_m, y_m, reach_m) of the spine location."""

    def reach_class(self, length_m: float) -> str:
        """The shortest cable class that covers ``length_m``."""
        for name, longest in self.reach_classes:
            if length_m <= longest + 1e-9:
                return name
        return BEYOND_CLASSES

    def metres_by_class(self, cable_m: np.ndarray) -> dict[str, float]:
        """Cable metres per reach class, shortest class first, with an open-ended last
        class so no metre goes uncounted when a reach exceeds the longest class."""
        metres = {name: 0.0 for name, _ in self.reach_classes}
        metres[BEYOND_CLASSES] = 0.0
        for length in cable_m[cable_m > 0]:
            metres[self.reach_class(float(length))] += float(length)
        return metres

    def spine_distance(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Cable length from slots to the spine location (Manhattan plus both ends)."""
        assert self.spine is not None
        sx, sy, _ = self.spine
        return np.abs(x_m - sx) + np.abs(y_m - sy) + 2.0 * self.geometry.per_end_m


@dataclass(frozen=True)
class Site:
    """Preprocessed facility and demand. Index -1 means "none"; inf means "no limit"."""

    name: str
    objective: Objective
    sha256: str
    # slots
    slot_ids: tuple[str, ...]
    slot_hall: tuple[str, ...]
    slot_row: tuple[str, ...]
    slot_position: np.ndarray
    slot_x_m: np.ndarray
    slot_y_m: np.ndarray
    slot_liquid: np.ndarray
    slot_cdu: np.ndarray
    slot_air_zone: np.ndarray
    slot_floor_kg: np.ndarray
    slot_air_kw_max: np.ndarray
    slot_feeds: np.ndarray
    """(slot, 2) device indices; column 1 is -1 for single-corded slots."""
    slot_primary_share: np.ndarray
    # power tree
    device_ids: tuple[str, ...]
    device_kind: tuple[str, ...]
    power_tree: PowerTree
    """Which device feeds which, and the paths loads take to the root."""
    device_rating_kw: np.ndarray
    device_limit_kw: np.ndarray
    """Continuous limit in normal operation: rating x derating."""
    device_failover_limit_kw: np.ndarray
    device_can_fail: np.ndarray
    # cooling
    cdu_ids: tuple[str, ...]
    cdu_heat_capacity_kw: np.ndarray
    """Usable heat capacity with the redundant units set aside."""
    cdu_flow_capacity_lpm: np.ndarray
    air_zone_ids: tuple[str, ...]
    air_zone_capacity_kw: np.ndarray
    # thermal and facility power
    cdu_supply_temp_c: np.ndarray
    """Facility water supply temperature per CDU group; NaN where not given."""
    air_zone_supply_temp_c: np.ndarray
    """Supply air temperature per zone; NaN where not given (no inlet rule there)."""
    cdu_cooling_kw_per_kw: np.ndarray
    """Cooling power (plant and pumps) per kW of liquid heat, per CDU group."""
    air_zone_cooling_kw_per_kw: np.ndarray
    """Cooling power (plant and fans) per kW of air heat, per zone."""
    type_inlet_limit_c: np.ndarray
    """Warmest inlet air each rack type may see (its ASHRAE class)."""
    type_water_max_c: np.ndarray
    """Warmest facility water each rack type accepts; inf when unlimited."""
    recirculation: sparse.csr_array | None
    """D (slot x source slot, C per kW of air heat); None without a recirculation model."""
    utility_limit_kw: float | None
    # demand
    rack_types: tuple[RackSpec, ...]
    demand_min: np.ndarray
    demand_max: np.ndarray
    """Maximum count per rack type; -1 when unbounded."""
    installed: dict[int, int]
    """Slot index -> rack type index of racks already on the floor."""
    eligible: np.ndarray
    """(slot, rack type) mask: which types a slot may take, by the slot rules of
    :mod:`optimizer.site.eligibility` (computed once, when the site is built)."""
    # rows and fabric
    slot_row_code: np.ndarray
    """Row number per slot, unique across halls, in instance order."""
    row_hall: np.ndarray
    """Hall number per row code."""
    row_order: np.ndarray
    """Position of each row among its hall's rows, as listed (for adjacency)."""
    slot_network_ok: np.ndarray
    """Whether a network rack may stand in the slot (marked, and within spine reach)."""
    slot_network_marked: np.ndarray
    """Slots the instance marks ``network: true``, kept for network racks by ``next``;
    all False when none is marked (then any slot may take a network rack)."""
    network: NetworkSettings | None = None
    warnings: tuple[str, ...] = ()
    """What the instance lint (:mod:`optimizer.site.lint`) found: valid input that is
    almost surely not what was meant, one located line each."""

    @property
    def capping(self) -> bool:
        """Whether some rack type draws less in failover rows than in normal ones."""
        return any(t.shed_kw > 0 for t in self.rack_types)

    def uncapped(self) -> Site:
        """The same site with no rack ever capped: every failover row counts full draw
        (the baseline that shows what capping gains)."""
        return replace(self, rack_types=tuple(replace(t, capped_kw=None) for t in self.rack_types))

    def network_type(self, t: int) -> int:
        """Index of the network rack type serving SU type t; -1 when t has no SUs."""
        name = self.rack_types[t].network_rack
        if self.network is None or name is None:
            return NO_INDEX
        return next(i for i, spec in enumerate(self.rack_types) if spec.name == name)

    def is_network_type(self, t: int) -> bool:
        return any(self.network_type(u) == t for u in range(len(self.rack_types)))

    def reach_m(self, t: int) -> float:
        reach = self.rack_types[t].reach_m
        return reach if reach is not None else self.network.default_reach_m

    @property
    def n_slots(self) -> int:
        return len(self.slot_ids)

    @property
    def device_parent(self) -> np.ndarray:
        """Index of the device feeding each device; -1 for a root."""
        return self.power_tree.parent

    @property
    def slot_supply_temp_c(self) -> np.ndarray:
        """Supply air temperature at each slot (its zone's); NaN where not given."""
        return self.air_zone_supply_temp_c[self.slot_air_zone]

    def slot_cooling_kw_per_kw(self) -> tuple[np.ndarray, np.ndarray]:
        """Cooling power per kW of (liquid heat, air heat) at each slot."""
        liquid = np.nan_to_num(per_slot(self.cdu_cooling_kw_per_kw, self.slot_cdu))
        return liquid, self.air_zone_cooling_kw_per_kw[self.slot_air_zone]

    def self_recirculation(self) -> np.ndarray:
        """D[i, i] per slot: the share of a rack's own exhaust back at its inlet."""
        if self.recirculation is None:
            return np.zeros(self.n_slots)
        return self.recirculation.diagonal()


def per_slot(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` per slot, NaN where the index is -1 (no CDU)."""
    out = np.full(len(index), np.nan)
    known = index != NO_INDEX
    out[known] = values[index[known]]
    return out
