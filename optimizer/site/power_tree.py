"""The power tree: which device feeds which, and the path power takes up to a root.

This module is the one walk of the tree. Devices are numbered in instance order and
``parent[d]`` is the device that feeds d (``NO_PARENT`` for a root). One depth-first
walk numbers the devices so that each device's subtree is one interval of that
numbering; "does power drawn at device a flow through device d?" is then two
comparisons. So the site builder (feeds on separate branches), the model and the
checker (the load a rack puts on every device, what goes dark when a device fails)
ask the same tree, in time and memory linear in the number of devices: there is no
walk up the tree per question and no (device x device) matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from optimizer.errors import ErrorAt, did_you_mean

NO_PARENT = -1
"""Parent index of a root device (the site's NO_INDEX)."""


@dataclass(frozen=True)
class PowerTree:
    """Parents and the depth-first interval of every device's subtree."""

    parent: np.ndarray
    """Index of the device feeding each device; NO_PARENT for a root."""
    first: np.ndarray
    """Position of each device in a depth-first order of the tree (parents first)."""
    last: np.ndarray
    """Last position of the device's subtree: d's subtree is positions first[d]..last[d]."""

    @classmethod
    def from_parents(cls, parent: np.ndarray) -> PowerTree:
        """The tree of an acyclic ``parent`` array (see :func:`find_cycle`)."""
        order = _depth_first(parent)
        if len(order) < len(parent):
            raise ValueError("the parent array has a cycle")
        n = len(parent)
        first = np.empty(n, dtype=np.int64)
        first[order] = np.arange(n)
        above = parent.tolist()
        size = [1] * n
        for d in reversed(order):  # children before parents
            if above[d] != NO_PARENT:
                size[above[d]] += size[d]
        return cls(np.asarray(parent, dtype=np.int64), first, first + np.array(size) - 1)

    def paths(self, devices: np.ndarray) -> np.ndarray:
        """(len(devices), device) array: row i is 1.0 at ``devices[i]`` and at every
        device above it, the devices a load drawn at ``devices[i]`` flows through."""
        at = self.first[np.asarray(devices, dtype=np.int64)][:, None]
        return ((self.first <= at) & (at <= self.last)).astype(float)

    def path(self, device: int) -> list[int]:
        """``device`` and every device above it, nearest first: where a load drawn at
        ``device`` flows on its way to the root."""
        path = [device]
        while (above := int(self.parent[path[-1]])) != NO_PARENT:
            path.append(above)
        return path

    def fed_through(self, device: int) -> np.ndarray:
        """Mask of the devices whose power flows through ``device``, itself included:
        everything that goes dark when it fails."""
        return (self.first[device] <= self.first) & (self.first <= self.last[device])

    def shares_path(self, a: int, b: int) -> bool:
        """True when one of the two devices lies on the other's path to the root."""
        return self._feeds(a, b) or self._feeds(b, a)

    def _feeds(self, upper: int, lower: int) -> bool:
        """Whether power drawn at ``lower`` flows through ``upper``."""
        return bool(self.first[upper] <= self.first[lower] <= self.last[upper])


def _depth_first(parent: np.ndarray) -> list[int]:
    """Devices reachable from a root, parents before children, siblings in index order.
    Devices on a cycle, or hanging below one, are never reached."""
    # Children grouped by parent (roots first), each group in index order: one array
    # instead of a list per device, which costs garbage-collector time on big sites.
    grouped = np.argsort(parent, kind="stable").tolist()
    roots = int((parent == NO_PARENT).sum())
    ends = roots + np.cumsum(np.bincount(parent[parent != NO_PARENT], minlength=len(parent)))
    start, end = np.concatenate([[roots], ends[:-1]]).tolist(), ends.tolist()
    order: list[int] = []
    stack = grouped[roots - 1 :: -1] if roots else []
    while stack:
        d = stack.pop()
        order.append(d)
        if start[d] < end[d]:
            stack.extend(reversed(grouped[start[d] : end[d]]))
    return order


def find_cycle(parent: np.ndarray) -> list[int]:
    """The cycle reached by following parents from the first device (in index order)
    whose chain never ends at a root, with its first device repeated at the end; an
    empty list when every chain ends at a root."""
    reached = np.zeros(len(parent), dtype=bool)
    reached[_depth_first(parent)] = True
    if reached.all():
        return []
    order: list[int] = []
    position: dict[int, int] = {}
    node = int(np.flatnonzero(~reached)[0])
    while node not in position:
        position[node] = len(order)
        order.append(node)
        node = int(parent[node])
    return [*order[position[node] :], node]


def resolve_power_tree(parents: Mapping[str, str | None], error: ErrorAt) -> PowerTree:
    """The tree of the instance's devices (device id -> parent id, None for a root), in
    instance order; a device that feeds itself, an unknown parent or a cycle is an
    error at the ``parent`` field that causes it."""
    index = {device: i for i, device in enumerate(parents)}
    parent = np.full(len(parents), NO_PARENT, dtype=np.int64)
    for i, (device, name) in enumerate(parents.items()):
        field = ("power", "devices", device, "parent")
        if name is None:
            continue
        if name == device:
            raise error(
                field,
                f"device {device} is its own parent",
                "name the device that feeds it, or drop parent for a root device",
            )
        if name not in index:
            raise error(
                field,
                f"unknown device {name!r}",
                did_you_mean(
                    name,
                    parents,
                    "name a device defined under power.devices, or drop parent for a root",
                ),
            )
        parent[i] = index[name]
    try:
        return PowerTree.from_parents(parent)
    except ValueError:
        ids = [list(parents)[d] for d in find_cycle(parent)]
        raise error(
            ("power", "devices", ids[0], "parent"),
            f"cycle in the power tree: {' -> '.join(ids)}",
            "every chain of parents must end at a root device without parent",
        ) from None
