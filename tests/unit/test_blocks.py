"""The block scheduler: balanced random orders, complete blocks, the stopping rule on a
fake clock, and an agent stopped in a block leaving none of it behind."""

from __future__ import annotations

import io
import itertools
import types
from collections import Counter

import pytest

from harness.agent import blocks, group, output, protocol, runner
from harness.agent import plan as agent_plan


def test_orders_are_permutations_balanced_over_the_blocks() -> None:
    ids = ["seq", "threads", "processes", "asyncio", "mp_pool"]
    k = len(ids)
    orders = [blocks.block_order(ids, b, "seed-1") for b in range(4 * k)]
    assert all(sorted(o) == sorted(ids) for o in orders)
    firsts = Counter(o[0] for o in orders)
    assert firsts == Counter({i: 4 for i in ids})  # each first once per k blocks
    # positions other than the first are shuffled too: not one fixed order
    assert len({tuple(o) for o in orders}) > k
    # deterministic for a seed and a block number, different for another seed
    assert orders == [blocks.block_order(ids, b, "seed-1") for b in range(4 * k)]
    assert orders != [blocks.block_order(ids, b, "seed-2") for b in range(4 * k)]
    assert blocks.block_order(["only"], 7, "s") == ["only"]


def test_group_widths_use_the_block_ratios() -> None:
    # the machine is twice as slow in blocks 2 and 3: the ratios stay exactly 2
    recs = [{"seq": 1.0, "p": 0.5}, {"seq": 1.0, "p": 0.5}, {"seq": 2.0, "p": 1.0},
            {"seq": 2.0, "p": 1.0}, {"seq": 1.0, "p": 0.5}]
    assert blocks.block_ratios(recs, "seq", "p") == [2.0] * 5
    assert blocks.group_widths(recs, ["seq", "p"], "seq") == {"p": 0.0}
    # without a baseline: the width of each cell's own median interval
    widths = blocks.group_widths(recs, ["seq", "p"], None)
    assert widths["seq"] == pytest.approx(1.0) and widths["p"] == pytest.approx(1.0)


def test_calibration_stops_on_target_budget_or_max() -> None:
    calib = blocks.BlockCalibration(3, 6, target_rel_ci=0.05, budget_s=10.0)
    steady = [{"seq": 1.0, "p": 0.5}] * 3
    assert calib.stop_reason(steady[:2], ["seq", "p"], "seq", 0.0) is None  # below minimum
    assert calib.stop_reason(steady, ["seq", "p"], "seq", 0.0) == "target"
    noisy = [{"seq": 1.0, "p": x} for x in (0.5, 0.8, 0.4, 0.7)]
    assert calib.stop_reason(noisy, ["seq", "p"], "seq", 1.0) is None
    assert calib.stop_reason(noisy, ["seq", "p"], "seq", 10.0) == "budget"
    assert calib.stop_reason(noisy * 2, ["seq", "p"], "seq", 1.0) == "max_repeats"
    with pytest.raises(ValueError):
        blocks.BlockCalibration(3, 2)


def cell(cell_id: str, model: str, **kw):
    base = {"cell_id": cell_id, "workload": "empty", "implementation": "empty",
            "model": model, "workers": 1 if model == "sequential" else 2,
            "params": {"tasks": 4}, "warmups": 1, "repeats": 3, "timeout_s": 600,
            "group": "g1"}
    base.update(kw)
    return base


def run(cells, seed="s"):
    plan = agent_plan.parse_plan({"protocol": 2, "keepalive_s": 5, "cells": cells, "seed": seed})
    stream = io.StringIO()
    runner.Runner(output.LineWriter(stream), plan).run()
    msgs = [protocol.parse_line(line) for line in stream.getvalue().splitlines()]
    return [m for m in msgs if m["type"] != "keepalive"]


GROUP = [cell("s", "sequential"), cell("t", "threads"), cell("a", "asyncio")]


