"""Iterated local search over a packing, for halls where recirculation binds.

The spreading construction (optimizer.solve.greedy ``packing``) puts each rack where it
uses the least inlet headroom at that moment; the racks placed early then sit where the
later ones would have fitted together, and the headroom left over is scattered in bits
too small for a rack. The search takes the racks out of a small neighbourhood (the
slots that heat one inlet most), puts back as many racks as fit anywhere in the hall by
the spreading rule, and keeps the result when it scores no less: moves that score the
same walk across plateaus, moves that score more are kept as the best packing. Every
state is a valid layout without the SU rule (every capacity and inlet row is checked
before a rack is put down), so the solver cuts whole SUs from the best packing
(optimizer.solve.highs ``_Neighbourhoods.cut_from_pack``).

With whole SUs, the types placed first are held at a whole number of SUs
(:func:`whole_su_caps`): on hall-300-thermal the packing places 100 GB300 racks, of
which whole SUs can use 96; the four left over take the inlet headroom that the DGX
H100 racks need, and the search, held at 96, finds room for 56 and more
(docs/benchmarks.md, issue 14).

With a fabric, a packing is worth the racks its network racks can serve
(:meth:`_Search.score`), and some moves take a network rack out or stand one: the
packings stand a network rack in every network slot, and on the 8 x 20 thermal hall of
docs/benchmarks.md the heat of the five that no SU needs kept the search at three DGX
H100 SUs; taking them out makes room for a fourth.

The search is seeded, so the same instance and the same number of iterations give the
same packing on every machine; the time limit may cut it short on a slower one. On
hall-300-thermal each of the seeds 0-5 reaches 7 DGX H100 SUs beside 12 GB300 SUs
(8,704 GPUs) within its moves, in 0.4 to 3.1 s (seed 0, the one used, in 0.6 s;
docs/benchmarks.md, 'SU-aware local search').
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import numpy as np

from models.data import ModelData
from models.objective import primary_weights
from optimizer.site.arrays import NO_INDEX
from optimizer.solve.greedy import (
    SPREAD_NORMS,
    Construction,
    by_it_load,
    class_counts,
    packed_layout,
    packing,
)

ITERATIONS = 8000
"""Moves tried at most: about 5 s on hall-300-thermal's 300 slots on the benchmark
machine, inside the most time the solver gives the search (8 s, optimizer.solve.highs
``search_budget``), so that there the moves end it, not the clock, and a run with a limit
of 40 s or more gives the same packing every time, on a machine up to 40% slower too.
10,000 moves took 6.5 s on one day and 7.0-7.5 s on another, too close to the budget."""
STALL_PER_SLOT = 5
"""Moves in a row without a better packing, per hot slot, after which the walk starts
again from the first packing (at least :data:`STALL_LEAST`): on hall-300-thermal with
seed 1 the first walk stops improving at 54 DGX H100 racks beside 96 GB300, and the
second reaches 58 within 8 s."""
STALL_LEAST = 500
"""The least stall length: small halls walk a few hundred moves before starting again."""
NEIGHBOURHOODS = (3, 6, 10)
"""How many of the slots that heat an inlet most one move empties (the inlet's own slot
among them): from a pair of neighbours to the reach of a row's recirculation."""
SCATTERED = (0, 1, 2)
"""How many more racks, anywhere, one move takes out as well, so that the refill can
also use headroom outside the neighbourhood."""
CENTRE_EMPTY = 0.5
"""Share of the moves centred on an empty slot's inlet (the others on any hot slot):
where a rack does not yet fit is where emptying the neighbourhood can make room."""
NETWORK_MOVES = 0.1
"""Share of the moves that take a network rack out, or stand one in a free network slot
where it fits, before the refill: the packings stand one in every network slot, and a
network rack no SU needs takes inlet headroom (20 kW of air heat for the catalog's
network rack) that racks of an SU could use. On the 8 x 20 thermal hall of
docs/benchmarks.md five of 16 serve no SU."""
TAKE_OUT = 0.5
"""Share of the network-rack moves that take one out (the others stand one)."""
SEED = 0
"""The generator's seed: fixed, so that a run is repeatable (see the module docstring)."""


def whole_su_caps(data: ModelData, placement: np.ndarray) -> dict[int, int]:
    """Rack type -> most racks, for every SU type but the last one the packing places
    (the smallest IT load): the whole SUs of it in ``placement``. Racks beyond a whole
    SU are never part of a layout and only take headroom from the types after them."""
    site = data.site
    counts = np.bincount(placement[placement != NO_INDEX], minlength=len(site.rack_types))
    placed = [t for t in by_it_load(site) if site.network_type(t) != NO_INDEX and counts[t]]
    return {
        t: int(counts[t]) // site.rack_types[t].su_size * site.rack_types[t].su_size
        for t in placed[:-1]
    }


