"""What an instance may ask rackopt to optimize, shared by every stage.

The instance format names the objective, the site carries it and ``models/`` builds
it; it lives here, beside :mod:`optimizer.errors`, so that none of those stages has
to import another one upstream or downstream of it to name it.
"""

from __future__ import annotations

from enum import StrEnum


class Objective(StrEnum):
    """What the optimizer optimizes (documented in docs/instance-format.md)."""

    MAX_GPUS = "max_gpus"
    MAX_VALUE = "max_value"
    MAX_IT_KW = "max_it_kw"
    MIN_FACILITY_KW = "min_facility_kw"
    """Least facility power (IT + cooling) that places the demand minimums."""

    @property
    def minimizes(self) -> bool:
        return self is Objective.MIN_FACILITY_KW

    @property
    def unit(self) -> str:
        """What the objective counts, for progress lines ('' for the types' own value)."""
        return _UNITS[self]


_UNITS = {
    Objective.MAX_GPUS: "GPUs",
    Objective.MAX_VALUE: "",
    Objective.MAX_IT_KW: "kW IT",
    Objective.MIN_FACILITY_KW: "kW facility",
}
