"""The NUMA planner on sample /sys/devices/system/node trees (tests/data/numa/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.agent import numa

DATA = Path(__file__).resolve().parent.parent / "data" / "numa"


def test_cpulist_parsing() -> None:
    assert numa.parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert numa.parse_cpulist("") == []
    with pytest.raises(ValueError):
        numa.parse_cpulist("3-1")


def test_one_node_is_not_applicable() -> None:
    nodes = numa.read_nodes(DATA / "one_node")
    assert nodes == {0: [0, 1]}
    plan = numa.numa_plan(nodes, 2)
    assert plan["not_applicable"] == "1 NUMA node"
    assert plan["membind"] == {}
    assert plan["pinning"]["compact"] == [0, 1]


def test_two_nodes_compact_spread_and_membind() -> None:
    nodes = numa.read_nodes(DATA / "two_nodes")  # the plain file 'possible' is ignored
    assert nodes == {0: [0, 1, 2, 3, 8, 9, 10, 11], 1: [4, 5, 6, 7, 12, 13, 14, 15]}
    plan = numa.numa_plan(nodes, 4)
    assert plan["not_applicable"] is None
    assert plan["pinning"]["compact"] == [0, 1, 2, 3]  # one node filled first
    assert plan["pinning"]["spread"] == [0, 4, 1, 5]  # round-robin over the nodes
    assert plan["membind"] == {"local": [0, 0], "remote": [0, 1]}
    assert numa.compact_cpus(nodes, 10) == [0, 1, 2, 3, 8, 9, 10, 11, 4, 5]


def test_uneven_nodes_and_a_memory_only_node() -> None:
    nodes = numa.read_nodes(DATA / "uneven")
    assert nodes == {0: [0, 1, 2, 3, 4, 5], 1: [6, 7], 2: []}
    assert numa.not_applicable(nodes) is None
    # node 1 runs out after two CPUs: the rest come from node 0
    assert numa.spread_cpus(nodes, 6) == [0, 6, 1, 7, 2, 3]
    assert numa.spread_cpus(nodes, 100) == [0, 6, 1, 7, 2, 3, 4, 5]
    assert numa.compact_cpus(nodes, 7) == [0, 1, 2, 3, 4, 5, 6]
    # remote memory may be a node without CPUs
    assert numa.membind_pairs(nodes) == {"local": (0, 0), "remote": (0, 1)}


def test_missing_tree() -> None:
    assert numa.read_nodes(DATA / "nope") == {}
    assert numa.not_applicable({}) == "no NUMA information"
