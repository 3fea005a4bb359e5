"""The instance file format (format version 1) as pydantic models.

Every model forbids unknown keys and is frozen: a typo in an instance file is an
error that names the key, never a silently ignored setting. Cross-references
(a slot's CDU, a device's parent, a demanded rack type) are checked after the
whole file is parsed, in :mod:`optimizer.references`, because they span sections.
The public description of the format is ``docs/instance-format.md``.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FORMAT_VERSION = 1

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:+-]+$")]


class Strict(BaseModel):
    """Base of every section: unknown keys are errors and parsed values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Objective(StrEnum):
    """What the optimizer maximizes (documented in docs/instance-format.md)."""

    MAX_GPUS = "max_gpus"
    MAX_VALUE = "max_value"
    MAX_IT_KW = "max_it_kw"


class SlotProperties(Strict):
    """Properties of a slot; a row gives defaults and per-position overrides."""

    liquid: bool | None = None
    cdu: Identifier | None = None
    air_zone: Identifier | None = None
    floor_kg: PositiveFloat | None = None
    air_kw_max: PositiveFloat | None = None
    feeds: list[Identifier] | None = Field(default=None, min_length=1, max_length=2)
    primary_share: Fraction | None = None
    """Share of the rack's load on the first feed in normal operation. 0.5 (default)
    for dual-corded racks sharing A and B; 1.0 for a catcher (block-redundant)
    topology where the second feed only carries load when the first is lost."""

    @field_validator("feeds")
    @classmethod
    def _distinct_feeds(cls, feeds: list[str] | None) -> list[str] | None:
        if feeds is not None and len(feeds) == 2 and feeds[0] == feeds[1]:
            raise ValueError(
                f"slot is fed twice by the same device {feeds[0]!r}; "
                "give two different devices (A and B side) or a single feed"
            )
        return feeds


class Row(Strict):
    """A row of equally spaced slots, numbered 1..slots from its origin."""

    slots: int = Field(gt=0, le=10_000)
    origin_m: tuple[float, float] = (0.0, 0.0)
    direction: Literal["+x", "-x", "+y", "-y"] = "+x"
    pitch_m: PositiveFloat = 0.6
    slot: SlotProperties = SlotProperties()
    overrides: dict[int, SlotProperties] = {}

    @field_validator("origin_m")
    @classmethod
    def _finite_origin(cls, origin: tuple[float, float]) -> tuple[float, float]:
        if not all(math.isfinite(v) for v in origin):
            raise ValueError("origin coordinates must be finite numbers of metres")
        return origin

    @model_validator(mode="after")
    def _overrides_in_row(self) -> Row:
        outside = sorted(p for p in self.overrides if not 1 <= p <= self.slots)
        if outside:
            raise ValueError(
                f"override for position {outside[0]} but the row has slots 1..{self.slots}; "
                "fix the position or the row's slot count"
            )
        return self


class Hall(Strict):
    """A data hall: named rows, and optionally a CSV table of further slots."""

    rows: dict[Identifier, Row] = {}
    slots_csv: str | None = None
    """Path (relative to the instance file) of a CSV with one slot per line; see
    docs/instance-format.md for the columns."""


class Device(Strict):
    """A node of the power tree (UPS, switchboard, PDU, busway, RPP...)."""

    kind: Identifier = "device"
    parent: Identifier | None = None
    rating_kw: PositiveFloat
    derating: Fraction | None = None
    """Continuous-load factor; the section default (0.8, NEC 210.20(A)) when absent."""
    failover_limit_kw: PositiveFloat | None = None
    """Load allowed while another device is failed; defaults to the normal limit."""
    can_fail: bool = True


class Power(Strict):
    derating: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.8
    devices: dict[Identifier, Device] = Field(min_length=1)


class Cdu(Strict):
    """A group of identical coolant distribution units serving the same slots."""

    unit_kw: PositiveFloat
    unit_flow_lpm: PositiveFloat
    units: int = Field(ge=1, le=1000)
    redundant_units: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _some_active(self) -> Cdu:
        if self.redundant_units >= self.units:
            raise ValueError(
                f"redundant_units ({self.redundant_units}) must be fewer than units "
                f"({self.units}); otherwise the CDU group has no usable capacity"
            )
        return self


class AirZone(Strict):
    """An air zone served by identical CRAH units."""

    crah_kw: PositiveFloat
    units: int = Field(ge=1, le=1000)
    redundant_units: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _some_active(self) -> AirZone:
        if self.redundant_units >= self.units:
            raise ValueError(
                f"redundant_units ({self.redundant_units}) must be fewer than units "
                f"({self.units}); otherwise the zone has no usable capacity"
            )
        return self


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


class RackType(Strict):
    """A rack type; fields left out come from the catalog entry named by ``base``
    (or by the rack type's own name when it is a catalog name)."""

    base: Identifier | None = None
    description: str | None = None
    gpus: int | None = Field(default=None, ge=0)
    it_kw: PositiveFloat | None = None
    liquid_fraction: Fraction | None = None
    flow_lpm_per_kw: NonNegativeFloat | None = None
    weight_kg: PositiveFloat | None = None
    value: NonNegativeFloat | None = None
    """Objective weight for ``objective: max_value``; defaults to the GPU count."""


class DemandEntry(Strict):
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DemandEntry:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Instance(Strict):
    """One facility and one demand: the whole input of a solve."""

    format_version: Literal[1]
    name: Identifier
    description: str = ""
    include: list[str] = []
    objective: Objective = Objective.MAX_GPUS
    facility: FacilityLimits = FacilityLimits()
    halls: dict[Identifier, Hall] = Field(min_length=1)
    power: Power
    cooling: Cooling
    rack_types: dict[Identifier, RackType] = Field(min_length=1)
    demand: dict[Identifier, DemandEntry] = Field(min_length=1)
    installed: dict[str, Identifier] = {}
    """Racks already on the floor: slot id -> rack type. They stay where they are."""
