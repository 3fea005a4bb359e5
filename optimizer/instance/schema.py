"""The instance file format (format version 1) as pydantic models.

Every model forbids unknown keys and is frozen: a typo in an instance file is an
error that names the key, never a silently ignored setting. Every scalar is strict:
YAML reads ``yes`` and ``true`` as booleans, and a boolean where a number belongs
(``rating_kw: true``, ``max: no``) would otherwise count as 1 or 0 and silently change
the answer; text is never parsed as a number nor a number read as text, and numbers are
finite and bounded. Cross-references
(a slot's CDU, a device's parent, a demanded rack type) are checked after the
whole file is parsed, when :mod:`optimizer.site.build` expands the slots, because they span
sections. Validators raise :class:`~optimizer.errors.FieldProblem` so that every
message keeps the "problem (fix: ...)" shape.
The public description of the format is ``docs/instance-format.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)

from optimizer.errors import FieldProblem
from optimizer.objectives import Objective

FORMAT_VERSION = 1
MAX_COUNT = 1_000_000
"""Upper bound of counts (racks demanded, GPUs per rack): far above any hall, and small
enough that sums of counts stay exact in the model's int64 arrays."""

MAX_QUANTITY = 1e9
"""Largest figure (kW, kg, L/min, m) accepted: far beyond any site, and far below the
1e20 at which HiGHS reads a number as infinite."""
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A number: an integer or a decimal, never a boolean or text."""
PositiveFloat = Annotated[Number, Field(gt=0, le=MAX_QUANTITY)]
NonNegativeFloat = Annotated[Number, Field(ge=0, le=MAX_QUANTITY)]
Real = Annotated[Number, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
"""A coordinate or coefficient, of either sign."""
Fraction = Annotated[Number, Field(ge=0, le=1)]
Derating = Annotated[Number, Field(gt=0, le=1)]
"""A continuous-load factor: 0 would make a rated device carry nothing at all."""
Whole = Annotated[int, Strict()]
"""A whole number written as one: not ``2.0``, not ``true``, not ``"2"``."""
Flag = Annotated[bool, Strict()]
"""``true`` or ``false`` (YAML also reads ``yes``/``no`` and ``on``/``off`` so)."""
Text = Annotated[str, Strict()]
Identifier = Annotated[Text, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:+-]+$")]


def _exactly_one(version: Any) -> Any:
    """``format_version: true`` or ``1.0`` equal 1 in Python; only the number 1 is it."""
    if type(version) is not int:
        raise FieldProblem(
            f"must be the whole number {FORMAT_VERSION} (got {version!r})",
            f"write format_version: {FORMAT_VERSION}",
        )
    return version


FormatVersion = Annotated[Literal[1], BeforeValidator(_exactly_one)]


class Strict(BaseModel):
    """Base of every section: unknown keys are errors and parsed values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


InletClass = Literal["recommended", "A1", "A2", "A3", "A4", "H1"]
"""ASHRAE TC 9.9 air inlet classes; the limit of each is in optimizer.site.thermal."""
WaterClass = Literal["W17", "W27", "W32", "W40", "W45", "W+"]
"""ASHRAE TC 9.9 liquid classes: the warmest facility water the equipment accepts."""
SupplyTemperature = Annotated[float, Field(ge=0, le=70, allow_inf_nan=False)]
"""Air or water supply temperature in C; 0-70 covers every chilled- and warm-water plant."""


