"""Cable lengths between slots, measured along cable paths.

Cables run in trays above the rows. Between two slots of the same row a cable runs
along the row. Between rows of the same hall it runs along its row to a crossing
(a row end, or a cross-aisle the instance declares), across to the other row, and
back along that row: the shortest such path. Between halls it runs the Manhattan
distance in the site's coordinates. Each end adds a vertical rise (rack top to
tray) and a service-loop slack. A user may instead give the whole distance matrix
(e.g. measured on drawings). The model and the checker read lengths from here:
the geometry is an input, like a device's rating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CableGeometry:
    """Everything needed to measure a cable between any two slots."""

    hall: np.ndarray
    """Hall code per slot."""
    row: np.ndarray
    """Row code per slot (unique across halls)."""
    x_m: np.ndarray
    y_m: np.ndarray
    along_x: np.ndarray
    """Per hall code: True when the hall's rows run along x (so aisles are crossed in y)."""
    crossings: tuple[np.ndarray, ...]
    """Per hall code: coordinates along the rows where cables may cross between rows."""
    per_end_m: float
    """Rise plus slack added at each end of every cable."""
    matrix: np.ndarray | None = None
    """User-supplied (slot, slot) lengths in metres; replaces the path model when given."""

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cable length from slot a[i] to slot b[i], elementwise (broadcasting allowed)."""
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        if self.matrix is not None:
            return self.matrix[a, b]
        hall_a = self.hall[a]
        along_x = self.along_x[hall_a]
        along_a = np.where(along_x, self.x_m[a], self.y_m[a])
        along_b = np.where(along_x, self.x_m[b], self.y_m[b])
        across = np.abs(np.where(along_x, self.y_m[a] - self.y_m[b], self.x_m[a] - self.x_m[b]))
        direct = np.abs(along_a - along_b)
        detour = np.full(a.shape, np.inf)
        for h, points in enumerate(self.crossings):
            if len(points) == 0:
                continue
            in_hall = hall_a == h
            if not in_hall.any():
                continue
            via = (np.abs(along_a[..., None] - points) + np.abs(along_b[..., None] - points)).min(
                -1
            )
            detour = np.where(in_hall, via, detour)
        same_row = self.row[a] == self.row[b]
        same_hall = hall_a == self.hall[b]
        manhattan = np.abs(self.x_m[a] - self.x_m[b]) + np.abs(self.y_m[a] - self.y_m[b])
        path = np.where(same_row, direct, detour) + across
        path = np.where(same_hall & np.isfinite(path), path, manhattan)
        return np.where(a == b, 0.0, path + 2.0 * self.per_end_m)

    def pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(len(a), len(b)) lengths between every slot of a and every slot of b."""
        return self.between(np.asarray(a)[:, None], np.asarray(b)[None, :])


def crossings_for_hall(
    along: np.ndarray, end_clearance_m: float, cross_aisles_m: list[float]
) -> np.ndarray:
    """Row ends (beyond the outermost slots by ``end_clearance_m``) plus cross-aisles."""
    ends = [along.min() - end_clearance_m, along.max() + end_clearance_m] if len(along) else []
    return np.array(sorted({*ends, *cross_aisles_m}), dtype=float)


def rows_run_along_x(x_m: np.ndarray, y_m: np.ndarray, row: np.ndarray) -> bool:
    """Whether a hall's rows run along x, judged from how its slots spread within rows."""
    spread_x = spread_y = 0.0
    for r in np.unique(row):
        members = row == r
        spread_x += float(np.ptp(x_m[members]))
        spread_y += float(np.ptp(y_m[members]))
    return spread_x >= spread_y
