"""The layout dataset's schema (layout format version 2), declared once.

Every dimension, coordinate and data variable of a layout, with its dimensions, dtype,
unit and a short description. The writer (:func:`optimizer.results.layout.layout_dataset`)
builds the dataset from these declarations and refuses a name they lack; the reader
(:mod:`optimizer.results.reader`) checks a file against them before loading it; batch
and compare take the dimensions from here; a test holds ``docs/output-format.md`` to
them. Every variable's CF-1.13 metadata is made here too, from the same declarations
(:meth:`Field.attrs`, :meth:`Field.fill`): ``long_name``, ``units`` in UDUNITS spelling,
``standard_name`` where CF has one, ``axis`` on the floor coordinates, flag values for
booleans and the integer fill value, so a CF tool (the IOOS compliance checker,
cf-xarray) reads a layout without knowing rackopt.

One quantity, one name: the public name is the dataset's. ``device_capacity_kw`` is
what the site calls ``Site.device_limit_kw`` (the normal continuous limit,
``rating_kw x derating``); renaming the variable would break the layout format, so the
dataset keeps it and this schema records the mapping (``site_field``).

Format 2 (after rackopt 0.2) differs from format 1 only in how values are stored (CF): booleans
are int8 with ``flag_values`` instead of xarray's ``dtype: bool`` attribute, and an integer
that can say "none" (-1) declares ``_FillValue = -1``. The reader reads both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

LAYOUT_FORMAT_VERSION = 2
READABLE_LAYOUT_FORMATS = (1, 2)
"""Format 1 files (rackopt 0.2) hold the same variables without the CF storage."""
STUDY_FORMAT_VERSION = 2
"""A study dataset: the layouts of its scenarios along a leading ``scenario`` dimension
(docs/studies.md). Format 2 stores its layouts as layout format 2 does and names the
sweep coordinates CF-safely (:func:`sweep_coordinate`)."""
READABLE_STUDY_FORMATS = (1, 2)
CONVENTIONS = "CF-1.13"
"""The metadata conventions a layout or study dataset follows (global ``Conventions``)."""
INTEGER_FILL = -1
"""An integer's "none" (no SU; in a study, an entry a scenario lacks): its ``_FillValue``."""


class Group(StrEnum):
    """Which part of rackopt a variable belongs to; only ``core`` ones are required.

    A reader accepts a layout file without the fabric or thermal variables (layouts
    written before those features, or trimmed by another tool), but not a group half
    present: rackopt always writes a whole group."""

    CORE = "core"
    FABRIC = "fabric"
    """SU membership and cables: fill values and empty ``su_id``/``reach_class`` without
    a ``network`` section."""
    THERMAL = "thermal"
    """Inlet and supply temperatures, cooling power and PUE, added in rackopt 0.2."""
    PHASES = "phases"
    """A phased build-out: the ``phase`` dimension, each rack's install phase and every
    phase's GPUs and loads; added in layout format 2 (no phases: a ``phase`` of length 0
    and ``install_phase`` all '')."""
    SCENARIOS = "scenarios"
    """Demand scenarios: the ``demand_scenario`` dimension, each scenario's probability,
    GPUs and recourse placement with each rack's install phase; added with scenarios
    (none: a ``demand_scenario`` of length 0)."""
    CAPPING = "capping"
    """Capped failover: capped draws, loads without capping, and what each failure
    relies on capping for; added with capped failover (no capped type: zeros and '')."""


TEXT, INTEGER, REAL, FLAG = "str", "int64", "float64", "bool"
"""The dtypes a layout uses, spelled as in docs/output-format.md."""

_UDUNITS = {"C": "degC", "racks": "1", "GPUs": "1", "SUs": "1"}
"""Units as docs/output-format.md writes them -> their UDUNITS spelling, where they
differ (counts are dimensionless)."""
_ON_SCALE = {"C": "temperature: on_scale"}
"""CF 1.11 ``units_metadata``: every layout temperature is a reading on the Celsius
scale, never a difference (which degC alone leaves open)."""


