"""pyperf's file format as harness reads and writes it: what is refused, metadata as
pyperf accepts it, benchmark names, and a file pyperf's own loader reads back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyperf
import pytest

from harness.errors import BadInput
from harness.interchange.pyperf_export import benchmark_name
from harness.interchange.pyperf_file import (
    Benchmark,
    Run,
    Suite,
    metadata,
    read_suite,
    suite_from_json,
    write_suite,
)


def test_runs_refuse_what_pyperf_refuses() -> None:
    with pytest.raises(ValueError, match="> 0"):
        Run((0.0,))
    with pytest.raises(ValueError, match="> 0"):
        Run((float("nan"),))
    with pytest.raises(ValueError, match="loops"):
        Run((1.0,), ((0, 1.0),))
    with pytest.raises(ValueError, match="neither"):
        Run(())
    with pytest.raises(ValueError, match="twice"):
        Suite((Benchmark("a", (Run((1.0,)),)), Benchmark("a", (Run((2.0,)),))))


def test_metadata_is_what_pyperf_accepts() -> None:
    got = metadata({"a": None, "b": True, "c": "x\ny  z", "d": "", "e": 3, "f": 1.5,
                    "g": float("inf")})
    assert got == {"b": "true", "c": "x y z", "e": 3, "f": 1.5, "g": "inf"}


@pytest.mark.parametrize(("data", "message"), [
    ([], "not a pyperf file"),
    ({"version": "2.0", "benchmarks": []}, "version '2.0' is not supported"),
    ({"version": "1.0", "benchmarks": [{"runs": [{"values": [1.0]}]}]}, "has no name"),
    ({"version": "1.0", "benchmarks": [{"metadata": {"name": "x"}, "runs": []}]}, "no run"),
    ({"version": "1.0", "benchmarks": [{"metadata": {"name": "x"},
                                         "runs": [{"warmups": [[1]]}]}]}, "[loops, value]"),
])
def test_bad_files_say_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        suite_from_json(data)
    assert message in str(err.value)


def test_written_files_are_read_by_pyperf_and_by_harness(tmp_path: Path) -> None:
    suite = Suite((
        Benchmark("w/threads/workers=2", (
            Run((0.5, 0.25), ((1, 0.75),), {"date": "2026-01-01 00:00:00.000000"}),
            Run((0.5,), (), {})), {"unit": "second"}),
        Benchmark("w/sequential/workers=1", (Run((1.0,)),))),
        metadata({"hostname": "h", "cpu_count": 2}))
    for name in ("s.json", "s.json.gz"):
        path = tmp_path / name
        write_suite(suite, path)
        loaded = pyperf.BenchmarkSuite.load(str(path))
        bench = loaded.get_benchmark("w/threads/workers=2")
        assert bench.get_values() == (0.5, 0.25, 0.5)
        assert bench.get_runs()[0].warmups == ((1, 0.75),)
        assert read_suite(path) == suite
    assert gzip.decompress((tmp_path / "s.json.gz").read_bytes()).startswith(b"{")


def test_a_suite_with_the_name_in_its_metadata(tmp_path: Path) -> None:
    """pyperf timeit puts a lone benchmark's name in the suite's metadata."""
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"version": "1.0", "metadata": {"name": "timeit"},
                                "benchmarks": [{"runs": [{"values": [1e-6]}]}]}))
    assert read_suite(path).benchmarks[0].name == "timeit"


def test_unreadable_files_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        read_suite(tmp_path / "missing.json")
    (tmp_path / "x.json.gz").write_bytes(b"not gzip")
    with pytest.raises(BadInput, match="cannot be read"):
        read_suite(tmp_path / "x.json.gz")


def test_benchmark_names() -> None:
    vary = {("cpu_bound", "task_duration"): "task_s", ("cpu_bound", "workers"): "workers"}
    head = {"workload": "cpu_bound", "model": "threads", "workers": 2, "headline": True}
    assert benchmark_name(head, {"task_s": 0.02}, vary) == "cpu_bound/threads/workers=2"
    dim = dict(head, headline=False)
    assert (benchmark_name(dim, {"task_s": 0.001, "dimension": "task_duration"}, vary)
            == "cpu_bound/threads/workers=2/dimension=task_duration/task_s=0.001")
    assert (benchmark_name(dim, {"dimension": "workers"}, vary)
            == "cpu_bound/threads/workers=2/dimension=workers")
    imported = {"workload": "telco", "model": "pyperf", "workers": 1, "headline": True}
    assert benchmark_name(imported, {}, vary) == "telco"