class SlotProperties(Strict):
    """Properties of a slot; a row gives defaults and per-position overrides."""

    liquid: Flag | None = None
    cdu: Identifier | None = None
    air_zone: Identifier | None = None
    floor_kg: PositiveFloat | None = None
    air_kw_max: PositiveFloat | None = None
    feeds: list[Identifier] | None = Field(default=None, min_length=1, max_length=2)
    primary_share: Fraction | None = None
    """Share of the rack's load on the first feed in normal operation. 0.5 (default)
    for dual-corded racks sharing A and B; 1.0 for a catcher (block-redundant)
    topology where the second feed only carries load when the first is lost."""
    network: Flag | None = None
    """Whether a network rack may stand here. When any slot says ``network: true``, only
    such slots take network racks; otherwise every slot may."""

    @field_validator("feeds")
    @classmethod
    def _distinct_feeds(cls, feeds: list[str] | None) -> list[str] | None:
        if feeds is not None and len(feeds) == 2 and feeds[0] == feeds[1]:
            raise FieldProblem(
                f"slot is fed twice by the same device {feeds[0]!r}",
                "give two different devices (A and B side) or a single feed",
            )
        return feeds

    @classmethod
    def from_table(cls, cells: dict[str, str]) -> SlotProperties:
        """The properties of one slot-table line from its non-empty cells (by column).

        Cells are text; they are typed as YAML would type them, so a table and a row
        accept the same values: booleans from ``true``/``false`` (also ``yes``/``no``,
        ``on``/``off``, ``1``/``0``), numbers from decimal text. A cell that is neither
        stays text for the schema to report (``'heavy' is not a valid number``)."""
        fields: dict[str, Any] = {
            name: _table_value(cells[name], name in _FLAG_FIELDS)
            for name in cls.model_fields
            if name in cells and name != "feeds"
        }
        feeds = [cells[c] for c in ("feed_a", "feed_b") if c in cells]
        return cls.model_validate({**fields, "feeds": feeds or None})