@dataclass(frozen=True)
class Field:
    """One coordinate or data variable of a layout."""

    name: str
    dims: tuple[str, ...]
    dtype: str
    unit: str
    """As docs/output-format.md writes it; '' for none."""
    long_name: str
    group: Group = Group.CORE
    coordinate: bool = False
    standard_name: str = ""
    """The CF standard name, where one exists."""
    site_field: str = ""
    """The ``Site`` attribute holding the same quantity, where its name differs."""
    axis: str = ""
    """CF ``axis`` (X or Y) of a floor coordinate."""
    flag_meanings: tuple[str, str] = ("false", "true")
    """A boolean's meanings of 0 and 1 (CF ``flag_meanings``)."""
    none: bool = False
    """An integer whose -1 means "none" (written as the CF ``_FillValue``)."""

    @property
    def required(self) -> bool:
        return self.group is Group.CORE

    @property
    def index(self) -> bool:
        """An index coordinate: the labels of its own dimension."""
        return self.dims == (self.name,)

    def attrs(self) -> dict[str, Any]:
        """The attributes the writer gives the variable (its CF metadata)."""
        out: dict[str, Any] = {"long_name": self.long_name}
        if self.unit:
            out["units"] = _UDUNITS.get(self.unit, self.unit)
        if self.unit in _ON_SCALE:
            out["units_metadata"] = _ON_SCALE[self.unit]
        if self.standard_name:
            out["standard_name"] = self.standard_name
        if self.axis:
            out["axis"] = self.axis
        if self.dtype == FLAG:
            out["flag_values"] = np.array([0, 1], dtype=np.int8)
            out["flag_meanings"] = " ".join(self.flag_meanings)
        return out

    def fill(self, study: bool) -> int | None:
        """The ``_FillValue`` of an integer that can hold none: one whose -1 means none,
        and in a study every integer but an index (a scenario may lack the entry)."""
        if self.dtype != INTEGER or self.index:
            return None
        return INTEGER_FILL if self.none or study else None


@dataclass(frozen=True)
class Dimension:
    name: str
    key: str
    """A variable along this dimension that is never a fill value in a layout: in a
    study dataset, a scenario lacks exactly the labels where it holds the fill."""


DIMENSIONS = (
    Dimension("slot", "hall"),
    Dimension("type", "type_it_kw"),
    Dimension("device", "device_kind"),
    Dimension("cdu", "cdu_capacity_kw"),
    Dimension("air_zone", "air_zone_capacity_kw"),
    Dimension("su_id", "su_network_slot"),
    Dimension("reach_class", "cable_m_by_class"),
    Dimension("phase", "phase_duration"),
    Dimension("demand_scenario", "demand_scenario_probability"),
)
DIMENSION_NAMES = tuple(d.name for d in DIMENSIONS)

_FABRIC, _THERMAL, _CAPPING, _PHASES = Group.FABRIC, Group.THERMAL, Group.CAPPING, Group.PHASES
_PHASE = ("phase",)
_SCENARIOS, _DEMAND_SCENARIO = Group.SCENARIOS, ("demand_scenario",)
_SLOT, _TYPE, _DEVICE, _CDU, _ZONE = ("slot",), ("type",), ("device",), ("cdu",), ("air_zone",)