def test_a_group_runs_warmups_then_complete_balanced_blocks() -> None:
    msgs = run([dict(c, min_repeats=6, max_repeats=6) for c in GROUP])
    samples = [m for m in msgs if m["type"] == "sample"]
    warm = [s for s in samples if s["warmup"]]
    timed = [s for s in samples if not s["warmup"]]
    # every cell started before any sample: the group's cells are open together
    first_sample = next(i for i, m in enumerate(msgs) if m["type"] == "sample")
    assert {m["cell_id"] for m in msgs[:first_sample] if m["type"] == "cell_start"} == \
        {"s", "t", "a"}
    # the warmups of every cell come before the first block
    assert samples[:3] == warm and all(s["block"] is None for s in warm)
    assert [s["block"] for s in timed] == [b for b in range(6) for _ in range(3)]
    for b in range(6):
        block = [s for s in timed if s["block"] == b]
        assert sorted(s["cell_id"] for s in block) == ["a", "s", "t"]
        assert [s["block_pos"] for s in block] == [0, 1, 2]
        assert all(s["block_group"] == "g1" and s["probe_s"] > 0 for s in block)
    firsts = Counter(s["cell_id"] for s in timed if s["block_pos"] == 0)
    assert firsts == Counter({"s": 2, "t": 2, "a": 2})
    for cid in "sta":
        last = [s for s in timed if s["cell_id"] == cid][-1]
        assert last["extra"]["calib_stop"] == "max_repeats"
        assert last["extra"]["calib_repeats"] == 6
        assert "steal_pct" in last["extra"] and "iowait_pct" in last["extra"]
    assert [m["cell_id"] for m in msgs if m["type"] == "cell_done"] == ["s", "t", "a"]


def test_the_budget_stops_blocks_on_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """min 2, max 50 blocks, a budget of 3 x 1.5 s for the group; the clock moves 1 s at
    every reading of the group run: the group stops once 4.5 s have passed."""
    ticks = itertools.count()
    fake = types.SimpleNamespace(monotonic=lambda: float(next(ticks)), time=group.time.time,
                                 perf_counter=group.time.perf_counter)
    monkeypatch.setattr(group, "time", fake)
    msgs = run([dict(c, min_repeats=2, max_repeats=50, budget_s=1.5, timeout_s=10**6)
                for c in GROUP])
    timed = [m for m in msgs if m["type"] == "sample" and not m["warmup"]]
    n_blocks = len({s["block"] for s in timed})
    assert 2 <= n_blocks < 50
    assert {s["extra"]["calib_stop"] for s in timed if "calib_stop" in s["extra"]} == {"budget"}


def test_an_agent_stopped_in_a_block_leaves_none_of_that_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Samples of a block are written only when the block is complete: an agent that
    dies in block 2 has written blocks 0 and 1 whole and nothing of block 2, which the
    controller then measures again whole."""
    real = group.GroupRun.measure
    calls = itertools.count()

    def dying(self, cell, *args, **kw):
        if next(calls) == 3 + 2 * 3 + 1:  # 3 warmups, 2 blocks, then the 2nd of block 2
            raise SystemExit("killed")
        return real(self, cell, *args, **kw)

    monkeypatch.setattr(group.GroupRun, "measure", dying)
    plan = agent_plan.parse_plan({"protocol": 2, "keepalive_s": 5, "seed": "s",
                              "cells": [dict(c, min_repeats=5, max_repeats=5)
                                        for c in GROUP]})
    stream = io.StringIO()
    with pytest.raises(SystemExit):
        runner.Runner(output.LineWriter(stream), plan).run()
    msgs = [protocol.parse_line(line) for line in stream.getvalue().splitlines()]
    timed = [m for m in msgs if m["type"] == "sample" and not m["warmup"]]
    assert sorted(Counter(s["block"] for s in timed).items()) == [(0, 3), (1, 3)]
    assert not [m for m in msgs if m["type"] == "cell_done"]


def test_prior_blocks_number_on_and_count() -> None:
    """A later agent run gets the earlier runs' blocks: its blocks are numbered after
    them and the calibration counts them (min 4: two own blocks after two prior)."""
    prior = {"s": [[0, 1.0], [1, 1.0]], "t": [[0, 1.0], [1, 1.0]], "a": [[0, 1.0], [1, 1.0]]}
    msgs = run([dict(c, min_repeats=4, max_repeats=4, prior=prior[c["cell_id"]])
                for c in GROUP])
    timed = [m for m in msgs if m["type"] == "sample" and not m["warmup"]]
    assert sorted({s["block"] for s in timed}) == [2, 3]
    assert all(s["extra"]["calib_repeats"] == 4 for s in timed if "calib_stop" in s["extra"])


def test_a_failing_cell_leaves_the_group_the_others_go_on() -> None:
    msgs = run([cell("s", "sequential", min_repeats=3, max_repeats=3),
                cell("x", "no_such_model", min_repeats=3, max_repeats=3),
                cell("t", "threads", min_repeats=3, max_repeats=3)])
    done = {m["cell_id"]: m["status"] for m in msgs if m["type"] == "cell_done"}
    assert done == {"x": "failed", "s": "ok", "t": "ok"}
    timed = [m for m in msgs if m["type"] == "sample" and not m["warmup"]
             and m["cell_id"] != "x"]
    assert sorted(Counter(s["block"] for s in timed).values()) == [2, 2, 2]
