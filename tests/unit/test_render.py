"""Rendering of the matrix and of SQL answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas
import pytest
from rich.table import Table

from harness.errors import OptionError
from harness.render import format_frame, matrix_tables, matrix_text
from harness.warehouse import Warehouse

NAN = float("nan")


def prow(workload: str, model: str, status: str = "ok", speedup: float = NAN,
         lo: float = NAN, hi: float = NAN, median: float = 1.0, reason: str | None = None,
         profile: str = "p1", n: int = 5) -> dict:
    return {
        "sweep_id": "s1", "profile_id": profile, "hosts": "h1, h2", "profile_hosts": "h1, h2",
        "workload": workload, "model": model, "n": n if status in ("ok", "partial") else 0,
        "median_s": median, "speedup": speedup, "speedup_ci_low": lo, "speedup_ci_high": hi,
        "status": status, "reason": reason, "cpu_model": "AMD EPYC 7B13", "usable_cpus": 8,
        "numa_nodes": 2, "python_version": "3.13.1", "implementation": "CPython",
        "free_threaded": profile == "p2", "gil_enabled": profile != "p2",
    }


@pytest.fixture()
def frame() -> pandas.DataFrame:
    return pandas.DataFrame([
        prow("disk_io", "sequential", speedup=1.0, lo=1.0, hi=1.0, median=0.25),
        prow("disk_io", "threads", speedup=3.456, lo=3.0, hi=3.9),
        prow("cpu_bound", "sequential", speedup=1.0, lo=1.0, hi=1.0, median=4.0),
        prow("cpu_bound", "threads", speedup=0.98, lo=0.95, hi=1.01),
        prow("cpu_bound", "processes", speedup=1.93, lo=1.88, hi=1.97),
        prow("cpu_bound", "interpreters", status="not_applicable",
             reason="InterpreterPoolExecutor needs Python 3.14"),
        prow("my_workload", "sequential", speedup=1.0, lo=1.0, hi=1.0),
        prow("my_workload", "processes", status="failed", reason="BrokenProcessPool"),
        prow("net_low_latency", "sequential", speedup=1.0, lo=1.0, hi=1.0),
        prow("net_low_latency", "threads", status="partial", speedup=5.0, lo=4.0, hi=6.0,
             reason="timed out after 60 s", n=4),
    ])


def test_matrix_text_layout(frame: pandas.DataFrame) -> None:
    text = matrix_text(frame)
    assert "\x1b" not in text
    lines = text.splitlines()
    title = lines[0]
    for part in ("h1, h2", "AMD EPYC 7B13", "8 usable CPUs", "Python 3.13.1", "GIL",
                 "2 NUMA nodes"):
        assert part in title
    header = next(line for line in lines if "sequential" in line)
    assert header.index("sequential") < header.index("threads") < header.index("processes") \
        < header.index("interpreters")
    assert "mp_pool" not in header and "asyncio" not in header
    order = [next(i for i, line in enumerate(lines) if label in line) for label in (
        "CPU-bound (compute)", "I/O-bound (network, low latency)", "I/O-bound (disk)",
        "my_workload")]
    assert order == sorted(order)
    cpu = next(line for line in lines if "CPU-bound (compute)" in line)
    assert "1.93x [1.88-1.97]" in cpu and "0.98x [0.95-1.01]" in cpu and "n/a" in cpu
    assert "1.00x (4 s)" in cpu
    disk = next(line for line in lines if "I/O-bound (disk)" in line)
    assert "3.46x [3.00-3.90]" in disk
    assert disk.count("—") == 2  # processes and interpreters were not run for disk_io
    assert "failed" in next(line for line in lines if "my_workload" in line)
    assert "5.00x [4.00-6.00]*" in text
    assert "n/a interpreters: InterpreterPoolExecutor needs Python 3.14 (cpu_bound)" in text
    assert "failed processes: BrokenProcessPool (my_workload)" in text
    assert "timed out after 60 s" in text
    assert "95% intervals" in text  # no speedup_ci_level column: the nominal level


def test_caption_states_the_real_confidence(frame: pandas.DataFrame) -> None:
    frame["speedup_ci_level"] = [None if m == "sequential" else 0.875 for m in frame["model"]]
    assert "intervals down to 87.5% confidence" in matrix_text(frame)
    frame["speedup_ci_level"] = 0.99
    assert "each interval >= 95% confidence" in matrix_text(frame)


def test_seconds_units() -> None:
    from harness.formatting import fmt_seconds

    assert [fmt_seconds(x) for x in (2.5, 0.0207, 0.0000123)] == ["2.5 s", "20.7 ms", "12.3 µs"]


def test_one_table_per_profile(frame: pandas.DataFrame) -> None:
    p2 = pandas.DataFrame([
        prow("cpu_bound", "sequential", speedup=1.0, lo=1.0, hi=1.0, profile="p2"),
        prow("cpu_bound", "threads", speedup=3.5, lo=3.0, hi=4.0, profile="p2"),
    ])
    tables = matrix_tables(pandas.concat([frame, p2], ignore_index=True))
    assert len(tables) == 2 and all(isinstance(t, Table) for t in tables)
    assert "free-threaded" in str(tables[1].title)
    assert "free-threaded" not in str(tables[0].title)


def test_empty_matrix() -> None:
    assert matrix_tables(pandas.DataFrame()) == []
    assert matrix_text(pandas.DataFrame()) == "no matrix cells\n"


def test_matrix_from_a_real_warehouse(tmp_path: Path) -> None:
    w = Warehouse(tmp_path / "results")
    w.begin_sweep("s1", started_at=datetime(2026, 1, 1, tzinfo=UTC), harness_version="0",
                  inventory="i", profile="quick", plan={})
    w.add_environment("s1", {"host": "h1", "python": "python3", "env_id": "e1",
                             "profile_id": "p1", "cpu_model": "Test CPU", "usable_cpus": 2,
                             "numa_nodes": 1, "python_version": "3.12.3", "status": "ok",
                             "free_threaded": False, "gil_enabled": True})

    def cell(cell_id: str, model: str, xs: list[float | None], **kw: object) -> None:
        w.add_cell("s1", "e1", cell_id, [
            {"cell_key": cell_id, "workload": "cpu_bound", "model": model, "workers": 2,
             "repeat": i, "warmup": False, "headline": True, "wall_s": x, "ok": x is not None,
             "status": "ok" if x is not None else "not_applicable", **kw}
            for i, x in enumerate(xs)])

    cell("seq", "sequential", [2.0, 2.0, 2.0, 2.0, 2.0])
    cell("mp", "mp_pool", [1.0, 1.0, 1.0, 1.0, 1.0])
    cell("int", "interpreters", [None], error="needs 3.14")
    text = matrix_text(w.query("SELECT * FROM profile_matrix"))
    assert "2.00x [2.00-2.00]" in text
    assert "n/a interpreters: needs 3.14 (cpu_bound)" in text
    assert "h1 · Test CPU · 2 usable CPUs · Python 3.12.3 with GIL · 1 NUMA node" in text


@pytest.fixture()
def answer() -> pandas.DataFrame:
    return pandas.DataFrame({"name": ["a|b", None], "n": [1, 2], "x": [0.5, NAN],
                             "flag": [True, False]})


def test_format_markdown(answer: pandas.DataFrame) -> None:
    assert format_frame(answer, "markdown") == (
        "| name | n | x | flag |\n"
        "| --- | --- | --- | --- |\n"
        "| a\\|b | 1 | 0.5 | True |\n"
        "|  | 2 |  | False |\n"
    )


def test_format_json_and_csv(answer: pandas.DataFrame) -> None:
    assert json.loads(format_frame(answer, "json")) == [
        {"name": "a|b", "n": 1, "x": 0.5, "flag": True},
        {"name": None, "n": 2, "x": None, "flag": False},
    ]
    assert format_frame(answer, "csv").splitlines() == ["name,n,x,flag", "a|b,1,0.5,True",
                                                        ",2,,False"]


def test_format_table_and_bad_format(answer: pandas.DataFrame) -> None:
    text = format_frame(answer, "table")
    assert "a|b" in text and "\x1b" not in text and "name" in text
    assert "[bold]" in format_frame(pandas.DataFrame({"s": ["[bold]"]}), "table")
    with pytest.raises(OptionError):
        format_frame(answer, "xml")
    assert json.loads(format_frame(answer.iloc[0:0], "json")) == []


def test_format_rows_table_aligns_cuts_and_says_when_capped() -> None:
    from harness.render import MAX_CELL_WIDTH, format_rows

    long = "x" * (MAX_CELL_WIDTH + 10)
    text = format_rows(["name", "n"], [False, True], [("a", 1), (long, 200), ("two\nlines", None)])
    lines = text.splitlines()
    assert lines[0].startswith("name") and lines[0].endswith(" n")
    assert set(lines[1]) == {"─", " "}
    assert lines[2].startswith("a ") and lines[2].endswith("  1")   # numbers right-aligned
    assert "x" * (MAX_CELL_WIDTH - 1) + "…" in lines[3] and long not in text
    assert lines[4].startswith("two lines")
    assert len(lines) == 5  # not capped: no footer
    capped = format_rows(["n"], [True], [(1,), (2,)], capped=True, total=10_000).splitlines()
    assert capped[-1].startswith("(10,000 rows, the first 2 shown; --max-rows 0")
    unknown = format_rows(["n"], [True], [(1,)], capped=True, total=None).splitlines()
    assert unknown[-1].startswith("(more than 1 rows")


def test_format_rows_csv_and_json_keep_every_value() -> None:
    from datetime import UTC, datetime

    from harness.render import format_rows

    long = "y" * 200
    when = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    rows = [(long, 0.1, True, when, None), ("b,c", NAN, False, None, 3)]
    cols = ["s", "x", "flag", "at", "n"]
    csv_text = format_rows(cols, [False, True, False, False, True], rows, "csv")
    assert csv_text.splitlines() == [
        "s,x,flag,at,n", f"{long},0.1,True,2026-11-26 12:00:00+00:00,", '"b,c",,False,,3']
    data = json.loads(format_rows(cols, [False] * 5, rows, "json"))
    assert data[0] == {"s": long, "x": 0.1, "flag": True, "at": "2026-11-26T12:00:00+00:00",
                       "n": None}
    assert data[1]["x"] is None


def test_numeric_types() -> None:
    from harness.render import numeric_type

    assert all(numeric_type(t) for t in ("BIGINT", "INTEGER", "DOUBLE", "DECIMAL(18,3)",
                                         "UBIGINT", "HUGEINT", "FLOAT"))
    assert not any(numeric_type(t) for t in ("VARCHAR", "BOOLEAN", "TIMESTAMP WITH TIME ZONE",
                                             "BIGINT[]"))
