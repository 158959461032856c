"""The NUMA planner: a pure function over a ``/sys/devices/system/node``-like tree.

``read_nodes(root)`` reads ``root/node<N>/cpulist`` into ``{node: [cpus]}``;
``numa_plan(nodes, workers)`` gives the CPU sets to pin ``workers`` workers
*compact* (fill one node before the next) and *spread* (round-robin over the
nodes), and the (cpu node, memory node) pairs for *local* and *remote* memory
(``numactl --cpunodebind=A --membind=B``). ``not_applicable(nodes)`` is the
reason NUMA cells cannot run (one node), or None. Stdlib only.
"""

import os
import re

NODE_ROOT = "/sys/devices/system/node"
_NODE_RE = re.compile(r"^node(\d+)$")


def parse_cpulist(text):
    """``"0-3,8,10-11"`` -> ``[0, 1, 2, 3, 8, 10, 11]`` (sorted, unique)."""
    cpus = set()
    for part in (text or "").strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep:
            a, b = int(lo), int(hi)
            if b < a or b - a > 1 << 16:
                raise ValueError("bad cpu range %r" % part)
            cpus.update(range(a, b + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def read_nodes(root=NODE_ROOT):
    """``{node number: sorted CPU list}`` of every ``node<N>`` under ``root``."""
    nodes = {}
    try:
        names = os.listdir(root)
    except OSError:
        return nodes
    for name in names:
        m = _NODE_RE.match(name)
        if not m:
            continue
        try:
            with open(os.path.join(root, name, "cpulist")) as fh:
                nodes[int(m.group(1))] = parse_cpulist(fh.read())
        except (OSError, ValueError):
            continue
    return dict(sorted(nodes.items()))


def not_applicable(nodes):
    """Why pinning/placement cells cannot run on this layout, or None."""
    with_cpus = [n for n, cpus in nodes.items() if cpus]
    if len(nodes) <= 1:
        return "%d NUMA node" % len(nodes) if nodes else "no NUMA information"
    if len(with_cpus) < 2:
        return "only 1 NUMA node has CPUs"
    return None


def compact_cpus(nodes, k):
    """``k`` CPUs filling the lowest node first (fewer if the host has fewer)."""
    order = [cpu for _, cpus in sorted(nodes.items()) for cpu in cpus]
    return order[:max(0, k)]


def spread_cpus(nodes, k):
    """``k`` CPUs taken round-robin over the nodes (uneven nodes just run out)."""
    queues = [list(cpus) for _, cpus in sorted(nodes.items()) if cpus]
    chosen = []
    while len(chosen) < k and any(queues):
        for q in queues:
            if q and len(chosen) < k:
                chosen.append(q.pop(0))
    return chosen


def membind_pairs(nodes):
    """``{"local": (cpu_node, mem_node), "remote": (cpu_node, mem_node)}`` or {} on one node."""
    with_cpus = [n for n, cpus in sorted(nodes.items()) if cpus]
    if len(nodes) < 2 or not with_cpus:
        return {}
    first = with_cpus[0]
    other = [n for n in sorted(nodes) if n != first]
    return {"local": (first, first), "remote": (first, other[0])}


def numa_plan(nodes, workers):
    """Everything the NUMA cells need for ``workers`` workers, as a JSON-able dict."""
    return {
        "nodes": len(nodes),
        "not_applicable": not_applicable(nodes),
        "pinning": {"none": None, "compact": compact_cpus(nodes, workers),
                    "spread": spread_cpus(nodes, workers)},
        "membind": {k: list(v) for k, v in membind_pairs(nodes).items()},
    }