COORDINATES = (
    Field("slot", _SLOT, TEXT, "", "slot id", coordinate=True),
    Field("hall", _SLOT, TEXT, "", "hall of the slot", coordinate=True),
    Field("row", _SLOT, TEXT, "", "row of the slot", coordinate=True),
    Field("position", _SLOT, INTEGER, "", "position of the slot in its row", coordinate=True),
    Field(
        "x_m",
        _SLOT,
        REAL,
        "m",
        "x of the slot centre",
        coordinate=True,
        axis="X",
        standard_name="projection_x_coordinate",
    ),
    Field(
        "y_m",
        _SLOT,
        REAL,
        "m",
        "y of the slot centre",
        coordinate=True,
        axis="Y",
        standard_name="projection_y_coordinate",
    ),
    Field(
        "slot_liquid",
        _SLOT,
        FLAG,
        "",
        "slot is on a liquid loop",
        coordinate=True,
        flag_meanings=("air", "liquid"),
    ),
    Field("slot_cdu", _SLOT, TEXT, "", "CDU group serving the slot", coordinate=True),
    Field("slot_air_zone", _SLOT, TEXT, "", "air zone of the slot", coordinate=True),
    Field("type", _TYPE, TEXT, "", "rack type id", coordinate=True),
    Field("device", _DEVICE, TEXT, "", "power device id", coordinate=True),
    Field("cdu", _CDU, TEXT, "", "CDU group id", coordinate=True),
    Field("air_zone", _ZONE, TEXT, "", "air zone id", coordinate=True),
    Field("su_id", ("su_id",), INTEGER, "", "scalable unit id", _FABRIC, coordinate=True),
    Field("reach_class", ("reach_class",), TEXT, "", "cable reach class", _FABRIC, coordinate=True),
    Field("phase", _PHASE, TEXT, "", "build-out phase", _PHASES, coordinate=True),
    Field(
        "demand_scenario",
        _DEMAND_SCENARIO,
        TEXT,
        "",
        "demand scenario",
        _SCENARIOS,
        coordinate=True,
    ),
)