_FLAG_FIELDS = frozenset({"liquid", "network"})
_TABLE_FLAGS = {"true": True, "yes": True, "on": True, "1": True}
_TABLE_FLAGS |= {"false": False, "no": False, "off": False, "0": False}
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _table_value(text: str, flag: bool) -> Any:
    """A slot-table cell as a boolean (for a flag column) or a number, when it is one."""
    if flag:
        return _TABLE_FLAGS.get(text.lower(), text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text


class Row(Strict):
    """A row of equally spaced slots, numbered 1..slots from its origin."""

    slots: Whole = Field(gt=0, le=10_000)
    origin_m: tuple[Real, Real] = (0.0, 0.0)
    direction: Literal["+x", "-x", "+y", "-y"] = "+x"
    pitch_m: PositiveFloat = 0.6
    slot: SlotProperties = SlotProperties()
    overrides: dict[Whole, SlotProperties] = {}
    """Keyed by position; ``2``, ``02`` and ``2.0`` would name one slot, so equal keys
    are refused when the YAML is read and a key must be written as a whole number."""

    @field_validator("overrides")
    @classmethod
    def _overrides_in_row(
        cls, overrides: dict[int, SlotProperties], info: ValidationInfo
    ) -> dict[int, SlotProperties]:
        slots = info.data.get("slots")  # absent when the slot count itself was invalid
        outside = sorted(p for p in overrides if slots is not None and not 1 <= p <= slots)
        if outside:
            raise FieldProblem(
                f"override for position {outside[0]} but the row has slots 1..{slots}",
                "fix the position or the row's slot count",
            )
        return overrides


class Hall(Strict):
    """A data hall: named rows, and optionally a CSV table of further slots."""

    rows: dict[Identifier, Row] = {}
    slots_csv: Text | None = None
    """Path (relative to the instance file) of a CSV with one slot per line; see
    docs/instance-format.md for the columns."""


class Device(Strict):
    """A node of the power tree (UPS, switchboard, PDU, busway, RPP...)."""

    kind: Identifier = "device"
    parent: Identifier | None = None
    rating_kw: PositiveFloat
    derating: Derating | None = None
    """Continuous-load factor; the section default (0.8, NEC 210.20(A)) when absent."""
    failover_limit_kw: PositiveFloat | None = None
    """Load allowed while another device is failed; defaults to the normal limit."""
    can_fail: Flag = True


class Power(Strict):
    derating: Derating = 0.8
    devices: dict[Identifier, Device] = Field(min_length=1)


class UnitGroup(Strict):
    """Identical units of which ``redundant_units`` are set aside for a failure (N+k)."""

    units: Whole = Field(ge=1, le=1000)
    redundant_units: Whole = Field(default=1, ge=0, validate_default=True)
    """Validated even when left out: ``units: 1`` with the default 1 spare has no capacity."""

    @field_validator("redundant_units")
    @classmethod
    def _some_active(cls, redundant: int, info: ValidationInfo) -> int:
        units = info.data.get("units")  # absent when units itself was invalid
        if units is not None and redundant >= units:
            raise FieldProblem(
                f"redundant_units ({redundant}) must be fewer than units ({units}); "
                "otherwise no unit is left to carry the load",
                "lower redundant_units or add units",
            )
        return redundant


class Cdu(UnitGroup):
    """A group of identical coolant distribution units serving the same slots."""

    unit_kw: PositiveFloat
    unit_flow_lpm: PositiveFloat
    supply_temp_c: SupplyTemperature | None = None
    """Facility water supply temperature of the loop: racks whose water class is cooler
    may not stand on it, and the cooling plant's COP follows it."""
    cooling_kw_per_kw: NonNegativeFloat | None = None
    """Plant and pump power per kW of heat to this loop; overrides the facility model."""


class AirZone(UnitGroup):
    """An air zone served by identical CRAH units."""

    crah_kw: PositiveFloat
    supply_temp_c: SupplyTemperature | None = None
    """Supply air temperature: the base of every inlet temperature in the zone, and what
    the cooling plant's COP follows."""
    cooling_kw_per_kw: NonNegativeFloat | None = None
    """Plant and fan power per kW of air heat in this zone; overrides the facility model."""


class Cooling(Strict):
    cdus: dict[Identifier, Cdu] = {}
    air_zones: dict[Identifier, AirZone] = Field(min_length=1)


class FacilityLimits(Strict):
    """Site-level power: IT load plus the power the cooling plant draws."""

    utility_limit_kw: PositiveFloat | None = None
    cooling_kw_per_liquid_kw: NonNegativeFloat = 0.05
    """Chiller/dry-cooler and pump power per kW of heat to liquid (warm-water loops
    often need no compressor; 0.05 is a documented planning default)."""
    cooling_kw_per_air_kw: NonNegativeFloat = 0.25
    """CRAH fans plus chilled-water plant per kW of air heat (a PUE-1.25 air plant)."""
    cop_curve: tuple[Real, Real, Real] = (0.0068, 0.0008, 0.458)
    """COP(T) = a T^2 + b T + c of the cooling plant at supply temperature T (C), used for
    zones and CDUs that give ``supply_temp_c``. Default: the chilled-water CRAC curve of
    Moore, Chase, Ranganathan and Sharma, USENIX ATC 2005 (A)."""
    fan_kw_per_air_kw: NonNegativeFloat = 0.04
    """CRAH fan power per kW of air heat where the plant follows the COP curve."""
    pump_kw_per_liquid_kw: NonNegativeFloat = 0.02
    """CDU and facility-water pump power per kW of liquid heat where the plant follows the
    COP curve."""


class RackType(Strict):
    """A rack type; fields left out come from the catalog entry named by ``base``
    (or by the rack type's own name when it is a catalog name)."""

    base: Identifier | None = None
    description: Text | None = None
    gpus: Whole | None = Field(default=None, ge=0, le=MAX_COUNT)
    it_kw: PositiveFloat | None = None
    liquid_fraction: Fraction | None = None
    flow_lpm_per_kw: NonNegativeFloat | None = None
    weight_kg: PositiveFloat | None = None
    value: NonNegativeFloat | None = None
    """Objective weight for ``objective: max_value``; defaults to the GPU count."""
    su_size: Whole | None = Field(default=None, ge=1, le=1000)
    """Racks per scalable unit; only whole SUs are deployed (with a ``network`` section)."""
    network_rack: Identifier | None = None
    """The rack type whose switches serve this type's SUs."""
    su_ports: Whole | None = Field(default=None, ge=1, le=1000)
    """For a network rack type: how many SUs one rack serves."""
    reach_m: PositiveFloat | None = None
    """Longest cable from an SU rack to its network rack; ``network.default_reach_m`` if unset."""
    inlet_class: InletClass | None = None
    """Air inlet class the rack is rated for; ``thermal.inlet_class`` if unset."""
    water_class: WaterClass | None = None
    """For a liquid rack: the warmest facility water it accepts (no limit if unset)."""
    capped_kw: PositiveFloat | None = None
    """Power the rack draws once the power-management system caps it after a feed
    failure; failover rows count this instead of ``it_kw`` (docs/formulation.md, capped
    failover). Not capped when neither this nor ``capped_fraction`` is given."""
    capped_fraction: Annotated[Number, Field(gt=0, le=1)] | None = None
    """The capped draw as a fraction of ``it_kw`` (the other way to give ``capped_kw``)."""

    @field_validator("capped_fraction")
    @classmethod
    def _one_capped_draw(cls, fraction: float | None, info: ValidationInfo) -> float | None:
        if fraction is not None and info.data.get("capped_kw") is not None:
            raise FieldProblem(
                "both capped_kw and capped_fraction are given",
                "keep one: the capped draw in kW, or as a fraction of it_kw",
            )
        return fraction


class DemandEntry(Strict):
    """Bounds on how many racks of one type to place (the bound keeps counts in int64)."""

    min: Whole = Field(default=0, ge=0, le=MAX_COUNT)
    max: Whole | None = Field(default=None, ge=0, le=MAX_COUNT)

    @field_validator("max")
    @classmethod
    def _ordered(cls, maximum: int | None, info: ValidationInfo) -> int | None:
        minimum = info.data.get("min")  # absent when min itself was invalid
        if maximum is not None and minimum is not None and maximum < minimum:
            raise FieldProblem(
                f"min ({minimum}) is above max ({maximum})", "lower min or raise max"
            )
        return maximum


class Spine(Strict):
    """Where the spine switches stand; network racks must be within reach of it."""

    x_m: Real
    y_m: Real
    reach_m: PositiveFloat


class Network(Strict):
    """The compute fabric: present means SU rules and cable reach apply."""

    default_reach_m: PositiveFloat = 50.0
    """400G multimode optics over OM4 (NVIDIA LinkX cabling guide, A)."""
    cell_slots: Whole = Field(default=4, ge=1, le=1000)
    """Reach is judged between cells of this many consecutive like slots (1 = exact)."""
    rise_m: NonNegativeFloat = 0.5
    """Vertical run at each cable end, rack top to tray (planning assumption)."""
    slack_m: NonNegativeFloat = 0.5
    """Service-loop slack at each cable end (planning assumption)."""
    end_clearance_m: NonNegativeFloat = 1.0
    """How far beyond a row's outermost slot cables cross to the next row."""
    cross_aisles_m: dict[Identifier, list[Real]] = {}
    """Per hall: coordinates along the rows where cross-aisles let cables change rows."""
    distance_csv: Text | None = None
    """A (slot x slot) matrix of cable lengths in metres that replaces the path model."""
    su_locality: Literal["any", "row", "adjacent_rows"] = "any"
    """``row``: an SU's racks stand in its network rack's row; ``adjacent_rows``: in that
    row or the rows listed next to it in the same hall."""
    spine: Spine | None = None
    reach_classes_m: dict[Identifier, PositiveFloat] = {
        "copper": 5.0,
        "multimode": 50.0,
        "single_mode": 2000.0,
    }
    """Cable classes by longest length (NVIDIA LinkX: active copper 5 m, OM4 50 m,
    single-mode LC 2 km; A); the layout reports metres per class."""


class Recirculation(Strict):
    """The parametric recirculation model of one hall (docs/thermal.md): the share of a
    rack's exhaust heat that reaches the inlet of itself, of a slot in its row and of a
    slot in a facing row, falling off along the row."""

    containment: Literal["none", "hot_aisle", "cold_aisle"] = "none"
    self_share: Fraction = 0.10
    row_share: Fraction = 0.10
    """Share reaching the inlet of a slot one pitch away in the same row."""
    aisle_share: Fraction = 0.05
    """Share reaching the inlet of the slot straight across, in another row."""
    aisle_m: PositiveFloat = 4.0
    """Rows whose slots lie within this distance across the row count as facing."""
    decay_m: PositiveFloat = 1.2
    """Distance along the row over which a share falls to 1/e."""
    radius_m: PositiveFloat = 6.0
    """Beyond this distance along the row, no recirculation is modelled."""
    inlet_airflow_m3_s: PositiveFloat = 2.5
    """Air one slot draws; turns recirculated kW into kelvin (rho c_p = 1.2 kJ/m3K)."""


class Thermal(Strict):
    """Inlet temperatures: the ASHRAE class and the recirculation matrix D (C per kW)."""

    inlet_class: InletClass = "recommended"
    recirculation: dict[Identifier, Recirculation] = {}
    """Per hall: the parametric model."""
    matrix_file: Text | None = None
    """A (slot x source slot) matrix in C per kW, CSV or NetCDF (docs/thermal.md), e.g.
    exported from a CFD tool; it replaces the parametric model."""

    @field_validator("matrix_file")
    @classmethod
    def _one_source(cls, matrix: str | None, info: ValidationInfo) -> str | None:
        if matrix is not None and info.data.get("recirculation"):
            raise FieldProblem(
                "both a recirculation model and a matrix_file are given",
                "keep one: the matrix from CFD, or the parametric model per hall",
            )
        return matrix


class PhaseDevice(Strict):
    """A power device's capacity in a phase (a UPS or busway not yet uprated, say)."""

    rating_kw: PositiveFloat | None = None
    failover_limit_kw: PositiveFloat | None = None


class PhaseUnits(Strict):
    """How many units of a CDU group or air zone are installed in a phase."""

    units: Whole = Field(ge=1, le=1000)


class DemandScenario(Strict):
    """One possible demand of the last phase, with its probability: the plan commits the
    earlier phases and places the last phase's racks per scenario (docs/formulation.md,
    section 16)."""

    name: Identifier
    probability: Annotated[Number, Field(gt=0, le=1)]
    demand: dict[Identifier, DemandEntry] = Field(min_length=1)
    """Cumulative, as a phase's demand."""


class Phase(Strict):
    """One phase of a build-out: what is in place and what is demanded by then.

    Settings hold from their phase on until a later phase changes them; a figure no
    phase has set yet is the instance's own (the instance describes the finished
    facility). Racks placed in a phase stay in every later phase (docs/formulation.md,
    section 16)."""

    name: Identifier
    date: Text | None = None
    """Free text for the planner (``2026-Q3``); not used by the model."""
    duration: PositiveFloat = 1.0
    """Length of the phase in any unit (months, say): the weight of its GPUs for the
    ``gpu_time`` objective."""
    utility_limit_kw: PositiveFloat | None = None
    devices: dict[Identifier, PhaseDevice] = {}
    cdus: dict[Identifier, PhaseUnits] = {}
    air_zones: dict[Identifier, PhaseUnits] = {}
    open: list[Text] = []
    """Halls (``H2``) or rows (``H1/R03``) opened in this phase; they take no racks before
    it. A hall or row no phase opens is open from the first phase."""
    demand: dict[Identifier, DemandEntry] | None = Field(default=None, min_length=1)
    """Cumulative: the racks of each type on the floor by the end of the phase. Required
    but for the last phase, whose demand is the instance's ``demand`` when left out."""
    scenarios: list[DemandScenario] | None = Field(default=None, min_length=2)
    """The last phase only, instead of ``demand``: alternative demands with probabilities
    summing to 1, planned for together (a two-stage stochastic plan)."""


class Instance(Strict):
    """One facility and one demand: the whole input of a solve."""

    format_version: FormatVersion
    name: Identifier
    description: Text = ""
    include: list[Text] = []
    objective: Objective = Objective.MAX_GPUS
    facility: FacilityLimits = FacilityLimits()
    halls: dict[Identifier, Hall] = Field(min_length=1)
    power: Power
    cooling: Cooling
    rack_types: dict[Identifier, RackType] = Field(min_length=1)
    demand: dict[Identifier, DemandEntry] = Field(min_length=1)
    installed: dict[Text, Identifier] = {}
    """Racks already on the floor: slot id -> rack type. They stay where they are."""
    network: Network | None = None
    """The compute fabric; without it, SU and cable rules do not apply."""
    thermal: Thermal | None = None
    """Inlet temperature rules; without it, air heat is judged per zone and slot only."""
    phases: list[Phase] = []
    """An ordered build-out; without it the instance is one phase (its ``demand``)."""
