"""A placement on a site: the rack type in each slot and, with a fabric, the SUs.

It is plain arrays over the site's slots, so the solver, the layout reader and the
independent checker can all hand it around without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Assignment:
    """A layout: a rack type per slot and, with a fabric, SUs and their network racks."""

    placement: np.ndarray
    """Rack type index per slot; -1 for an empty slot."""
    su: np.ndarray
    """SU id per slot; -1 for racks in no SU and empty slots."""
    su_network_slot: list[int] = field(default_factory=list)
    """Slot of each SU's network rack, by SU id."""
    install_phase: list[str] = field(default_factory=list)
    """For a plan of a phased build-out, read from a layout file: the phase each slot's
    rack is installed in ('' where empty); empty when the file gives none."""

    def su_types(self) -> list[int]:
        """Rack type of each SU, by SU id."""
        return [int(self.placement[self.su == i][0]) for i in range(len(self.su_network_slot))]