VARIABLES = (
    # per slot
    Field("rack_type", _SLOT, TEXT, "", "rack type placed in the slot"),
    Field(
        "installed",
        _SLOT,
        FLAG,
        "",
        "rack was installed before and kept",
        flag_meanings=("new", "installed"),
    ),
    Field("su", _SLOT, INTEGER, "", "scalable unit of the rack", _FABRIC, none=True),
    Field(
        "inlet_temp_c",
        _SLOT,
        REAL,
        "C",
        "inlet air temperature",
        _THERMAL,
        standard_name="air_temperature",
    ),
    Field("inlet_limit_c", _SLOT, REAL, "C", "inlet limit of the rack's class", _THERMAL),
    Field("cable_m", _SLOT, REAL, "m", "fabric cable of the slot's rack", _FABRIC),
    Field(
        "capped_if_failed",
        _SLOT,
        TEXT,
        "",
        "failed devices whose failover relies on capping the rack",
        _CAPPING,
    ),
    # per rack type
    Field("rack_count", _TYPE, INTEGER, "racks", "racks of the type"),
    Field("gpus", _TYPE, INTEGER, "GPUs", "GPUs in racks of the type"),
    Field("type_it_kw", _TYPE, REAL, "kW", "IT load of one rack of the type"),
    Field("su_count", _TYPE, INTEGER, "SUs", "scalable units of the type", _FABRIC),
    Field("type_inlet_limit_c", _TYPE, REAL, "C", "inlet limit of the type's class", _THERMAL),
    Field(
        "type_water_max_c", _TYPE, REAL, "C", "warmest facility water the type accepts", _THERMAL
    ),
    Field("cable_m_by_type", _TYPE, REAL, "m", "fabric cable of the type's racks", _FABRIC),
    Field(
        "type_capped_kw", _TYPE, REAL, "kW", "draw of one rack of the type in a failure", _CAPPING
    ),
    # per power device
    Field("device_kind", _DEVICE, TEXT, "", "kind of power device"),
    Field("device_parent", _DEVICE, TEXT, "", "parent power device"),
    Field("device_rating_kw", _DEVICE, REAL, "kW", "nameplate rating"),
    Field(
        "device_capacity_kw",
        _DEVICE,
        REAL,
        "kW",
        "normal continuous limit",
        site_field="device_limit_kw",
    ),
    Field("device_failover_limit_kw", _DEVICE, REAL, "kW", "limit while another device is failed"),
    Field("device_load_kw", _DEVICE, REAL, "kW", "load in normal operation"),
    Field("device_failover_load_kw", _DEVICE, REAL, "kW", "worst load over single failures"),
    Field("device_worst_failure", _DEVICE, TEXT, "", "failed device causing the worst load"),
    Field(
        "device_failover_uncapped_kw",
        _DEVICE,
        REAL,
        "kW",
        "worst load over single failures with no rack capped",
        _CAPPING,
    ),
    Field(
        "failure_capped_racks",
        _DEVICE,
        INTEGER,
        "racks",
        "racks capped if the device fails",
        _CAPPING,
    ),
    Field(
        "failure_shed_kw",
        _DEVICE,
        REAL,
        "kW",
        "power shed by capping if the device fails",
        _CAPPING,
    ),
    # per CDU group and air zone
    Field("cdu_heat_kw", _CDU, REAL, "kW", "heat to liquid"),
    Field("cdu_capacity_kw", _CDU, REAL, "kW", "usable heat capacity"),
    Field("cdu_flow_lpm", _CDU, REAL, "L/min", "coolant flow"),
    Field("cdu_flow_capacity_lpm", _CDU, REAL, "L/min", "usable coolant flow"),
    Field("air_zone_heat_kw", _ZONE, REAL, "kW", "heat to air"),
    Field("air_zone_capacity_kw", _ZONE, REAL, "kW", "usable air cooling capacity"),
    Field("cdu_supply_temp_c", _CDU, REAL, "C", "facility water supply temperature", _THERMAL),
    Field("cdu_cooling_kw", _CDU, REAL, "kW", "cooling power for the liquid heat", _THERMAL),
    Field(
        "air_zone_supply_temp_c",
        _ZONE,
        REAL,
        "C",
        "supply air temperature",
        _THERMAL,
        standard_name="air_temperature",
    ),
    Field("air_zone_cooling_kw", _ZONE, REAL, "kW", "cooling power for the air heat", _THERMAL),
    # facility totals
    Field("it_kw", (), REAL, "kW", "IT load of all racks"),
    Field("cooling_kw", (), REAL, "kW", "cooling power"),
    Field("facility_kw", (), REAL, "kW", "IT load plus cooling power"),
    Field("pue", (), REAL, "", "power usage effectiveness", _THERMAL),
    Field("utility_limit_kw", (), REAL, "kW", "utility limit"),
    Field("total_gpus", (), INTEGER, "GPUs", "GPUs in all racks"),
    Field("total_cable_m", (), REAL, "m", "fabric cable in all", _FABRIC),
    Field(
        "gpus_without_capping",
        (),
        INTEGER,
        "GPUs",
        "GPUs of the solve with no rack capped",
        _CAPPING,
    ),
    # per SU and per cable class
    Field("su_network_slot", ("su_id",), TEXT, "", "slot of the SU's network rack", _FABRIC),
    Field("su_rack_type", ("su_id",), TEXT, "", "rack type of the SU's racks", _FABRIC),
    Field(
        "cable_m_by_class", ("reach_class",), REAL, "m", "fabric cable of the reach class", _FABRIC
    ),
    # per demand scenario
    Field(
        "demand_scenario_probability",
        _DEMAND_SCENARIO,
        REAL,
        "",
        "probability of the demand scenario",
        _SCENARIOS,
    ),
    Field(
        "demand_scenario_gpus",
        _DEMAND_SCENARIO,
        INTEGER,
        "GPUs",
        "GPUs on the floor in the last phase under the scenario",
        _SCENARIOS,
    ),
    Field(
        "demand_scenario_rack_type",
        (*_DEMAND_SCENARIO, *_SLOT),
        TEXT,
        "",
        "rack type in the slot in the last phase under the scenario",
        _SCENARIOS,
    ),
    Field(
        "demand_scenario_install_phase",
        (*_DEMAND_SCENARIO, *_SLOT),
        TEXT,
        "",
        "phase in which the slot's rack is installed under the scenario",
        _SCENARIOS,
    ),
    # per build-out phase
    Field("install_phase", _SLOT, TEXT, "", "phase in which the rack is installed", _PHASES),
    Field("phase_date", _PHASE, TEXT, "", "date of the phase", _PHASES),
    Field("phase_duration", _PHASE, REAL, "", "duration of the phase (gpu_time weight)", _PHASES),
    Field("phase_gpus", _PHASE, INTEGER, "GPUs", "GPUs on the floor in the phase", _PHASES),
    Field(
        "phase_rack_count",
        (*_PHASE, *_TYPE),
        INTEGER,
        "racks",
        "racks of the type in the phase",
        _PHASES,
    ),
    Field("phase_it_kw", _PHASE, REAL, "kW", "IT load in the phase", _PHASES),
    Field(
        "phase_facility_kw", _PHASE, REAL, "kW", "IT load plus cooling power in the phase", _PHASES
    ),
    Field("phase_utility_limit_kw", _PHASE, REAL, "kW", "utility limit in the phase", _PHASES),
    Field(
        "phase_device_load_kw",
        (*_PHASE, *_DEVICE),
        REAL,
        "kW",
        "device load in normal operation in the phase",
        _PHASES,
    ),
    Field(
        "phase_device_capacity_kw",
        (*_PHASE, *_DEVICE),
        REAL,
        "kW",
        "normal continuous limit in the phase",
        _PHASES,
    ),
    Field(
        "phase_device_failover_load_kw",
        (*_PHASE, *_DEVICE),
        REAL,
        "kW",
        "worst load over single failures in the phase",
        _PHASES,
    ),
    Field(
        "phase_device_failover_limit_kw",
        (*_PHASE, *_DEVICE),
        REAL,
        "kW",
        "failover limit in the phase",
        _PHASES,
    ),
    Field(
        "phase_cdu_heat_kw", (*_PHASE, *_CDU), REAL, "kW", "heat to liquid in the phase", _PHASES
    ),
    Field(
        "phase_cdu_capacity_kw",
        (*_PHASE, *_CDU),
        REAL,
        "kW",
        "usable heat capacity in the phase",
        _PHASES,
    ),
    Field(
        "phase_air_zone_heat_kw", (*_PHASE, *_ZONE), REAL, "kW", "heat to air in the phase", _PHASES
    ),
    Field(
        "phase_air_zone_capacity_kw",
        (*_PHASE, *_ZONE),
        REAL,
        "kW",
        "usable air cooling capacity in the phase",
        _PHASES,
    ),
)