def held_packing(data: ModelData) -> tuple[np.ndarray, Construction]:
    """The spreading packing of the first norm of :data:`SPREAD_NORMS` (its placement),
    and, where a fabric is modelled, the same packing with the SU types placed first held
    at its whole SUs (:func:`whole_su_caps`): where the search starts."""
    start = packing(data, SPREAD_NORMS[0])
    caps = whole_su_caps(data, start.placement) if data.site.network is not None else {}
    if any(start.counts[t] > cap for t, cap in caps.items()):
        return start.placement.copy(), packing(data, SPREAD_NORMS[0], caps)
    return start.placement.copy(), start


def searched_packing(
    data: ModelData,
    deadline: float,
    stop: Callable[[], bool],
    iterations: int | None = None,
    seed: int = SEED,
    held: Construction | None = None,
) -> np.ndarray:
    """The best packing (slot -> rack type) the search finds from ``held`` (which it
    changes; by default :func:`held_packing`'s) within ``iterations`` moves (default
    :data:`ITERATIONS`), before ``deadline`` (perf_counter) and until ``stop()``."""
    start = held_packing(data)[1] if held is None else held
    moves = ITERATIONS if iterations is None else iterations
    return _Search(data, start, seed).run(moves, deadline, stop)


class _Search:
    def __init__(self, data: ModelData, construction: Construction, seed: int) -> None:
        self.site = data.site
        self.construction = construction
        self.weights = np.array([*primary_weights(data), 0.0])  # index -1 (empty) scores 0
        self.random = random.Random(seed)
        recirculation = self.site.recirculation.tocsr()
        self.hot_slots = np.flatnonzero(np.diff(recirculation.indptr))
        self.hot = self.hot_slots.tolist()
        """Slots whose inlet some rack heats: where a move is centred."""
        self.heated_by = {}
        """Per hot slot: the slots that heat it, most first."""
        for s in self.hot:
            row = slice(recirculation.indptr[s], recirculation.indptr[s + 1])
            order = np.argsort(-recirculation.data[row], kind="stable")
            self.heated_by[s] = recirculation.indices[row][order]
        movable = np.ones(self.site.n_slots, dtype=bool)
        for c in data.classes:
            if c.installed_type != NO_INDEX:
                movable[list(c.slots)] = False
        types = self.site.rack_types
        network = [t for t in range(len(types)) if self.site.is_network_type(t)]
        self.movable = movable
        self.stall = max(STALL_LEAST, STALL_PER_SLOT * len(self.hot))
        self.network = np.array(network, dtype=np.int64)
        su_types = [t for t in range(len(types)) if self.site.network_type(t) != NO_INDEX]
        self.su_types = sorted(su_types, key=lambda t: (-self.weights[t] * types[t].su_size, t))
        """SU types, the one worth most per SU first: the order in which the network
        racks' ports are given out by :meth:`score`."""
        self.weights_outside_sus = self.weights[:-1].copy()
        self.weights_outside_sus[su_types] = 0.0
        """Per rack type: its weight, or 0 for an SU type (counted by :meth:`score`)."""
        held_at = np.zeros(len(types), dtype=np.int64)
        held_at[list(construction.caps)] = list(construction.caps.values())
        self.floors = np.maximum(self.site.demand_min, held_at)
        """Per rack type: the count a move may not take it below (unless it was already
        below): the demand minimum, and for a held type its whole SUs (:func:`whole_su_caps`).
        A packing short of a demand minimum cuts into no layout at all."""

    def score(self) -> float:
        """What the packing is worth: every rack outside SUs, and the racks of SU types
        that the ports of the network racks standing can serve: whole SUs first, the SU
        types worth most per SU first, then with the ports left one SU still short of
        racks per type (the walk is rewarded for each rack that brings the next SU
        closer, but a short SU never takes the port of a whole one). Racks beyond the
        ports never become part of a layout, so they count for nothing; where network
        racks weigh nothing (GPUs as the objective), taking out one whose port no SU
        needs costs nothing and frees its heat for racks that count."""
        counts = self.construction.counts
        types = self.site.rack_types
        ports = {int(v): int(counts[v]) * types[v].su_ports for v in self.network}
        value = float(self.weights_outside_sus @ counts)
        short = []
        for t in self.su_types:
            v, size = self.site.network_type(t), types[t].su_size
            whole = min(int(counts[t]) // size, ports[v])
            ports[v] -= whole
            value += self.weights[t] * whole * size
            short.append((t, v, int(counts[t]) - whole * size))
        for t, v, left in short:
            # Left over racks and a port to spare: fewer than an SU, since every whole
            # SU found a port.
            if left and ports[v]:
                ports[v] -= 1
                value += self.weights[t] * left
        return value

    def run(self, iterations: int, deadline: float, stop: Callable[[], bool]) -> np.ndarray:
        """Moves until ``iterations``, ``deadline`` or ``stop()``; after :attr:`stall`
        moves without a better packing, the walk starts again from the first packing
        (a plateau it cannot leave; the generator's next draws take another way)."""
        c = self.construction
        first = c.placement.copy()
        best, best_placement = self.score(), first.copy()
        current, walk_best = best, best
        since_better = 0
        for _ in range(iterations if self.hot else 0):
            if time.perf_counter() > deadline or stop():
                break
            if since_better >= self.stall:
                self._restore(first)
                current = walk_best = self.score()
                since_better = 0
            before = c.placement.copy()
            counts = c.counts.copy()
            self._move()
            value = self.score()
            held = bool(np.all(c.counts >= np.minimum(self.floors, counts)))
            since_better += 1
            if value + 1e-9 < current or not held:
                self._restore(before)
                continue
            current = value
            if value > walk_best + 1e-9:
                walk_best, since_better = value, 0
            if value > best + 1e-9:
                best, best_placement = value, c.placement.copy()
        return best_placement

    def _move(self) -> None:
        """Empty a neighbourhood and a few scattered slots, or (a share
        :data:`NETWORK_MOVES` of the moves, with a fabric) take out or stand a network
        rack; then refill the hall."""
        c = self.construction
        if len(self.network) and self.random.random() < NETWORK_MOVES:
            self._network_move()
        else:
            self._empty_neighbourhood()
        c.spread = self.random.choice(SPREAD_NORMS)
        c.fill()

    def _network_move(self) -> None:
        """Take out a network rack (a share :data:`TAKE_OUT` of these moves, or whenever
        no free network slot takes one), or stand one in a free network slot where it
        fits."""
        c = self.construction
        standing = np.flatnonzero(np.isin(c.placement, self.network) & self.movable)
        fits = {int(v): c.allowed[:, v] & c.loads.fits(int(v)) for v in self.network}
        open_hubs = [(k, v) for k, v in c.hubs if c.free[k] and fits[v][k] and c.has_room(v)]
        if len(standing) and (self.random.random() < TAKE_OUT or not open_hubs):
            s = int(self.random.choice(standing))
            c.take_back(int(c.class_of[s]), s, int(c.placement[s]))
        elif open_hubs:
            c.put(*self.random.choice(open_hubs))

    def _empty_neighbourhood(self) -> None:
        """Take out the racks of the slots that heat one inlet most, and a few more."""
        c = self.construction
        empty = self.hot_slots[c.placement[self.hot_slots] == NO_INDEX].tolist()
        centre = self.random.choice(
            empty if empty and self.random.random() < CENTRE_EMPTY else self.hot
        )
        size = self.random.choice(NEIGHBOURHOODS)
        slots = list(self.heated_by[centre][:size])
        placed = np.flatnonzero(
            (c.placement != NO_INDEX) & self.movable & ~np.isin(c.placement, self.network)
        )
        scattered = self.random.choice(SCATTERED)
        if scattered and len(placed):
            slots += [int(s) for s in self.random.sample(list(placed), min(scattered, len(placed)))]
        for s in dict.fromkeys(int(s) for s in slots):
            t = int(c.placement[s])
            if t != NO_INDEX and self.movable[s] and t not in self.network:
                c.take_back(int(c.class_of[s]), s, t)

    def _restore(self, placement: np.ndarray) -> None:
        """Back to ``placement``, class by class: each rack goes back to its class's
        first free slot, not always the slot it came from. Slots of one class are
        interchangeable and every load is kept per class, so the layout is the same."""
        c = self.construction
        for s in np.flatnonzero((c.placement != placement) & (c.placement != NO_INDEX)):
            c.take_back(int(c.class_of[s]), int(s), int(c.placement[s]))
        for s in np.flatnonzero((c.placement != placement) & (placement != NO_INDEX)):
            c.put(int(c.class_of[s]), int(placement[s]))


class Packings:
    """The packings of a hall where inlet rows bind, as upper bounds id(place[k, t]) ->
    count, each a layout within which one that makes every SU whole and cabled is a start
    (the solver picks it, optimizer.solve.highs ``_Neighbourhoods.cut_from_pack``). The
    spreading packings are built here, with the model, so their time counts as the
    build's and not against the time limit; the searched one when the solver asks."""

    def __init__(self, data: ModelData, m: object) -> None:
        self.data, self.m = data, m
        first, self.held = held_packing(data)
        """The held packing's construction, which :meth:`searched` searches from."""
        found = [self.held.placement.copy(), first]
        if data.site.network is not None:
            found += [packed_layout(data, norm) for norm in SPREAD_NORMS[1:]]
        distinct = {placement.tobytes(): placement for placement in found}
        self.spread = [class_counts(data, m, placement) for placement in distinct.values()]
        """The held packing (the search's start) and, with a fabric, the packing of each
        norm of :data:`SPREAD_NORMS` as it comes; each distinct one once."""

    @classmethod
    def of(cls, data: ModelData, m: object) -> Packings | None:
        """The packings of ``data``'s model ``m``; None unless inlet rows bind and the
        objective is maximized: the start then needs no packing."""
        if not data.inlet_rows or data.site.objective.minimizes:
            return None
        return cls(data, m)

    def searched(self, deadline: float, stop: Callable[[], bool]) -> list[dict[int, float]]:
        """The packing :func:`searched_packing` finds before ``deadline`` (perf_counter)
        or ``stop()``, from the held packing built here (not built again); a second call
        goes on from where the first left the walk."""
        found = searched_packing(self.data, deadline, stop, held=self.held)
        return [class_counts(self.data, self.m, found)]
