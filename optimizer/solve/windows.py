"""Windows of linked slots for the large-neighbourhood search of the warm start.

Where inlet rows bind, what one slot may hold depends on its neighbours: the slots whose
exhaust reaches its inlet and the slots its own exhaust reaches (the recirculation matrix
D, models.data.InletRow), which under the parametric model are a short stretch of the
same row and of the facing row. A window is such a group: a seed slot and the slots most
strongly linked to it. Re-solving one window exactly with every other slot fixed
(:func:`optimizer.solve.highs.solve`) trades racks between slots that compete for the
same inlet headroom, which a one-rack-at-a-time construction cannot do.
"""

from __future__ import annotations

import numpy as np

from models.data import ModelData

WINDOW_CLASSES = 64
"""Slot classes freed per window: about a row and its facing row. On hall-300-thermal
(docs/benchmarks.md) windows of 16 or 40 linked slots are each proven optimal at the
spreading start's 7,680 GPUs (a local optimum for them); windows of 64 take 1-2 s each
and find 7,936 within 8 s."""


def thermal_windows(data: ModelData, size: int = WINDOW_CLASSES) -> list[list[int]]:
    """Windows (lists of slot classes), one per seed, seeds taken half a window apart in
    slot order so that consecutive windows overlap; empty without inlet rows. Each window
    is its seed and the ``size - 1`` classes with the largest two-way coupling
    D[seed, j] + D[j, seed] to it (ties by slot order)."""
    rows = data.inlet_rows
    if not rows:
        return []
    linked = sorted({r.own for r in rows} | {int(k) for r in rows for k in r.sources})
    position = {k: i for i, k in enumerate(linked)}
    coupling = np.zeros((len(linked), len(linked)))
    for r in rows:
        for k, d in zip(r.sources, r.d_c_per_kw, strict=True):
            a, b = position[r.own], position[int(k)]
            coupling[a, b] += d
            coupling[b, a] += d
    first_slot = np.array([min(data.classes[k].slots) for k in linked])
    by_slot = np.argsort(first_slot, kind="stable")
    windows = []
    for seed in by_slot[:: max(size // 2, 1)]:
        strength = coupling[seed].copy()
        strength[seed] = np.inf
        order = np.lexsort((first_slot, -strength))
        chosen = [i for i in order[:size] if strength[i] > 0]
        windows.append(sorted(linked[i] for i in chosen))
    return windows
