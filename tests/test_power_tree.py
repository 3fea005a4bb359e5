"""The power tree: its answers against a plain walk up the parents, cycles, and sites with
thousands of devices (deep chains and wide trees) built and checked correctly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from factory import instance, rack, row, site_of

from optimizer.errors import InstanceError
from optimizer.site.power_tree import NO_PARENT, PowerTree, find_cycle
from optimizer.verify.check import check_layout


def _walk(parent: np.ndarray, device: int) -> set[int]:
    """The device and its ancestors, by following parents one at a time."""
    path = set()
    while device != NO_PARENT:
        path.add(device)
        device = int(parent[device])
    return path


def _random_forest(rng: np.random.Generator, n: int) -> np.ndarray:
    """A forest on n devices in shuffled index order: each device's parent is a device
    placed before it in a hidden order, or none."""
    order = rng.permutation(n)
    parent = np.full(n, NO_PARENT, dtype=np.int64)
    for k in range(1, n):
        if rng.random() < 0.9:
            parent[order[k]] = order[rng.integers(0, k)]
    return parent


@pytest.mark.parametrize("seed", range(6))
def test_tree_answers_match_a_walk_up_the_parents(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    parent = _random_forest(rng, n)
    tree = PowerTree.from_parents(parent)
    walks = [_walk(parent, d) for d in range(n)]
    expected = np.array([[float(d in walks[a]) for d in range(n)] for a in range(n)])
    assert (tree.paths(np.arange(n)) == expected).all()
    for d in range(n):
        assert set(tree.path(d)) == walks[d] and tree.path(d)[0] == d
        assert all(parent[a] == b for a, b in itertools.pairwise(tree.path(d)))
        assert tree.fed_through(d).tolist() == [d in walks[a] for a in range(n)]
        for b in range(n):
            assert tree.shares_path(d, b) == (d in walks[b] or b in walks[d])


def test_a_chain_is_one_path():
    parent = np.array([NO_PARENT, *range(99)])  # device k is fed by device k - 1
    tree = PowerTree.from_parents(parent)
    assert tree.paths(np.array([99]))[0].tolist() == [1.0] * 100
    assert tree.path(99) == list(range(99, -1, -1))
    assert tree.fed_through(0).all() and tree.fed_through(99).sum() == 1
    assert tree.shares_path(0, 99) and tree.shares_path(99, 0)
    assert tree.paths(np.array([], dtype=np.int64)).shape == (0, 100)


def test_find_cycle_starts_from_the_first_device_that_never_reaches_a_root():
    # 0 is a root; 1 hangs below the cycle 2 -> 3 -> 2; 4 is fed by the root.
    parent = np.array([NO_PARENT, 2, 3, 2, 0])
    assert find_cycle(parent) == [2, 3, 2]
    assert find_cycle(np.array([NO_PARENT, 0, 1])) == []
    assert find_cycle(np.array([0])) == [0, 0]
    with pytest.raises(ValueError, match="cycle"):
        PowerTree.from_parents(parent)


CHAIN = 1500
"""Devices per side of the deep test site: 3,000 in all."""


def _chain_site(tmp_path, devices_per_side: int = CHAIN):
    """Two chains A0 <- A1 <- ... and B0 <- B1 <- ..., each a root with 1,499 devices
    below it; one row of two 100 kW racks fed by the two deepest devices."""
    devices = {}
    for side in "AB":
        for k in range(devices_per_side):
            device = {"rating_kw": 1000}
            if k:
                device["parent"] = f"{side}{k - 1}"
            devices[f"{side}{k}"] = device
    leaves = [f"A{devices_per_side - 1}", f"B{devices_per_side - 1}"]
    data = instance(rows={"R": row(2, leaves)}, devices=devices, rack_types={"r100": rack(8, 100)})
    return site_of(tmp_path, data)


def test_a_3000_device_chain_builds_and_every_ancestor_carries_the_load(tmp_path):
    site = _chain_site(tmp_path)
    n = 2 * CHAIN
    assert len(site.device_ids) == n
    assert site.device_parent[0] == NO_PARENT and site.device_parent[CHAIN] == NO_PARENT
    assert (site.device_parent[1:CHAIN] == np.arange(CHAIN - 1)).all()
    assert site.slot_feeds.tolist() == [[CHAIN - 1, n - 1]] * 2
    report = check_layout(site, np.array([0, 0]))
    # Two 100 kW racks, half on each chain: 100 kW on every device of both chains.
    assert report.loads.device_normal_kw.tolist() == [100.0] * n
    # Any failure on one side darkens that side's leaf: the other chain carries 200 kW.
    assert report.loads.device_failover_kw.tolist() == [200.0] * n
    worst = report.loads.device_worst_failure
    assert worst[0] == "B0" and worst[n - 1] == "A0"  # the first failure that gives 200 kW
    assert report.ok  # 200 kW <= 0.8 x 1,000 kW


def test_feeds_on_one_deep_chain_are_refused(tmp_path):
    devices = {"A0": {"rating_kw": 1000}}
    devices |= {f"A{k}": {"rating_kw": 1000, "parent": f"A{k - 1}"} for k in range(1, 300)}
    data = instance(
        rows={"R": row(1, ["A299", "A0"])}, devices=devices, rack_types={"r": rack(8, 100)}
    )
    with pytest.raises(InstanceError, match="feed A0 is upstream or downstream of feed A299"):
        site_of(tmp_path, data)


def test_a_cycle_behind_a_long_chain_is_named_from_where_the_chain_enters_it(tmp_path):
    devices = {"ROOT": {"rating_kw": 1000}}
    devices |= {
        f"D{k}": {"rating_kw": 1000, "parent": f"D{k - 1}" if k else "ROOT"} for k in range(300)
    }
    devices |= {
        "Z": {"rating_kw": 10, "parent": "X"},  # hangs below the cycle
        "X": {"rating_kw": 10, "parent": "Y"},
        "Y": {"rating_kw": 10, "parent": "X"},
    }
    data = instance(rows={"R": row(1, ["D299"])}, devices=devices, rack_types={"r": rack(8, 1)})
    with pytest.raises(InstanceError) as raised:
        site_of(tmp_path, data)
    assert raised.value.field == "power.devices.X.parent"
    assert raised.value.problem == "cycle in the power tree: X -> Y -> X"


def test_a_wide_tree_of_3000_devices_loads_only_the_branches_fed(tmp_path):
    devices = {"UPS-A": {"rating_kw": 10_000}, "UPS-B": {"rating_kw": 10_000}}
    devices |= {
        f"P{k}": {"rating_kw": 200, "parent": "UPS-A" if k % 2 == 0 else "UPS-B"}
        for k in range(2998)
    }
    data = instance(
        rows={"R": row(2, ["P0", "P1"]), "S": row(1, ["P2", "P3"])},
        devices=devices,
        rack_types={"r100": rack(8, 100)},
    )
    site = site_of(tmp_path, data)
    report = check_layout(site, np.array([0, 0, 0]))
    load = dict(zip(site.device_ids, report.loads.device_normal_kw, strict=True))
    worst = dict(zip(site.device_ids, report.loads.device_failover_kw, strict=True))
    assert (load["UPS-A"], load["UPS-B"], load["P0"], load["P1"], load["P2"]) == (
        150,
        150,
        100,
        100,
        50,
    )
    assert worst["UPS-A"] == worst["UPS-B"] == 300  # the other UPS out: all three racks
    assert worst["P1"] == 200 and worst["P3"] == 100
    assert sum(v for v in load.values()) == 150 * 2 + 100 * 2 + 50 * 2
    # P1 carries 200 kW when P0 fails, above 0.8 x 200 kW = 160 kW.
    failover = {(v.subject, v.case) for v in report.violations if v.rule == "power-failover"}
    assert failover == {("P1", "P0"), ("P1", "UPS-A"), ("P0", "P1"), ("P0", "UPS-B")}


def test_an_overload_shows_under_every_failure_that_leaves_the_device_on(tmp_path):
    # Two 100 kW single-corded racks on P0 (limit 0.8 x 200 = 160 kW): 200 kW in normal
    # operation, and still 200 kW when S, a device no rack draws through, fails.
    data = instance(
        rows={"R": row(2, ["P0"])},
        devices={
            "UPS-A": {"rating_kw": 10_000},
            "P0": {"rating_kw": 200, "parent": "UPS-A"},
            "S": {"rating_kw": 100},
        },
        rack_types={"r100": rack(8, 100)},
    )
    report = check_layout(site_of(tmp_path, data), np.array([0, 0]))
    found = {(v.rule, v.subject, v.case, v.load, v.limit) for v in report.violations}
    assert found == {
        ("power-normal", "P0", "", 200.0, 160.0),
        ("power-failover", "P0", "S", 200.0, 160.0),  # UPS-A or P0 failed: P0 is dark
    }