FIELDS: dict[str, Field] = {f.name: f for f in (*COORDINATES, *VARIABLES)}

ATTRIBUTES: dict[str, str] = {
    "title": "str",
    "Conventions": "str",
    "history": "str",
    "layout_format_version": "int",
    "instance_name": "str",
    "instance_sha256": "str",
    "objective_kind": "str",
    "status": "str",
    "objective": "float",
    "best_bound": "float",
    "gap": "float",
    "tie_break_status": "str",
    "second_stage_objective": "float",
    "second_stage_bound": "float",
    "second_stage_gap": "float",
    "phase_plan": "str",
    "scenario_objective": "str",
    "timings_s": "JSON object",
    "model_size": "JSON object",
    "solved_as": "str",
    "solver_options": "JSON object",
    "overrides": "JSON list",
    "versions": "JSON object",
    "created_utc": "str",
}
"""Every global attribute a solved layout carries, with its type as docs/output-format.md
section 5 spells it (metadata of the solve, not data over the dimensions)."""


def fill_value(dtype: np.dtype) -> Any:
    """What a study dataset holds where a scenario lacks an entry: '', False, -1 or NaN."""
    if dtype.kind in "USO":
        return ""
    if dtype.kind == "b":
        return False
    if dtype.kind in "iu":
        return INTEGER_FILL
    return np.nan


def is_fill(values: np.ndarray) -> np.ndarray:
    """Where ``values`` hold :func:`fill_value` of their dtype."""
    fill = fill_value(values.dtype)
    if isinstance(fill, float):
        return np.isnan(values)
    return values == fill


def sweep_coordinate(key: str, taken: set[str]) -> str:
    """The study coordinate of a sweep key: CF names are letters, digits and underscores
    starting with a letter, so ``cooling.air_zones.Z1.crah_kw`` becomes
    ``sweep_cooling_air_zones_Z1_crah_kw`` (the key itself is kept in its ``sweep_key``
    attribute); ``_2``, ``_3``... follow a name already ``taken``."""
    name = "sweep_" + re.sub(r"[^A-Za-z0-9_]", "_", key)
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}_{n}"
    return unique
