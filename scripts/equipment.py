"""Public equipment figures and rackopt's own rack catalog, for the instance generators.

The example instances (generate_instances.py) and the benchmark campuses
(generate_campus.py) are sized from the same equipment: UPS units, busways, CDUs,
CRAHs and rack footprints, each a named figure with its public source. Rack figures
are never copied here: they come from rackopt's catalog (optimizer/instance/catalog.yaml)
resolved by rackopt itself, and so do the plant factors rackopt applies by default, so
a generated comment or sizing rule cannot drift from what a solve will use.
Source grades as in the catalog: A vendor or standard document, B trade press quoting a
vendor, C third-party template or code constant, D arithmetic from A/B.
"""

from __future__ import annotations

import math

from optimizer.instance.catalog import catalog
from optimizer.instance.schema import FacilityLimits
from optimizer.site.arrays import RackSpec
from optimizer.site.rack_types import resolve
from optimizer.site.thermal import plant_kw_per_kw

DERATING = 0.8
"""Continuous load at 80% of a breaker's rating: NEC 210.20(A), 215.3 (A)."""
VOLTS_LL = 415.0
"""Line-to-line voltage of the 3-phase distribution, as in the primer's 415 V examples."""
UPS_UNIT_KW = 1000.0
"""One UPS unit; Schneider Galaxy VX units are 500-1,250 kW/kVA (installation guide
990-6264C, 10/2022, A). A UPS *system* here is several units in parallel (D)."""
CDU_UNIT_KW = 1370.0
"""Vertiv XDU1350 row CDU, ~1.37 MW (C)."""
CDU_FLOW_LPM_PER_KW = 1.35
"""Vertiv GB200 NVL72 reference design coolant flow (B)."""
CDU_UNIT_FLOW_LPM = float(round(CDU_UNIT_KW * CDU_FLOW_LPM_PER_KW / 50) * 50)
"""Flow of one CDU at its rated heat: 1,370 kW x 1.35 L/min/kW ~ 1,850 L/min (D)."""
CRAH_KW = 230.0
"""Perimeter CRAH unit, ~230 kW (B/C)."""
SLOT_PITCH_M = 0.6
"""Rack width: the NVL72's 0.6 x 1.2 m footprint (D)."""
ROW_SPACING_M = 3.0
"""1.2 m rack depth + 1.8 m aisle; layout geometry only (no constraint reads it yet)."""
ROW_BUSWAY_AMPS = 5000.0
"""The row busway of the GB300 hall and the benchmark campuses (415 V, 5,000 A)."""


def busway_kw(amps: float, volts: float = VOLTS_LL) -> float:
    """Rating of a 3-phase feed in kW, as NetBox computes it: sqrt(3) x V x A (C), taken
    at unity power factor (modern IT power supplies run at ~0.95-1), rounded to 0.1 kW.

    The 80% continuous derating is *not* applied here: the instance's power section
    applies it, so the YAML shows the nameplate rating a facility engineer recognizes.
    """
    return round(math.sqrt(3.0) * volts * amps / 1000.0, 1)


def rack_catalog() -> dict[str, RackSpec]:
    """Every catalog rack as rackopt resolves it (an instance naming it with ``{}``)."""
    return {name: resolve(name, entry) for name, entry in catalog().items()}


def facility_kw(rack: RackSpec) -> float:
    """Facility power of one rack: IT plus the cooling plant, at the per-kW plant factors
    rackopt applies when an instance gives no supply temperatures (FacilityLimits)."""
    facility = FacilityLimits()
    liquid = plant_kw_per_kw(facility, None, None, air=False)
    air = plant_kw_per_kw(facility, None, None, air=True)
    return rack.it_kw + liquid * rack.liquid_kw + air * rack.air_kw
